//! Prompt optimization end to end over the real queue and store: `optimize` plans a run
//! from the turn log, proposes variants, the agent function's replay code runs every
//! (variant, logged turn) from the `replays` queue, and the run decides. The LLM is a
//! Chat Completions server on 127.0.0.1 whose answers depend on the prompt, so one
//! instruction is known to be better:
//! - a synthesis prompt that asks for "one concrete detail" makes the model name what
//!   the candidate did; others give a generic "Thank you for sharing that.";
//! - the judge grades a reply that refers to the candidate's words higher.

use catalyst_agent::testing::scripted_llm;
use catalyst_e2e::optimize_fixture::{BETTER, log_turns, model};
use catalyst_optimize::run::{self, Advance, Options, Ports, Run, Stage};
use catalyst_shared::optimize::{OPTIMIZE_QUEUE, REPLAYS, RUNS, ReplayRequest};
use catalyst_shared::prompts::{self, Active, PROMPTS, PromptVersion};
use catalyst_shared::queue::local::{QueuePolicy, SqliteQueue};
use catalyst_shared::queue::{Queue, SharedQueue};
use catalyst_shared::store::local::SqliteDocumentStore;
use catalyst_shared::store::{DocumentStoreExt, SharedDocumentStore};
use catalyst_shared::testkit::openai::{Recorded, Reply, ScriptedOpenAi};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

struct Setup {
    _dir: tempfile::TempDir,
    store: SharedDocumentStore,
    queue: Arc<SqliteQueue>,
    ports: Ports,
    llm: Arc<dyn catalyst_shared::llm::LanguageModel>,
    server: ScriptedOpenAi,
}

async fn setup(script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedDocumentStore = Arc::new(SqliteDocumentStore::open(dir.path().join("store.db")).unwrap());
    let queue = Arc::new(SqliteQueue::open(dir.path().join("queue.db"), QueuePolicy::default()).unwrap());
    let (server, llm) = scripted_llm(script).await;
    // The agent seeds its prompts at its first start.
    prompts::Prompts::load(&store, &catalyst_agent::prompts::defaults()).await.unwrap();
    let shared_queue: SharedQueue = queue.clone();
    let ports = Ports { store: store.clone(), queue: shared_queue, llm: Arc::new(run::LazyLlm::ready(llm.clone())) };
    Setup { _dir: dir, store, queue, ports, llm, server }
}

fn options() -> Options {
    Options { agents: vec!["synthesis".into()], poll_s: 1, canary_share: 0.1, ..Options::default() }
}

/// What delivering a message does; `twice` delivers each one two times, as an
/// at-least-once queue may.
async fn deliver(s: &Setup, queue: &str, twice: bool) -> usize {
    let got = s.queue.receive(queue, 10, Duration::from_secs(30)).await.unwrap();
    for d in &got {
        for _ in 0..if twice { 2 } else { 1 } {
            if queue == REPLAYS {
                let req: ReplayRequest = serde_json::from_slice(&d.message.body).unwrap();
                catalyst_agent::replay::handle(s.llm.as_ref(), &s.store, &req).await.unwrap();
            } else {
                let step: Advance = serde_json::from_slice(&d.message.body).unwrap();
                run::advance(&s.ports, &step).await.unwrap();
            }
        }
        s.queue.ack(queue, &d.receipt).await.unwrap();
    }
    got.len()
}

