//! The embedded local stack: routes of every function on one address, storage events,
//! queues with dead-letters, schedules, and `catalyst invoke`.

use catalyst_e2e::{Proc, bin, eventually, local_env, repo_root};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

async fn start(data: &Path) -> Proc {
    let mut env = local_env(data);
    env.insert("CATALYST_AUTH".into(), "off".into());
    let args =
        |port: u16| ["serve", "--addr", &format!("127.0.0.1:{port}"), "--poll-ms", "50"].map(String::from).to_vec();
    Proc::start_http_with(&bin("catalyst"), args, env, data).await
}

async fn status(p: &Proc) -> serde_json::Value {
    catalyst_e2e::get(p.url("/_local/status")).await.json().await.unwrap()
}

fn deliveries_for(status: &serde_json::Value, function: &str, subject: &str) -> Vec<serde_json::Value> {
    status["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["function"] == function && d["subject"] == subject)
        .cloned()
        .collect()
}

#[tokio::test]
async fn mounts_every_function() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(dir.path()).await;
    let doc: serde_json::Value = catalyst_e2e::get(p.url("/openapi.json")).await.json().await.unwrap();
    for path in ["/v1/auth/whoami", "/v1/interviews", "/v1/prompts"] {
        assert!(doc["paths"][path].is_object(), "{path} missing from {doc}");
    }
    let who: serde_json::Value = catalyst_e2e::get(p.url("/v1/auth/whoami")).await.json().await.unwrap();
    assert_eq!(who["principal"]["kind"], "dev");
    let s = status(&p).await;
    assert_eq!(s["functions"].as_object().unwrap().len(), 7);
}

