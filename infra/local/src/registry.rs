//! Every function this repository builds, by name: what the local stack mounts.

use catalyst_shared::{Deps, Function, Result};

pub type Builder = fn(&Deps) -> Result<Function>;

pub const FUNCTIONS: &[(&str, Builder)] = &[
    ("auth", catalyst_auth::function),
    ("scrape", catalyst_scrape::function),
    ("parse", catalyst_parse::function),
    ("transcribe", catalyst_transcribe::function),
    ("evaluate", catalyst_evaluate::function),
    ("agent", catalyst_agent::function),
    ("optimize", catalyst_optimize::function),
];

pub fn builder(name: &str) -> Option<Builder> {
    FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}
