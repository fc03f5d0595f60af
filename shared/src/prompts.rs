//! The prompt registry: each agent's system prompt, versioned in the document store
//! (collection `prompts`: `{agent}/v{000001}` per version, `active/{agent}` pointing at
//! the version in use with the earlier ones as history, and a canary if one is on trial).
//! Functions load the active versions at cold start and re-read them periodically
//! ([`Registry`]); `optimize` promotes a better version with its evidence and
//! `catalyst prompts rollback <agent>` moves the pointer back.

use crate::store::{DocumentStoreExt, Precondition, SharedDocumentStore};
use crate::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const PROMPTS: &str = "prompts";

/// One version of one agent's prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PromptVersion {
    pub agent: String,
    pub version: u32,
    pub system: String,
    pub created_at: String,
    /// Who made it: `default`, or the optimize run that promoted it.
    pub source: String,
    /// Why it was promoted (scores, test, run), when it was.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

impl PromptVersion {
    /// The system prompt as sent: it names itself first, so a provider-side log (and
    /// tests) can tell which version produced a completion.
    pub fn rendered(&self) -> String {
        format!("[catalyst prompt {}@v{}]\n{}", self.agent, self.version, self.system)
    }
}

/// The pointer `active/{agent}`: the version in use, and earlier active ones, newest last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Active {
    pub version: u32,
    #[serde(default)]
    pub history: Vec<u32>,
    /// A promoted version that serves a share of new interviews until an optimize run
    /// confirms it (then it becomes `version`) or drops it; rollback removes it first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
}

