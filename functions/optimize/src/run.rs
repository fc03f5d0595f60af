//! One optimize run, as a small state machine stored in `optimize_runs/{run}` and moved
//! forward by `advance` messages on the `optimize` queue:
//!
//! 1. planning: read the turn log for the window, build each agent's evaluation set,
//!    propose variants, fit the set to the budget; then publish one replay request per
//!    (variant, input) on `replays`, where the agent function runs them;
//! 2. replaying: wait (re-queueing itself with a delay) until every result is stored or
//!    the deadline passes;
//! 3. deciding: paired tests per variant against the active version on the same inputs;
//!    promote the best that passes and breaks no guardrail (as a canary), confirm or drop
//!    an earlier canary; record everything in the run.
//!
//! Every step is a versioned write of the run; an `advance` carries the run's tick, so a
//! duplicated or stale message finds the tick moved and does nothing. Results are
//! created only if absent and summed from the store, so a run interrupted anywhere
//! resumes (the next delivery, or `catalyst optimize --resume`) without counting twice.

use crate::propose::{self, Item, Scored};
use crate::stats;
use catalyst_shared::llm::LanguageModel;
use catalyst_shared::optimize::{OPTIMIZE_QUEUE, REPLAYS, RUNS, ReplayRequest, ReplayResult, Spend, TURNS};
use catalyst_shared::prompts::{self, Active, PROMPTS, PromptVersion};
use catalyst_shared::queue::{Outgoing, SharedQueue};
use catalyst_shared::store::{DocumentStoreExt, Precondition, SharedDocumentStore};
use catalyst_shared::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The agents whose inputs the turn log holds (Context and Reframing run outside turns).
pub const REPLAYABLE: &[&str] = &["synthesis", "story", "orchestrator", "evaluator"];

/// What a run may do; from the schedule's payload or `catalyst optimize` flags. Fields
/// a payload carries beyond these (Cloud Scheduler's `job`) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    pub window_hours: u64,
    /// Agents to optimize (default: every replayable one).
    pub agents: Vec<String>,
    /// Most LLM calls the run may make (proposals and replays, judge included).
    pub max_calls: u64,
    /// Most tokens (input + output) the run may spend.
    pub max_tokens: u64,
    /// Most logged turns per agent to replay.
    pub max_items: usize,
    /// Fewest paired inputs a decision needs.
    pub min_items: usize,
    /// Smallest mean gain (0-1 score) worth promoting.
    pub min_gain: f64,
    /// Share of new interviews a promoted version serves before it is confirmed; 1 makes
    /// it active at once.
    pub canary_share: f64,
    /// How long replays may take before the run decides on what it has.
    pub replay_deadline_s: u64,
    /// How often a waiting run checks for results.
    pub poll_s: u64,
    /// Propose the few-shot variant (examples from past turns, scrubbed of names,
    /// contacts and links, go into a prompt every interview then uses).
    pub few_shot: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            window_hours: 24,
            agents: REPLAYABLE.iter().map(|a| a.to_string()).collect(),
            max_calls: 2_000,
            max_tokens: 3_000_000,
            max_items: 40,
            min_items: 8,
            min_gain: 0.02,
            canary_share: 0.1,
            replay_deadline_s: 1800,
            poll_s: 10,
            few_shot: true,
        }
    }
}

