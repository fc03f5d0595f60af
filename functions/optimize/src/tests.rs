//! The run's bookkeeping without the agent: starting, skipping, budgets, the paired
//! comparison. The whole loop with the agent's replays is in tests/e2e/optimize.rs.

use super::*;
use crate::run::{Advance, Options, Ports, Stage};
use catalyst_shared::event::Origin;
use catalyst_shared::optimize::{ReplayResult, Spend};
use catalyst_shared::queue::Queue;
use catalyst_shared::queue::local::{QueuePolicy, SqliteQueue};
use catalyst_shared::store::Precondition;
use catalyst_shared::store::local::SqliteDocumentStore;
use catalyst_shared::testkit::openai::{Reply, ScriptedOpenAi};
use std::collections::BTreeMap;

struct Harness {
    _dir: tempfile::TempDir,
    queue: Arc<SqliteQueue>,
    ports: Ports,
    server: ScriptedOpenAi,
}

/// A store, a queue and an LLM that must not be needed (every call fails).
async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedDocumentStore = Arc::new(SqliteDocumentStore::open(dir.path().join("s.db")).unwrap());
    let queue = Arc::new(SqliteQueue::open(dir.path().join("q.db"), QueuePolicy::default()).unwrap());
    let server = ScriptedOpenAi::start(|_| Reply::Status(500)).await;
    let llm = server.client(0).await;
    catalyst_shared::prompts::Prompts::load(&store, &[("synthesis", "Be warm."), ("story", "Extract the story.")])
        .await
        .unwrap();
    let q: catalyst_shared::queue::SharedQueue = queue.clone();
    Harness { _dir: dir, queue, ports: Ports { store, queue: q, llm: Arc::new(run::LazyLlm::ready(llm)) }, server }
}

async fn log_turns(store: &SharedDocumentStore, interview: &str, n: usize, hours_ago: i64) {
    for i in 0..n {
        let at = (chrono::Utc::now() - chrono::Duration::hours(hours_ago) + chrono::Duration::seconds(i as i64))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let entry = serde_json::json!({
            "question": "Tell me about a conflict.", "answer": format!("I resolved conflict number {i}."),
            "score": 70, "inputs": {"synthesis": {"question": "q", "answer": "a", "action": "next"}},
            "outputs": {"synthesis": "Thanks."}, "created_at": at,
        });
        store.put(TURNS, &format!("{at}/u/{interview}/{i:05}"), entry, Precondition::Absent, None).await.unwrap();
    }
}

fn scheduled(time: chrono::DateTime<chrono::Utc>, payload: serde_json::Value) -> Scheduled {
    Scheduled { origin: Origin::Local, id: "x".into(), schedule: "nightly".into(), time, payload }
}

async fn step_until_done(h: &Harness, id: &str) -> run::Run {
    for _ in 0..20 {
        let (r, _) = run::load(&h.ports.store, id).await.unwrap();
        if r.stage == Stage::Done {
            return r;
        }
        run::advance(&h.ports, &Advance { run: id.into(), tick: r.tick }).await.unwrap();
    }
    panic!("run did not finish");
}