impl Active {
    pub fn new(version: u32) -> Active {
        Active { version, history: Vec::new(), canary: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Canary {
    pub version: u32,
    /// Fraction of new interviews (0-1] that start on the canary.
    pub share: f64,
    pub since: String,
}

/// Whether the interview (or other unit) `key` falls in a canary `share` for `agent`:
/// a stable hash, so the same interview always gets the same answer on every instance.
pub fn in_canary(key: &str, agent: &str, share: f64) -> bool {
    (stable_hash(&format!("{key}\0{agent}")) % 10_000) as f64 / 10_000.0 < share
}

/// FNV-1a of `text`: tiny, and stable across builds and platforms (std's hasher is
/// neither promised), for choices that must come out the same on every instance.
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

pub fn version_key(agent: &str, version: u32) -> String {
    format!("{agent}/v{version:06}")
}

pub fn active_key(agent: &str) -> String {
    format!("active/{agent}")
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The prompts an instance runs with.
#[derive(Debug, Clone)]
pub struct Prompts {
    by_agent: BTreeMap<String, PromptVersion>,
    /// Canary versions with their share of new interviews.
    canaries: BTreeMap<String, (PromptVersion, f64)>,
}

impl Prompts {
    /// Version 1 of each `(agent, system prompt)`, without a store (tests and tools).
    pub fn defaults(defaults: &[(&str, &str)]) -> Prompts {
        let now = now();
        let by_agent = defaults
            .iter()
            .map(|(agent, system)| {
                let p = PromptVersion {
                    agent: agent.to_string(),
                    version: 1,
                    system: system.to_string(),
                    created_at: now.clone(),
                    source: "default".into(),
                    evidence: serde_json::Value::Null,
                };
                (agent.to_string(), p)
            })
            .collect();
        Prompts { by_agent, canaries: BTreeMap::new() }
    }

    /// Load the active version of every agent's prompt; seed version 1 from `defaults`
    /// for any that is missing (first start on a fresh store; concurrent cold starts
    /// seed the same thing).
    pub async fn load(store: &SharedDocumentStore, defaults: &[(&str, &str)]) -> Result<Prompts> {
        let seeds = Prompts::defaults(defaults);
        let mut by_agent = BTreeMap::new();
        let mut canaries = BTreeMap::new();
        for (agent, _) in defaults {
            let active = match store.get_as::<Active>(PROMPTS, &active_key(agent)).await? {
                Some((a, _)) => a,
                None => {
                    put_if_absent(store, &version_key(agent, 1), &seeds.by_agent[*agent]).await?;
                    put_if_absent(store, &active_key(agent), &Active::new(1)).await?;
                    Active::new(1)
                }
            };
            by_agent.insert(agent.to_string(), stored_version(store, agent, active.version).await?);
            if let Some(c) = active.canary.filter(|c| c.share > 0.0) {
                canaries.insert(agent.to_string(), (stored_version(store, agent, c.version).await?, c.share));
            }
        }
        Ok(Prompts { by_agent, canaries })
    }

    /// The versions a new interview `key` starts on: the active ones, or a canary where
    /// the interview falls in its share.
    pub fn versions_for(&self, key: &str) -> BTreeMap<String, u32> {
        let mut v = self.versions();
        for (agent, (p, share)) in &self.canaries {
            if in_canary(key, agent, *share) {
                v.insert(agent.clone(), p.version);
            }
        }
        v
    }

    /// The prompt of `agent`; every agent given to `defaults`/`load` is present.
    pub fn get(&self, agent: &str) -> &PromptVersion {
        &self.by_agent[agent]
    }

    pub fn versions(&self) -> BTreeMap<String, u32> {
        self.by_agent.iter().map(|(a, p)| (a.clone(), p.version)).collect()
    }

    /// The prompts something started on `versions` runs with: the active ones where the
    /// versions match, else the stored version (an interview started before a promotion
    /// finishes on the prompts it started with).
    pub async fn for_versions(&self, store: &SharedDocumentStore, versions: &BTreeMap<String, u32>) -> Result<Prompts> {
        let mut by_agent = self.by_agent.clone();
        for (agent, v) in versions {
            if by_agent.get(agent).is_none_or(|p| p.version == *v) {
                continue;
            }
            if let Some((p, _)) = self.canaries.get(agent).filter(|(p, _)| p.version == *v) {
                by_agent.insert(agent.clone(), p.clone());
            } else if let Some((p, _)) = store.get_as::<PromptVersion>(PROMPTS, &version_key(agent, *v)).await? {
                by_agent.insert(agent.clone(), p);
            }
        }
        Ok(Prompts { by_agent, canaries: BTreeMap::new() })
    }
}

async fn stored_version(store: &SharedDocumentStore, agent: &str, version: u32) -> Result<PromptVersion> {
    store.get_as::<PromptVersion>(PROMPTS, &version_key(agent, version)).await?.map(|(p, _)| p).ok_or_else(|| {
        Error::internal(format!("prompt registry: `{agent}` points at version {version} which does not exist"))
            .with_code("prompt_missing")
    })
}

/// The registry as an instance sees it: loaded at start, re-read when older than
/// `refresh`, so a promotion, canary or rollback reaches running instances within that
/// time without a redeploy (an interview keeps the versions it started on).
pub struct Registry {
    store: SharedDocumentStore,
    defaults: Vec<(String, String)>,
    refresh: std::time::Duration,
    current: tokio::sync::RwLock<(std::time::Instant, std::sync::Arc<Prompts>)>,
}

impl Registry {
    pub async fn load(
        store: SharedDocumentStore,
        defaults: &[(&str, &str)],
        refresh: std::time::Duration,
    ) -> Result<Registry> {
        let prompts = Prompts::load(&store, defaults).await?;
        Ok(Registry {
            store,
            defaults: defaults.iter().map(|(a, s)| (a.to_string(), s.to_string())).collect(),
            refresh,
            current: tokio::sync::RwLock::new((std::time::Instant::now(), std::sync::Arc::new(prompts))),
        })
    }

    /// The prompts now; a failed re-read keeps the loaded ones (logged) rather than
    /// failing the request.
    pub async fn current(&self) -> std::sync::Arc<Prompts> {
        {
            let cur = self.current.read().await;
            if cur.0.elapsed() < self.refresh {
                return cur.1.clone();
            }
        }
        let mut cur = self.current.write().await;
        if cur.0.elapsed() >= self.refresh {
            let defaults: Vec<(&str, &str)> = self.defaults.iter().map(|(a, s)| (a.as_str(), s.as_str())).collect();
            match Prompts::load(&self.store, &defaults).await {
                Ok(p) => cur.1 = std::sync::Arc::new(p),
                Err(e) => {
                    tracing::warn!(error = %e.message(), "prompt registry re-read failed; keeping loaded prompts")
                }
            }
            cur.0 = std::time::Instant::now();
        }
        cur.1.clone()
    }
}

async fn put_if_absent<T: Serialize + Sync>(store: &SharedDocumentStore, key: &str, value: &T) -> Result<()> {
    match store.put_as(PROMPTS, key, value, Precondition::Absent).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::Conflict => Ok(()),
        Err(e) => Err(e),
    }
}

/// Every agent's active pointer, by agent.
pub async fn list_active(store: &SharedDocumentStore) -> Result<BTreeMap<String, Active>> {
    let mut out = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.query_prefix(PROMPTS, "active/", after.as_deref(), 100).await?;
        for d in &page.documents {
            out.insert(d.key["active/".len()..].to_string(), d.parse::<Active>()?);
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Write `system` as the next version of `agent`'s prompt: with `share`, as the canary
/// for that share of new interviews (replacing any earlier canary); without, as the
/// active version, the old one going to the history. The pointer moves with a versioned
/// write, so two promotions racing cannot both win. Returns the new version.
pub async fn promote(
    store: &SharedDocumentStore,
    agent: &str,
    system: &str,
    source: &str,
    evidence: serde_json::Value,
    share: Option<f64>,
) -> Result<u32> {
    let (active, pointer_version) = pointer(store, agent).await?;
    // A retried promotion (same source, e.g. an optimize run's decision step run again)
    // reuses the version it wrote rather than writing another.
    let written = from_source(store, agent, source).await?;
    if let Some(v) = written
        && (active.version == v || active.canary.as_ref().is_some_and(|c| c.version == v))
    {
        return Ok(v);
    }
    let next = match written {
        Some(v) => v,
        None => {
            // The next free version number (a failed earlier promotion may have written one).
            let highest = active.history.iter().copied().chain(active.canary.as_ref().map(|c| c.version)).max();
            let mut next = active.version.max(highest.unwrap_or(0)) + 1;
            while store.get(PROMPTS, &version_key(agent, next)).await?.is_some() {
                next += 1;
            }
            let version = PromptVersion {
                agent: agent.to_string(),
                version: next,
                system: system.to_string(),
                created_at: now(),
                source: source.to_string(),
                evidence,
            };
            store.put_as(PROMPTS, &version_key(agent, next), &version, Precondition::Absent).await?;
            next
        }
    };
    let mut pointer = active.clone();
    match share {
        Some(share) => {
            pointer.canary = Some(Canary { version: next, share: share.clamp(0.0, 1.0), since: now() });
        }
        None => {
            pointer.history.push(active.version);
            pointer.version = next;
            pointer.canary = None;
        }
    }
    store.put_as(PROMPTS, &active_key(agent), &pointer, Precondition::Version(pointer_version)).await?;
    Ok(next)
}

/// Make `agent`'s canary the active version (the old one goes to the history).
pub async fn graduate(store: &SharedDocumentStore, agent: &str) -> Result<u32> {
    let (mut active, pointer_version) = pointer(store, agent).await?;
    let canary = active
        .canary
        .take()
        .ok_or_else(|| Error::conflict(format!("`{agent}` has no canary")).with_code("no_canary"))?;
    active.history.push(active.version);
    active.version = canary.version;
    store.put_as(PROMPTS, &active_key(agent), &active, Precondition::Version(pointer_version)).await?;
    Ok(canary.version)
}

/// Every stored version of `agent`'s prompt, oldest first.
pub async fn versions_of(store: &SharedDocumentStore, agent: &str) -> Result<Vec<PromptVersion>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.query_prefix(PROMPTS, &format!("{agent}/v"), after.as_deref(), 200).await?;
        for d in &page.documents {
            out.push(d.parse::<PromptVersion>()?);
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// The version of `agent` that `source` wrote, if any.
async fn from_source(store: &SharedDocumentStore, agent: &str, source: &str) -> Result<Option<u32>> {
    Ok(versions_of(store, agent).await?.into_iter().find(|p| p.source == source).map(|p| p.version))
}

/// Settle `agent`'s canary `version` (an optimize run's verdict): `keep` makes it the
/// active version, otherwise it is dropped. Only that canary is touched, read and written
/// in one versioned step: if the pointer holds another canary or none (a human rolled it
/// back, a newer run replaced it, a concurrent delivery settled it already), nothing
/// changes and `false` comes back.
pub async fn settle_canary(store: &SharedDocumentStore, agent: &str, version: u32, keep: bool) -> Result<bool> {
    store
        .update_as::<Active, _>(PROMPTS, &active_key(agent), 3, |active| {
            let Some(mut active) = active else { return Ok(None) };
            if active.canary.as_ref().is_none_or(|c| c.version != version) {
                return Ok(None);
            }
            active.canary = None;
            if keep {
                active.history.push(active.version);
                active.version = version;
            }
            Ok(Some(active))
        })
        .await
        .map_err(|e| if e.code() == "update_conflict" { e.with_code("registry_busy") } else { e })
}

async fn pointer(store: &SharedDocumentStore, agent: &str) -> Result<(Active, u64)> {
    store
        .get_as::<Active>(PROMPTS, &active_key(agent))
        .await?
        .ok_or_else(|| Error::not_found(format!("no prompt registry entry for `{agent}`")))
}

/// One step back: drop `agent`'s canary if it has one (every new interview then gets the
/// active version), else make the previous active version active again. Returns
/// (from, to).
pub async fn rollback(store: &SharedDocumentStore, agent: &str) -> Result<(u32, u32)> {
    let (mut active, pointer_version) = pointer(store, agent).await?;
    if let Some(c) = active.canary.take() {
        store.put_as(PROMPTS, &active_key(agent), &active, Precondition::Version(pointer_version)).await?;
        return Ok((c.version, active.version));
    }
    let from = active.version;
    let to = active.history.pop().ok_or_else(|| {
        Error::conflict(format!("`{agent}` is on version {from} with no earlier version to roll back to"))
            .with_code("nothing_to_roll_back")
    })?;
    if store.get(PROMPTS, &version_key(agent, to)).await?.is_none() {
        return Err(Error::internal(format!("`{agent}` version {to} is in the history but missing"))
            .with_code("prompt_missing"));
    }
    active.version = to;
    store.put_as(PROMPTS, &active_key(agent), &active, Precondition::Version(pointer_version)).await?;
    Ok((from, to))
}

#[cfg(all(test, feature = "local"))]
mod tests {
    use super::*;
    use crate::store::local::SqliteDocumentStore;
    use std::sync::Arc;

    const DEFAULTS: &[(&str, &str)] = &[("synthesis", "Be warm."), ("story", "Extract the story.")];

    #[tokio::test]
    async fn seed_promote_roll_back_and_keep_old_interviews_on_their_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedDocumentStore = Arc::new(SqliteDocumentStore::open(dir.path().join("s.db")).unwrap());
        let p = Prompts::load(&store, DEFAULTS).await.unwrap();
        assert_eq!(p.versions().values().copied().collect::<Vec<_>>(), vec![1, 1]);
        assert!(p.get("synthesis").rendered().starts_with("[catalyst prompt synthesis@v1]\n"));
        assert_eq!(Prompts::load(&store, DEFAULTS).await.unwrap().versions(), p.versions());

        let v = promote(&store, "synthesis", "Be brief.", "optimize run r1", serde_json::json!({"wins": 31}), None)
            .await
            .unwrap();
        assert_eq!(v, 2);
        let p2 = Prompts::load(&store, DEFAULTS).await.unwrap();
        assert_eq!((p2.get("synthesis").version, p2.get("synthesis").system.as_str()), (2, "Be brief."));
        assert_eq!(
            list_active(&store).await.unwrap()["synthesis"],
            Active { version: 2, history: vec![1], canary: None }
        );
        // Something started on version 1 keeps it.
        assert_eq!(p2.for_versions(&store, &p.versions()).await.unwrap().get("synthesis").version, 1);

        assert_eq!(rollback(&store, "synthesis").await.unwrap(), (2, 1));
        assert_eq!(Prompts::load(&store, DEFAULTS).await.unwrap().get("synthesis").system, "Be warm.");
        let err = rollback(&store, "synthesis").await.unwrap_err();
        assert_eq!(err.code(), "nothing_to_roll_back");
        // A promotion after a rollback takes a fresh number: version 2 stays as it was.
        assert_eq!(promote(&store, "synthesis", "Be kind.", "run r2", serde_json::Value::Null, None).await.unwrap(), 3);
        assert_eq!(rollback(&store, "nobody").await.unwrap_err().code(), "not_found");

        // A pointer to a missing version is a clear start-up error.
        store.put_as(PROMPTS, &active_key("story"), &Active::new(9), Precondition::None).await.unwrap();
        let err = Prompts::load(&store, DEFAULTS).await.unwrap_err();
        assert_eq!(err.code(), "prompt_missing");
        assert!(err.message().contains("story"), "{}", err.message());
    }

    #[tokio::test]
    async fn a_canary_serves_its_share_then_graduates_or_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedDocumentStore = Arc::new(SqliteDocumentStore::open(dir.path().join("s.db")).unwrap());
        Prompts::load(&store, DEFAULTS).await.unwrap();
        let v =
            promote(&store, "story", "Extract it well.", "run r1", serde_json::Value::Null, Some(0.25)).await.unwrap();
        assert_eq!(v, 2);
        let p = Prompts::load(&store, DEFAULTS).await.unwrap();
        assert_eq!(p.get("story").version, 1, "the active version is unchanged");
        let on_canary = (0..4000).filter(|i| p.versions_for(&format!("interview-{i}"))["story"] == 2).count();
        assert!((800..1200).contains(&on_canary), "{on_canary} of 4000 on a 25% canary");
        assert_eq!(p.versions_for("interview-7"), p.versions_for("interview-7"), "stable per interview");
        assert!(p.versions_for("x").get("synthesis") == Some(&1));
        // An interview on the canary runs with it.
        let key = (0..100).map(|i| format!("i{i}")).find(|k| p.versions_for(k)["story"] == 2).unwrap();
        assert_eq!(
            p.for_versions(&store, &p.versions_for(&key)).await.unwrap().get("story").system,
            "Extract it well."
        );

        // Rollback drops the canary first.
        assert_eq!(rollback(&store, "story").await.unwrap(), (2, 1));
        assert!(list_active(&store).await.unwrap()["story"].canary.is_none());
        assert_eq!(graduate(&store, "story").await.unwrap_err().code(), "no_canary");
        // A new canary takes a fresh number, and graduating makes it active.
        assert_eq!(promote(&store, "story", "Again.", "run r2", serde_json::Value::Null, Some(0.1)).await.unwrap(), 3);
        // The same promotion retried is the same version.
        assert_eq!(promote(&store, "story", "Again.", "run r2", serde_json::Value::Null, Some(0.1)).await.unwrap(), 3);
        assert_eq!(graduate(&store, "story").await.unwrap(), 3);
        assert_eq!(list_active(&store).await.unwrap()["story"], Active { version: 3, history: vec![1], canary: None });

        // Settling names the canary it means: another one, or none, is left alone.
        promote(&store, "story", "Fourth.", "run r3", serde_json::Value::Null, Some(0.1)).await.unwrap();
        assert!(!settle_canary(&store, "story", 3, false).await.unwrap());
        assert!(settle_canary(&store, "story", 4, false).await.unwrap());
        assert!(!settle_canary(&store, "story", 4, false).await.unwrap(), "settled once");
        assert_eq!(list_active(&store).await.unwrap()["story"], Active { version: 3, history: vec![1], canary: None });
        promote(&store, "story", "Fifth.", "run r4", serde_json::Value::Null, Some(0.1)).await.unwrap();
        assert!(settle_canary(&store, "story", 5, true).await.unwrap());
        assert!(!settle_canary(&store, "story", 5, true).await.unwrap());
        assert_eq!(list_active(&store).await.unwrap()["story"].version, 5);
        rollback(&store, "story").await.unwrap();

        // The registry re-reads after its refresh interval.
        let reg = Registry::load(store.clone(), DEFAULTS, std::time::Duration::ZERO).await.unwrap();
        assert_eq!(reg.current().await.get("story").version, 3);
        rollback(&store, "story").await.unwrap();
        assert_eq!(reg.current().await.get("story").version, 1);
    }
}
