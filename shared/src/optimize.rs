//! The replay protocol between `optimize` and the function whose prompts it tunes.
//!
//! `optimize` proposes prompt variants and publishes one [`ReplayRequest`] per (variant,
//! logged turn) on the `replays` queue; the agent function runs its real code on the
//! logged input with the variant's prompt, scores the output (its deterministic checks
//! plus an LLM judge, [`judge`]) and writes one [`ReplayResult`] per request, created only
//! if absent: a duplicated or redelivered message writes nothing new, and a run that is
//! resumed counts every result once.

use crate::llm::{LanguageModel, Message, Request, complete_json};
use crate::prompts::PromptVersion;
use crate::store::{DocumentStoreExt, Precondition, SharedDocumentStore};
use crate::{ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Queue the agent function consumes replays from.
pub const REPLAYS: &str = "replays";
/// Queue that drives an optimize run forward.
pub const OPTIMIZE_QUEUE: &str = "optimize";
/// Runs, and under `{run}/results/` their replay results.
pub const RUNS: &str = "optimize_runs";
/// The agent function's turn log (what runs replay).
pub const TURNS: &str = "turns";

/// Replay one logged turn through one agent with a candidate prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayRequest {
    pub run: String,
    pub agent: String,
    /// Variant id within the run (`active`, `canary`, `opro-1`, `mutation-1`, `bootstrap`).
    pub variant: String,
    /// The variant's system prompt (without the name line, which [`Self::prompt`] adds).
    pub system: String,
    /// Turn-log key of the input.
    pub item: String,
    /// What the judge grades this agent's output on.
    pub rubric: String,
    /// What this replay may cost at most (calls) and is expected to cost (tokens): it
    /// starts only if the run's [`Ledger`] has that much left.
    #[serde(default)]
    pub estimate: Spend,
}

impl ReplayRequest {
    /// The variant as a prompt version: version 0, so a provider log tells a replay from
    /// live traffic.
    pub fn prompt(&self) -> PromptVersion {
        PromptVersion {
            agent: self.agent.clone(),
            version: 0,
            system: self.system.clone(),
            created_at: String::new(),
            source: format!("optimize run {} variant {}", self.run, self.variant),
            evidence: serde_json::Value::Null,
        }
    }

    pub fn result_key(&self) -> String {
        result_key(&self.run, &self.agent, &self.variant, &self.item)
    }
}

/// Variant ids repeat across agents (each has an `opro`), so the agent is in the key.
pub fn result_key(run: &str, agent: &str, variant: &str, item: &str) -> String {
    format!("{}{agent}/{variant}/{item}", results_prefix(run))
}

pub fn results_prefix(run: &str) -> String {
    format!("{run}/results/")
}

/// LLM calls and tokens spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Spend {
    pub fn add(&mut self, other: Spend) {
        self.calls += other.calls;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }

    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    pub fn of(usage: crate::llm::Usage) -> Spend {
        Spend { calls: 1, input_tokens: usage.input_tokens as u64, output_tokens: usage.output_tokens as u64 }
    }
}

/// How one variant did on one logged input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayResult {
    pub run: String,
    pub agent: String,
    pub variant: String,
    pub item: String,
    /// 0-1: 0 when a guardrail broke, else half the deterministic checks' mean and half
    /// the judge's grade.
    pub score: f64,
    pub judge: Option<f64>,
    /// Deterministic checks, each 0-1.
    pub metrics: BTreeMap<String, f64>,
    /// Guardrails broken: `invalid_output`, `refusal`, `empty`, `too_long`...
    pub violations: Vec<String>,
    pub output: String,
    pub spend: Spend,
    /// Set when the input could not be replayed at all (not a judgement of the variant).
    pub error: Option<String>,
}

impl ReplayResult {
    pub fn new(req: &ReplayRequest) -> ReplayResult {
        ReplayResult {
            run: req.run.clone(),
            agent: req.agent.clone(),
            variant: req.variant.clone(),
            item: req.item.clone(),
            score: 0.0,
            judge: None,
            metrics: BTreeMap::new(),
            violations: Vec::new(),
            output: String::new(),
            spend: Spend::default(),
            error: None,
        }
    }

    /// The score from the checks and the judge's grade.
    pub fn finish(mut self) -> ReplayResult {
        let checks = if self.metrics.is_empty() {
            1.0
        } else {
            self.metrics.values().map(|v| v.clamp(0.0, 1.0)).sum::<f64>() / self.metrics.len() as f64
        };
        self.score = if !self.violations.is_empty() || self.error.is_some() {
            0.0
        } else {
            match self.judge {
                Some(j) => 0.5 * checks + 0.5 * j.clamp(0.0, 1.0),
                None => checks,
            }
        };
        self
    }
}

