//! Evaluations on resumes from outside this project, scored like the development set:
//! - `testdata/holdout/`: held out, never used for tuning; the measure of record.
//! - `testdata/registry/`: earlier held-out sets, each measured once and then used for
//!   tuning, so now a second development set.
//!
//! Sources and licenses are in each directory's README. Run
//! `cargo test -p catalyst-parse eval_ -- --nocapture` to see the tables. These tests assert
//! only that every file gets an answer (no panic; an `Ok`, or the error code the expected file
//! names): the numbers are for reporting, not a gate.
//!
//! Scored with `eval.rs`'s helpers, with two differences: an expected file may name an
//! `error` code instead of a resume, and empty expected values (a document with no job
//! title, say) are left out of the counts, since nothing can match them.

use crate::Deadline;
use crate::eval::{Counts, Expected, Found, identity, norm, renderings};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Expected values with the empty ones left out.
fn present(values: impl Iterator<Item = String>) -> Vec<String> {
    values.filter(|v| !norm(v).is_empty()).collect()
}

/// Expected values the prediction did not match, and predicted values that matched nothing.
fn diff(predicted: &[String], expected: &[String]) -> (Vec<String>, Vec<String>) {
    let mut pool: Vec<(String, &String)> = expected.iter().map(|e| (norm(e), e)).collect();
    let mut extra = Vec::new();
    for p in predicted {
        match pool.iter().position(|(n, _)| *n == norm(p)) {
            Some(i) => {
                pool.swap_remove(i);
            }
            None => extra.push(p.clone()),
        }
    }
    (pool.into_iter().map(|(_, e)| e.clone()).collect(), extra)
}

#[test]
fn eval_holdout_set() {
    report("holdout");
}

#[test]
fn eval_registry_set() {
    report("registry");
}

/// Parses every rendering in `testdata/<set>/`, prints per-file lines, misses and the metrics.
fn report(set: &str) {
    let parser = crate::tests::parser();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(set);
    let mut ids: Vec<String> = std::fs::read_dir(dir.join("expected"))
        .unwrap()
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_string))
        .collect();
    ids.sort();
    assert!(!ids.is_empty(), "no expected files in {}", dir.display());
    let (mut docs, mut name_ok, mut email_ok) = (0usize, 0usize, 0usize);
    let (mut company, mut position, mut institution, mut degree, mut skills) =
        (Counts::default(), Counts::default(), Counts::default(), Counts::default(), Counts::default());
    let mut formats: HashMap<String, usize> = HashMap::new();
    let mut misses: Vec<String> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut errors_as_expected = 0usize;
    for id in &ids {
        let exp: Expected =
            serde_json::from_slice(&std::fs::read(dir.join("expected").join(format!("{id}.json"))).unwrap())
                .unwrap_or_else(|e| panic!("expected/{id}.json: {e}"));
        let found = renderings(&dir, id);
        if found.is_empty() {
            failures.push(format!("{id}: no document beside expected/{id}.json"));
        }
        for path in found {
            let bytes = std::fs::read(&path).unwrap();
            let file = path.file_name().unwrap().to_str().unwrap().to_string();
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| {
                parser.parse_blocking(&bytes, None, Some(&file), Deadline::after(Duration::from_secs(30)))
            }));
            let ms = started.elapsed().as_secs_f64() * 1e3;
            let out = match (result, &exp.error) {
                (Err(_), _) => {
                    failures.push(format!("{file}: the parser panicked"));
                    continue;
                }
                (Ok(Err(e)), Some(code)) if e.code() == code.as_str() => {
                    println!("{file:36} error {code} as expected {ms:>7.2} ms");
                    errors_as_expected += 1;
                    continue;
                }
                (Ok(Err(e)), _) => {
                    failures.push(format!("{file}: error {} ({e}), expected {:?}", e.code(), exp.error));
                    continue;
                }
                (Ok(Ok(_)), Some(code)) => {
                    failures.push(format!("{file}: parsed, but error {code} was expected"));
                    continue;
                }
                (Ok(Ok(out)), None) => out,
            };
            *formats.entry(out.format.as_str().to_string()).or_default() += 1;
            docs += 1;
            let r = &out.resume;
            let (name_hit, email_hit) = identity(&file, r, &exp, &mut misses);
            name_ok += usize::from(name_hit);
            email_ok += usize::from(email_hit);
            let Found { company: pc, position: pp, institution: pi, degree: pd, skills: ps } = Found::of(r);
            let ec = present(exp.work.iter().map(|w| w.name.clone()));
            let ep = present(exp.work.iter().map(|w| w.position.clone()));
            let ei = present(exp.education.iter().map(|e| e.institution.clone()));
            let ed = present(exp.education.iter().map(|e| e.study_type.clone()));
            let es = present(exp.skills.iter().cloned());
            for (label, counts, p, e) in [
                ("company", &mut company, &pc, &ec),
                ("position", &mut position, &pp, &ep),
                ("institution", &mut institution, &pi, &ei),
                ("degree", &mut degree, &pd, &ed),
            ] {
                if counts.add(p, e) < e.len().max(p.len()) {
                    misses.push(format!("{file}: {label} {p:?} vs {e:?}"));
                }
            }
            let skills_tp = skills.add(&ps, &es);
            if skills_tp < es.len().max(ps.len()) {
                let (missed, extra) = diff(&ps, &es);
                misses.push(format!("{file}: skills missed {missed:?} extra {extra:?}"));
            }
            println!(
                "{file:36} {:9} {:>3} pages {:>7.2} ms  work {}/{}  edu {}/{}  skills {}/{} ({} right)",
                out.format.as_str(),
                out.pages.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                ms,
                r.work.len(),
                exp.work.len(),
                r.education.len(),
                exp.education.len(),
                ps.len(),
                es.len(),
                skills_tp
            );
        }
    }
    for m in &misses {
        println!("miss: {m}");
    }
    let rate = |n: usize| if docs == 0 { 0.0 } else { n as f64 / docs as f64 };
    println!("{set} documents: {docs} {formats:?}  errors as expected: {errors_as_expected}");
    println!("{set}: name exact {:.3}  email exact {:.3}", rate(name_ok), rate(email_ok));
    println!(
        "{set} F1: company {:.3}  position {:.3}  institution {:.3}  degree {:.3}  skills {:.3}",
        company.f1(),
        position.f1(),
        institution.f1(),
        degree.f1(),
        skills.f1()
    );
    println!(
        "{set} P/R: company {:.3}/{:.3}  position {:.3}/{:.3}  institution {:.3}/{:.3}  degree {:.3}/{:.3}  skills {:.3}/{:.3}",
        precision(company),
        recall(company),
        precision(position),
        recall(position),
        precision(institution),
        recall(institution),
        precision(degree),
        recall(degree),
        precision(skills),
        recall(skills)
    );
    assert!(failures.is_empty(), "files without an answer:\n{}", failures.join("\n"));
}

fn precision(c: Counts) -> f64 {
    if c.pred == 0 { 0.0 } else { c.tp as f64 / c.pred as f64 }
}

fn recall(c: Counts) -> f64 {
    if c.exp == 0 { 0.0 } else { c.tp as f64 / c.exp as f64 }
}
