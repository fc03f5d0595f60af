//! The prompt registry: each agent's system prompt, versioned in the document store
//! (collection `prompts`), loaded once at cold start. Version 1 of every prompt is the
//! default written here; the optimize function promotes later versions by moving
//! `{agent}/active` to them, and `catalyst prompts rollback` moves it back.

use catalyst_shared::store::{DocumentStoreExt, Precondition, SharedDocumentStore};
use catalyst_shared::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const PROMPTS: &str = "prompts";

pub const CONTEXT: &str = "context";
pub const ORCHESTRATOR: &str = "orchestrator";
pub const EVALUATOR: &str = "evaluator";
pub const SYNTHESIS: &str = "synthesis";
pub const STORY: &str = "story";
pub const REFRAME: &str = "reframe";

pub const AGENTS: &[&str] = &[CONTEXT, ORCHESTRATOR, EVALUATOR, SYNTHESIS, STORY, REFRAME];

/// The defaults (version 1). They state the agent's job, what it must never do, and the
/// output; the facts arrive in the user message, so a prompt never holds a resume.
pub fn default_system(agent: &str) -> Option<&'static str> {
    Some(match agent {
        CONTEXT => {
            "You are the Context agent of a mock-interview platform. You receive facts about a candidate \
(from their resume) and a job, and the interview plan: questions picked from a question bank. \
Write a two-sentence summary of the candidate for this job (strengths and gaps, only from the facts). \
Then adapt each planned question to this candidate and job: keep what it asks and its competency, \
mention the candidate's real experience or the job's real requirements where natural, one or two sentences. \
Never invent facts about the candidate. Reply with JSON only."
        }
        ORCHESTRATOR => {
            "You are the Orchestrator of a mock interview. The interview policy decided to ask a follow-up \
question about the candidate's last answer, and says what it must probe. Write that one follow-up question: \
short, specific to what the candidate said, in the interviewer's voice, probing only the named gap. \
Do not give feedback and do not answer for the candidate. Reply with JSON only."
        }
        EVALUATOR => {
            "You are the Evaluator of a mock interview, an experienced hiring manager. Judge the candidate's \
answer to the question for this job: is it specific, relevant, structured (situation, task, action, result), \
does it show the candidate's own actions and a measurable result? Score 0-100 and name at most two strengths \
and two improvements, each one short sentence that refers to what the candidate actually said. \
Reply with JSON only."
        }
        SYNTHESIS => {
            "You are the interviewer in a mock interview, warm and professional. Write your short spoken reply \
to the candidate's last answer: one or two sentences that acknowledge something specific they said, without \
grading it and without asking any question (the next question is added after your reply). Plain text only."
        }
        STORY => {
            "You are the Story Analysis agent of a mock interview. From the candidate's answer, extract the \
story they told in STAR form: a short title, the situation, their task, the actions they personally took and \
the result. Use only what the candidate said; leave a part empty when they did not say it. List every number \
they gave for the outcome exactly as they said it. Reply with JSON only."
        }
        REFRAME => {
            "You are the Achievement Reframing agent. Rewrite each of the candidate's achievements as one strong \
resume bullet: start with a verb, say what they did and the outcome. Be honest: use only facts and numbers \
the candidate gave. Where a number would make it stronger but none was given, write a placeholder in square \
brackets such as [X%] or [N users] for the candidate to fill in. Never invent numbers. Reply with JSON only."
        }
        _ => return None,
    })
}

/// One version of one agent's prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PromptVersion {
    pub agent: String,
    pub version: u32,
    pub system: String,
    pub created_at: String,
    /// Who made it: `default`, or the optimize run that promoted it, with its evidence.
    pub source: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

impl PromptVersion {
    /// The system prompt as sent: it names itself first, so a provider-side log (and our
    /// tests) can tell which version produced a completion.
    pub fn rendered(&self) -> String {
        format!("[catalyst prompt {}@v{}]\n{}", self.agent, self.version, self.system)
    }
}

/// The pointer `{agent}/active` names the version in use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Active {
    pub version: u32,
    /// Earlier active versions, newest last, for rollback.
    #[serde(default)]
    pub history: Vec<u32>,
}

pub fn version_key(agent: &str, version: u32) -> String {
    format!("{agent}/v{version:06}")
}

pub fn active_key(agent: &str) -> String {
    format!("{agent}/active")
}

