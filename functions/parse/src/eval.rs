//! The development-set evaluation: every rendering of every resume in `testdata/`
//! against the expected JSON beside it, with the thresholds.
//!
//! Run `cargo test -p catalyst-parse eval -- --nocapture` to see the table.

use crate::Deadline;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An expected file (`testdata/expected/`, `testdata/registry/expected/`, `testdata/holdout/expected/`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Expected {
    pub name: String,
    pub email: String,
    pub work: Vec<ExpWork>,
    pub education: Vec<ExpEdu>,
    pub skills: Vec<String>,
    /// The error code the parse must give instead (`no_text_layer` for a scan).
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExpWork {
    pub name: String,
    pub position: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExpEdu {
    pub institution: String,
    pub study_type: String,
}

pub(crate) fn norm(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// True positives, predicted count, expected count — multiset match of normalised values.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub tp: usize,
    pub pred: usize,
    pub exp: usize,
}

impl Counts {
    /// Count one document; its true positives.
    pub fn add(&mut self, predicted: &[String], expected: &[String]) -> usize {
        let mut pool: HashMap<String, usize> = HashMap::new();
        for e in expected {
            *pool.entry(norm(e)).or_default() += 1;
        }
        let mut tp = 0;
        for p in predicted {
            if let Some(n) = pool.get_mut(&norm(p))
                && *n > 0
            {
                *n -= 1;
                tp += 1;
            }
        }
        self.tp += tp;
        self.pred += predicted.len();
        self.exp += expected.len();
        tp
    }
    pub fn f1(&self) -> f64 {
        if self.pred == 0 || self.exp == 0 {
            return 0.0;
        }
        let p = self.tp as f64 / self.pred as f64;
        let r = self.tp as f64 / self.exp as f64;
        if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
    }
}

/// What one parse found, field by field as the metrics count it.
pub(crate) struct Found {
    pub company: Vec<String>,
    pub position: Vec<String>,
    pub institution: Vec<String>,
    pub degree: Vec<String>,
    pub skills: Vec<String>,
}

impl Found {
    pub fn of(r: &crate::resume::Resume) -> Found {
        Found {
            company: r.work.iter().filter_map(|w| w.name.clone()).collect(),
            position: r.work.iter().filter_map(|w| w.position.clone()).collect(),
            institution: r.education.iter().filter_map(|e| e.institution.clone()).collect(),
            degree: r.education.iter().filter_map(|e| e.study_type.clone()).collect(),
            skills: r.skills.iter().flat_map(|s| s.keywords.clone()).collect(),
        }
    }
}

/// Exact-match name and e-mail; each miss is added to `misses`. Whether each matched.
pub(crate) fn identity(
    file: &str,
    r: &crate::resume::Resume,
    exp: &Expected,
    misses: &mut Vec<String>,
) -> (bool, bool) {
    let got_name = r.basics.name.clone().unwrap_or_default();
    let got_email = r.basics.email.clone().unwrap_or_default();
    let name_ok = norm(&got_name) == norm(&exp.name);
    if !name_ok {
        misses.push(format!("{file}: name {got_name:?} != {:?}", exp.name));
    }
    let email_ok = got_email.to_lowercase() == exp.email.to_lowercase();
    if !email_ok {
        misses.push(format!("{file}: email {got_email:?} != {:?}", exp.email));
    }
    (name_ok, email_ok)
}

/// `<id>.<ext>` for each text format, and `src/<id>.html`.
pub(crate) fn renderings(dir: &Path, id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for ext in ["pdf", "docx", "odt", "rtf", "md", "txt"] {
        let p = dir.join(format!("{id}.{ext}"));
        if p.is_file() {
            out.push(p);
        }
    }
    let html = dir.join("src").join(format!("{id}.html"));
    if html.is_file() {
        out.push(html);
    }
    out
}

#[test]
fn eval_development_set() {
    let parser = crate::tests::parser();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut ids: Vec<String> = std::fs::read_dir(dir.join("expected"))
        .unwrap()
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_string))
        .collect();
    ids.sort();
    assert!(ids.len() >= 8, "the development set has {} resumes", ids.len());
    let (mut docs, mut name_ok, mut email_ok) = (0usize, 0usize, 0usize);
    let (mut company, mut position, mut institution, mut degree, mut skills) =
        (Counts::default(), Counts::default(), Counts::default(), Counts::default(), Counts::default());
    let mut formats: HashMap<String, usize> = HashMap::new();
    let mut misses: Vec<String> = Vec::new();
    for id in &ids {
        let exp: Expected =
            serde_json::from_slice(&std::fs::read(dir.join("expected").join(format!("{id}.json"))).unwrap()).unwrap();
        for path in renderings(&dir, id) {
            let bytes = std::fs::read(&path).unwrap();
            let file = path.file_name().unwrap().to_str().unwrap().to_string();
            let started = Instant::now();
            let out = parser
                .parse_blocking(&bytes, None, Some(&file), Deadline::after(Duration::from_secs(30)))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let ms = started.elapsed().as_secs_f64() * 1e3;
            *formats.entry(out.format.as_str().to_string()).or_default() += 1;
            docs += 1;
            let r = &out.resume;
            let (name_hit, email_hit) = identity(&file, r, &exp, &mut misses);
            name_ok += usize::from(name_hit);
            email_ok += usize::from(email_hit);
            let Found { company: pc, position: pp, institution: pi, degree: pd, skills: ps } = Found::of(r);
            let ec: Vec<String> = exp.work.iter().map(|w| w.name.clone()).collect();
            let ep: Vec<String> = exp.work.iter().map(|w| w.position.clone()).collect();
            let ei: Vec<String> = exp.education.iter().map(|e| e.institution.clone()).collect();
            let ed: Vec<String> = exp.education.iter().map(|e| e.study_type.clone()).collect();
            for (label, counts, p, e) in [
                ("company", &mut company, &pc, &ec),
                ("position", &mut position, &pp, &ep),
                ("institution", &mut institution, &pi, &ei),
                ("degree", &mut degree, &pd, &ed),
            ] {
                let before = counts.tp;
                counts.add(p, e);
                if counts.tp - before < e.len().max(p.len()) {
                    misses.push(format!("{file}: {label} {p:?} vs {e:?}"));
                }
            }
            skills.add(&ps, &exp.skills);
            println!(
                "{file:32} {:9} {:>3} pages {:>7.2} ms  work {}/{}  edu {}/{}  skills {}",
                out.format.as_str(),
                out.pages.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                ms,
                r.work.len(),
                exp.work.len(),
                r.education.len(),
                exp.education.len(),
                ps.len()
            );
        }
    }
    for m in &misses {
        println!("miss: {m}");
    }
    let name = name_ok as f64 / docs as f64;
    let email = email_ok as f64 / docs as f64;
    println!("documents: {docs} {formats:?}");
    println!("name exact {name:.3}  email exact {email:.3}");
    println!(
        "F1: company {:.3}  position {:.3}  institution {:.3}  degree {:.3}  skills {:.3}",
        company.f1(),
        position.f1(),
        institution.f1(),
        degree.f1(),
        skills.f1()
    );
    assert!(docs >= 20, "{docs} documents");
    assert!(name >= 0.95 && email >= 0.95, "name {name:.3} email {email:.3}");
    for (label, c) in [("company", company), ("position", position), ("institution", institution), ("degree", degree)] {
        assert!(c.f1() >= 0.80, "{label} F1 {:.3} below 0.80", c.f1());
    }
}

/// `PARSE_DUMP=path cargo test -p catalyst-parse dump -- --ignored --nocapture` prints
/// what the parser makes of one file.
#[test]
#[ignore = "a tool, not a test: PARSE_DUMP=path cargo test -p catalyst-parse dump -- --ignored"]
fn dump() {
    let Ok(path) = std::env::var("PARSE_DUMP") else { return };
    let bytes = std::fs::read(&path).unwrap();
    let out = crate::tests::parser()
        .parse_blocking(&bytes, None, Some(&path), Deadline::after(Duration::from_secs(30)))
        .unwrap();
    println!("{}\n-----\n{}", out.text, serde_json::to_string_pretty(&out.resume).unwrap());
}

/// Benchmark of the PDF path, for `bench/compare.py`: per file, the mean time to extract
/// the text and to run the whole parse, and the text itself (written to `$PARSE_BENCH_OUT`).
#[test]
#[ignore = "benchmark: functions/parse/bench/compare.py"]
fn bench_pdf() {
    let Ok(out_dir) = std::env::var("PARSE_BENCH_OUT") else { return };
    let out_dir = PathBuf::from(out_dir);
    std::fs::create_dir_all(&out_dir).unwrap();
    let parser = crate::tests::parser();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pdf") && !p.ends_with("scanned.pdf"))
        .collect();
    files.sort();
    let runs = 30;
    let mut rows = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let d = || Deadline::after(Duration::from_secs(30));
        let limits = crate::Limits::default();
        let t = Instant::now();
        let mut text = String::new();
        for _ in 0..runs {
            text = crate::extract::extract(&bytes, None, None, &limits, d()).unwrap().text;
        }
        let extract_ms = t.elapsed().as_secs_f64() * 1e3 / runs as f64;
        let t = Instant::now();
        let mut pages = 0;
        for _ in 0..runs {
            pages = parser.parse_blocking(&bytes, None, None, d()).unwrap().pages.unwrap_or(0);
        }
        let parse_ms = t.elapsed().as_secs_f64() * 1e3 / runs as f64;
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        std::fs::write(out_dir.join(format!("{name}.txt")), &text).unwrap();
        rows.push(serde_json::json!({"file": name, "pages": pages, "extract_ms": extract_ms, "parse_ms": parse_ms}));
        println!("{name:32} {pages} pages  extract {extract_ms:7.2} ms  parse {parse_ms:7.2} ms");
    }
    std::fs::write(out_dir.join("catalyst.json"), serde_json::to_vec_pretty(&rows).unwrap()).unwrap();
}