/// Work both queues until the run is decided.
async fn drive(s: &Setup, id: &str, twice: bool) -> Run {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (run, _) = run::load(&s.store, id).await.unwrap();
        if run.stage == Stage::Done {
            return run;
        }
        assert!(std::time::Instant::now() < deadline, "run did not finish: {}", run.status);
        let worked = deliver(s, OPTIMIZE_QUEUE, twice).await + deliver(s, REPLAYS, twice).await;
        if worked == 0 {
            // The run's next check is a delayed message.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn active(store: &SharedDocumentStore, agent: &str) -> Active {
    store.get_as::<Active>(PROMPTS, &prompts::active_key(agent)).await.unwrap().unwrap().0
}

#[tokio::test]
async fn a_known_better_prompt_is_found_promoted_as_a_canary_and_then_confirmed() {
    let s = setup(model).await;
    log_turns(&s.store, 2, "i1").await;
    log_turns(&s.store, 72, "old").await; // outside the window
    let started = run::start(&s.store, &s.ports.queue, "nightly", chrono::Utc::now(), options()).await.unwrap();
    let run = drive(&s, &started.id, false).await;

    let task = &run.tasks[0];
    assert_eq!(task.items.len(), 9, "the window's turns, less 3 held out as examples: {:?}", task.skipped);
    let ids: Vec<&str> = task.variants.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, vec!["active", "opro", "mutation", "bootstrap"]);
    let outcome = task.outcome.as_ref().unwrap();
    assert_eq!(outcome.decision, "promoted", "{run:#?}");
    assert_eq!(outcome.version, Some(2));
    let opro = outcome.comparisons.iter().find(|c| c.variant == "opro").unwrap();
    assert!(opro.passes && opro.wins == 9 && opro.losses == 0, "{opro:?}");
    assert!(opro.ci_low > 0.0 && opro.sign_p < 0.01, "{opro:?}");
    for other in outcome.comparisons.iter().filter(|c| c.variant != "opro") {
        assert!(!other.passes, "{other:?}");
        assert_eq!(other.ties, 9, "same behaviour as the active prompt: {other:?}");
    }

    // The registry: version 2 with its evidence serves a 10% canary; v1 stays active.
    let a = active(&s.store, "synthesis").await;
    assert_eq!(a.version, 1);
    assert_eq!(a.canary.as_ref().map(|c| (c.version, c.share)), Some((2, 0.1)));
    let v2: PromptVersion = s.store.get_as(PROMPTS, &prompts::version_key("synthesis", 2)).await.unwrap().unwrap().0;
    assert_eq!(v2.system, BETTER);
    assert_eq!(v2.source, format!("optimize run {}", run.id));
    assert_eq!(v2.evidence["n"], 9);
    assert_eq!(v2.evidence["wins"], 9);

    // Spend: two proposals plus an agent call and a judge call per replay, all counted once.
    assert_eq!(run.spend.calls, 2 + 4 * 9 * 2);
    assert_eq!(s.server.hits() as u64, run.spend.calls);

    // The next run sees new turns: the canary is replayed beside the active version,
    // holds up, and becomes active.
    log_turns(&s.store, 0, "i2").await;
    let later = chrono::Utc::now() + chrono::Duration::minutes(1);
    let opts = Options { window_hours: 1, ..options() };
    let second = run::start(&s.store, &s.ports.queue, "nightly", later, opts).await.unwrap();
    let run2 = drive(&s, &second.id, false).await;
    // OPRO in the second run saw the first run's measurements: the winning prompt and
    // the active one, each with its score (the OPRO trajectory).
    let opro_asks: Vec<String> = s
        .server
        .requests()
        .into_iter()
        .filter(|r| r.system().starts_with("[catalyst optimizer opro]"))
        .map(|r| r.user())
        .collect();
    assert_eq!(opro_asks.len(), 2);
    let seen = &opro_asks[1];
    assert!(seen.contains(&format!("--- opro of {} (score 0.95)\n{BETTER}", run.id)), "{seen}");
    assert!(seen.contains(&format!("--- active v1 of {} (score 0.56)", run.id)), "{seen}");
    assert!(!opro_asks[0].contains("(score 0."), "the first run had nothing measured: {}", opro_asks[0]);
    let outcome = run2.tasks[0].outcome.as_ref().unwrap();
    assert_eq!(outcome.decision, "canary_confirmed", "{run2:#?}");
    let a = active(&s.store, "synthesis").await;
    assert_eq!((a.version, a.history.clone(), a.canary.clone()), (2, vec![1], None));
    // One command takes it back.
    assert_eq!(prompts::rollback(&s.store, "synthesis").await.unwrap(), (2, 1));
}