/// The prompts an instance runs with.
#[derive(Debug, Clone)]
pub struct Prompts {
    by_agent: BTreeMap<String, PromptVersion>,
}

impl Prompts {
    /// The defaults, without a store (tests and tools).
    pub fn defaults() -> Prompts {
        let now = crate::model::now();
        let by_agent = AGENTS
            .iter()
            .map(|a| {
                let p = PromptVersion {
                    agent: a.to_string(),
                    version: 1,
                    system: default_system(a).unwrap_or_default().to_string(),
                    created_at: now.clone(),
                    source: "default".into(),
                    evidence: serde_json::Value::Null,
                };
                (a.to_string(), p)
            })
            .collect();
        Prompts { by_agent }
    }

    /// Load the active version of every agent's prompt; seed version 1 of any that is
    /// missing (first start on a fresh store). Concurrent cold starts seed the same thing.
    pub async fn load(store: &SharedDocumentStore) -> Result<Prompts> {
        let defaults = Prompts::defaults();
        let mut by_agent = BTreeMap::new();
        for agent in AGENTS {
            let active = match store.get_as::<Active>(PROMPTS, &active_key(agent)).await? {
                Some((a, _)) => a,
                None => {
                    let v1 = &defaults.by_agent[*agent];
                    put_if_absent(store, &version_key(agent, 1), v1).await?;
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

    pub fn get(&self, agent: &str) -> &PromptVersion {
        // Every agent in AGENTS is present by construction (defaults or load).
        &self.by_agent[agent]
    }

    pub fn versions(&self) -> BTreeMap<String, u32> {
        self.by_agent.iter().map(|(a, p)| (a.clone(), p.version)).collect()
    }

    /// The prompts an interview created on `versions` runs with: the active ones where
    /// the versions match, else the stored version (an interview started before a
    /// promotion finishes on the prompts it started with).
    pub async fn for_interview(
        &self,
        store: &SharedDocumentStore,
        versions: &BTreeMap<String, u32>,
    ) -> Result<Prompts> {
        let mut by_agent = self.by_agent.clone();
        for (agent, v) in versions {
            if by_agent.get(agent).map(|p| p.version) == Some(*v) || !AGENTS.contains(&agent.as_str()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use catalyst_shared::store::local::SqliteDocumentStore;
    use std::sync::Arc;

    #[tokio::test]
    async fn first_start_seeds_version_1_and_later_versions_are_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedDocumentStore = Arc::new(SqliteDocumentStore::open(dir.path().join("s.db")).unwrap());
        let p = Prompts::load(&store).await.unwrap();
        assert_eq!(p.versions().values().copied().collect::<Vec<_>>(), vec![1; AGENTS.len()]);
        assert!(p.get(SYNTHESIS).rendered().starts_with("[catalyst prompt synthesis@v1]\n"));
        // A second start reads what the first seeded.
        assert_eq!(Prompts::load(&store).await.unwrap().versions(), p.versions());

        // Promote version 2 of the synthesis prompt.
        let mut v2 = p.get(SYNTHESIS).clone();
        v2.version = 2;
        v2.system = "Be brief.".into();
        v2.source = "optimize run r1".into();
        store.put_as(PROMPTS, &version_key(SYNTHESIS, 2), &v2, Precondition::Absent).await.unwrap();
        store
            .put_as(PROMPTS, &active_key(SYNTHESIS), &Active { version: 2, history: vec![1] }, Precondition::None)
            .await
            .unwrap();
        let p2 = Prompts::load(&store).await.unwrap();
        assert_eq!(p2.get(SYNTHESIS).system, "Be brief.");
        // An interview started on version 1 keeps it.
        let old = p2.for_interview(&store, &p.versions()).await.unwrap();
        assert_eq!(old.get(SYNTHESIS).version, 1);

        // A pointer to a missing version is a clear start-up error.
        store
            .put_as(PROMPTS, &active_key(STORY), &Active { version: 9, history: vec![] }, Precondition::None)
            .await
            .unwrap();
        let err = Prompts::load(&store).await.unwrap_err();
        assert_eq!(err.code(), "prompt_missing");
        assert!(err.message().contains("story"), "{}", err.message());
    }

    #[test]
    fn every_agent_has_a_default() {
        for a in AGENTS {
            assert!(default_system(a).is_some_and(|s| s.len() > 100), "{a}");
        }
    }
}
