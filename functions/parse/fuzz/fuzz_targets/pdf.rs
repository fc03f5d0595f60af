#![no_main]
//! Fuzz the pdf path end to end.

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run(data, Some("application/pdf")));
