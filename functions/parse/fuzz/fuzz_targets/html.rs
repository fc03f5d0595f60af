#![no_main]
//! Fuzz the html path end to end.

#[path = "common.rs"]
mod common;
#[path = "../../../../infra/fuzz/panic_policy.rs"]
mod panic_policy;

libfuzzer_sys::fuzz_target!(init: panic_policy::contain_third_party_panics(), |data: &[u8]| common::run(data, Some("text/html")));