/// What a run may still spend, shared by every instance working on it
/// (`optimize_runs/{run}/ledger`): a replay reserves its estimate before it calls the
/// model and settles to what it spent after, so the run's caps hold however many
/// instances replay at once (up to the estimate errors of the replays in flight).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub max_calls: u64,
    pub max_tokens: u64,
    /// Spent, plus what replays in flight reserved.
    pub spent: Spend,
}

pub fn ledger_key(run: &str) -> String {
    format!("{run}/ledger")
}

/// Open the run's ledger with what planning spent (once: a second call keeps the first).
pub async fn open_ledger(store: &SharedDocumentStore, run: &str, ledger: &Ledger) -> Result<()> {
    match store.put_as(RUNS, &ledger_key(run), ledger, Precondition::Absent).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::Conflict => Ok(()),
        Err(e) => Err(e),
    }
}

/// Apply `change` to the run's ledger (every instance settles at once: many retries).
/// `None` when the run has no ledger, else whether `change` accepted.
async fn update_ledger(
    store: &SharedDocumentStore,
    run: &str,
    mut change: impl FnMut(&mut Ledger) -> bool + Send,
) -> Result<Option<bool>> {
    let mut outcome = None;
    store
        .update_as::<Ledger, _>(RUNS, &ledger_key(run), 50, |ledger| {
            let Some(mut ledger) = ledger else {
                outcome = None;
                return Ok(None);
            };
            let accepted = change(&mut ledger);
            outcome = Some(accepted);
            Ok(accepted.then_some(ledger))
        })
        .await
        .map_err(|e| {
            if e.code() == "update_conflict" {
                crate::Error::unavailable("the run's budget ledger is too busy; retried").with_code("ledger_busy")
            } else {
                e
            }
        })?;
    Ok(outcome)
}

/// Reserve `want` from the run's budget; `false` when it does not fit. A run without a
/// ledger has no cap.
pub async fn reserve(store: &SharedDocumentStore, run: &str, want: Spend) -> Result<bool> {
    let fits = |l: &mut Ledger| {
        let ok = l.spent.calls + want.calls <= l.max_calls && l.spent.tokens() + want.tokens() <= l.max_tokens;
        if ok {
            l.spent.add(want);
        }
        ok
    };
    Ok(update_ledger(store, run, fits).await?.unwrap_or(true))
}

/// Replace a reservation with what was spent.
pub async fn settle(store: &SharedDocumentStore, run: &str, reserved: Spend, spent: Spend) -> Result<()> {
    if reserved == spent {
        return Ok(());
    }
    update_ledger(store, run, |l| {
        l.spent.calls = l.spent.calls.saturating_sub(reserved.calls) + spent.calls;
        l.spent.input_tokens = l.spent.input_tokens.saturating_sub(reserved.input_tokens) + spent.input_tokens;
        l.spent.output_tokens = l.spent.output_tokens.saturating_sub(reserved.output_tokens) + spent.output_tokens;
        true
    })
    .await
    .map(|_| ())
}

/// Whether a replay result is stored already (a redelivered request then costs nothing).
pub async fn recorded(store: &SharedDocumentStore, req: &ReplayRequest) -> Result<bool> {
    Ok(store.get(RUNS, &req.result_key()).await?.is_some())
}

/// Store a result if none is there; `false` when one was (the first write stands).
pub async fn record(store: &SharedDocumentStore, result: &ReplayResult) -> Result<bool> {
    let key = result_key(&result.run, &result.agent, &result.variant, &result.item);
    match store.put_as(RUNS, &key, result, Precondition::Absent).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::Conflict => Ok(false),
        Err(e) => Err(e),
    }
}

const JUDGE_SYSTEM: &str = "[catalyst judge]\nYou grade the output of one agent of a mock-interview platform. \
You are given what the agent must do well (the rubric), the input it received and what it wrote. \
Grade only against the rubric, 0 (fails it) to 10 (meets every point), and give the reason in one sentence. \
Reply with JSON only.";

/// An LLM grade of `output` for `input` against `rubric`, 0-1, with what it cost.
pub async fn judge(llm: &dyn LanguageModel, rubric: &str, input: &str, output: &str) -> Result<(f64, Spend)> {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 0, "maximum": 10},
            "reason": {"type": "string", "maxLength": 200}
        },
        "required": ["score", "reason"]
    });
    let user =
        format!("RUBRIC:\n{rubric}\n\nINPUT:\n{}\n\nOUTPUT:\n{}", clip_chars(input, 4_000), clip_chars(output, 2_000));
    let request = Request::new(vec![Message::user(user)])
        .system(JUDGE_SYSTEM)
        .max_tokens(120)
        .temperature(0.0)
        .schema("judge_output", schema);
    let (value, completion) = complete_json(llm, &request).await?;
    let score = value.get("score").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    Ok(((score / 10.0).clamp(0.0, 1.0), Spend::of(completion.usage)))
}

