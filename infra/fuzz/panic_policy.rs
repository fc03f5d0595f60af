//! The panic policy of the fuzz targets, included by each (`#[path]`), since fuzz crates
//! sit outside the workspace and share no crate.
//!
//! libfuzzer-sys aborts on every panic. In production, parse and transcribe run their
//! third-party parsers and decoders (pdf_oxide, symphonia) under `catch_unwind`, so a
//! panic there is a 422 for that file and nothing more: the fuzz targets treat it the
//! same way, or one upstream bug would stop every run from looking further. A panic in
//! our own code, an abort (allocation failure), a hang or runaway memory still fails.
//! Each contained panic's place is printed once, so that `infra/fuzz.sh` can list them.

use std::collections::HashSet;
use std::sync::Mutex;

/// Install after libfuzzer-sys's own hook (in `fuzz_target!`'s `init:`).
pub fn contain_third_party_panics() {
    let abort_hook = std::panic::take_hook();
    let seen = Mutex::new(HashSet::new());
    std::panic::set_hook(Box::new(move |info| {
        let place = info.location().map(|l| (l.file().to_string(), l.line()));
        let third_party = place
            .as_ref()
            .is_some_and(|(file, _)| file.contains("/registry/src/") || file.contains("\\registry\\src\\"));
        if !third_party {
            // Our code (or a place unknown): libfuzzer-sys's hook prints it and aborts.
            abort_hook(info);
            return;
        }
        if let Some((file, line)) = place
            && seen.lock().is_ok_and(|mut s| s.insert((file.clone(), line)))
        {
            let crate_path = file.split("/registry/src/").nth(1).and_then(|p| p.split_once('/')).map(|p| p.1);
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            let message = message.replace('\n', " ");
            eprintln!("contained third-party panic: {}:{line}: {message}", crate_path.unwrap_or(&file));
        }
    }));
}
