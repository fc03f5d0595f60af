#![no_main]
//! Fuzz audio decoding, what every upload goes through before the model sees it: container
//! sniffing, symphonia's demuxers and decoders, our WebM reader, ropus and the resampler.
//! Errors are fine (they become 422s); panics, hangs, runaway memory and more audio than
//! the limit allows are the bugs. `decode` turns a panic in a third-party decoder into an
//! error for the request; the panic policy below lets such panics unwind to it, and
//! aborts on any other.

use bytes::Bytes;
use catalyst_transcribe::audio;

/// Small, so that one input stays fast and a stream claiming hours is refused early.
const LIMIT_SECONDS: f64 = 2.0;
const RATE: f64 = 16_000.0;

#[path = "../../../../infra/fuzz/panic_policy.rs"]
mod panic_policy;

libfuzzer_sys::fuzz_target!(init: panic_policy::contain_third_party_panics(), |data: &[u8]| {
    match audio::decode(Bytes::copy_from_slice(data), LIMIT_SECONDS) {
        Ok(a) => {
            assert!(
                a.samples.len() as f64 <= LIMIT_SECONDS * RATE + 1.0,
                "{} samples decoded under a {LIMIT_SECONDS} s limit",
                a.samples.len()
            );
            assert!(a.samples.iter().all(|s| s.is_finite()), "non-finite samples");
        }
        Err(e) => assert!(!e.code().is_empty() && !e.message().is_empty()),
    }
});