impl Options {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::bad_request(m).with_code("invalid_options"));
        if let Some(a) = self.agents.iter().find(|a| !REPLAYABLE.contains(&a.as_str())) {
            return bad(format!("agent `{a}` cannot be optimized from the turn log; one of {}", REPLAYABLE.join(", ")));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(a) = self.agents.iter().find(|a| !seen.insert(a.as_str())) {
            return bad(format!("agent `{a}` is named twice"));
        }
        if !(1..=24 * 90).contains(&self.window_hours) {
            return bad("window_hours is 1 to 2160".into());
        }
        if self.min_items < 2 || self.max_items < self.min_items {
            return bad("min_items is at least 2 and at most max_items".into());
        }
        if !(0.0..=1.0).contains(&self.canary_share) || !(0.0..1.0).contains(&self.min_gain) {
            return bad("canary_share is 0-1 and min_gain 0-1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Planning,
    Replaying,
    Done,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub id: String,
    /// `active`, `canary`, `opro`, `mutation` or `bootstrap`.
    pub source: String,
    pub system: String,
}

/// One paired comparison against the active version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub variant: String,
    pub n: usize,
    pub mean_active: f64,
    pub mean_variant: f64,
    pub mean_diff: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub wins: usize,
    pub losses: usize,
    pub ties: usize,
    pub sign_p: f64,
    pub violations: usize,
    pub passes: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// `promoted`, `kept`, `canary_confirmed`, `canary_dropped`.
    pub decision: String,
    pub version: Option<u32>,
    pub comparisons: Vec<Comparison>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub agent: String,
    pub active_version: u32,
    pub canary_version: Option<u32>,
    pub items: Vec<String>,
    pub variants: Vec<Variant>,
    /// What one replay may cost: its worst-case calls and estimated tokens.
    #[serde(default)]
    pub estimate: Spend,
    /// Why the agent is left out of this run, when it is.
    pub skipped: Option<String>,
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub trigger: String,
    pub window_from: String,
    pub window_to: String,
    pub options: Options,
    pub stage: Stage,
    pub tick: u64,
    pub published: bool,
    pub deadline: Option<String>,
    pub proposal_spend: Spend,
    /// Proposals plus the replays recorded so far.
    pub spend: Spend,
    pub tasks: Vec<Task>,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

impl Run {
    /// Replays planned, and how many have results.
    pub fn planned(&self) -> usize {
        self.tasks.iter().map(|t| t.items.len() * t.variants.len()).sum()
    }
}

/// The `advance` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advance {
    pub run: String,
    pub tick: u64,
}

/// What a run works with.
#[derive(Clone)]
pub struct Ports {
    pub store: SharedDocumentStore,
    pub queue: SharedQueue,
    pub llm: Arc<LazyLlm>,
}

/// The proposers' LLM. With the embedded model in the chain it loads on the first
/// planning step rather than at cold start: most invocations of this function are a run
/// checking on its replays, which need no model, and a local GGUF would cost each of them
/// a load. The configuration is read at start, so a bad one still stops the function
/// there; hosted-only chains are built at start (`ready`).
pub struct LazyLlm {
    config: Option<catalyst_shared::llm::LlmConfig>,
    cell: tokio::sync::OnceCell<Arc<dyn LanguageModel>>,
}

impl LazyLlm {
    pub fn ready(llm: Arc<dyn LanguageModel>) -> LazyLlm {
        LazyLlm { config: None, cell: tokio::sync::OnceCell::new_with(Some(llm)) }
    }

    pub fn from_config(config: catalyst_shared::llm::LlmConfig) -> LazyLlm {
        LazyLlm { config: Some(config), cell: tokio::sync::OnceCell::new() }
    }

    pub async fn get(&self) -> Result<Arc<dyn LanguageModel>> {
        self.cell
            .get_or_try_init(|| async {
                let config = self.config.as_ref().ok_or_else(|| Error::internal("no LLM configured"))?;
                catalyst_shared::llm::from_config(config).await
            })
            .await
            .cloned()
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A seed that is the same for the same run on every instance.
fn seed(text: &str) -> u64 {
    prompts::stable_hash(text)
}

/// Start a run (idempotent per `trigger@time`): a schedule delivered twice starts one
/// run, and a second delivery of a run that never got going sends its first step again.
pub async fn start(
    store: &SharedDocumentStore,
    queue: &SharedQueue,
    trigger: &str,
    time: chrono::DateTime<chrono::Utc>,
    options: Options,
) -> Result<Run> {
    options.validate()?;
    let id = format!("{trigger}@{}", time.format("%Y-%m-%dT%H:%M:%SZ"));
    let from = time - chrono::Duration::hours(options.window_hours as i64);
    let run = Run {
        id: id.clone(),
        trigger: trigger.to_string(),
        window_from: stamp(from),
        window_to: stamp(time),
        options,
        stage: Stage::Planning,
        tick: 0,
        published: false,
        deadline: None,
        proposal_spend: Spend::default(),
        spend: Spend::default(),
        tasks: Vec::new(),
        status: "planning".into(),
        created_at: stamp(now()),
        updated_at: stamp(now()),
    };
    let run = match store.put_as(RUNS, &id, &run, Precondition::Absent).await {
        Ok(_) => run,
        Err(e) if e.kind() == ErrorKind::Conflict => {
            let (existing, _) = load(store, &id).await?;
            tracing::info!(run = %id, stage = ?existing.stage, "run exists; sending its next step again");
            existing
        }
        Err(e) => return Err(e),
    };
    if run.stage != Stage::Done {
        send_advance(queue, &run, None).await?;
    }
    Ok(run)
}

/// Pick up a run that stopped (its step message lost, or replays lost with a crashed
/// instance): its replays without a result are published again on its next step, and
/// that step is sent. What is recorded stays and is counted once. `catalyst optimize
/// --resume` calls this.
pub async fn resume(store: &SharedDocumentStore, queue: &SharedQueue, id: &str) -> Result<Run> {
    let (mut run, version) = load(store, id).await?;
    if run.stage == Stage::Done {
        return Ok(run);
    }
    // A new tick: steps still on the queue become stale, and the step sent now is not
    // taken for a duplicate of one the queue saw before.
    run.tick += 1;
    if run.stage == Stage::Replaying {
        run.published = false;
        run.deadline = Some(stamp(now() + chrono::Duration::seconds(run.options.replay_deadline_s as i64)));
    }
    send_advance(queue, &run, None).await?;
    if !save(store, &mut run, version).await? {
        return Err(Error::conflict("the run moved while resuming; try again").with_code("run_busy"));
    }
    Ok(run)
}

pub async fn load(store: &SharedDocumentStore, id: &str) -> Result<(Run, u64)> {
    store
        .get_as::<Run>(RUNS, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no optimize run `{id}`")).with_code("run_not_found"))
}

async fn send_advance(queue: &SharedQueue, run: &Run, delay: Option<Duration>) -> Result<()> {
    let message = || -> Result<Outgoing> {
        Ok(Outgoing::json(&Advance { run: run.id.clone(), tick: run.tick })?
            .with_dedupe_id(format!("{}#{}", run.id, run.tick)))
    };
    let mut msg = message()?;
    msg.delay = delay;
    match queue.send(OPTIMIZE_QUEUE, msg).await {
        Ok(_) => Ok(()),
        // Pub/Sub cannot delay a message: wait here, then send it due (a few idle
        // seconds of this invocation instead of a scheduler).
        Err(e) if e.code() == "delay_unsupported" => {
            tokio::time::sleep(delay.unwrap_or_default()).await;
            queue.send(OPTIMIZE_QUEUE, message()?).await.map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// Save `run` if nobody moved it since `version`; `false` when someone did (then this
/// step was a duplicate and its work is dropped).
async fn save(store: &SharedDocumentStore, run: &mut Run, version: u64) -> Result<bool> {
    run.updated_at = stamp(now());
    match store.put_as(RUNS, &run.id, run, Precondition::Version(version)).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::Conflict => Ok(false),
        Err(e) => Err(e),
    }
}

/// One step of the run named in `msg`.
///
/// A step sends its successor *before* saving the run with the new tick, so a saved step
/// always has a successor on the queue; a successor that arrives before that save
/// landed fails (`step_early`) and the queue brings it back.
pub async fn advance(ports: &Ports, msg: &Advance) -> Result<()> {
    let (mut run, version) = load(&ports.store, &msg.run).await?;
    if msg.tick == run.tick + 1 && run.stage != Stage::Done {
        return Err(Error::unavailable("this step arrived before its run was saved; retried").with_code("step_early"));
    }
    if run.tick != msg.tick || run.stage == Stage::Done {
        tracing::debug!(run = %run.id, tick = msg.tick, at = run.tick, "stale or duplicate step ignored");
        return Ok(());
    }
    match run.stage {
        Stage::Planning => {
            plan(ports, &mut run).await?;
            run.tick += 1;
            if run.planned() == 0 {
                run.stage = Stage::Done;
                run.status = "nothing to replay: every agent was skipped".into();
                save(&ports.store, &mut run, version).await?;
                return Ok(());
            }
            run.stage = Stage::Replaying;
            run.deadline = Some(stamp(now() + chrono::Duration::seconds(run.options.replay_deadline_s as i64)));
            run.status = format!("replaying 0/{}", run.planned());
            send_advance(&ports.queue, &run, None).await?;
            save(&ports.store, &mut run, version).await?;
        }
        Stage::Replaying => {
            let results = gather(&ports.store, &run).await?;
            if !run.published {
                publish(ports, &run, &results).await?;
                run.published = true;
            }
            let done: usize = results.values().map(BTreeMap::len).sum();
            run.spend = run.proposal_spend;
            for r in results.values().flat_map(BTreeMap::values) {
                run.spend.add(r.spend);
            }
            let overdue = run.deadline.as_deref().is_some_and(|d| d <= stamp(now()).as_str());
            run.tick += 1;
            if done >= run.planned() || overdue {
                decide(ports, &mut run, &results).await?;
                run.stage = Stage::Done;
                save(&ports.store, &mut run, version).await?;
            } else {
                run.status = format!("replaying {done}/{}", run.planned());
                send_advance(&ports.queue, &run, Some(Duration::from_secs(run.options.poll_s.max(1)))).await?;
                save(&ports.store, &mut run, version).await?;
            }
        }
        Stage::Done => {}
    }
    Ok(())
}

/// The turn log of the window, as evaluation-set items per agent.
async fn evaluation_sets(store: &SharedDocumentStore, run: &Run) -> Result<BTreeMap<String, Vec<Item>>> {
    let mut sets: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    // Keys start with the turn's time: the window is a key range.
    let mut after = Some(run.window_from.clone());
    'pages: loop {
        let page = store.query_prefix(TURNS, "", after.as_deref(), 500).await?;
        for d in &page.documents {
            if d.key.as_str() > run.window_to.as_str() {
                break 'pages;
            }
            let v = &d.value;
            for agent in &run.options.agents {
                if v.pointer(&format!("/inputs/{agent}")).is_none_or(serde_json::Value::is_null) {
                    continue;
                }
                let output = match v.pointer(&format!("/outputs/{agent}")) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) if !other.is_null() => other.to_string(),
                    _ => String::new(),
                };
                let tokens: u64 = v["calls"]
                    .as_array()
                    .map(|calls| {
                        calls
                            .iter()
                            .filter(|c| c["agent"] == agent.as_str())
                            .map(|c| c["input_tokens"].as_u64().unwrap_or(0) + c["output_tokens"].as_u64().unwrap_or(0))
                            .sum()
                    })
                    .unwrap_or(0);
                let names: Vec<String> = v["inputs"]
                    .as_object()
                    .map(|o| o.values().filter_map(|i| i["candidate_name"].as_str()).map(str::to_string).collect())
                    .unwrap_or_default();
                sets.entry(agent.clone()).or_default().push(Item {
                    key: d.key.clone(),
                    question: v["question"].as_str().unwrap_or_default().to_string(),
                    answer: v["answer"].as_str().unwrap_or_default().to_string(),
                    output,
                    score: v["score"].as_f64(),
                    rating: v["rating"].as_f64(),
                    tokens: Some(tokens).filter(|t| *t > 0),
                    names,
                });
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(sets)
}

/// Earlier versions of `agent` with the scores their promotions measured.
/// Every prompt an earlier run measured for an agent, with its mean score: OPRO's
/// optimization trajectory (`optimize_runs/history/{agent}`), best kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub entries: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub run: String,
    pub variant: String,
    pub system: String,
    pub score: f64,
    pub n: usize,
}

/// How many measured prompts an agent's history keeps (the best by score).
const HISTORY_KEEP: usize = 20;

pub fn history_key(agent: &str) -> String {
    format!("history/{agent}")
}

/// Add what this run measured to the agent's history (once per run: a retried decision
/// finds its entries there).
async fn record_history(
    store: &SharedDocumentStore,
    agent: &str,
    run: &str,
    measured: Vec<HistoryEntry>,
) -> Result<()> {
    store
        .update_as::<History, _>(RUNS, &history_key(agent), 5, |h| {
            let mut h = h.unwrap_or_default();
            if h.entries.iter().any(|e| e.run == run) {
                return Ok(None);
            }
            for m in &measured {
                // The same text measured again: keep the newer measurement.
                h.entries.retain(|e| e.system != m.system);
            }
            h.entries.extend(measured.iter().cloned());
            h.entries.sort_by(|a, b| b.score.total_cmp(&a.score));
            h.entries.truncate(HISTORY_KEEP);
            Ok(Some(h))
        })
        .await
        .map(|_| ())
        .map_err(|e| if e.code() == "update_conflict" { e.with_code("history_busy") } else { e })
}

/// The prompts OPRO sees: the best measured ones with their scores, and the registry's
/// versions (the current one included, scored if a run measured it).
async fn trajectory(store: &SharedDocumentStore, agent: &str) -> Result<Vec<Scored>> {
    let mut out: Vec<Scored> = Vec::new();
    if let Some((h, _)) = store.get_as::<History>(RUNS, &history_key(agent)).await? {
        for e in h.entries.iter().take(8) {
            out.push(Scored {
                label: format!("{} of {}", e.variant, e.run),
                system: e.system.clone(),
                score: Some(e.score),
            });
        }
    }
    for p in prompts::versions_of(store, agent).await? {
        if out.iter().any(|s| s.system == p.system) {
            continue;
        }
        out.push(Scored {
            label: format!("version {}", p.version),
            score: p.evidence.get("mean_variant").and_then(serde_json::Value::as_f64),
            system: p.system,
        });
    }
    Ok(out)
}

async fn stored_prompt(store: &SharedDocumentStore, agent: &str, version: u32) -> Result<PromptVersion> {
    store
        .get_as::<PromptVersion>(PROMPTS, &prompts::version_key(agent, version))
        .await?
        .map(|(p, _)| p)
        .ok_or_else(|| Error::internal(format!("`{agent}` version {version} is missing")).with_code("prompt_missing"))
}

/// Evaluation sets, variants and the budget fit.
async fn plan(ports: &Ports, run: &mut Run) -> Result<()> {
    let sets = evaluation_sets(&ports.store, run).await?;
    let opts = run.options.clone();
    let mut spend = Spend::default();
    // What the run has committed to so far: proposals made plus replays planned.
    let (mut committed_calls, mut committed_tokens) = (0u64, 0u64);
    let mut tasks = Vec::new();
    let agents = opts.agents.clone();
    for (i, agent) in agents.iter().enumerate() {
        let mut task = Task {
            agent: agent.clone(),
            active_version: 0,
            canary_version: None,
            items: Vec::new(),
            variants: Vec::new(),
            estimate: Spend::default(),
            skipped: None,
            outcome: None,
        };
        let Some((active, _)) = ports.store.get_as::<Active>(PROMPTS, &prompts::active_key(agent)).await? else {
            task.skipped = Some("the registry has no entry yet (the agent seeds it at its first start)".into());
            tasks.push(task);
            continue;
        };
        task.active_version = active.version;
        let mut items = sets.get(agent).cloned().unwrap_or_default();
        if items.len() < opts.min_items {
            task.skipped = Some(format!(
                "{} turns in the window have this agent's input; a decision needs {}",
                items.len(),
                opts.min_items
            ));
            tasks.push(task);
            continue;
        }
        // The most recent turns, up to the cap.
        items.reverse();
        items.truncate(opts.max_items);
        let current = stored_prompt(&ports.store, agent, active.version).await?;
        task.variants.push(Variant { id: "active".into(), source: "active".into(), system: current.system.clone() });
        if let Some(c) = &active.canary {
            let canary = stored_prompt(&ports.store, agent, c.version).await?;
            task.canary_version = Some(c.version);
            task.variants.push(Variant { id: "canary".into(), source: "canary".into(), system: canary.system });
        }

        // The budget left, shared evenly by this agent and the ones after it.
        let left = (agents.len() - i) as u64;
        let calls_left = opts.max_calls.saturating_sub(committed_calls) / left;
        let tokens_left = opts.max_tokens.saturating_sub(committed_tokens) / left;
        let before = spend;
        let mut by_quality: Vec<&Item> = items.iter().collect();
        by_quality.sort_by(|a, b| b.quality().total_cmp(&a.quality()));
        // The call cap holds in the worst case: a structured call may be repaired once
        // (two calls), so a proposal counts two, and a replay counts its agent's call(s)
        // plus the judge's two. Tokens are estimated from what the turns logged.
        let proposal_calls = 2 * 2;
        let replay_calls: u64 = if agent == "synthesis" { 1 + 2 } else { 2 + 2 };
        let mut proposed = false;
        if calls_left > proposal_calls + replay_calls * 2 * opts.min_items as u64 && tokens_left > 10_000 {
            proposed = true;
            let llm = ports.llm.get().await?;
            let mut trail = trajectory(&ports.store, agent).await?;
            if trail.is_empty() {
                trail.push(Scored { label: "current".into(), system: current.system.clone(), score: None });
            }
            let worst: Vec<&Item> = by_quality.iter().rev().take(3).copied().collect();
            match propose::opro(llm.as_ref(), agent, &trail, &worst).await {
                Ok((text, s)) => {
                    spend.add(s);
                    task.variants.push(Variant { id: "opro".into(), source: "opro".into(), system: text });
                }
                Err(e) => {
                    spend.calls += 1;
                    tracing::warn!(agent = %agent, error = %e.message(), "OPRO proposal failed; skipped")
                }
            }
            match propose::mutate(llm.as_ref(), agent, &current.system, seed(&run.id) ^ seed(agent)).await {
                Ok((text, s)) => {
                    spend.add(s);
                    task.variants.push(Variant { id: "mutation".into(), source: "mutation".into(), system: text });
                }
                Err(e) => {
                    spend.calls += 1;
                    tracing::warn!(agent = %agent, error = %e.message(), "mutation failed; skipped")
                }
            }
        }
        // Few-shot examples: turns the evaluator scored well and the candidate (if they
        // rated it) liked, scrubbed of what identifies them, and held out of the inputs
        // the variants are compared on (a prompt is not tested on its own examples).
        if opts.few_shot {
            let mut best: Vec<&Item> = items
                .iter()
                .filter(|it| !it.output.is_empty() && it.score.unwrap_or(0.0) >= 60.0)
                .filter(|it| it.rating.is_none_or(|r| r >= 4.0))
                .collect();
            best.sort_by(|a, b| b.score.unwrap_or(0.0).total_cmp(&a.score.unwrap_or(0.0)));
            best.truncate(3);
            let held_out: std::collections::HashSet<String> = best.iter().map(|it| it.key.clone()).collect();
            if items.len() - held_out.len() >= opts.min_items
                && let Some(text) = propose::bootstrap(&current.system, &best)
            {
                task.variants.push(Variant { id: "bootstrap".into(), source: "bootstrap".into(), system: text });
                items.retain(|it| !held_out.contains(&it.key));
            }
        }
        // Same text twice is one variant.
        let mut seen = std::collections::HashSet::new();
        task.variants.retain(|v| !v.system.trim().is_empty() && seen.insert(v.system.trim().to_string()));

        // Fit the inputs to the budget: a replay is the agent's call and the judge's,
        // each about the size of the logged call, plus the longest variant's prompt.
        let per_replay_tokens = {
            let known: Vec<u64> = items.iter().filter_map(|i| i.tokens).collect();
            let mean = if known.is_empty() { 1_000 } else { known.iter().sum::<u64>() / known.len() as u64 };
            let longest = task.variants.iter().map(|v| v.system.len() as u64).max().unwrap_or(0);
            mean * 2 + longest / 3 + 400
        };
        task.estimate = Spend { calls: replay_calls, input_tokens: per_replay_tokens, output_tokens: 0 };
        let proposal_calls = if proposed { proposal_calls } else { 0 };
        let proposal_tokens = spend.tokens() - before.tokens();
        committed_calls += proposal_calls;
        committed_tokens += proposal_tokens;
        let calls_after = calls_left.saturating_sub(proposal_calls);
        let tokens_after = tokens_left.saturating_sub(proposal_tokens);
        loop {
            let v = task.variants.len().max(1) as u64;
            let fit = (calls_after / (replay_calls * v)).min(tokens_after / (per_replay_tokens * v)) as usize;
            if fit >= opts.min_items || v <= 2 {
                items.truncate(fit.min(items.len()));
                break;
            }
            task.variants.pop();
        }
        if task.variants.len() < 2 || items.len() < opts.min_items {
            task.skipped = Some(format!(
                "the budget ({} calls, {} tokens) leaves {} inputs for {} variants; a decision needs {}",
                opts.max_calls,
                opts.max_tokens,
                items.len(),
                task.variants.len(),
                opts.min_items
            ));
            task.variants.clear();
            items.clear();
        }
        committed_calls += replay_calls * (task.variants.len() * items.len()) as u64;
        committed_tokens += per_replay_tokens * (task.variants.len() * items.len()) as u64;
        task.items = items.into_iter().map(|i| i.key).collect();
        tasks.push(task);
    }
    run.proposal_spend = spend;
    run.spend = spend;
    run.tasks = tasks;
    Ok(())
}

/// One replay request per (variant, input) of every task.
pub fn requests(run: &Run) -> Vec<ReplayRequest> {
    let mut out = Vec::new();
    for task in &run.tasks {
        for v in &task.variants {
            for item in &task.items {
                out.push(ReplayRequest {
                    run: run.id.clone(),
                    agent: task.agent.clone(),
                    variant: v.id.clone(),
                    system: v.system.clone(),
                    item: item.clone(),
                    rubric: propose::rubric(&task.agent).to_string(),
                    estimate: task.estimate,
                });
            }
        }
    }
    out
}

/// Publish the run's replays that have no result in `results` yet, after opening the
/// run's budget ledger with what planning spent.
async fn publish(ports: &Ports, run: &Run, results: &BTreeMap<String, BTreeMap<String, ReplayResult>>) -> Result<()> {
    let ledger = catalyst_shared::optimize::Ledger {
        max_calls: run.options.max_calls,
        max_tokens: run.options.max_tokens,
        spent: run.proposal_spend,
    };
    catalyst_shared::optimize::open_ledger(&ports.store, &run.id, &ledger).await?;
    let recorded: std::collections::HashSet<&String> = results.values().flat_map(BTreeMap::keys).collect();
    for req in requests(run) {
        if recorded.contains(&req.result_key()) {
            continue;
        }
        // The tick in the id: a resumed run's republication is not taken for a duplicate.
        let msg = Outgoing::json(&req)?.with_dedupe_id(format!("{}#{}", req.result_key(), run.tick));
        ports.queue.send(REPLAYS, msg).await?;
    }
    Ok(())
}

/// Stored results by agent, then by result key.
async fn gather(store: &SharedDocumentStore, run: &Run) -> Result<BTreeMap<String, BTreeMap<String, ReplayResult>>> {
    let mut out: BTreeMap<String, BTreeMap<String, ReplayResult>> = BTreeMap::new();
    let prefix = catalyst_shared::optimize::results_prefix(&run.id);
    let mut after: Option<String> = None;
    loop {
        let page = store.query_prefix(RUNS, &prefix, after.as_deref(), 1000).await?;
        for d in &page.documents {
            let r: ReplayResult = d.parse()?;
            out.entry(r.agent.clone()).or_default().insert(d.key.clone(), r);
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Compare `variant` with the active version on the inputs both have a result for.
pub fn compare(
    variant: &str,
    active: &BTreeMap<&str, &ReplayResult>,
    other: &BTreeMap<&str, &ReplayResult>,
    opts: &Options,
    seed: u64,
) -> Comparison {
    let mut pairs = Vec::new();
    for (item, a) in active {
        if let Some(b) = other.get(item)
            && a.error.is_none()
            && b.error.is_none()
        {
            pairs.push((a.score, b.score));
        }
    }
    let n = pairs.len();
    let diffs: Vec<f64> = pairs.iter().map(|(a, b)| b - a).collect();
    let mean = |xs: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = xs.collect();
        if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
    };
    let mean_active = mean(&mut pairs.iter().map(|p| p.0));
    let mean_variant = mean(&mut pairs.iter().map(|p| p.1));
    let mean_diff = mean(&mut diffs.iter().copied());
    // Differences within rounding are ties.
    let wins = diffs.iter().filter(|d| **d > 1e-9).count();
    let losses = diffs.iter().filter(|d| **d < -1e-9).count();
    let (ci_low, ci_high) = stats::paired_bootstrap(&diffs, 2000, seed).unwrap_or((0.0, 0.0));
    let sign_p = stats::sign_test(wins, losses);
    let violations = other.values().filter(|r| !r.violations.is_empty()).count();
    let reason = if n < opts.min_items {
        format!("{n} paired inputs; a decision needs {}", opts.min_items)
    } else if violations > 0 {
        format!("broke a guardrail on {violations} inputs")
    } else if ci_low <= 0.0 {
        format!("not better with confidence: 95% interval of the gain {ci_low:+.3}..{ci_high:+.3}")
    } else if sign_p >= 0.05 {
        format!("sign test p = {sign_p:.3} ({wins} better, {losses} worse)")
    } else if mean_diff < opts.min_gain {
        format!("gain {mean_diff:+.3} below the minimum {:.3}", opts.min_gain)
    } else {
        format!(
            "better on {wins} of {n} inputs, worse on {losses}; gain {mean_diff:+.3} (95% {ci_low:+.3}..{ci_high:+.3}), sign test p = {sign_p:.4}"
        )
    };
    let passes = n >= opts.min_items && violations == 0 && ci_low > 0.0 && sign_p < 0.05 && mean_diff >= opts.min_gain;
    Comparison {
        variant: variant.to_string(),
        n,
        mean_active,
        mean_variant,
        mean_diff,
        ci_low,
        ci_high,
        wins,
        losses,
        ties: n - wins - losses,
        sign_p,
        violations,
        passes,
        reason,
    }
}

/// Decide every task and apply the decisions to the registry.
async fn decide(
    ports: &Ports,
    run: &mut Run,
    results: &BTreeMap<String, BTreeMap<String, ReplayResult>>,
) -> Result<()> {
    let empty = BTreeMap::new();
    let opts = run.options.clone();
    let mut summary = Vec::new();
    for task in run.tasks.iter_mut().filter(|t| t.skipped.is_none()) {
        let mine = results.get(&task.agent).unwrap_or(&empty);
        let by_variant = |v: &str| -> BTreeMap<&str, &ReplayResult> {
            mine.values().filter(|r| r.variant == v).map(|r| (r.item.as_str(), r)).collect()
        };
        let active = by_variant("active");
        let comparisons: Vec<Comparison> = task
            .variants
            .iter()
            .filter(|v| v.id != "active")
            .map(|v| compare(&v.id, &active, &by_variant(&v.id), &opts, seed(&run.id) ^ seed(&v.id)))
            .collect();
        let source = format!("optimize run {}", run.id);
        let outcome = if let Some(c) = comparisons.iter().find(|c| c.variant == "canary") {
            // An earlier promotion, checked again on fresh turns: kept if it holds up.
            let canary_version = task.canary_version.unwrap_or(0);
            if c.violations == 0 && c.n >= opts.min_items && c.mean_diff >= 0.0 {
                prompts::settle_canary(&ports.store, &task.agent, canary_version, true).await?;
                Outcome { decision: "canary_confirmed".into(), version: Some(canary_version), comparisons }
            } else if c.violations > 0 || (c.n >= opts.min_items && c.ci_high < 0.0) {
                prompts::settle_canary(&ports.store, &task.agent, canary_version, false).await?;
                Outcome { decision: "canary_dropped".into(), version: Some(canary_version), comparisons }
            } else {
                Outcome { decision: "kept".into(), version: None, comparisons }
            }
        } else {
            let best =
                comparisons.iter().filter(|c| c.passes).max_by(|a, b| a.mean_diff.total_cmp(&b.mean_diff)).cloned();
            match best {
                Some(best) => {
                    let variant = task.variants.iter().find(|v| v.id == best.variant).cloned();
                    let Some(variant) = variant else { continue };
                    let evidence = serde_json::json!({
                        "run": run.id, "variant": variant.id, "source": variant.source,
                        "window": [run.window_from, run.window_to], "compared_with": task.active_version,
                        "n": best.n, "mean_active": best.mean_active, "mean_variant": best.mean_variant,
                        "mean_diff": best.mean_diff, "ci95": [best.ci_low, best.ci_high],
                        "wins": best.wins, "losses": best.losses, "ties": best.ties, "sign_p": best.sign_p,
                    });
                    let share = (opts.canary_share < 1.0).then_some(opts.canary_share);
                    let version =
                        prompts::promote(&ports.store, &task.agent, &variant.system, &source, evidence, share).await?;
                    Outcome { decision: "promoted".into(), version: Some(version), comparisons }
                }
                None => Outcome { decision: "kept".into(), version: None, comparisons },
            }
        };
        // What was measured joins the agent's history, which the next OPRO proposal sees.
        let mut measured: Vec<HistoryEntry> = outcome
            .comparisons
            .iter()
            .filter(|c| c.n >= opts.min_items && c.violations == 0)
            .filter_map(|c| {
                let v = task.variants.iter().find(|v| v.id == c.variant)?;
                Some(HistoryEntry {
                    run: run.id.clone(),
                    variant: v.id.clone(),
                    system: v.system.clone(),
                    score: c.mean_variant,
                    n: c.n,
                })
            })
            .collect();
        if let (Some(active), Some(c)) = (
            task.variants.iter().find(|v| v.id == "active"),
            outcome.comparisons.iter().find(|c| c.n >= opts.min_items),
        ) {
            measured.push(HistoryEntry {
                run: run.id.clone(),
                variant: format!("active v{}", task.active_version),
                system: active.system.clone(),
                score: c.mean_active,
                n: c.n,
            });
        }
        if !measured.is_empty() {
            record_history(&ports.store, &task.agent, &run.id, measured).await?;
        }
        summary.push(format!("{}: {}", task.agent, outcome.decision));
        task.outcome = Some(outcome);
    }
    run.status =
        if summary.is_empty() { "done: nothing compared".into() } else { format!("done: {}", summary.join(", ")) };
    Ok(())
}
