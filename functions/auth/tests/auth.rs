//! The auth function end to end: the real HTTP app (auth middleware included) over a
//! real certificate endpoint on 127.0.0.1 and the embedded document store.

mod common;

use axum::body::Body;
use catalyst_shared::auth::firebase::FirebaseVerifier;
use catalyst_shared::config::Config;
use catalyst_shared::{Deps, Function};
use common::{CertServer, PROJECT, claims, keys, now};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

struct Stack {
    app: axum::Router,
    function: Function,
    _dir: tempfile::TempDir,
}

fn stack(env: &[(&str, &str)]) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let mut map: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    map.insert("CATALYST_DATA_DIR".into(), dir.path().to_str().unwrap().into());
    let config = Config::from_lookup(|k| map.get(k).cloned()).unwrap();
    let deps = Deps::new(config);
    let function = catalyst_auth::function(&deps).unwrap();
    let app = catalyst_shared::runtime::http::app(&function, &deps).unwrap();
    Stack { app, function, _dir: dir }
}

fn firebase_stack(certs: &CertServer) -> Stack {
    stack(&[("FIREBASE_PROJECT_ID", PROJECT), ("FIREBASE_CERTS_URL", &certs.url)])
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    if status == 401 {
        assert_eq!(resp.headers().get("www-authenticate").unwrap(), "Bearer");
    }
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Everything the code under test logs, at every level, for this (single-threaded) test.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn id_tokens_are_checked_like_firebase_admin() {
    let logs = CapturedLogs::default();
    let sink = logs.clone();
    let _log_guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || sink.clone()).finish(),
    );
    let [a, b, _] = keys();
    let certs = CertServer::start(&[a], "public, max-age=3600, must-revalidate").await;
    let s = firebase_stack(&certs);

    let ok = a.id_token("alice");
    let (status, body) = call(&s.app, "GET", "/v1/auth/whoami", &[("authorization", &bearer(&ok))], None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"principal": {"kind": "user", "uid": "alice", "email": "alice@example.com", "scopes": []}})
    );

    let with = |k: &str, v: Value| {
        let mut c = claims("alice");
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = claims("alice");
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let hdr = a.header();
    let tampered = {
        // A valid token whose payload is swapped for another user's.
        let other = a.id_token("mallory");
        let mut parts: Vec<&str> = ok.split('.').collect();
        parts[1] = other.split('.').nth(1).unwrap();
        parts.join(".")
    };
    let unsigned = |alg: &str| {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            e.encode(json!({"alg": alg, "kid": a.kid}).to_string()),
            e.encode(claims("alice").to_string())
        )
    };
    let skew = 60;
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("two segments", "abc.def".into(), "invalid_id_token", "three dot-separated"),
        ("four segments", format!("{ok}.x"), "invalid_id_token", "three dot-separated"),
        ("alg none", unsigned("none"), "invalid_id_token", "`alg` \"none\""),
        ("alg None", unsigned("None"), "invalid_id_token", "`alg` \"None\""),
        (
            "alg HS256",
            a.sign(&json!({"alg": "HS256", "kid": a.kid}), &claims("alice")),
            "invalid_id_token",
            "only RS256",
        ),
        (
            "alg RS512",
            a.sign(&json!({"alg": "RS512", "kid": a.kid}), &claims("alice")),
            "invalid_id_token",
            "only RS256",
        ),
        ("no kid", a.sign(&json!({"alg": "RS256"}), &claims("alice")), "invalid_id_token", "no `kid`"),
        (
            "unknown kid",
            a.sign(&json!({"alg": "RS256", "kid": "nope"}), &claims("alice")),
            "invalid_id_token",
            "not among the current",
        ),
        ("other key, served kid", b.sign(&hdr, &claims("alice")), "invalid_id_token", "invalid signature"),
        ("tampered payload", tampered, "invalid_id_token", "invalid signature"),
        (
            "wrong aud",
            a.sign(&hdr, &with("aud", json!("other-project"))),
            "invalid_id_token",
            "`aud` \"other-project\"",
        ),
        ("aud array", a.sign(&hdr, &with("aud", json!([PROJECT]))), "invalid_id_token", "`aud` an array"),
        ("no aud", a.sign(&hdr, &without("aud")), "invalid_id_token", "`aud` missing"),
        (
            "wrong iss",
            a.sign(&hdr, &with("iss", json!("https://securetoken.google.com/other"))),
            "invalid_id_token",
            "`iss`",
        ),
        ("no sub", a.sign(&hdr, &without("sub")), "invalid_id_token", "`sub` missing"),
        ("empty sub", a.sign(&hdr, &with("sub", json!(""))), "invalid_id_token", "empty `sub`"),
        ("long sub", a.sign(&hdr, &with("sub", json!("u".repeat(129)))), "invalid_id_token", "longer than 128"),
        ("expired", a.sign(&hdr, &with("exp", json!(now() - skew - 5))), "id_token_expired", "expired"),
        ("no exp", a.sign(&hdr, &without("exp")), "invalid_id_token", "no `exp`"),
        ("iat in future", a.sign(&hdr, &with("iat", json!(now() + skew + 30))), "invalid_id_token", "`iat`"),
        ("no iat", a.sign(&hdr, &without("iat")), "invalid_id_token", "no `iat`"),
        (
            "auth_time in future",
            a.sign(&hdr, &with("auth_time", json!(now() + skew + 30))),
            "invalid_id_token",
            "`auth_time`",
        ),
        (
            "signature not base64url",
            format!("{}.!!!", &ok[..ok.rfind('.').unwrap()]),
            "invalid_id_token",
            "signature is not base64url",
        ),
        ("empty bearer", String::new(), "invalid_id_token", "no bearer token"),
    ];
    for (name, token, code, message) in &cases {
        let (status, body) = call(&s.app, "GET", "/v1/auth/whoami", &[("authorization", &bearer(token))], None).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(body["error"]["code"], *code, "{name}: {body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(message), "{name}: {message:?} not in {msg:?}");
        assert!(token.len() < 16 || !msg.contains(token.as_str()), "{name}: token echoed");
    }
    // Inside the documented skew is accepted.
    let late = a.sign(&hdr, &with("exp", json!(now() - skew + 20)));
    assert_eq!(call(&s.app, "GET", "/v1/auth/whoami", &[("authorization", &bearer(&late))], None).await.0, 200);

    // Other schemes and no credential at all.
    let (status, body) = call(&s.app, "GET", "/v1/auth/whoami", &[("authorization", "Basic dTpw")], None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("missing_credentials")));
    let (status, body) = call(&s.app, "GET", "/v1/auth/whoami", &[], None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("missing_credentials")));

    // All of that was verified against one fetch of the certificates.
    assert_eq!(certs.hits(), 1);

    // Refusals are logged, with the reason, and no token (or its signature) ever is.
    let logs = logs.text();
    assert!(logs.contains("request refused") && logs.contains("invalid signature"), "{logs}");
    for (name, token, _, _) in cases.iter().filter(|c| c.1.len() > 40) {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!logs.contains(token.as_str()), "{name}: token logged");
        assert!(signature.len() < 40 || !logs.contains(signature), "{name}: signature logged");
    }
    assert!(!logs.contains(ok.rsplit('.').next().unwrap()));
}