/// At most `max` characters of `s`, with an ellipsis when cut.
pub fn clip_chars(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max { s.to_string() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

/// A model declining the task rather than doing it.
pub fn refused(text: &str) -> bool {
    let t = text.to_lowercase();
    [
        "i can't help",
        "i cannot help",
        "i can't assist",
        "i cannot assist",
        "as an ai",
        "i'm sorry, but",
        "i am unable to",
    ]
    .iter()
    .any(|p| t.contains(p))
}

/// Share of `output`'s content words (four letters or more) that occur in `source`: how
/// much of what an agent wrote refers to what it was given.
pub fn grounded_share(output: &str, source: &str) -> f64 {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 4).map(str::to_lowercase).collect()
    };
    let source: std::collections::HashSet<String> = words(source).into_iter().collect();
    let out = words(output);
    if out.is_empty() {
        return 0.0;
    }
    out.iter().filter(|w| source.contains(*w)).count() as f64 / out.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "local")]
    #[tokio::test]
    async fn the_ledger_caps_what_replays_may_start() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedDocumentStore =
            std::sync::Arc::new(crate::store::local::SqliteDocumentStore::open(dir.path().join("s.db")).unwrap());
        let want = Spend { calls: 3, input_tokens: 500, output_tokens: 100 };
        assert!(reserve(&store, "r", want).await.unwrap(), "no ledger, no cap");
        let spent = Spend { calls: 4, input_tokens: 300, output_tokens: 0 };
        open_ledger(&store, "r", &Ledger { max_calls: 10, max_tokens: 1_400, spent }).await.unwrap();
        assert!(reserve(&store, "r", want).await.unwrap());
        assert!(!reserve(&store, "r", want).await.unwrap(), "1,400 tokens: the second does not fit");
        // The first spent less than it reserved: room again.
        settle(&store, "r", want, Spend { calls: 2, input_tokens: 150, output_tokens: 50 }).await.unwrap();
        assert!(reserve(&store, "r", want).await.unwrap());
        let (l, _) = store.get_as::<Ledger>(RUNS, &ledger_key("r")).await.unwrap().unwrap();
        assert_eq!(l.spent, Spend { calls: 9, input_tokens: 950, output_tokens: 150 });
        // Calls are capped too.
        assert!(!reserve(&store, "r", Spend { calls: 2, ..Spend::default() }).await.unwrap());
        // Reservations racing each other are all counted.
        settle(&store, "r", Spend { calls: 9, input_tokens: 950, output_tokens: 150 }, Spend::default()).await.unwrap();
        let one = Spend { calls: 1, input_tokens: 10, output_tokens: 0 };
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { reserve(&store, "r", one).await.unwrap() })
            })
            .collect();
        let mut granted = 0;
        for t in tasks {
            granted += t.await.unwrap() as u32;
        }
        assert_eq!(granted, 10);
        let (l, _) = store.get_as::<Ledger>(RUNS, &ledger_key("r")).await.unwrap().unwrap();
        assert_eq!(l.spent.calls, 10);
    }

    #[test]
    fn scores_combine_checks_and_judge_and_guardrails_zero_them() {
        let req = ReplayRequest {
            run: "r".into(),
            agent: "synthesis".into(),
            variant: "opro-1".into(),
            system: "Be specific.".into(),
            item: "u/i/00001".into(),
            rubric: "specific".into(),
            estimate: Spend::default(),
        };
        assert_eq!(req.result_key(), "r/results/synthesis/opro-1/u/i/00001");
        assert!(req.prompt().rendered().starts_with("[catalyst prompt synthesis@v0]\nBe specific."));
        let mut r = ReplayResult::new(&req);
        r.metrics.insert("a".into(), 1.0);
        r.metrics.insert("b".into(), 0.5);
        r.judge = Some(0.5);
        let ok = r.clone().finish();
        assert!((ok.score - (0.5 * 0.75 + 0.5 * 0.5)).abs() < 1e-9);
        r.violations.push("refusal".into());
        assert_eq!(r.finish().score, 0.0);
    }

    #[test]
    fn refusals_and_grounding() {
        assert!(refused("I'm sorry, but I cannot do that."));
        assert!(!refused("Thanks for walking me through the migration."));
        assert_eq!(grounded_share("Thanks for sharing.", "I migrated the billing service"), 0.0);
        let g = grounded_share("Migrating billing without downtime is hard.", "I migrated billing without downtime");
        assert!((g - 3.0 / 5.0).abs() < 1e-9, "{g}");
        assert_eq!(grounded_share("", "x"), 0.0);
    }
}
