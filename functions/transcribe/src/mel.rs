//! Whisper's log-mel spectrogram, computed as the reference does: a 400-point STFT with a
//! periodic Hann window, hop 160, reflect-padded ("centred") frames, power spectrum,
//! a Slaney-scale, Slaney-normalised mel filterbank (librosa's default), log10 with a
//! floor, clamped to 8 (×10 dB) below the maximum, then scaled to about [-1, 1].
//!
//! The filterbank is computed here because candle ships no filter file; realfft (already
//! in the tree through rubato) does the FFTs.

use realfft::RealFftPlanner;

pub const SAMPLE_RATE: usize = 16_000;
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
/// Mel frames in one 30 s window.
pub const N_FRAMES: usize = 3000;
/// Samples in one 30 s window.
pub const N_SAMPLES: usize = 480_000;

fn hz_to_mel(hz: f64) -> f64 {
    // Slaney: linear below 1 kHz, logarithmic above.
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ { min_log_mel + (hz / MIN_LOG_HZ).ln() / logstep } else { hz / F_SP }
}

fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel { MIN_LOG_HZ * (logstep * (mel - min_log_mel)).exp() } else { F_SP * mel }
}

/// `n_mels × (N_FFT/2 + 1)` weights, row-major; equal to `librosa.filters.mel(sr=16000,
/// n_fft=400, n_mels)` (Slaney scale and area normalisation).
pub fn filterbank(n_mels: usize) -> Vec<f32> {
    let n_bins = N_FFT / 2 + 1;
    let fmax = SAMPLE_RATE as f64 / 2.0;
    let fft_freqs: Vec<f64> = (0..n_bins).map(|i| i as f64 * fmax / (n_bins - 1) as f64).collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(fmax));
    let mel_f: Vec<f64> = (0..n_mels + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64)).collect();
    let mut weights = vec![0f32; n_mels * n_bins];
    for m in 0..n_mels {
        let (left, centre, right) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
        let enorm = 2.0 / (right - left);
        for (b, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - left) / (centre - left);
            let upper = (right - f) / (right - centre);
            weights[m * n_bins + b] = (lower.min(upper).max(0.0) * enorm) as f32;
        }
    }
    weights
}