#[tokio::test]
async fn certificates_rotate_after_max_age() {
    let [a, b, _] = keys();
    let certs = CertServer::start(&[a], "public, max-age=1").await;
    let s = firebase_stack(&certs);
    let whoami = |t: String| {
        let app = s.app.clone();
        async move { call(&app, "GET", "/v1/auth/whoami", &[("authorization", &bearer(&t))], None).await }
    };
    assert_eq!(whoami(a.id_token("u")).await.0, 200);
    // Google rotates: now only b is published. Until max-age passes, the cached set holds.
    certs.serve(&[b], "public, max-age=1");
    let (status, body) = whoami(b.id_token("u")).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("not among the current"));
    assert_eq!(whoami(a.id_token("u")).await.0, 200);
    assert_eq!(certs.hits(), 1);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(whoami(b.id_token("u")).await.0, 200);
    assert_eq!(whoami(a.id_token("u")).await.0, 401, "a withdrawn key is no longer trusted");
    assert_eq!(certs.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_verifications_share_one_fetch() {
    let [a, _, _] = keys();
    let certs = CertServer::start(&[a], "max-age=600").await;
    certs.set_delay(Duration::from_millis(300));
    let verifier = Arc::new(FirebaseVerifier::new(PROJECT, certs.url.parse().unwrap()).unwrap());
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let v = verifier.clone();
            let token = a.id_token(&format!("user{i}"));
            tokio::spawn(async move { v.verify(&token).await.map(|c| c.uid) })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().unwrap(), format!("user{i}"));
    }
    assert_eq!(certs.hits(), 1, "64 concurrent cold verifications fetched the certificates once");
}

