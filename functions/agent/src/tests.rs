//! The agent through its HTTP routes, with the real evaluator (MiniLM on ONNX Runtime),
//! the real question bank, SQLite and filesystem storage, and an OpenAI-compatible server
//! on 127.0.0.1 with scripted replies (checking what each agent sends).

use super::*;
use crate::testing::{agent_of, logged, reply, scripted_llm};
use axum::body::Body;
use catalyst_shared::auth::PrincipalKind;
use catalyst_shared::blob::PutOptions;
use catalyst_shared::blob::local::LocalBlobStore;
use catalyst_shared::store::Precondition;
use catalyst_shared::store::local::SqliteDocumentStore;
use catalyst_shared::testkit::openai::{Recorded, Reply, ScriptedOpenAi};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use tower::ServiceExt;

pub(crate) fn resume() -> Value {
    json!({
        "basics": {"name": "Ada Okafor", "label": "Backend Engineer", "email": "ada@example.com"},
        "work": [
            {"name": "Paystream", "position": "Backend Engineer", "startDate": "2019-02", "endDate": "Present",
             "highlights": ["Cut payment API p99 latency from 900 ms to 120 ms by redesigning the ledger queries",
                            "Led the migration of 40 services to Kubernetes",
                            "Mentored three junior engineers"]},
            {"name": "Shoply", "position": "Software Engineer", "startDate": "2016-06", "endDate": "2019-01",
             "highlights": ["Built the order service in Go and PostgreSQL"]}
        ],
        "skills": [{"name": "Backend", "keywords": ["Go", "PostgreSQL", "Kubernetes", "Docker"]}]
    })
}

pub(crate) fn job() -> Value {
    json!({
        "url": "https://jobs.example.com/1", "title": "Senior Backend Engineer - Acme",
        "text": "Acme builds payment infrastructure for small businesses.",
        "metadata": {"site_name": "Acme"},
        "job": {
            "title": "Senior Backend Engineer",
            "organization": {"name": "Acme Payments"},
            "description": "Acme builds payment infrastructure used by 20,000 small businesses. You will own services that move money reliably.",
            "responsibilities": ["Design and operate high-throughput payment APIs", "Lead incident reviews and improve reliability"],
            "qualifications": ["5+ years building backend services in Go", "Experience with PostgreSQL and Kafka", "Comfort mentoring engineers"],
            "skills": ["Go", "PostgreSQL", "Kafka", "Kubernetes"]
        }
    })
}

pub(crate) const COMPLETE_ANSWER: &str = "At Paystream our payment API had a p99 latency of 900 ms and merchants were timing out. \
I was responsible for bringing it under 200 ms before the holiday peak. I profiled the slowest endpoints, I rewrote \
the ledger queries to use covering indexes in PostgreSQL, and I added a read replica for reporting traffic. \
As a result p99 latency fell from 900 ms to 120 ms and timeouts dropped by 95 percent.";

pub(crate) const NO_RESULT_ANSWER: &str = "We had a lot of incidents with our payment service last year and the team \
was under pressure. I was asked to lead the reliability work. I set up incident reviews, I wrote runbooks for the \
top failure modes and I added alerts on queue depth and error rates.";

/// A candidate who answers the question asked: the story opens by tying it to the question.
pub(crate) fn on_topic(question: &str, story: &str) -> String {
    let q = question.trim_end_matches(['?', '.']);
    let q = q.strip_prefix("Given your background, ").unwrap_or(q);
    format!("You asked me to {}{}. Here is my example. {story}", q[..1].to_lowercase(), &q[1..])
}

pub(crate) struct Harness {
    pub app: axum::Router,
    pub agent: Arc<Agent>,
    pub server: ScriptedOpenAi,
    pub store: SharedDocumentStore,
    pub blob: SharedBlobStore,
    _dir: tempfile::TempDir,
}