/// A file landing under a watched prefix reaches its function exactly once, whether it
/// was uploaded through the stack or copied in by hand, also across restarts.
#[tokio::test]
async fn storage_events_are_delivered_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs/uploads/resumes/dev");
    std::fs::create_dir_all(&blobs).unwrap();
    let key_a = "uploads/resumes/dev/by-hand.txt";
    let key_b = "uploads/resumes/dev/uploaded.md";
    let key_c = "uploads/resumes/dev/while-down.txt";

    let p = start(dir.path()).await;
    std::fs::write(dir.path().join("blobs").join(key_a), "Jane Doe\njane@example.com\n").unwrap();
    let r = catalyst_e2e::client()
        .put(p.url(&format!("/_local/blobs/{key_b}")))
        .header("content-type", "text/markdown")
        .body("# John Roe\n\njohn@example.com\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for key in [key_a, key_b] {
        eventually(Duration::from_secs(20), "storage delivery", || async {
            let s = status(&p).await;
            (!deliveries_for(&s, "parse", key).is_empty()).then_some(())
        })
        .await;
    }
    // Several more scans: still one delivery each.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let s = status(&p).await;
    for key in [key_a, key_b] {
        let d = deliveries_for(&s, "parse", key);
        assert_eq!(d.len(), 1, "{key}: {s}");
        assert_eq!(d[0]["outcome"], "ok", "{key}: {s}");
    }
    drop(p);

    // A file landing while the stack is down is delivered after the restart; the old ones are not again.
    std::fs::write(dir.path().join("blobs").join(key_c), "Ana Lima\nana@example.com\n").unwrap();
    let p = start(dir.path()).await;
    eventually(Duration::from_secs(20), "delivery after restart", || async {
        let s = status(&p).await;
        (!deliveries_for(&s, "parse", key_c).is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let s = status(&p).await;
    for key in [key_a, key_b, key_c] {
        let d = deliveries_for(&s, "parse", key);
        assert_eq!(d.len(), 1, "{key}: {s}");
        assert_eq!(d[0]["outcome"], "ok", "{key}: {s}");
    }
    // Objects outside watched prefixes raise nothing.
    std::fs::create_dir_all(dir.path().join("blobs/parsed/resumes/dev")).unwrap();
    std::fs::write(dir.path().join("blobs/parsed/resumes/dev/x.json"), "{}").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = status(&p).await;
    assert!(s["deliveries"].as_array().unwrap().iter().all(|d| d["subject"] != "parsed/resumes/dev/x.json"));
}

#[tokio::test]
async fn uploads_are_confined_to_valid_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(dir.path()).await;
    let client = catalyst_e2e::client();
    let r = client.put(p.url("/_local/blobs/uploads/..%2F..%2Fescape")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_key");
    assert!(!dir.path().join("escape").exists());
}

#[tokio::test]
async fn schedules_fire_and_unconsumable_messages_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(dir.path()).await;
    let client = catalyst_e2e::client();

    let r = client.post(p.url("/_local/schedules/optimize-nightly")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let delivery = eventually(Duration::from_secs(20), "schedule delivery", || async {
        deliveries_for(&status(&p).await, "optimize", "optimize-nightly").into_iter().next()
    })
    .await;
    assert_eq!(delivery["outcome"], "ok", "{delivery}");
    assert_eq!(client.post(p.url("/_local/schedules/nope")).send().await.unwrap().status(), 404);

    // optimize consumes the `optimize` queue but has no handler for messages yet: a
    // non-retryable failure goes straight to the dead-letter queue with its reason.
    let r = client.post(p.url("/_local/queues/optimize/messages")).body(r#"{"run":"x"}"#).send().await.unwrap();
    assert_eq!(r.status(), 202);
    eventually(Duration::from_secs(20), "dead letter", || async {
        let s = status(&p).await;
        (s["queues"]["optimize-dlq"] == 1).then_some(())
    })
    .await;
    assert_eq!(client.post(p.url("/_local/queues/nobody/messages")).body("{}").send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn invoke_runs_payloads_of_both_clouds() {
    let dir = tempfile::tempdir().unwrap();
    let env: HashMap<String, String> = local_env(dir.path());
    for (file, expect) in [("aws/eventbridge-scheduled.json", "null"), ("gcp/cloud-scheduler.json", "204")] {
        let path = repo_root().join("events").join(file);
        let mut p =
            Proc::start(&bin("catalyst"), &["invoke", "optimize", "--event", path.to_str().unwrap()], &env, dir.path());
        let status = p.wait_exit(Duration::from_secs(30)).await;
        assert!(status.success(), "{file}: {}", p.output());
        assert!(p.output().contains(expect), "{file}: {}", p.output());
    }
    let mut p = Proc::start(&bin("catalyst"), &["invoke", "nosuch", "--event", "/dev/null"], &env, dir.path());
    assert!(!p.wait_exit(Duration::from_secs(30)).await.success());
    assert!(p.output().contains("no function `nosuch`"), "{}", p.output());
}

/// `catalyst prompts rollback` undoes a promotion in the store the configuration names;
/// the next agent start uses the restored version.
#[tokio::test]
async fn prompts_roll_back_with_one_command() {
    use catalyst_shared::prompts;
    let dir = tempfile::tempdir().unwrap();
    let env: HashMap<String, String> = local_env(dir.path());
    let store: catalyst_shared::store::SharedDocumentStore = std::sync::Arc::new(
        catalyst_shared::store::local::SqliteDocumentStore::open(dir.path().join("store.db")).unwrap(),
    );
    let defaults = [("synthesis", "Be warm and specific.")];
    prompts::Prompts::load(&store, &defaults).await.unwrap();
    prompts::promote(&store, "synthesis", "Be brief.", "optimize run r1", serde_json::Value::Null, None).await.unwrap();

    let mut p = Proc::start(&bin("catalyst"), &["prompts", "list"], &env, dir.path());
    assert!(p.wait_exit(Duration::from_secs(30)).await.success(), "{}", p.output());
    assert!(p.output().contains("synthesis      v2  (before: [1])"), "{}", p.output());
    let mut p = Proc::start(&bin("catalyst"), &["prompts", "rollback", "synthesis"], &env, dir.path());
    assert!(p.wait_exit(Duration::from_secs(30)).await.success(), "{}", p.output());
    assert!(p.output().contains("synthesis: v2 -> v1"), "{}", p.output());
    assert_eq!(prompts::Prompts::load(&store, &defaults).await.unwrap().get("synthesis").version, 1);
    // Nothing left to undo: a clear error, a failing exit.
    let mut p = Proc::start(&bin("catalyst"), &["prompts", "rollback", "synthesis"], &env, dir.path());
    assert!(!p.wait_exit(Duration::from_secs(30)).await.success());
    assert!(p.output().contains("no earlier version"), "{}", p.output());
}

/// `catalyst optimize` by hand: the run starts, the stack's own workers replay the logged
/// turns through the agent function and step the run, and the known-better prompt of the
/// synthetic task (`optimize_fixture`) is promoted (outright, with `--canary-share 1`).
#[tokio::test]
async fn optimize_by_hand_promotes_the_better_prompt() {
    use catalyst_shared::prompts;
    let dir = tempfile::tempdir().unwrap();
    let server = catalyst_shared::testkit::openai::ScriptedOpenAi::start(catalyst_e2e::optimize_fixture::model).await;
    let mut env: HashMap<String, String> = local_env(dir.path());
    env.insert("LLM_URL".into(), server.url.clone());
    env.insert("LLM_PROVIDER".into(), "openai".into());
    env.insert("LLM_MODEL".into(), "scripted-model".into());
    let store: catalyst_shared::store::SharedDocumentStore = std::sync::Arc::new(
        catalyst_shared::store::local::SqliteDocumentStore::open(dir.path().join("store.db")).unwrap(),
    );
    prompts::Prompts::load(&store, &catalyst_agent::prompts::defaults()).await.unwrap();
    catalyst_e2e::optimize_fixture::log_turns(&store, 2, "i1").await;

    let args = ["optimize", "--agents", "synthesis", "--canary-share", "1", "--wait-s", "120"];
    let mut p = Proc::start(&bin("catalyst"), &args, &env, dir.path());
    assert!(p.wait_exit(Duration::from_secs(180)).await.success(), "{}", p.output());
    let out = p.output();
    assert!(out.contains("synthesis     promoted v2 (9 inputs, active v1)"), "{out}");
    assert!(out.contains("better on 9 of 9 inputs"), "{out}");
    let active = prompts::list_active(&store).await.unwrap();
    assert_eq!((active["synthesis"].version, active["synthesis"].history.clone()), (2, vec![1]));
    let mut p = Proc::start(&bin("catalyst"), &["prompts", "rollback", "synthesis"], &env, dir.path());
    assert!(p.wait_exit(Duration::from_secs(30)).await.success(), "{}", p.output());
    assert!(p.output().contains("synthesis: v2 -> v1"), "{}", p.output());
}