#[tokio::test]
async fn certificate_outage_is_a_503_without_hammering_the_endpoint() {
    let [a, _, _] = keys();
    let certs = CertServer::start(&[a], "max-age=600").await;
    certs.fail_with(500);
    let s = firebase_stack(&certs);
    let auth = [("authorization", bearer(&a.id_token("u")))];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for _ in 0..5 {
        let (status, body) = call(&s.app, "GET", "/v1/auth/whoami", &auth, None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("certs_unavailable")));
    }
    assert_eq!(certs.hits(), 1, "failures back off instead of fetching per request");

    // Unreachable endpoint: same answer, never a hang or a crash.
    let s = stack(&[("FIREBASE_PROJECT_ID", PROJECT), ("FIREBASE_CERTS_URL", "http://127.0.0.1:9/certs")]);
    assert_eq!(call(&s.app, "GET", "/v1/auth/whoami", &auth, None).await.0, 503);
}

#[tokio::test]
async fn oversized_credentials_are_refused_quickly_over_real_http() {
    let [a, _, _] = keys();
    let certs = CertServer::start(&[a], "max-age=600").await;
    let s = firebase_stack(&certs);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, s.app).await });
    let client = reqwest::Client::new();
    let huge = "A".repeat(200 * 1024);
    for (header, value) in [("authorization", format!("Bearer {huge}")), ("x-api-key", huge.clone())] {
        let started = Instant::now();
        let resp = client.get(format!("{base}/v1/auth/whoami")).header(header, value).send().await.unwrap();
        let status = resp.status().as_u16();
        assert!([401, 413, 431].contains(&status), "{header}: {status}");
        assert!(started.elapsed() < Duration::from_secs(2), "{header}: took {:?}", started.elapsed());
        if status == 401 {
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "credential_too_large");
        }
    }
    // The server is still fine afterwards.
    let resp = client
        .get(format!("{base}/v1/auth/whoami"))
        .header("authorization", bearer(&a.id_token("u")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(certs.hits(), 1, "oversized tokens never reach the certificate cache");
}

#[tokio::test]
async fn api_key_life_cycle_and_cross_user_access() {
    let [a, _, _] = keys();
    let certs = CertServer::start(&[a], "max-age=600").await;
    let s = firebase_stack(&certs);
    let alice_token = bearer(&a.id_token("alice"));
    let bob_token = bearer(&a.id_token("bob"));
    let alice = [("authorization", alice_token.as_str())];
    let bob = [("authorization", bob_token.as_str())];

    let (status, created) = call(
        &s.app,
        "POST",
        "/v1/auth/api-keys",
        &alice,
        Some(json!({"name": "CI runner", "scopes": ["scrape", "evaluate"], "expires_in_days": 30})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("ck_live_") && key.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["name"], "CI runner");
    assert_eq!(created["scopes"], json!(["scrape", "evaluate"]));
    assert!(created["created_at"].is_string() && created["expires_at"].is_string());

    // The key authenticates, as alice, limited to its scopes; in x-api-key or as a bearer.
    for header in [("x-api-key", key.clone()), ("authorization", bearer(&key))] {
        let (status, body) = call(&s.app, "GET", "/v1/auth/whoami", &[(header.0, &header.1)], None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["principal"], json!({"kind": "api_key", "uid": "alice", "scopes": ["scrape", "evaluate"]}));
    }
    // An API key cannot mint (or manage) keys.
    let with_key = [("x-api-key", key.as_str())];
    let (status, body) =
        call(&s.app, "POST", "/v1/auth/api-keys", &with_key, Some(json!({"name": "escalate", "scopes": ["*"]}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("api_key_not_allowed")));
    assert_eq!(call(&s.app, "GET", "/v1/auth/api-keys", &with_key, None).await.0, 403);

    // Listing shows no secret; usage (two whoami calls and the two refused management
    // calls, all authenticated by the key) arrives off the request path.
    let mut listed = Value::Null;
    for _ in 0..50 {
        listed = call(&s.app, "GET", "/v1/auth/api-keys", &alice, None).await.1;
        if listed["api_keys"][0]["use_count"] == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed["api_keys"].as_array().unwrap().len(), 1, "{listed}");
    let entry = &listed["api_keys"][0];
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["use_count"], 4, "{listed}");
    assert!(entry["last_used_at"].is_string());
    assert!(entry.get("key").is_none() && !listed.to_string().contains(&key[key.len() - 32..]));

    // Bob sees none of it and cannot touch it.
    let (_, bobs) = call(&s.app, "GET", "/v1/auth/api-keys", &bob, None).await;
    assert_eq!(bobs["api_keys"], json!([]));
    assert_eq!(call(&s.app, "GET", &format!("/v1/auth/api-keys/{id}"), &bob, None).await.0, 404);
    assert_eq!(call(&s.app, "DELETE", &format!("/v1/auth/api-keys/{id}"), &bob, None).await.0, 404);
    assert_eq!(call(&s.app, "GET", "/v1/auth/whoami", &with_key, None).await.0, 200);
    assert_eq!(call(&s.app, "GET", &format!("/v1/auth/api-keys/{id}"), &alice, None).await.0, 200);

    // Revocation is effective for the very next request.
    assert_eq!(call(&s.app, "DELETE", &format!("/v1/auth/api-keys/{id}"), &alice, None).await.0, 204);
    let (status, body) = call(&s.app, "GET", "/v1/auth/whoami", &with_key, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("invalid_api_key")));
    assert_eq!(call(&s.app, "DELETE", &format!("/v1/auth/api-keys/{id}"), &alice, None).await.0, 404);
    assert_eq!(call(&s.app, "GET", "/v1/auth/api-keys", &alice, None).await.1["api_keys"], json!([]));

    // Bad input is a clear 4xx.
    let bad: Vec<(Value, &str)> = vec![
        (json!({"scopes": []}), "invalid_json"),
        (json!({"name": "x", "scopes": ["NOPE"]}), "invalid_scopes"),
        (json!({"name": "x", "expires_in_days": 0}), "invalid_expiry"),
        (json!({"name": "x", "admin": true}), "invalid_json"),
    ];
    for (body, code) in bad {
        let (status, resp) = call(&s.app, "POST", "/v1/auth/api-keys", &alice, Some(body.clone())).await;
        assert_eq!((status, resp["error"]["code"].as_str()), (400, Some(code)), "{body}");
    }
    let forged = format!("{}{}", &key[..key.len() - 1], if key.ends_with('A') { 'B' } else { 'A' });
    for k in ["ck_live_short", forged.as_str(), "sk_live_whatever"] {
        let (status, body) = call(&s.app, "GET", "/v1/auth/whoami", &[("x-api-key", k)], None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("invalid_api_key")), "{k}");
    }
    assert_eq!(call(&s.app, "GET", "/v1/auth/api-keys/..%2Fx", &alice, None).await.0, 400);
}

