//! The prompt registry: each agent's system prompt, versioned in the document store
//! (collection `prompts`: `{agent}/v{000001}` per version, `active/{agent}` pointing at
//! the version in use with the earlier ones as history). Functions load the active
//! versions once at cold start; `optimize` promotes a better version with its evidence
//! and `catalyst prompts rollback <agent>` moves the pointer back.

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
        Prompts { by_agent }
    }

    /// Load the active version of every agent's prompt; seed version 1 from `defaults`
    /// for any that is missing (first start on a fresh store; concurrent cold starts
    /// seed the same thing).
    pub async fn load(store: &SharedDocumentStore, defaults: &[(&str, &str)]) -> Result<Prompts> {
        let seeds = Prompts::defaults(defaults);
        let mut by_agent = BTreeMap::new();
        for (agent, _) in defaults {
            let active = match store.get_as::<Active>(PROMPTS, &active_key(agent)).await? {
                Some((a, _)) => a,
                None => {
                    put_if_absent(store, &version_key(agent, 1), &seeds.by_agent[*agent]).await?;
                    put_if_absent(store, &active_key(agent), &Active { version: 1, history: vec![] }).await?;
                    Active { version: 1, history: vec![] }
                }
            };
            let prompt = store
                .get_as::<PromptVersion>(PROMPTS, &version_key(agent, active.version))
                .await?
                .map(|(p, _)| p)
                .ok_or_else(|| {
                    Error::internal(format!(
                        "prompt registry: `{agent}` points at version {} which does not exist",
                        active.version
                    ))
                    .with_code("prompt_missing")
                })?;
            by_agent.insert(agent.to_string(), prompt);
        }
        Ok(Prompts { by_agent })
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
            if let Some((p, _)) = store.get_as::<PromptVersion>(PROMPTS, &version_key(agent, *v)).await? {
                by_agent.insert(agent.clone(), p);
            }
        }
        Ok(Prompts { by_agent })
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

/// Write `system` as the next version of `agent`'s prompt and make it active, the old
/// version going to the history. The pointer moves with a versioned write, so two
/// promotions racing cannot both win. Returns the new version.
pub async fn promote(
    store: &SharedDocumentStore,
    agent: &str,
    system: &str,
    source: &str,
    evidence: serde_json::Value,
) -> Result<u32> {
    let (active, pointer_version) = store
        .get_as::<Active>(PROMPTS, &active_key(agent))
        .await?
        .ok_or_else(|| Error::not_found(format!("no prompt registry entry for `{agent}`")))?;
    // The next free version number (a failed earlier promotion may have written one).
    let mut next = active.version.max(active.history.iter().copied().max().unwrap_or(0)) + 1;
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
    let mut history = active.history.clone();
    history.push(active.version);
    store
        .put_as(PROMPTS, &active_key(agent), &Active { version: next, history }, Precondition::Version(pointer_version))
        .await?;
    Ok(next)
}

/// Make the previous active version of `agent` active again (one step back). Returns
/// (from, to).
pub async fn rollback(store: &SharedDocumentStore, agent: &str) -> Result<(u32, u32)> {
    let (mut active, pointer_version) = store
        .get_as::<Active>(PROMPTS, &active_key(agent))
        .await?
        .ok_or_else(|| Error::not_found(format!("no prompt registry entry for `{agent}`")))?;
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

        let v = promote(&store, "synthesis", "Be brief.", "optimize run r1", serde_json::json!({"wins": 31}))
            .await
            .unwrap();
        assert_eq!(v, 2);
        let p2 = Prompts::load(&store, DEFAULTS).await.unwrap();
        assert_eq!((p2.get("synthesis").version, p2.get("synthesis").system.as_str()), (2, "Be brief."));
        assert_eq!(list_active(&store).await.unwrap()["synthesis"], Active { version: 2, history: vec![1] });
        // Something started on version 1 keeps it.
        assert_eq!(p2.for_versions(&store, &p.versions()).await.unwrap().get("synthesis").version, 1);

        assert_eq!(rollback(&store, "synthesis").await.unwrap(), (2, 1));
        assert_eq!(Prompts::load(&store, DEFAULTS).await.unwrap().get("synthesis").system, "Be warm.");
        let err = rollback(&store, "synthesis").await.unwrap_err();
        assert_eq!(err.code(), "nothing_to_roll_back");
        // A promotion after a rollback takes a fresh number: version 2 stays as it was.
        assert_eq!(promote(&store, "synthesis", "Be kind.", "run r2", serde_json::Value::Null).await.unwrap(), 3);
        assert_eq!(rollback(&store, "nobody").await.unwrap_err().code(), "not_found");

        // A pointer to a missing version is a clear start-up error.
        store
            .put_as(PROMPTS, &active_key("story"), &Active { version: 9, history: vec![] }, Precondition::None)
            .await
            .unwrap();
        let err = Prompts::load(&store, DEFAULTS).await.unwrap_err();
        assert_eq!(err.code(), "prompt_missing");
        assert!(err.message().contains("story"), "{}", err.message());
    }
}
