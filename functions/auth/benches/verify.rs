//! Firebase ID token verifications per second with cached certificates, on one core.
//!
//! `cargo bench -p catalyst-auth --bench verify -- [--seconds N] [--export DIR]`
//!
//! A real certificate endpoint on 127.0.0.1 serves a freshly made certificate; after the
//! first (cached) fetch, a single-threaded runtime verifies distinct tokens round-robin
//! for N seconds. `--export DIR` writes the same certificates and tokens for
//! infra/bench/auth/verify_bench.py (firebase-admin), so both sides verify identical input.

#[path = "../tests/common/mod.rs"]
mod common;

use catalyst_shared::auth::firebase::FirebaseVerifier;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let seconds: f64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let export = arg("--export");

    // One core: everything on the current thread, the certificate server included.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let key = common::TestKey::generate("bench-kid");
        let certs = common::CertServer::start(&[&key], "public, max-age=3600, must-revalidate").await;
        let tokens: Vec<String> = (0..256).map(|i| key.id_token(&format!("user-{i:04}"))).collect();
        if let Some(dir) = &export {
            let dir = std::path::Path::new(dir);
            std::fs::create_dir_all(dir).expect("export dir");
            std::fs::write(dir.join("certs.json"), common::certs_json(&[&key])).expect("write certs");
            std::fs::write(dir.join("tokens.txt"), tokens.join("\n")).expect("write tokens");
            std::fs::write(dir.join("project.txt"), common::PROJECT).expect("write project");
        }

        let verifier = FirebaseVerifier::new(common::PROJECT, certs.url.parse().expect("url")).expect("verifier");
        for t in &tokens {
            verifier.verify(t).await.expect("the benchmark's tokens verify");
        }
        let deadline = Duration::from_secs_f64(seconds);
        let started = Instant::now();
        let mut n: u64 = 0;
        while started.elapsed() < deadline {
            for t in &tokens {
                std::hint::black_box(verifier.verify(std::hint::black_box(t)).await.expect("verifies"));
            }
            n += tokens.len() as u64;
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(certs.hits(), 1, "certificates were fetched once and then served from the cache");
        let rate = n as f64 / elapsed;
        println!("catalyst verify_id_token (Rust, 1 thread, cached certs): {n} verifications in {elapsed:.2} s = {rate:.0}/s, {:.1} µs each", 1e6 / rate);
        println!("RESULT rust_per_sec={rate:.0}");

        // The floor: the RS256 signature check alone (ring), on the same tokens.
        let keys = verifier.certs().keys().await.expect("cached");
        let rsa = keys.get(&key.kid).expect("bench key");
        use base64::Engine as _;
        let split: Vec<(String, Vec<u8>)> = tokens
            .iter()
            .map(|t| {
                let (signed, sig) = t.rsplit_once('.').expect("three segments");
                (signed.to_string(), base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig).expect("b64"))
            })
            .collect();
        let started = Instant::now();
        let mut m: u64 = 0;
        while started.elapsed() < deadline / 2 {
            for (signed, sig) in &split {
                assert!(rsa.verify_rs256(std::hint::black_box(signed.as_bytes()), sig));
            }
            m += split.len() as u64;
        }
        let sig_rate = m as f64 / started.elapsed().as_secs_f64();
        println!("  of which the RS256 signature check alone: {sig_rate:.0}/s, {:.1} µs each", 1e6 / sig_rate);
    });
}
