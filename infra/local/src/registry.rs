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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Manifest, parse_route};
    use std::collections::BTreeSet;

    /// Functions need model files to start; tests find them where `catalyst models fetch`
    /// put them (the test command exports CATALYST_MODELS_DIR).
    fn deps(data: &std::path::Path) -> Deps {
        let models = std::env::var("CATALYST_MODELS_DIR").unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.catalyst/models").display().to_string()
        });
        let data = data.display().to_string();
        let config = catalyst_shared::config::Config::from_lookup(|k| match k {
            "CATALYST_DATA_DIR" => Some(data.clone()),
            "CATALYST_MODELS_DIR" => Some(models.clone()),
            "CATALYST_AUTH" => Some("off".into()),
            other => std::env::var(other).ok(),
        })
        .unwrap();
        Deps::new(config)
    }

    fn documented_routes(f: &Function) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in &f.openapi.paths.paths {
            let methods = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ];
            for (m, present) in methods {
                if present {
                    out.insert((m.to_string(), path.clone()));
                }
            }
        }
        out
    }

    /// Every route a function serves is wired in the manifest (so the local stack and
    /// Terraform expose it), and every manifest route is really served.
    #[test]
    fn manifest_routes_match_each_functions_openapi() {
        let manifest = Manifest::builtin();
        let dir = tempfile::tempdir().unwrap();
        let deps = deps(dir.path());
        assert_eq!(
            manifest.functions.keys().collect::<BTreeSet<_>>(),
            FUNCTIONS.iter().map(|(n, _)| n.to_string()).collect::<BTreeSet<_>>().iter().collect(),
            "the manifest and the build must name the same functions"
        );
        for (name, build) in FUNCTIONS {
            let f = build(&deps).unwrap_or_else(|e| {
                panic!("{name} failed to start: {} (run `catalyst models fetch` first)", e.message())
            });
            let served = documented_routes(&f);
            let wired: BTreeSet<(String, String)> =
                manifest.functions[*name].routes.iter().map(|r| parse_route(r).unwrap()).collect();
            assert_eq!(served, wired, "{name}: routes in its OpenAPI document vs infra/functions.toml");
        }
    }
}
