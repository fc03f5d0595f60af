//! A whole mock interview through the embedded local stack, as a user runs it: the real
//! `catalyst serve` with every function, a resume dropped into storage (parsed by
//! `parse` on its storage event), a typed answer, a spoken answer (a WAV uploaded,
//! transcribed by Whisper, announced on the `transcripts` queue, then taken by the agent),
//! and the report. The LLM is an OpenAI-compatible server on 127.0.0.1 with scripted
//! replies; the test checks what the agents sent it.

use catalyst_agent::testing::{agent_of, reply};
use catalyst_e2e::{Proc, bin, client, eventually, local_env, repo_root};
use catalyst_shared::testkit::openai::ScriptedOpenAi;
use serde_json::{Value, json};
use std::time::Duration;

const RESUME: &str = "# Ada Okafor\n\nBackend Engineer · ada@example.com · +44 20 7946 0958\n\n\
## Experience\n\n### Backend Engineer, Paystream (2019 – Present)\n\n\
- Cut payment API p99 latency from 900 ms to 120 ms by redesigning the ledger queries\n\
- Led the migration of 40 services to Kubernetes\n\n\
## Skills\n\nGo, PostgreSQL, Kubernetes, Docker\n";

const JOB: &str = "Senior Backend Engineer\nAcme Payments builds payment infrastructure for small businesses.\n\
- 5+ years building backend services in Go\n- Experience with PostgreSQL and Kafka\n- Lead incident reviews and improve reliability\n";

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_typed_and_a_spoken_answer_through_the_local_stack() {
    let llm = ScriptedOpenAi::start(reply).await;
    let dir = tempfile::tempdir().unwrap();
    let port = catalyst_e2e::free_port();
    let mut env = local_env(dir.path());
    env.insert("CATALYST_AUTH".into(), "off".into());
    env.insert("PORT".into(), port.to_string());
    env.insert("LLM_PROVIDER".into(), "openai".into());
    env.insert("LLM_URL".into(), llm.url.clone());
    env.insert("LLM_MODEL".into(), "scripted-model".into());
    let addr = format!("127.0.0.1:{port}");
    let p = Proc::start_http(&bin("catalyst"), &["serve", "--addr", &addr, "--poll-ms", "50"], env, dir.path()).await;
    let http = client();

    // The resume lands in storage; parse turns it into JSON Resume on the storage event.
    let r = http
        .put(p.url("/_local/blobs/uploads/resumes/dev/cv.md"))
        .header("content-type", "text/markdown")
        .body(RESUME)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let parsed_key = "parsed/resumes/dev/cv.md.json";
    eventually(Duration::from_secs(60), "the parsed resume", || async {
        let r = http.get(p.url(&format!("/_local/blobs/{parsed_key}"))).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;

    let (status, created) = json_of(
        http.post(p.url("/v1/interviews"))
            .json(&json!({"resume_ref": parsed_key, "job_text": JOB, "mode": "behavioral", "questions": 2}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["profile"]["name"], "Ada Okafor", "{}", created["profile"]);
    assert!(created["profile"]["gaps"].as_array().unwrap().iter().any(|g| g == "Kafka"), "{}", created["profile"]);
    let turns = p.url(&format!("/v1/interviews/{id}/turns"));

    // A typed answer.
    let question = created["question"]["text"].as_str().unwrap();
    let answer = format!(
        "You asked: {question} At Paystream merchants were timing out at peak. I owned the fix. I profiled the \
         endpoints and I rewrote the ledger queries. As a result p99 latency fell from 900 ms to 120 ms."
    );
    let (status, t1) = json_of(
        http.post(&turns).header("idempotency-key", "typed-1").json(&json!({"answer": answer})).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{t1}");
    assert_eq!(t1["turn"], 1);
    assert!(t1["reply"].as_str().unwrap().starts_with("Thank you"));

    // A spoken answer: the recording is uploaded, transcribed on its storage event, and
    // the turn runs when the transcript is announced (or at once if it is already there).
    let wav = std::fs::read(repo_root().join("functions/transcribe/testdata/jfk.wav")).unwrap();
    let audio_key = "uploads/audio/dev/answer-2.wav";
    let r = http
        .put(p.url(&format!("/_local/blobs/{audio_key}")))
        .header("content-type", "audio/wav")
        .body(wav)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (status, v) = json_of(
        http.post(&turns)
            .header("idempotency-key", "spoken-2")
            .json(&json!({"audio_ref": audio_key}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(status == 202 || status == 200, "{status} {v}");
    let interview = eventually(Duration::from_secs(120), "the spoken turn", || async {
        let (_, v) = json_of(http.get(p.url(&format!("/v1/interviews/{id}"))).send().await.ok()?).await;
        (v["interview"]["transcript"].as_array()?.len() == 2).then_some(v)
    })
    .await;
    let spoken = &interview["interview"]["transcript"][1];
    assert!(spoken["answer"].as_str().unwrap().to_lowercase().contains("ask not what your country"), "{spoken}");

    // The report.
    let (status, report) =
        json_of(http.post(p.url(&format!("/v1/interviews/{id}/report"))).send().await.unwrap()).await;
    assert_eq!(status, 200, "{report}");
    assert!(!report["answers"].as_array().unwrap().is_empty());
    assert!(
        report["achievements"].as_array().unwrap().iter().all(|a| !a["reframed"].as_str().unwrap().contains("437"))
    );

    // What the agents sent: the resume's facts and the job's requirements, each prompt named with its version.
    let requests = llm.requests();
    let context = requests.iter().find(|r| agent_of(r) == "context").expect("the context agent ran");
    assert!(context.system().starts_with("[catalyst prompt context@v1]"));
    assert!(context.user().contains("Cut payment API p99 latency from 900 ms to 120 ms"), "{}", context.user());
    assert!(context.user().contains("Kafka"));
    for agent in ["evaluator", "story", "synthesis", "reframe"] {
        assert!(requests.iter().any(|r| agent_of(r) == agent), "{agent} never called the LLM");
    }
    // Nothing was dead-lettered on the way.
    let (_, status) = json_of(http.get(p.url("/_local/status")).send().await.unwrap()).await;
    let dead: Vec<&Value> =
        status["deliveries"].as_array().unwrap().iter().filter(|d| d["outcome"] == "dead-lettered").collect();
    assert!(dead.is_empty(), "{dead:?}");
}