pub(crate) async fn harness_with(script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Harness {
    let (server, llm) = scripted_llm(script).await;
    harness_on(server, llm)
}

/// A harness whose agents call `llm` (the scripted server stays up for tests that check it).
pub(crate) fn harness_on(server: ScriptedOpenAi, llm: Arc<dyn LanguageModel>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedDocumentStore = Arc::new(SqliteDocumentStore::open(dir.path().join("s.db")).unwrap());
    let blob: SharedBlobStore = Arc::new(LocalBlobStore::open(dir.path().join("blobs")).unwrap());
    let evaluator = catalyst_shared::evaluation::testutil::evaluator();
    let agent = Arc::new(Agent::new(store.clone(), blob.clone(), llm, evaluator));
    let (app, _) = routes(AppState { agent: agent.clone() }).split_for_parts();
    Harness { app, agent, server, store, blob, _dir: dir }
}

pub(crate) async fn harness() -> Harness {
    harness_with(reply).await
}

fn alice() -> Principal {
    Principal { kind: PrincipalKind::User, uid: "alice".into(), email: None, scopes: vec![] }
}

async fn call(app: &axum::Router, method: &str, uri: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    call_as(app, alice(), method, uri, key, body).await
}

async fn call_as(
    app: &axum::Router,
    who: Principal,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = axum::http::Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let mut req = req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).unwrap();
    req.extensions_mut().insert(who);
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn create(h: &Harness, questions: usize) -> Value {
    let (status, v) = call(
        &h.app,
        "POST",
        "/v1/interviews",
        None,
        Some(json!({"resume": resume(), "job": job(), "mode": "behavioral", "questions": questions})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    v
}

#[tokio::test]
async fn a_whole_interview_with_follow_ups_report_and_what_the_agents_send() {
    let h = harness().await;
    let created = create(&h, 2).await;
    let id = created["id"].as_str().unwrap().to_string();

    // Context: profile measured from resume and job, plan retrieved from the bank.
    let profile = &created["profile"];
    assert_eq!(profile["name"], "Ada Okafor");
    assert_eq!(profile["seniority"], "senior");
    assert_eq!(profile["role_family"], "backend");
    assert!(profile["gaps"].as_array().unwrap().iter().any(|g| g == "Kafka"), "{profile}");
    assert!(profile["matched_skills"].as_array().unwrap().iter().any(|g| g == "PostgreSQL"), "{profile}");
    let plan = created["plan"].as_array().unwrap();
    assert_eq!(plan.len(), 2);
    assert!(plan.iter().all(|q| q["kind"] == "behavioral"));
    assert_ne!(plan[0]["competency"], plan[1]["competency"], "one question per competency");
    assert!(plan[0]["text"].as_str().unwrap().starts_with("Given your background"), "adapted: {}", plan[0]["text"]);
    assert!(!plan[0]["grounding"].as_array().unwrap().is_empty(), "job passages retrieved");
    assert_eq!(created["question"]["text"], plan[0]["text"]);
    assert_eq!(created["prompts"]["context"], 1);

    // The Context agent saw the resume's facts and the job's requirements, and named its prompt version.
    let ctx = h.server.requests().into_iter().find(|r| agent_of(r) == "context").unwrap();
    assert!(ctx.system().starts_with("[catalyst prompt context@v1]"));
    let user = ctx.user();
    for fact in ["Ada Okafor", "Cut payment API p99 latency from 900 ms to 120 ms", "Senior Backend Engineer", "Kafka"]
    {
        assert!(user.contains(fact), "context prompt lacks `{fact}`:\n{user}");
    }

    // Turn 1: an answer with no result → a follow-up about the result.
    let turn_uri = format!("/v1/interviews/{id}/turns");
    let answer1 = on_topic(plan[0]["text"].as_str().unwrap(), NO_RESULT_ANSWER);
    let (status, t1) = call(&h.app, "POST", &turn_uri, Some("a1"), Some(json!({"answer": answer1}))).await;
    assert_eq!(status, 200, "{t1}");
    assert_eq!(t1["turn"], 1);
    assert_eq!(t1["decision"]["action"], "follow_up", "{}", t1["decision"]);
    assert_eq!(t1["decision"]["probe"], "result", "{} / {}", t1, plan[0]);
    assert_eq!(t1["next_question"]["follow_up"], "result");
    assert_eq!(t1["next_question"]["text"], "What was the outcome of that work, and how did you measure it?");
    assert!(t1["reply"].as_str().unwrap().starts_with("Thank you, that was a clear example."));
    assert!(t1["reply"].as_str().unwrap().ends_with("how did you measure it?"));
    assert!(!t1["coaching"].as_array().unwrap().is_empty());
    assert_eq!(t1["judgement"]["score"], 70);
    let hits_after_t1 = h.server.hits();

    // The same request again (a client retry): the first result, no LLM call.
    let (status, again) = call(&h.app, "POST", &turn_uri, Some("a1"), Some(json!({"answer": answer1}))).await;
    assert_eq!(status, 200);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["reply"], t1["reply"]);
    assert_eq!(h.server.hits(), hits_after_t1, "a replay makes no LLM call");

    // Turn 2 answers the follow-up with a quantified result → next planned question.
    let (status, t2) = call(
        &h.app,
        "POST",
        &turn_uri,
        Some("a2"),
        Some(json!({"answer": "As a result, incidents dropped from 12 a month to 3, and our on-call pages fell by 70 percent."})),
    )
    .await;
    assert_eq!(status, 200, "{t2}");
    assert_eq!(t2["decision"]["action"], "next", "{}", t2["decision"]);
    assert_eq!(t2["next_question"]["plan_index"], 1);
    assert_eq!(t2["next_question"]["text"], plan[1]["text"]);
    assert!(t2["evaluation"]["result"].as_f64().unwrap() >= 0.5, "the follow-up completed the story");

    // Story Analysis saw the whole story; the judge saw the measured facts; Synthesis streamed nothing here.
    let story_req = h.server.requests().into_iter().rfind(|r| agent_of(r) == "story").unwrap();
    assert!(story_req.user().contains("I set up incident reviews") && story_req.user().contains("12 a month to 3"));
    let judge_req = h.server.requests().into_iter().find(|r| agent_of(r) == "evaluator").unwrap();
    assert!(judge_req.user().contains("STAR coverage") && judge_req.user().contains("Kafka"), "{}", judge_req.user());
    // Grounded: the job passages retrieved for this question travel with it.
    assert!(judge_req.user().contains("From the job posting, on this topic:\n- "), "{}", judge_req.user());
    assert!(judge_req.system().starts_with("[catalyst prompt evaluator@v1]"));

    // Turn 3: a complete answer on the last question → wrap-up.
    let answer3 = on_topic(plan[1]["text"].as_str().unwrap(), COMPLETE_ANSWER);
    let (status, t3) = call(&h.app, "POST", &turn_uri, Some("a3"), Some(json!({"answer": answer3}))).await;
    assert_eq!(status, 200, "{t3}");
    assert_eq!(t3["decision"]["action"], "wrap_up", "{}", t3["decision"]);
    assert_eq!(t3["status"], "finished");
    assert!(t3["next_question"].is_null());
    let (status, v) = call(&h.app, "POST", &turn_uri, Some("a4"), Some(json!({"answer": "more"}))).await;
    assert_eq!((status, v["error"]["code"].as_str()), (409, Some("interview_finished")));

    // GET: transcript, scores, progress, story bank.
    let (status, got) = call(&h.app, "GET", &format!("/v1/interviews/{id}"), None, None).await;
    assert_eq!(status, 200);
    let i = &got["interview"];
    assert_eq!(i["transcript"].as_array().unwrap().len(), 3);
    assert_eq!(i["transcript"][1]["follow_up"], "result");
    assert_eq!(i["progress"]["answers"], 3);
    assert_eq!(i["status"], "finished");
    assert_eq!(i["stories"].as_array().unwrap().len(), 2, "{}", i["stories"]);
    assert!(i["stories"][1]["metrics"].as_array().unwrap().iter().any(|m| m == "95"), "{}", i["stories"]);

    // Report: competencies, evidence, stories, honest reframing.
    let (status, report) = call(&h.app, "POST", &format!("/v1/interviews/{id}/report"), None, None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["competencies"].as_array().unwrap().len(), 2);
    assert_eq!(report["answers"].as_array().unwrap().len(), 3);
    assert!(!report["strengths"].as_array().unwrap().is_empty());
    assert!(!report["improvements"].as_array().unwrap().is_empty());
    let achievements = report["achievements"].as_array().unwrap();
    assert!(!achievements.is_empty());
    for a in achievements {
        let r = a["reframed"].as_str().unwrap();
        assert!(!r.contains("437") && r.contains("[X]%"), "invented numbers never pass: {r}");
    }
    assert!(
        achievements.iter().any(|a| a["reframed"].as_str().unwrap().contains("900 ms to 120 ms")),
        "{achievements:?}"
    );
    let reframe_req = h.server.requests().into_iter().find(|r| agent_of(r) == "reframe").unwrap();
    assert!(reframe_req.system().starts_with("[catalyst prompt reframe@v1]"));
    // Asking again returns the stored report, no LLM call.
    let hits = h.server.hits();
    let (_, again) = call(&h.app, "POST", &format!("/v1/interviews/{id}/report"), None, None).await;
    assert_eq!(again, report);
    assert_eq!(h.server.hits(), hits);

    // Every turn is logged for optimize, with prompt versions, model and tokens.
    let log = logged(&h.store, "alice", &id, 2).await.unwrap();
    assert_eq!(log["prompts"]["synthesis"], 1);
    assert_eq!(log["decision"]["action"], "next");
    assert!(log["evaluation"]["star"]["evidence"].is_array(), "the full evaluation is logged");
    let calls = log["calls"].as_array().unwrap();
    assert!(calls.iter().any(|c| c["agent"] == "synthesis" && c["model"] == "scripted-model"));
    assert!(calls.iter().all(|c| c["input_tokens"].as_u64().unwrap() > 0));

    // Nobody else sees it.
    let bob = Principal { kind: PrincipalKind::User, uid: "bob".into(), email: None, scopes: vec![] };
    let (status, _) = call_as(&h.app, bob, "GET", &format!("/v1/interviews/{id}"), None, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn llm_failure_mid_turn_writes_nothing_and_the_turn_can_be_retried() {
    let fail_synthesis = Arc::new(AtomicBool::new(false));
    let flag = fail_synthesis.clone();
    let h = harness_with(move |r| {
        if flag.load(Ordering::SeqCst) && agent_of(r) == "synthesis" { Reply::Status(500) } else { reply(r) }
    })
    .await;
    let id = create(&h, 1).await["id"].as_str().unwrap().to_string();
    let key = engine::doc_key("alice", &id);
    let before = h.store.get(INTERVIEWS, &key).await.unwrap().unwrap();

    fail_synthesis.store(true, Ordering::SeqCst);
    let uri = format!("/v1/interviews/{id}/turns");
    let (status, v) = call(&h.app, "POST", &uri, Some("k1"), Some(json!({"answer": COMPLETE_ANSWER}))).await;
    assert!(status >= 500, "{status} {v}");
    assert!(v["error"]["code"].as_str().unwrap().starts_with("llm_"), "{v}");
    let after = h.store.get(INTERVIEWS, &key).await.unwrap().unwrap();
    let i: Interview = after.parse().unwrap();
    assert!(i.turns.is_empty() && i.claim.is_none() && i.stories.is_empty(), "nothing half-written");
    assert_eq!(after.value["pending"], before.value["pending"]);
    assert!(logged(&h.store, "alice", &id, 1).await.is_none());

    fail_synthesis.store(false, Ordering::SeqCst);
    let (status, v) = call(&h.app, "POST", &uri, Some("k1"), Some(json!({"answer": COMPLETE_ANSWER}))).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["turn"].as_u64(), v["replayed"].as_bool()), (Some(1), Some(false)));
}

/// An instance that dies mid-turn leaves a claim behind; a new instance over the same
/// storage continues the interview: the stale claim expires, nothing is lost.
#[tokio::test]
async fn a_restart_mid_interview_loses_nothing() {
    let h = harness().await;
    let id = create(&h, 2).await["id"].as_str().unwrap().to_string();
    let uri = format!("/v1/interviews/{id}/turns");
    let (status, _) = call(&h.app, "POST", &uri, Some("k1"), Some(json!({"answer": COMPLETE_ANSWER}))).await;
    assert_eq!(status, 200);
    // The instance claimed turn 2 and died.
    let key = engine::doc_key("alice", &id);
    let doc = h.store.get(INTERVIEWS, &key).await.unwrap().unwrap();
    let mut i: Interview = doc.parse().unwrap();
    let fresh = model::Claim { idempotency_key: "k2".into(), started_at: model::now() };
    i.claim = Some(fresh);
    let v = h
        .store
        .put(INTERVIEWS, &key, serde_json::to_value(&i).unwrap(), Precondition::Version(doc.version), None)
        .await
        .unwrap();
    let (status, v2) = call(&h.app, "POST", &uri, Some("k2"), Some(json!({"answer": COMPLETE_ANSWER}))).await;
    assert_eq!((status, v2["error"]["code"].as_str()), (409, Some("turn_in_progress")), "a live claim holds");
    // Time passes: the claim is older than the function could have run.
    let old = (chrono::Utc::now() - chrono::Duration::seconds(engine::CLAIM_TTL.as_secs() as i64 + 5))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    i.claim = Some(model::Claim { idempotency_key: "k2".into(), started_at: old });
    h.store.put(INTERVIEWS, &key, serde_json::to_value(&i).unwrap(), Precondition::Version(v), None).await.unwrap();

    // A new instance (new Agent, same storage) takes the retried turn.
    let agent = Arc::new(Agent::new(h.store.clone(), h.blob.clone(), h.agent.llm.clone(), h.agent.evaluator.clone()));
    let (app, _) = routes(AppState { agent }).split_for_parts();
    let (status, t2) = call(&app, "POST", &uri, Some("k2"), Some(json!({"answer": COMPLETE_ANSWER}))).await;
    assert_eq!(status, 200, "{t2}");
    assert_eq!(t2["turn"], 2);
    let (_, got) = call(&app, "GET", &format!("/v1/interviews/{id}"), None, None).await;
    assert_eq!(got["interview"]["transcript"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn racing_turns_one_wins_the_other_gets_409() {
    // The LLM answers slowly, so both requests are in flight together.
    let h = harness_with(|r| {
        std::thread::sleep(std::time::Duration::from_millis(150));
        reply(r)
    })
    .await;
    let id = create(&h, 2).await["id"].as_str().unwrap().to_string();
    let uri = format!("/v1/interviews/{id}/turns");
    let a = call(&h.app, "POST", &uri, Some("x"), Some(json!({"answer": COMPLETE_ANSWER})));
    let b = call(&h.app, "POST", &uri, Some("y"), Some(json!({"answer": NO_RESULT_ANSWER})));
    let ((sa, va), (sb, vb)) = tokio::join!(a, b);
    let mut statuses = [sa, sb];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{va} {vb}");
    let loser = if sa == 409 { &va } else { &vb };
    assert_eq!(loser["error"]["code"], "turn_conflict");
    let (_, got) = call(&h.app, "GET", &format!("/v1/interviews/{id}"), None, None).await;
    assert_eq!(got["interview"]["transcript"].as_array().unwrap().len(), 1, "exactly one turn recorded");
}

#[tokio::test]
async fn the_reply_streams_as_server_sent_events() {
    let h = harness().await;
    let id = create(&h, 2).await["id"].as_str().unwrap().to_string();
    let mut req = axum::http::Request::post(format!("/v1/interviews/{id}/turns"))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .header("idempotency-key", "s1")
        .body(Body::from(json!({"answer": COMPLETE_ANSWER}).to_string()))
        .unwrap();
    req.extensions_mut().insert(alice());
    let resp = h.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let body = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let events: Vec<(&str, Value)> = body
        .split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name, serde_json::from_str(data).ok()?))
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(n, _)| *n).collect();
    assert_eq!(names.first(), Some(&"evaluation"), "{names:?}");
    assert!(names.iter().filter(|n| **n == "delta").count() >= 3, "the acknowledgement arrives in pieces: {names:?}");
    assert_eq!(names.last(), Some(&"done"));
    let streamed: String =
        events.iter().filter(|(n, _)| *n == "delta").map(|(_, v)| v["text"].as_str().unwrap()).collect();
    assert_eq!(streamed.trim(), "Thank you, that was a clear example. I appreciate the detail.");
    let done = &events.last().unwrap().1;
    assert!(done["reply"].as_str().unwrap().starts_with("Thank you"));
    // The synthesis request asked the provider to stream.
    assert!(h.server.requests().iter().any(|r| agent_of(r) == "synthesis" && r.streamed()));
    // Stored like any turn: a retry returns it.
    let (status, again) = call(
        &h.app,
        "POST",
        &format!("/v1/interviews/{id}/turns"),
        Some("s1"),
        Some(json!({"answer": COMPLETE_ANSWER})),
    )
    .await;
    assert_eq!((status, again["replayed"].as_bool()), (200, Some(true)));
}

#[tokio::test]
async fn spoken_answers_come_from_transcripts_and_queue_messages() {
    let h = harness().await;
    let id = create(&h, 2).await["id"].as_str().unwrap().to_string();
    // What `transcribe` stores.
    let transcript = json!({"uid": "alice", "source": "uploads/audio/alice/a.webm", "source_version": "1",
        "transcript": {"text": COMPLETE_ANSWER, "language": "en", "duration": 30.0, "words_per_minute": 140.0,
            "segments": [{"start": 0.0, "end": 30.0, "text": COMPLETE_ANSWER}]}});
    h.blob
        .put(
            "transcripts/alice/a.webm.json",
            transcript.to_string().into(),
            PutOptions::content_type("application/json"),
        )
        .await
        .unwrap();
    let triggers = AgentTriggers { agent: h.agent.clone() };
    let msg = |id_: &str, body: Value| QueueMessage {
        origin: catalyst_shared::event::Origin::Local,
        id: id_.into(),
        queue: "agent".into(),
        body: body.to_string().into_bytes(),
        attributes: Default::default(),
        attempt: Some(1),
        published: None,
    };
    let body = json!({"uid": "alice", "interview_id": id, "idempotency_key": "audio-1",
        "transcript_ref": "transcripts/alice/a.webm.json"});
    triggers.queue_message(msg("m1", body.clone())).await.unwrap();
    // Redelivered: nothing new.
    triggers.queue_message(msg("m2", body)).await.unwrap();
    let (_, got) = call(&h.app, "GET", &format!("/v1/interviews/{id}"), None, None).await;
    let transcript = got["interview"]["transcript"].as_array().unwrap();
    assert_eq!(transcript.len(), 1);
    let stored: Interview =
        h.store.get(INTERVIEWS, &engine::doc_key("alice", &id)).await.unwrap().unwrap().parse().unwrap();
    assert_eq!(stored.turns[0].duration_s, Some(30.0));
    assert!(stored.turns[0].summary.words_per_minute.is_some_and(|w| (100.0..200.0).contains(&w)));
    assert!(!stored.turns[0].evidence.is_empty());
    // The full evaluation is in the turn log, not in the interview document.
    let log = logged(&h.store, "alice", &id, 1).await.unwrap();
    assert_eq!(log["evaluation"]["metrics"]["duration_s"], 30.0);

    // Someone else's transcript, a missing interview, a malformed message: dead-lettered at once.
    let theirs =
        json!({"uid": "alice", "interview_id": id, "idempotency_key": "k", "transcript_ref": "transcripts/bob/x.json"});
    let e = triggers.queue_message(msg("m3", theirs)).await.unwrap_err();
    assert_eq!((e.code(), e.retryable()), ("invalid_message", false));
    let missing = json!({"uid": "alice", "interview_id": "nope", "idempotency_key": "k", "answer": "x"});
    assert_eq!(triggers.queue_message(msg("m4", missing)).await.unwrap_err().code(), "invalid_message");
    assert!(triggers.queue_message(msg("m5", json!({"uid": 1}))).await.is_err());
}

/// A recording: the turn waits for its transcript (202), then runs when `transcribe`
/// announces it on `transcripts`; announcements nobody waits for are acknowledged.
#[tokio::test]
async fn recorded_answers_wait_for_their_transcript() {
    let h = harness().await;
    let id = create(&h, 2).await["id"].as_str().unwrap().to_string();
    let uri = format!("/v1/interviews/{id}/turns");
    let audio = "uploads/audio/alice/0190-answer.webm";
    let (status, v) = call(&h.app, "POST", &uri, Some("rec-1"), Some(json!({"audio_ref": audio}))).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["transcript_ref"], "transcripts/alice/0190-answer.webm.json");
    // Asking again while waiting: still waiting, one registration.
    let (status, _) = call(&h.app, "POST", &uri, Some("rec-1"), Some(json!({"audio_ref": audio}))).await;
    assert_eq!(status, 202);

    // transcribe writes the transcript and announces it.
    let stored = json!({"uid": "alice", "source": audio, "source_version": "1",
        "transcript": {"text": COMPLETE_ANSWER, "language": "en", "duration": 28.0, "words_per_minute": 150.0, "segments": []}});
    h.blob
        .put("transcripts/alice/0190-answer.webm.json", stored.to_string().into(), PutOptions::default())
        .await
        .unwrap();
    let triggers = AgentTriggers { agent: h.agent.clone() };
    let ready = json!({"uid": "alice", "source": audio, "transcript_key": "transcripts/alice/0190-answer.webm.json",
        "text": COMPLETE_ANSWER, "duration": 28.0, "words_per_minute": 150.0});
    let msg = |mid: &str, body: &Value| QueueMessage {
        origin: catalyst_shared::event::Origin::Local,
        id: mid.into(),
        queue: "transcripts".into(),
        body: body.to_string().into_bytes(),
        attributes: Default::default(),
        attempt: Some(1),
        published: None,
    };
    triggers.queue_message(msg("t1", &ready)).await.unwrap();
    triggers.queue_message(msg("t2", &ready)).await.unwrap();
    let (_, got) = call(&h.app, "GET", &format!("/v1/interviews/{id}"), None, None).await;
    let transcript = got["interview"]["transcript"].as_array().unwrap();
    assert_eq!(transcript.len(), 1, "one turn, however often it is announced");
    assert_eq!(transcript[0]["answer"], COMPLETE_ANSWER);
    // The client's retry now gets the turn itself.
    let (status, v) = call(&h.app, "POST", &uri, Some("rec-1"), Some(json!({"audio_ref": audio}))).await;
    assert_eq!((status, v["turn"].as_u64(), v["replayed"].as_bool()), (200, Some(1), Some(true)));

    // A recording nobody waits for (transcribed on its own) is simply acknowledged.
    let other = json!({"uid": "alice", "source": "uploads/audio/alice/other.wav",
        "transcript_key": "transcripts/alice/other.wav.json", "text": "hi", "duration": 1.0, "words_per_minute": 60.0});
    triggers.queue_message(msg("t3", &other)).await.unwrap();
    // Someone else's recording cannot be claimed.
    let (status, v) =
        call(&h.app, "POST", &uri, Some("rec-2"), Some(json!({"audio_ref": "uploads/audio/bob/x.webm"}))).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_ref")));
    let (status, v) =
        call(&h.app, "POST", &uri, Some("rec-2"), Some(json!({"audio_ref": audio, "answer": "typed too"}))).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_answer")));
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let h = harness().await;
    let post = |body: Value| call(&h.app, "POST", "/v1/interviews", None, Some(body));
    let (s, v) = post(json!({"resume": resume(), "mode": "behavioral"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_job")));
    let (s, v) = post(json!({"job": job(), "mode": "behavioral"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_resume")));
    let (s, v) = post(json!({"resume": resume(), "job": job(), "mode": "chatty"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_json")));
    let (s, v) = post(json!({"resume": resume(), "job": job(), "mode": "mixed", "questions": 50})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_questions")));
    let (s, v) = post(json!({"resume_ref": "parsed/resumes/bob/cv.pdf.json", "job": job(), "mode": "mixed"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_ref")));
    let (s, v) = post(json!({"resume_ref": "parsed/resumes/alice/none.json", "job": job(), "mode": "mixed"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("ref_not_found")));
    let (s, v) = post(json!({"resume": resume(), "job_text": "too short", "mode": "mixed"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_job")));

    let id = create(&h, 1).await["id"].as_str().unwrap().to_string();
    let uri = format!("/v1/interviews/{id}/turns");
    let (s, v) = call(&h.app, "POST", &uri, None, Some(json!({"answer": "x"}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("missing_idempotency_key")));
    let (s, v) = call(&h.app, "POST", &uri, Some("k"), Some(json!({"answer": "   "}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("missing_answer")));
    let (s, v) = call(&h.app, "POST", &uri, Some("k"), Some(json!({}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_answer")));
    let (s, v) = call(&h.app, "POST", &uri, Some("k"), Some(json!({"answer": "x".repeat(20_001)}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("answer_too_long")));
    let (s, v) = call(&h.app, "POST", "/v1/interviews/nope/turns", Some("k"), Some(json!({"answer": "x"}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, v) = call(&h.app, "POST", &format!("/v1/interviews/{id}/report"), None, None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("no_answers")));
    let (s, v) = call(&h.app, "GET", "/v1/interviews/..%2Fbob", None, None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_id")));
    // Nothing reached the LLM for any of the refused requests but the one creation.
    assert_eq!(h.server.requests().iter().filter(|r| agent_of(r) != "context").count(), 0);
}

#[tokio::test]
async fn creation_is_idempotent_and_resumes_and_jobs_come_by_reference() {
    let h = harness().await;
    h.blob
        .put(
            "parsed/resumes/alice/cv.pdf.json",
            json!({"text": "...", "format": "pdf", "resume": resume()}).to_string().into(),
            PutOptions::default(),
        )
        .await
        .unwrap();
    h.blob.put("scrape/results/abc.json", job().to_string().into(), PutOptions::default()).await.unwrap();
    let body = json!({"resume_ref": "parsed/resumes/alice/cv.pdf.json", "job_ref": "scrape/results/abc.json",
        "mode": "mixed", "questions": 4, "persona": "a friendly staff engineer"});
    let (s1, a) = call(&h.app, "POST", "/v1/interviews", Some("create-1"), Some(body.clone())).await;
    assert_eq!(s1, 201, "{a}");
    let hits = h.server.hits();
    let (s2, b) = call(&h.app, "POST", "/v1/interviews", Some("create-1"), Some(body)).await;
    assert_eq!(s2, 201);
    assert_eq!(a["id"], b["id"]);
    assert_eq!(h.server.hits(), hits, "a retried creation makes no LLM call");
    let kinds: Vec<&str> = a["plan"].as_array().unwrap().iter().map(|q| q["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["behavioral", "technical", "behavioral", "technical"]);
    // A technical slot probes a skill the job wants and the resume lacks, when the bank has one.
    assert!(
        a["plan"].as_array().unwrap().iter().any(|q| q["reason"].as_str().unwrap().contains("Kafka")),
        "{}",
        a["plan"]
    );
    let ctx = h.server.requests().into_iter().find(|r| agent_of(r) == "context").unwrap();
    assert!(ctx.user().contains("a friendly staff engineer"));

    let (_, list) = call(&h.app, "GET", "/v1/interviews", None, None).await;
    assert_eq!(list["interviews"][0]["id"], a["id"]);
    assert_eq!(list["interviews"][0]["job_title"], "Senior Backend Engineer");
}

#[tokio::test]
async fn the_question_bank_index_is_built_once_and_then_loaded_from_storage() {
    let h = harness().await;
    let engine = h.agent.engine().await.unwrap();
    let key = engine.bank.index_key.clone();
    assert!(h.blob.head(&key).await.is_ok(), "index stored at {key}");
    assert!(engine.bank.questions.len() >= 300);
    // A new instance over the same storage loads it (same bytes, no re-embedding needed).
    let again = bank::QuestionBank::load_or_build(
        bank::BANK_TOML,
        &h.blob,
        &h.agent.evaluator,
        &model_fingerprint(&h.agent.evaluator).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(again.index.to_bytes(), engine.bank.index.to_bytes());
    // Retrieval finds questions about the subject asked for.
    let q = h.agent.evaluator.embedder().embed(&["resolving a disagreement with a teammate"]).unwrap();
    let hits = engine.bank.index.search(&q[0], 5, |_| true);
    let top: Vec<&str> = hits.iter().map(|h| engine.bank.questions[h.item].competency.as_str()).collect();
    assert!(top.contains(&"conflict-resolution"), "{top:?}");
}

/// The embedded default: a whole (short) interview on SmolLM2-135M through the same
/// agents, with structured output held to each agent's schema by constrained decoding.
/// A 135M model writes weak prose; what must hold is the shape, the grounding checks
/// and the honesty guard.
#[cfg(feature = "llm-local")]
#[tokio::test]
async fn a_whole_interview_on_the_embedded_local_model() {
    let models = catalyst_shared::evaluation::testutil::models_dir();
    // Unoptimised test builds of the grammar code make a call far slower than in release.
    let config =
        catalyst_shared::llm::LlmConfig::from_lookup(models, |k| (k == "LLM_TIMEOUT_SECS").then(|| "900".into()))
            .unwrap();
    assert_eq!(config.primary.kind, catalyst_shared::llm::ProviderKind::Local);
    let llm = catalyst_shared::llm::from_config(&config).await.unwrap();
    // Nothing may reach this server: the local model answers everything.
    let server = ScriptedOpenAi::start(|_| Reply::Status(500)).await;
    let h = harness_on(server, llm);

    let created = create(&h, 1).await;
    let id = created["id"].as_str().unwrap().to_string();
    let question = created["question"]["text"].as_str().unwrap().to_string();
    assert!(question.chars().count() >= 15, "{question}");
    let (status, t1) = call(
        &h.app,
        "POST",
        &format!("/v1/interviews/{id}/turns"),
        Some("local-1"),
        Some(json!({"answer": on_topic(&question, COMPLETE_ANSWER)})),
    )
    .await;
    assert_eq!(status, 200, "{t1}");
    let judge = t1["judgement"]["score"].as_u64().unwrap();
    assert!(judge <= 100);
    let reply = t1["reply"].as_str().unwrap();
    match t1["decision"]["action"].as_str().unwrap() {
        "follow_up" => assert!(reply.ends_with('?'), "{reply}"),
        "wrap_up" => assert!(reply.ends_with("whenever you are."), "{reply}"),
        other => panic!("one planned question cannot lead to `{other}`"),
    }
    let (status, report) = call(&h.app, "POST", &format!("/v1/interviews/{id}/report"), None, None).await;
    assert_eq!(status, 200, "{report}");
    let said = format!("{COMPLETE_ANSWER} {}", resume());
    for a in report["achievements"].as_array().unwrap() {
        for n in crate::agents::numbers_in(a["reframed"].as_str().unwrap()) {
            assert!(crate::agents::numbers_in(&said).contains(&n), "invented number {n} in {a}");
        }
    }
    let log = logged(&h.store, "alice", &id, 1).await.unwrap();
    assert!(log["calls"].as_array().unwrap().iter().all(|c| c["provider"] == "local"), "{}", log["calls"]);
    assert_eq!(h.server.hits(), 0);
}

/// A turn's log holds each agent's input and output, and `optimize`'s replay runs every
/// logged agent again through the same code with a candidate prompt; a candidate rating
/// lands in the log beside the scores.
#[tokio::test]
async fn logged_turns_replay_through_every_agent_and_ratings_are_kept() {
    use catalyst_shared::optimize::{ReplayRequest, record};
    let h = harness().await;
    let created = create(&h, 1).await;
    let id = created["id"].as_str().unwrap().to_string();
    let question = created["plan"][0]["text"].as_str().unwrap().to_string();
    let uri = format!("/v1/interviews/{id}/turns");
    let answer = on_topic(&question, NO_RESULT_ANSWER);
    let (status, t1) = call(&h.app, "POST", &uri, Some("r1"), Some(json!({"answer": answer}))).await;
    assert_eq!((status, t1["decision"]["action"].as_str()), (200, Some("follow_up")), "{t1}");

    let log = logged(&h.store, "alice", &id, 1).await.unwrap();
    for agent in ["evaluator", "story", "orchestrator", "synthesis"] {
        assert!(log["inputs"][agent].is_object(), "{agent} input logged: {}", log["inputs"]);
        assert!(!log["outputs"][agent].is_null(), "{agent} output logged");
    }
    assert_eq!(log["inputs"]["orchestrator"]["probe"], "result");
    assert_eq!(log["outputs"]["synthesis"], "Thank you, that was a clear example. I appreciate the detail.");

    // The candidate rates the turn; out-of-range ratings and unknown turns are clear errors.
    let rate = format!("/v1/interviews/{id}/turns/1/rating");
    let (status, v) = call(&h.app, "POST", &rate, None, Some(json!({"rating": 4, "comment": "useful"}))).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = call(&h.app, "POST", &rate, None, Some(json!({"rating": 9}))).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_rating")));
    let (status, _) =
        call(&h.app, "POST", &format!("/v1/interviews/{id}/turns/7/rating"), None, Some(json!({"rating": 3}))).await;
    assert_eq!(status, 404);
    let log = logged(&h.store, "alice", &id, 1).await.unwrap();
    assert_eq!((log["rating"].as_u64(), log["rating_comment"].as_str()), (Some(4), Some("useful")));

    // Find the log key, then replay each agent with a candidate prompt.
    let key = h
        .store
        .query_prefix(engine::TURNS, "", None, 100)
        .await
        .unwrap()
        .documents
        .into_iter()
        .find(|d| d.key.ends_with(&format!("/alice/{id}/00001")))
        .unwrap()
        .key;
    for (agent, checks) in [
        ("evaluator", vec!["agreement"]),
        ("story", vec!["coverage_agreement", "honest_numbers"]),
        ("orchestrator", vec!["one_question", "specific"]),
        ("synthesis", vec!["kept", "specific"]),
    ] {
        let req = ReplayRequest {
            run: "r1".into(),
            agent: agent.into(),
            variant: "opro".into(),
            system: format!("A candidate prompt for {agent}. Reply with JSON only."),
            item: key.clone(),
            rubric: "Good work.".into(),
            estimate: Default::default(),
        };
        let hits = h.server.hits();
        let result = crate::replay::replay(h.agent.llm.as_ref(), &h.store, &req).await.unwrap();
        assert_eq!(result.error, None, "{agent}");
        assert!(result.violations.is_empty(), "{agent}: {:?}", result.violations);
        assert_eq!(result.judge, Some(0.7), "{agent}");
        assert_eq!(result.metrics.keys().map(String::as_str).collect::<Vec<_>>(), checks, "{agent}");
        assert!(result.score > 0.0 && result.score <= 1.0, "{agent}: {}", result.score);
        assert_eq!((result.spend.calls, h.server.hits() - hits), (2, 2), "{agent}: its own call and the judge's");
        // The candidate prompt is what the model saw, marked as version 0.
        let sent = h.server.requests()[hits].system();
        assert!(sent.starts_with(&format!("[catalyst prompt {agent}@v0]\nA candidate prompt")), "{sent}");
        // Recorded once; a redelivery through the handler costs nothing.
        assert!(record(&h.store, &result).await.unwrap());
        let hits = h.server.hits();
        crate::replay::handle(h.agent.llm.as_ref(), &h.store, &req).await.unwrap();
        assert_eq!(h.server.hits(), hits);
    }
    // The evaluator's replay is compared with the measured score of the same answer.
    let req = |agent: &str, item: &str| ReplayRequest {
        run: "r2".into(),
        agent: agent.into(),
        variant: "v".into(),
        system: "x".into(),
        item: item.into(),
        rubric: "r".into(),
        estimate: Default::default(),
    };
    let ev = crate::replay::replay(h.agent.llm.as_ref(), &h.store, &req("evaluator", &key)).await.unwrap();
    let measured = log["summary"]["overall"].as_f64().unwrap();
    assert!((ev.metrics["agreement"] - (1.0 - (70.0 - measured).abs() / 100.0)).abs() < 1e-9, "{ev:?}");
    // A missing log entry or an agent without a logged input is an error in the result,
    // not a retry.
    let gone = crate::replay::replay(h.agent.llm.as_ref(), &h.store, &req("story", "nope")).await.unwrap();
    assert!(gone.error.as_deref().unwrap().contains("no turn log entry"));
    let ctx = crate::replay::replay(h.agent.llm.as_ref(), &h.store, &req("context", &key)).await.unwrap();
    assert!(ctx.error.as_deref().unwrap().contains("no replay"), "{:?}", ctx.error);
    assert_eq!((gone.score, ctx.score), (0.0, 0.0));

    // A run whose budget is spent starts no replay: the result says so, no model call.
    let spent = catalyst_shared::optimize::Spend { calls: 10, ..Default::default() };
    let ledger = catalyst_shared::optimize::Ledger { max_calls: 10, max_tokens: 1_000_000, spent };
    catalyst_shared::optimize::open_ledger(&h.store, "r4", &ledger).await.unwrap();
    let mut broke = req("synthesis", &key);
    broke.run = "r4".into();
    broke.estimate = catalyst_shared::optimize::Spend { calls: 3, input_tokens: 800, output_tokens: 0 };
    let hits = h.server.hits();
    crate::replay::handle(h.agent.llm.as_ref(), &h.store, &broke).await.unwrap();
    assert_eq!(h.server.hits(), hits);
    let stored: catalyst_shared::optimize::ReplayResult =
        h.store.get(catalyst_shared::optimize::RUNS, &broke.result_key()).await.unwrap().unwrap().parse().unwrap();
    assert!(stored.error.as_deref().unwrap().starts_with("budget_exhausted"), "{stored:?}");
}

/// A promoted canary serves new interviews in its share (here all of them); the
/// interview keeps that version for every turn, and a rollback is one call.
#[tokio::test]
async fn new_interviews_start_on_a_canary_in_its_share() {
    let h = harness().await;
    catalyst_shared::prompts::Prompts::load(&h.store, &prompts::defaults()).await.unwrap();
    let v = catalyst_shared::prompts::promote(
        &h.store,
        prompts::SYNTHESIS,
        "You are a concise interviewer. Acknowledge the answer in one sentence.",
        "optimize run t",
        Value::Null,
        Some(1.0),
    )
    .await
    .unwrap();
    let created = create(&h, 1).await;
    assert_eq!(
        (created["prompts"]["synthesis"].as_u64(), created["prompts"]["story"].as_u64()),
        (Some(v as u64), Some(1))
    );
    let id = created["id"].as_str().unwrap();
    let answer = on_topic(created["plan"][0]["text"].as_str().unwrap(), COMPLETE_ANSWER);
    let (status, _) =
        call(&h.app, "POST", &format!("/v1/interviews/{id}/turns"), Some("c1"), Some(json!({"answer": answer}))).await;
    assert_eq!(status, 200);
    let sent = h.server.requests().into_iter().find(|r| agent_of(r) == "synthesis").unwrap();
    assert!(sent.system().starts_with("[catalyst prompt synthesis@v2]\nYou are a concise interviewer."));
    assert_eq!(catalyst_shared::prompts::rollback(&h.store, prompts::SYNTHESIS).await.unwrap(), (2, 1));
}