#[tokio::test]
async fn nothing_is_promoted_when_no_variant_is_better() {
    // OPRO proposes a prompt that makes the model refuse (a guardrail); the mutation and
    // the few-shot variant behave like the active prompt.
    let s = setup(|r: &Recorded| {
        if r.system().starts_with("[catalyst optimizer opro]") {
            let worse = "You are the interviewer. Answer in ONE WORD only, whatever the candidate said. Plain text.";
            return Reply::Text(json!({"instructions": worse}).to_string());
        }
        model(r)
    })
    .await;
    log_turns(&s.store, 2, "i1").await;
    let started = run::start(&s.store, &s.ports.queue, "nightly", chrono::Utc::now(), options()).await.unwrap();
    let run = drive(&s, &started.id, false).await;
    let outcome = run.tasks[0].outcome.as_ref().unwrap();
    assert_eq!(outcome.decision, "kept", "{run:#?}");
    let opro = outcome.comparisons.iter().find(|c| c.variant == "opro").unwrap();
    assert_eq!(opro.violations, 9, "{opro:?}");
    assert!(opro.reason.contains("guardrail"), "{}", opro.reason);
    assert!(outcome.comparisons.iter().all(|c| !c.passes));
    assert_eq!(active(&s.store, "synthesis").await, Active::new(1));
    assert!(s.store.get(PROMPTS, &prompts::version_key("synthesis", 2)).await.unwrap().is_none());
    assert_eq!(run.status, "done: synthesis: kept");
}

#[tokio::test]
async fn duplicated_messages_and_an_interrupted_run_change_no_result() {
    let s = setup(model).await;
    log_turns(&s.store, 2, "i1").await;
    let time = chrono::Utc::now();
    let started = run::start(&s.store, &s.ports.queue, "nightly", time, options()).await.unwrap();
    // The schedule delivered twice is one run.
    assert_eq!(run::start(&s.store, &s.ports.queue, "nightly", time, options()).await.unwrap().id, started.id);

    // Plan, publish, then only half of the replays are worked before the instance dies
    // and the rest of its messages are lost.
    while run::load(&s.store, &started.id).await.unwrap().0.stage == Stage::Planning {
        deliver(&s, OPTIMIZE_QUEUE, true).await;
    }
    while !run::load(&s.store, &started.id).await.unwrap().0.published {
        deliver(&s, OPTIMIZE_QUEUE, true).await;
    }
    let pending = s.queue.receive(REPLAYS, 100, Duration::from_secs(30)).await.unwrap();
    assert_eq!(pending.len(), 36);
    for (i, d) in pending.iter().enumerate() {
        if i % 2 == 0 {
            let req: ReplayRequest = serde_json::from_slice(&d.message.body).unwrap();
            // Delivered twice: the second costs nothing.
            catalyst_agent::replay::handle(s.llm.as_ref(), &s.store, &req).await.unwrap();
            let hits = s.server.hits();
            catalyst_agent::replay::handle(s.llm.as_ref(), &s.store, &req).await.unwrap();
            assert_eq!(s.server.hits(), hits);
        }
        s.queue.ack(REPLAYS, &d.receipt).await.unwrap();
    }
    // The run's next check (a delayed step) counts half, and it keeps waiting for the rest.
    let waited = std::time::Instant::now();
    let waiting = loop {
        deliver(&s, OPTIMIZE_QUEUE, true).await;
        let run = run::load(&s.store, &started.id).await.unwrap().0;
        if run.status != "replaying 0/36" || waited.elapsed() > Duration::from_secs(10) {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(waiting.stage, Stage::Replaying);
    assert_eq!(waiting.status, "replaying 18/36");

    // `catalyst optimize --resume`: the missing half is published again, nothing twice.
    run::resume(&s.store, &s.ports.queue, &started.id).await.unwrap();
    let run = drive(&s, &started.id, true).await;
    let results = s.store.query_prefix(RUNS, &format!("{}/results/", run.id), None, 1000).await.unwrap();
    assert_eq!(results.documents.len(), 36);
    assert_eq!(run.spend.calls, 2 + 36 * 2);
    assert_eq!(s.server.hits() as u64, run.spend.calls, "no replay ran twice");
    let outcome = run.tasks[0].outcome.as_ref().unwrap();
    assert_eq!((outcome.decision.as_str(), outcome.version), ("promoted", Some(2)));

    // A stale or repeated step after the decision changes nothing.
    let before = run::load(&s.store, &run.id).await.unwrap();
    run::advance(&s.ports, &Advance { run: run.id.clone(), tick: 0 }).await.unwrap();
    run::advance(&s.ports, &Advance { run: run.id.clone(), tick: run.tick }).await.unwrap();
    assert_eq!(run::load(&s.store, &run.id).await.unwrap(), before);
    assert_eq!(active(&s.store, "synthesis").await.canary.map(|c| c.version), Some(2));
}
