//! Extract every `*.html` in a directory, several rounds, and report the time spent in
//! extraction alone (reading files excluded) as JSON; with `--out DIR`, write each
//! page's main text to `DIR/<name>.txt`. Used by `infra/bench/scrape/bench.py`.
//!
//! `cargo run --release -p catalyst-scrape --example extract_pages -- PAGES [--out DIR] [--rounds N]`

use std::path::PathBuf;
use std::time::Instant;

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut dir, mut out, mut rounds) = (None, None, 3usize);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().map(PathBuf::from),
            "--rounds" => rounds = args.next().and_then(|r| r.parse().ok()).unwrap_or(3).max(1),
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: extract_pages PAGES_DIR [--out DIR] [--rounds N]");
        return std::process::ExitCode::from(2);
    };
    let mut pages: Vec<(String, String)> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "html"))
            .filter_map(|p| {
                let bytes = std::fs::read(&p).ok()?;
                let html = catalyst_scrape::fetch::decode(&bytes, None, true);
                Some((p.file_stem()?.to_string_lossy().into_owned(), html))
            })
            .collect(),
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            return std::process::ExitCode::from(2);
        }
    };
    pages.sort();
    let bytes: usize = pages.iter().map(|(_, h)| h.len()).sum();
    let mut best = f64::MAX;
    let mut texts = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        texts = pages
            .iter()
            .map(|(_, html)| catalyst_scrape::extract::extract_html(html, None).map(|e| e.text).unwrap_or_default())
            .collect();
        best = best.min(started.elapsed().as_secs_f64());
    }
    if let Some(out) = &out {
        if let Err(e) = std::fs::create_dir_all(out) {
            eprintln!("{}: {e}", out.display());
            return std::process::ExitCode::from(2);
        }
        for ((name, _), text) in pages.iter().zip(&texts) {
            if let Err(e) = std::fs::write(out.join(format!("{name}.txt")), text) {
                eprintln!("{name}: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    println!("{}", serde_json::json!({"pages": pages.len(), "bytes": bytes, "seconds": best}));
    std::process::ExitCode::SUCCESS
}