#[tokio::test]
async fn without_firebase_configured_the_401_says_what_to_set() {
    let [a, _, _] = keys();
    let s = stack(&[]);
    let token = bearer(&a.id_token("u"));
    let (status, body) = call(&s.app, "GET", "/v1/auth/whoami", &[("authorization", &token)], None).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("FIREBASE_PROJECT_ID"), "{body}");
    let (status, body) = call(&s.app, "GET", "/v1/auth/whoami", &[], None).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("FIREBASE_PROJECT_ID"), "{body}");
    // API keys still work (and are still refused when wrong).
    let (status, _) = call(&s.app, "GET", "/v1/auth/whoami", &[("x-api-key", "ck_live_nope")], None).await;
    assert_eq!(status, 401);
    // The OpenAPI document lists every route.
    let (status, doc) = call(&s.app, "GET", "/openapi.json", &[], None).await;
    assert_eq!(status, 200);
    for p in ["/v1/auth/whoami", "/v1/auth/api-keys", "/v1/auth/api-keys/{id}"] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing");
    }
}

#[tokio::test]
async fn gateway_authorizer_answers_payload_2_0() {
    let [a, _, _] = keys();
    let certs = CertServer::start(&[a], "max-age=600").await;
    let s = firebase_stack(&certs);
    let sample: Value = serde_json::from_str(include_str!("../../../events/aws/apigw-v2-authorizer.json")).unwrap();
    let event = |headers: Value| {
        let mut e = sample.clone();
        e["headers"] = headers;
        e
    };
    let triggers = s.function.triggers.clone();

    // The sample's placeholder token is refused: a denial, not an error.
    assert_eq!(triggers.authorize(sample.clone()).await.unwrap(), json!({"isAuthorized": false}));

    let token = a.id_token("alice");
    let resp = triggers.authorize(event(json!({"authorization": bearer(&token)}))).await.unwrap();
    assert_eq!(
        resp,
        json!({"isAuthorized": true, "context": {"uid": "alice", "kind": "user", "scopes": "", "email": "alice@example.com"}})
    );
    // What the gateway passes on is what every function reads back as the principal.
    let ctx: HashMap<String, Value> = serde_json::from_value(resp["context"].clone()).unwrap();
    let p = catalyst_shared::auth::Principal::from_authorizer_context(&ctx).unwrap();
    assert_eq!((p.uid.as_str(), p.email.as_deref()), ("alice", Some("alice@example.com")));

    let (_, created) = call(
        &s.app,
        "POST",
        "/v1/auth/api-keys",
        &[("authorization", &bearer(&token))],
        Some(json!({"name": "gw", "scopes": ["evaluate", "scrape"]})),
    )
    .await;
    let key = created["key"].as_str().unwrap();
    let resp = triggers.authorize(event(json!({"x-api-key": key}))).await.unwrap();
    assert_eq!(
        resp,
        json!({"isAuthorized": true, "context": {"uid": "alice", "kind": "api_key", "scopes": "evaluate scrape"}})
    );

    let expired = a.sign(&a.header(), &{
        let mut c = claims("alice");
        c["exp"] = json!(now() - 3600);
        c
    });
    assert_eq!(
        triggers.authorize(event(json!({"authorization": bearer(&expired)}))).await.unwrap(),
        json!({"isAuthorized": false})
    );
    assert_eq!(triggers.authorize(event(json!({}))).await.unwrap(), json!({"isAuthorized": false}));

    let mut v1 = sample.clone();
    v1["version"] = json!("1.0");
    assert_eq!(triggers.authorize(v1).await.unwrap_err().code(), "invalid_event");
}
