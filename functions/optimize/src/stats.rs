//! The two paired tests a promotion must pass, on per-input score differences
//! (variant − active on the same logged input). Written here rather than taken from a
//! statistics crate: both are a few lines, and what the optimizer needs is exactly a
//! one-sided sign test and a percentile bootstrap of a mean.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// 95% percentile bootstrap interval of the mean of `diffs` (`resamples` resamples,
/// seeded so a run's decision is reproducible). `None` for fewer than two values.
pub fn paired_bootstrap(diffs: &[f64], resamples: usize, seed: u64) -> Option<(f64, f64)> {
    if diffs.len() < 2 || resamples == 0 {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let n = diffs.len();
    let mut means: Vec<f64> =
        (0..resamples).map(|_| (0..n).map(|_| diffs[rng.random_range(0..n)]).sum::<f64>() / n as f64).collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    Some((at(0.025), at(0.975)))
}

/// One-sided sign test: the probability of at least `wins` wins in `wins + losses`
/// fair coin flips (ties are left out, as the test does).
pub fn sign_test(wins: usize, losses: usize) -> f64 {
    let n = wins + losses;
    if n == 0 {
        return 1.0;
    }
    // ln C(n, k) by sums of logs: exact enough for any n a run sees, and no overflow.
    let ln_fact = |k: usize| (1..=k).map(|i| (i as f64).ln()).sum::<f64>();
    let ln_n = ln_fact(n);
    let ln_half_n = n as f64 * 0.5f64.ln();
    (wins..=n).map(|k| (ln_n - ln_fact(k) - ln_fact(n - k) + ln_half_n).exp()).sum::<f64>().min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_test_matches_the_binomial_tail() {
        // P(X >= 9 | n = 10, p = 0.5) = 11/1024.
        assert!((sign_test(9, 1) - 11.0 / 1024.0).abs() < 1e-12);
        assert!((sign_test(5, 5) - 638.0 / 1024.0).abs() < 1e-12);
        assert_eq!(sign_test(0, 0), 1.0);
        assert!(sign_test(0, 12) > 0.999);
        assert!(sign_test(400, 100) < 1e-30);
    }

    #[test]
    fn bootstrap_brackets_the_mean_and_is_reproducible() {
        let better: Vec<f64> = (0..30).map(|i| 0.2 + 0.01 * (i % 7) as f64 - 0.03).collect();
        let (lo, hi) = paired_bootstrap(&better, 2000, 7).unwrap();
        let mean = better.iter().sum::<f64>() / better.len() as f64;
        assert!(lo > 0.0 && lo <= mean && mean <= hi, "{lo} {mean} {hi}");
        assert_eq!(paired_bootstrap(&better, 2000, 7), Some((lo, hi)));
        let noise: Vec<f64> = (0..30).map(|i| if i % 2 == 0 { 0.1 } else { -0.1 }).collect();
        let (lo, hi) = paired_bootstrap(&noise, 2000, 7).unwrap();
        assert!(lo < 0.0 && hi > 0.0, "{lo} {hi}");
        assert_eq!(paired_bootstrap(&[1.0], 100, 1), None);
    }
}
