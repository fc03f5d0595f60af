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

fn clip_chars(s: &str, max: usize) -> String {
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

    #[test]
    fn scores_combine_checks_and_judge_and_guardrails_zero_them() {
        let req = ReplayRequest {
            run: "r".into(),
            agent: "synthesis".into(),
            variant: "opro-1".into(),
            system: "Be specific.".into(),
            item: "u/i/00001".into(),
            rubric: "specific".into(),
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