#[tokio::test]
async fn a_schedule_delivered_twice_starts_one_run() {
    let h = harness().await;
    let t = OptimizeTriggers { ports: h.ports.clone() };
    let now = chrono::Utc::now();
    // Cloud Scheduler's body carries the job name beside the options.
    let ev = scheduled(now, serde_json::json!({"job": "optimize", "window_hours": 12}));
    t.scheduled(ev.clone()).await.unwrap();
    t.scheduled(ev).await.unwrap();
    let runs = h.ports.store.query_prefix(RUNS, "nightly@", None, 10).await.unwrap();
    assert_eq!(runs.documents.len(), 1);
    let run: run::Run = runs.documents[0].parse().unwrap();
    assert_eq!((run.options.window_hours, run.stage), (12, Stage::Planning));
    // Its first step is queued once.
    let steps = h.queue.receive(catalyst_shared::optimize::OPTIMIZE_QUEUE, 10, std::time::Duration::from_secs(5)).await;
    assert_eq!(steps.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_options_and_messages_are_clear_errors() {
    let h = harness().await;
    let t = OptimizeTriggers { ports: h.ports.clone() };
    let now = chrono::Utc::now();
    for (payload, says) in [
        (serde_json::json!({"agents": ["context"]}), "cannot be optimized"),
        (serde_json::json!({"window_hours": 0}), "window_hours"),
        (serde_json::json!({"min_items": 1}), "min_items"),
        (serde_json::json!({"canary_share": 2.0}), "canary_share"),
        (serde_json::json!({"max_calls": "many"}), "not optimize options"),
    ] {
        let e = t.scheduled(scheduled(now, payload.clone())).await.unwrap_err();
        assert_eq!(e.code(), "invalid_options", "{payload}");
        assert!(e.message().contains(says), "{payload}: {}", e.message());
    }
    let msg = |body: &str| QueueMessage {
        origin: Origin::Local,
        id: "m".into(),
        queue: "optimize".into(),
        body: body.as_bytes().to_vec(),
        attributes: Default::default(),
        attempt: Some(1),
        published: None,
    };
    assert_eq!(t.queue_message(msg("{\"nope\": 1}")).await.unwrap_err().code(), "invalid_message");
    let e = t.queue_message(msg("{\"run\": \"missing\", \"tick\": 0}")).await.unwrap_err();
    assert_eq!(e.code(), "run_not_found");
}

#[tokio::test]
async fn too_few_turns_or_too_small_a_budget_skip_the_agent_with_the_reason() {
    let h = harness().await;
    log_turns(&h.ports.store, "i1", 3, 1).await;
    let opts = Options { agents: vec!["synthesis".into()], ..Options::default() };
    let r = run::start(&h.ports.store, &h.ports.queue, "manual", chrono::Utc::now(), opts.clone()).await.unwrap();
    let r = step_until_done(&h, &r.id).await;
    assert_eq!(
        r.tasks[0].skipped.as_deref(),
        Some("3 turns in the window have this agent's input; a decision needs 8")
    );
    assert_eq!(r.status, "nothing to replay: every agent was skipped");

    // Enough turns, but a budget of 20 calls: no proposals, and two variants at three
    // calls a replay (worst case) leave 3 inputs, below the minimum: nothing is replayed.
    log_turns(&h.ports.store, "i2", 12, 1).await;
    let small = Options { max_calls: 20, ..opts };
    let later = chrono::Utc::now() + chrono::Duration::seconds(2);
    let r = run::start(&h.ports.store, &h.ports.queue, "manual", later, small).await.unwrap();
    let r = step_until_done(&h, &r.id).await;
    let why = r.tasks[0].skipped.as_deref().unwrap();
    assert!(why.starts_with("the budget (20 calls"), "{why}");
    assert_eq!(r.planned(), 0);
    assert_eq!(h.server.hits(), 0, "no LLM call was made");

    // An agent the registry does not know yet is skipped, not an error.
    let opts = Options { agents: vec!["orchestrator".into()], ..Options::default() };
    let later = chrono::Utc::now() + chrono::Duration::seconds(4);
    let r = run::start(&h.ports.store, &h.ports.queue, "manual", later, opts).await.unwrap();
    let r = step_until_done(&h, &r.id).await;
    assert!(r.tasks[0].skipped.as_deref().unwrap().contains("registry has no entry"));
}

#[tokio::test]
async fn proposals_that_fail_leave_the_few_shot_variant_within_budget() {
    // The LLM answers 500 to the proposers: the run goes on with what it has.
    let h = harness().await;
    log_turns(&h.ports.store, "i1", 12, 1).await;
    let opts = Options { agents: vec!["synthesis".into()], ..Options::default() };
    let r = run::start(&h.ports.store, &h.ports.queue, "manual", chrono::Utc::now(), opts).await.unwrap();
    run::advance(&h.ports, &Advance { run: r.id.clone(), tick: 0 }).await.unwrap();
    let (r, _) = run::load(&h.ports.store, &r.id).await.unwrap();
    assert_eq!(r.stage, Stage::Replaying);
    let ids: Vec<&str> = r.tasks[0].variants.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, vec!["active", "bootstrap"]);
    assert!(r.tasks[0].variants[1].system.contains("Example 1\nQuestion: Tell me about a conflict."));
    assert_eq!(r.tasks[0].items.len(), 9, "3 held out as the examples");
    assert_eq!(r.planned(), 18);
    assert_eq!(r.proposal_spend, Spend { calls: 2, ..Spend::default() }, "the failed proposals are counted");
    let requests = run::requests(&r);
    assert_eq!(requests.len(), 18);
    assert!(requests.iter().all(|q| q.rubric.contains("specific")));
}

fn result(variant: &str, item: usize, score: f64, violation: bool) -> ReplayResult {
    ReplayResult {
        run: "r".into(),
        agent: "synthesis".into(),
        variant: variant.into(),
        item: format!("t{item}"),
        score,
        judge: Some(score),
        metrics: BTreeMap::new(),
        violations: if violation { vec!["refusal".into()] } else { vec![] },
        output: String::new(),
        spend: Spend::default(),
        error: None,
    }
}

#[test]
fn a_variant_passes_only_when_better_with_confidence_and_within_guardrails() {
    let opts = Options::default();
    let active: Vec<ReplayResult> = (0..12).map(|i| result("active", i, 0.5 + 0.01 * (i % 3) as f64, false)).collect();
    let by = |rs: &[ReplayResult]| -> BTreeMap<String, ReplayResult> {
        rs.iter().map(|r| (r.item.clone(), r.clone())).collect()
    };
    let a = by(&active);
    let a_ref: BTreeMap<&str, &ReplayResult> = a.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let cmp = |rs: Vec<ReplayResult>| {
        let m = by(&rs);
        let m_ref: BTreeMap<&str, &ReplayResult> = m.iter().map(|(k, v)| (k.as_str(), v)).collect();
        run::compare("v", &a_ref, &m_ref, &opts, 1)
    };
    let better = cmp((0..12).map(|i| result("v", i, 0.8, false)).collect());
    assert!(better.passes && better.wins == 12 && better.ci_low > 0.2, "{better:?}");
    // Better on average, but on a third of the inputs only: not confident.
    let lucky = cmp((0..12).map(|i| result("v", i, if i % 3 == 0 { 0.95 } else { 0.45 }, false)).collect());
    assert!(!lucky.passes, "{lucky:?}");
    // Better everywhere but one refusal: a guardrail.
    let unsafe_ = cmp((0..12).map(|i| result("v", i, 0.8, i == 5)).collect());
    assert!(!unsafe_.passes && unsafe_.violations == 1 && unsafe_.reason.contains("guardrail"), "{unsafe_:?}");
    // Too few paired inputs.
    let few = cmp((0..5).map(|i| result("v", i, 0.9, false)).collect());
    assert!(!few.passes && few.n == 5 && few.reason.contains("needs 8"), "{few:?}");
    // A gain below the minimum.
    let tiny = cmp((0..12).map(|i| result("v", i, 0.5 + 0.01 * (i % 3) as f64 + 0.005, false)).collect());
    assert!(!tiny.passes && tiny.reason.contains("below the minimum"), "{tiny:?}");
}
