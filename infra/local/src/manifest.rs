//! `infra/functions.toml`, parsed and checked.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::str::FromStr;

/// The repository's manifest, built in so `catalyst` runs from any directory.
pub const BUILTIN: &str = include_str!("../../functions.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub store: StoreSpec,
    #[serde(rename = "function")]
    pub functions: BTreeMap<String, FunctionSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub max_attempts: u32,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults { max_attempts: 5 }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSpec {
    #[serde(default)]
    pub collections: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    pub memory_mb: u32,
    pub timeout_s: u32,
    #[serde(default)]
    pub authorizer: bool,
    #[serde(default)]
    pub routes: Vec<String>,
    #[serde(default)]
    pub storage: Vec<StorageTrigger>,
    #[serde(default)]
    pub queues: Vec<String>,
    #[serde(default)]
    pub schedules: Vec<ScheduleSpec>,
    /// Blob key prefixes read and written (for least-privilege IAM).
    #[serde(default)]
    pub reads: Vec<String>,
    #[serde(default)]
    pub writes: Vec<String>,
    /// Queues the function sends to.
    #[serde(default)]
    pub publishes: Vec<String>,
    /// Document collections the function uses.
    #[serde(default)]
    pub collections: Vec<String>,
    /// Secrets read at cold start.
    #[serde(default)]
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageTrigger {
    pub prefix: String,
    #[serde(default)]
    pub suffix: String,
}

impl StorageTrigger {
    pub fn matches(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
            && key.ends_with(&self.suffix)
            && key.len() >= self.prefix.len() + self.suffix.len()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    pub name: String,
    pub cron: String,
    #[serde(default = "empty_object")]
    pub payload: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// A route as `(METHOD, /path/{param})`.
pub fn parse_route(route: &str) -> anyhow::Result<(String, String)> {
    let (method, path) =
        route.split_once(' ').ok_or_else(|| anyhow::anyhow!("route `{route}` is not `METHOD /path`"))?;
    let method = method.to_ascii_uppercase();
    if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) || !path.starts_with('/') {
        anyhow::bail!("route `{route}` is not `METHOD /path`");
    }
    Ok((method, path.to_string()))
}

impl Manifest {
    pub fn parse(text: &str) -> anyhow::Result<Manifest> {
        let m: Manifest = toml::from_str(text).map_err(|e| anyhow::anyhow!("functions manifest: {e}"))?;
        m.check()?;
        Ok(m)
    }

    pub fn builtin() -> Manifest {
        Manifest::parse(BUILTIN).expect("the built-in manifest is checked by tests")
    }

    fn check(&self) -> anyhow::Result<()> {
        let mut routes = BTreeMap::new();
        let mut schedules = BTreeMap::new();
        for (name, f) in &self.functions {
            if f.memory_mb < 128 || f.memory_mb > 10240 {
                anyhow::bail!("function `{name}`: memory_mb must be 128..=10240 (Lambda's range)");
            }
            if f.timeout_s == 0 || f.timeout_s > 900 {
                anyhow::bail!("function `{name}`: timeout_s must be 1..=900 (Lambda's limit)");
            }
            for r in &f.routes {
                let key = parse_route(r)?;
                if let Some(other) = routes.insert(key, name) {
                    anyhow::bail!("route `{r}` is claimed by both `{other}` and `{name}`");
                }
            }
            for q in &f.queues {
                if q.is_empty() || !q.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    anyhow::bail!("function `{name}`: bad queue name `{q}`");
                }
            }
            for c in &f.collections {
                if !self.store.collections.contains(c) {
                    anyhow::bail!("function `{name}` uses collection `{c}`, which [store] does not declare");
                }
            }
            for q in &f.publishes {
                if !self.functions.values().any(|other| other.queues.contains(q)) {
                    anyhow::bail!("function `{name}` publishes to `{q}`, which no function consumes");
                }
            }
            for p in f.reads.iter().chain(&f.writes) {
                if p.is_empty() || p.starts_with('/') || !p.ends_with('/') {
                    anyhow::bail!("function `{name}`: blob prefix `{p}` must be relative and end with `/`");
                }
            }
            for s in &f.storage {
                if !f.reads.iter().any(|r| s.prefix.starts_with(r.as_str())) {
                    anyhow::bail!("function `{name}` is triggered by `{}` but does not declare reading it", s.prefix);
                }
                if s.prefix.is_empty() || s.prefix.starts_with('/') {
                    anyhow::bail!("function `{name}`: storage prefix must be a non-empty relative key prefix");
                }
            }
            for s in &f.schedules {
                croner::Cron::from_str(&s.cron).map_err(|e| {
                    anyhow::anyhow!("function `{name}`, schedule `{}`: bad cron `{}`: {e}", s.name, s.cron)
                })?;
                if let Some(other) = schedules.insert(s.name.clone(), name) {
                    anyhow::bail!("schedule `{}` is defined by both `{other}` and `{name}`", s.name);
                }
            }
        }
        Ok(())
    }

    /// The functions whose storage triggers match `key`.
    pub fn storage_targets<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.functions.iter().filter(move |(_, f)| f.storage.iter().any(|s| s.matches(key))).map(|(n, _)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_is_valid() {
        let m = Manifest::builtin();
        assert_eq!(m.functions.len(), 7);
        assert_eq!(m.storage_targets("uploads/resumes/u1/cv.pdf").collect::<Vec<_>>(), vec!["parse"]);
        assert_eq!(m.storage_targets("uploads/audio/u1/a.webm").collect::<Vec<_>>(), vec!["transcribe"]);
        assert_eq!(m.storage_targets("parsed/resumes/u1/cv.json").count(), 0);
    }

    #[test]
    fn mistakes_are_reported() {
        let bad = |s: &str| Manifest::parse(s).unwrap_err().to_string();
        assert!(bad("[function.a]\nmemory_mb = 64\ntimeout_s = 1").contains("memory_mb"));
        assert!(bad("[function.a]\nmemory_mb = 256\ntimeout_s = 1\nroutes = [\"FETCH x\"]").contains("METHOD"));
        assert!(
            bad("[function.a]\nmemory_mb = 256\ntimeout_s = 1\nschedules = [{name = \"n\", cron = \"61 * * * *\"}]")
                .contains("bad cron")
        );
        assert!(bad("[function.a]\nmemory_mb = 256\ntimeout_s = 1\nroutes = [\"GET /x\"]\n[function.b]\nmemory_mb = 256\ntimeout_s = 1\nroutes = [\"GET /x\"]").contains("both"));
        assert!(bad("[function.a]\nmemory_mb = 256\ntimeout_s = 1\ncolour = 1").contains("unknown field"));
    }
}