/// Log-mel features of `samples` (16 kHz mono) followed by 30 s of silence, as Whisper's
/// `log_mel_spectrogram(audio, padding=N_SAMPLES)`: `n_mels × n_frames`, row-major, with
/// `n_frames = (samples.len() + N_SAMPLES) / HOP`.
pub fn log_mel(samples: &[f32], filters: &[f32], n_mels: usize) -> (Vec<f32>, usize) {
    let n_bins = N_FFT / 2 + 1;
    let total = samples.len() + N_SAMPLES;
    let n_frames = total / HOP;
    let pad = N_FFT / 2;
    // Sample `i` of the zero-extended signal, reflected at both ends (torch's "reflect").
    let at = |i: isize| -> f32 {
        let len = total as isize;
        let mut j = i;
        if j < 0 {
            j = -j;
        }
        if j >= len {
            j = 2 * (len - 1) - j;
        }
        let j = j.clamp(0, len - 1) as usize;
        if j < samples.len() { samples[j] } else { 0.0 }
    };
    // Periodic Hann window, as torch.hann_window(400).
    let window: Vec<f32> =
        (0..N_FFT).map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos()) as f32).collect();
    let mut planner = RealFftPlanner::<f32>::new();
    let fft = planner.plan_fft_forward(N_FFT);
    let mut input = fft.make_input_vec();
    let mut spectrum = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    let mut power = vec![0f32; n_bins];
    // Each triangle covers a few bins: multiply only over its non-zero span.
    let spans: Vec<(usize, usize)> = (0..n_mels)
        .map(|m| {
            let row = &filters[m * n_bins..(m + 1) * n_bins];
            let lo = row.iter().position(|&w| w != 0.0).unwrap_or(0);
            let hi = row.iter().rposition(|&w| w != 0.0).map_or(0, |i| i + 1);
            (lo, hi.max(lo))
        })
        .collect();
    let mut mel = vec![0f32; n_mels * n_frames];
    let mut max = f32::NEG_INFINITY;
    // Frames wholly inside the appended silence are all floor: no FFT needed.
    let silent_from = (samples.len() + pad).div_ceil(HOP);
    let floor_value = 1e-10f32.log10();
    for t in 0..n_frames {
        if t >= silent_from {
            for m in 0..n_mels {
                mel[m * n_frames + t] = floor_value;
            }
            max = max.max(floor_value);
            continue;
        }
        let start = (t * HOP) as isize - pad as isize;
        let interior = start >= 0 && (start as usize + N_FFT) <= samples.len();
        for (k, x) in input.iter_mut().enumerate() {
            let s = if interior { samples[start as usize + k] } else { at(start + k as isize) };
            *x = s * window[k];
        }
        // Sizes come from the planner, so this cannot fail.
        fft.process_with_scratch(&mut input, &mut spectrum, &mut scratch).expect("FFT buffer sizes");
        for (p, c) in power.iter_mut().zip(&spectrum) {
            *p = c.re * c.re + c.im * c.im;
        }
        for (m, &(lo, hi)) in spans.iter().enumerate() {
            let row = &filters[m * n_bins + lo..m * n_bins + hi];
            let e: f32 = row.iter().zip(&power[lo..hi]).map(|(w, p)| w * p).sum();
            let v = e.max(1e-10).log10();
            mel[m * n_frames + t] = v;
            max = max.max(v);
        }
    }
    let floor = max - 8.0;
    for v in mel.iter_mut() {
        *v = (v.max(floor) + 4.0) / 4.0;
    }
    (mel, n_frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_scale_round_trips_and_is_linear_below_1khz() {
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-9);
        assert!((hz_to_mel(200.0) - 3.0).abs() < 1e-9);
        for hz in [0.0, 150.0, 999.0, 1000.0, 4321.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6);
        }
    }

    #[test]
    fn filterbank_matches_librosa_reference_values() {
        // librosa.filters.mel(sr=16000, n_fft=400, n_mels=80): a few entries, and each row's
        // peak sits where its triangle centre falls.
        let f = filterbank(80);
        let n_bins = 201;
        assert_eq!(f.len(), 80 * n_bins);
        // Reference: whisper/assets/mel_filters.npz (`mel_80`) from the openai-whisper package.
        let at = |m: usize, b: usize| f[m * n_bins + b];
        for (m, b, want) in [
            (0, 1, 0.024_862_595),
            (1, 2, 0.022_871_772),
            (40, 43, 0.014_735_566),
            (79, 192, 0.003_164_712),
            (79, 190, 0.002_232_055),
        ] {
            assert!((at(m, b) - want).abs() < 1e-6, "[{m},{b}] = {} want {want}", at(m, b));
        }
        assert!((f.iter().map(|&w| w as f64).sum::<f64>() - 1.999_024_152_755_737).abs() < 1e-4);
        for m in 0..80 {
            let row = &f[m * n_bins..(m + 1) * n_bins];
            assert!(row.iter().all(|&w| w >= 0.0));
            assert!(row.iter().any(|&w| w > 0.0), "row {m} is empty");
        }
    }

    #[test]
    fn a_tone_lights_the_right_band_and_silence_is_flat() {
        let tone: Vec<f32> =
            (0..SAMPLE_RATE).map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16000.0).sin()).collect();
        let filters = filterbank(80);
        let (mel, frames) = log_mel(&tone, &filters, 80);
        assert_eq!(frames, (SAMPLE_RATE + N_SAMPLES) / HOP);
        let t = 50;
        let loudest = (0..80).max_by(|&a, &b| mel[a * frames + t].total_cmp(&mel[b * frames + t])).unwrap();
        // 1 kHz is mel 15 on the Slaney scale: band ~ 15 / (mel(8 kHz)/81).
        let expected = (15.0 / (hz_to_mel(8000.0) / 81.0)).round() as usize - 1;
        assert!((loudest as isize - expected as isize).abs() <= 1, "{loudest} vs {expected}");
        let (silent, frames) = log_mel(&vec![0.0; 1600], &filters, 80);
        assert!(silent.iter().all(|&v| (v - silent[0]).abs() < 1e-6));
        assert_eq!(silent.len(), 80 * frames);
    }
}
