//! Function binaries in HTTP mode, as Cloud Run runs them.

use catalyst_e2e::{Proc, bin, event, local_env};
use catalyst_shared::store::DocumentStore;
use std::time::Duration;

#[tokio::test]
async fn routes_health_openapi_and_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = local_env(dir.path());
    env.insert("CATALYST_AUTH".into(), "off".into());
    let p = Proc::start_http(&bin("agent"), &[], env, dir.path()).await;
    let client = catalyst_e2e::client();

    let r = client.get(p.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"), "every response carries a request id");

    let doc: serde_json::Value = client.get(p.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["paths"]["/v1/interviews/{id}"]["get"].is_object(), "{doc}");
    assert!(doc["components"]["securitySchemes"]["firebase"].is_object());

    let r = client.get(p.url("/v1/interviews")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["interviews"], serde_json::json!([]));

    let r = client.get(p.url("/v1/nothing-here")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_route");

    let r = client.delete(p.url("/v1/interviews")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn authentication_is_required_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::start_http(&bin("agent"), &[], local_env(dir.path()), dir.path()).await;
    let r = catalyst_e2e::get(p.url("/v1/interviews")).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_credentials");
    // Health stays open for the platform's probes.
    assert_eq!(catalyst_e2e::get(p.url("/healthz")).await.status(), 200);
}

#[tokio::test]
async fn cors_preflights_are_answered_for_configured_origins_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = local_env(dir.path());
    env.insert("CORS_ALLOWED_ORIGINS".into(), "https://app.example.com".into());
    let p = Proc::start_http(&bin("auth"), &[], env, dir.path()).await;
    let client = catalyst_e2e::client();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, p.url("/v1/auth/api-keys"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type, idempotency-key")
            .send()
    };
    // A preflight carries no credentials: it is answered before authentication.
    let r = preflight("https://app.example.com").await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example.com");
    let methods = r.headers()["access-control-allow-methods"].to_str().unwrap().to_string();
    assert!(methods.contains("POST") && methods.contains("DELETE"), "{methods}");
    let headers = r.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(headers.contains("authorization") && headers.contains("idempotency-key"), "{headers}");
    // Another origin gets no permission to read anything.
    let r = preflight("https://evil.example.net").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // A real request from the allowed origin still needs credentials, and the browser may
    // read the error (and the request id) to show it.
    let r = client.get(p.url("/v1/auth/whoami")).header("origin", "https://app.example.com").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example.com");
    assert!(r.headers()["access-control-expose-headers"].to_str().unwrap().contains("x-request-id"));
}

#[tokio::test]
async fn cors_is_off_unless_configured_and_bad_origins_stop_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::start_http(&bin("auth"), &[], local_env(dir.path()), dir.path()).await;
    let r = catalyst_e2e::client()
        .get(p.url("/v1/auth/whoami"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("access-control-allow-origin").is_none());

    let mut env = local_env(dir.path());
    env.insert("CORS_ALLOWED_ORIGINS".into(), "https://app.example.com/path".into());
    let mut p = Proc::start(&bin("auth"), &[], &env, dir.path());
    assert!(!p.wait_exit(Duration::from_secs(10)).await.success());
    assert!(p.output().contains("CORS_ALLOWED_ORIGINS"), "{}", p.output());
}

#[tokio::test]
async fn auth_off_is_refused_in_the_cloud_and_bad_config_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = local_env(dir.path());
    env.insert("CATALYST_AUTH".into(), "off".into());
    env.insert("K_SERVICE".into(), "agent".into());
    let mut p = Proc::start(&bin("agent"), &[], &env, dir.path());
    let status = p.wait_exit(Duration::from_secs(10)).await;
    assert!(!status.success());
    assert!(p.output().contains("CATALYST_AUTH"), "{}", p.output());

    let mut env = local_env(dir.path());
    env.insert("PORT".into(), "eighty".into());
    let mut p = Proc::start(&bin("agent"), &[], &env, dir.path());
    assert!(!p.wait_exit(Duration::from_secs(10)).await.success());
    assert!(p.output().contains("PORT"), "{}", p.output());
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = local_env(dir.path());
    env.insert("CATALYST_AUTH".into(), "off".into());
    let mut p = Proc::start_http(&bin("optimize"), &[], env, dir.path()).await;
    p.terminate();
    let status = p.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit {status}; log:\n{}", p.output());
}

/// Cloud Scheduler, Pub/Sub push and CloudEvents arrive as HTTP POSTs to the event endpoint.
#[tokio::test]
async fn google_event_deliveries_reach_the_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = local_env(dir.path());
    env.insert("CATALYST_AUTH".into(), "off".into());
    env.insert("CATALYST_LOG_FORMAT".into(), "json".into());
    let p = Proc::start_http(&bin("optimize"), &[], env, dir.path()).await;
    let client = catalyst_e2e::client();

    // Cloud Scheduler: the optimize run is recorded once, even when delivered twice.
    let sched = event("gcp/cloud-scheduler.json");
    for _ in 0..2 {
        let mut req = client.post(p.url("/_/events")).body(serde_json::to_vec(&sched["body"]).unwrap());
        for (k, v) in sched["headers"].as_object().unwrap() {
            req = req.header(k.as_str(), v.as_str().unwrap());
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    }
    let store = catalyst_shared::store::local::SqliteDocumentStore::open(dir.path().join("store.db")).unwrap();
    let runs = store.query_prefix("optimize_runs", "catalyst-optimize-nightly@", None, 10).await.unwrap();
    assert_eq!(runs.documents.len(), 1);

    // A Pub/Sub push that is not an optimize step is refused with a clear, non-2xx
    // answer (so Pub/Sub redelivers it into its dead-letter topic rather than dropping it).
    let push = event("gcp/pubsub-push.json");
    let r = client.post(p.url("/")).json(&push).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_message", "{body}");

    // Garbage is a clear 400, not a crash.
    let r = client.post(p.url("/_/events")).body("not an event").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = client.post(p.url("/_/events")).header("ce-specversion", "1.0").body("{}").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(catalyst_e2e::get(p.url("/healthz")).await.status(), 200);

    // JSON logs carry both clouds' level fields and the request id.
    let line = p
        .output()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "response")
        .expect("a JSON response log line");
    assert!(line["severity"].is_string() && line["level"].is_string());
    assert!(line["request_id"].as_str().is_some_and(|s| !s.is_empty()), "{line}");
}
