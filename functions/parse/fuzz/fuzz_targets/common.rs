//! One pipeline for every target: extraction under tight limits, then structuring with
//! a small gazetteer. Errors are fine; panics, hangs and runaway memory are the bugs.

use catalyst_parse::{Deadline, Gazetteer, Limits};
use std::sync::OnceLock;
use std::time::Duration;

pub fn run(data: &[u8], declared: Option<&str>) {
    static G: OnceLock<Gazetteer> = OnceLock::new();
    let g = G.get_or_init(|| {
        Gazetteer::new(
            ["python", "rust", "c++", "c#", ".net", "go", "sql", "spring boot"].iter().map(|s| s.to_string()).collect(),
        )
        .expect("gazetteer")
    });
    let limits = Limits {
        max_bytes: 2 * 1024 * 1024,
        max_unzipped_bytes: 16 * 1024 * 1024,
        timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    if let Ok(ex) = catalyst_parse::extract::extract(data, declared, None, &limits, Deadline::after(limits.timeout)) {
        let sections = catalyst_parse::sections::split(&ex.text);
        let _ = catalyst_parse::resume::structure(&ex.text, &sections, g);
    }
}
