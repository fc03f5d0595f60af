//! Transcribe files from the command line and report timings as JSON lines: the Rust side
//! of `infra/bench/transcribe`. Usage: `transcribe_file <model dir> <audio>...`.

use bytes::Bytes;
use catalyst_transcribe::{Engine, Limits};
use std::time::Instant;

/// Peak resident memory of this process, in MB (Linux `VmHWM`).
fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> std::process::ExitCode {
    let started = Instant::now();
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: transcribe_file <model dir> <audio>...");
        return std::process::ExitCode::from(2);
    };
    let engine = match Engine::load(std::path::Path::new(&dir), Limits::default()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{}", e.message());
            return std::process::ExitCode::from(1);
        }
    };
    let load_s = started.elapsed().as_secs_f64();
    println!("{}", serde_json::json!({"event": "loaded", "cold_start_s": load_s, "peak_mb": peak_mb()}));
    for file in args {
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{file}: {e}");
                return std::process::ExitCode::from(1);
            }
        };
        let t0 = Instant::now();
        match engine.transcribe_bytes(Bytes::from(bytes)) {
            Ok(t) => {
                let secs = t0.elapsed().as_secs_f64();
                println!(
                    "{}",
                    serde_json::json!({"event": "file", "file": file, "seconds": secs,
                        "rtf": secs / t.duration.max(1e-9), "text": t.text, "peak_mb": peak_mb()})
                );
            }
            Err(e) => {
                eprintln!("{file}: {} ({})", e.message(), e.code());
                return std::process::ExitCode::from(1);
            }
        }
    }
    std::process::ExitCode::SUCCESS
}
