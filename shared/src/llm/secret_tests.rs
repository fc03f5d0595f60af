//! Keys from the cloud's secret manager and Vertex AI's OAuth tokens, against real
//! protocol servers on 127.0.0.1: moto for AWS Secrets Manager; for Google, small
//! servers speaking the metadata server's token endpoint (`Metadata-Flavor: Google`
//! required) and Secret Manager's REST `:access` method. The environment tests run the
//! whole cold-start path (`LlmConfig::from_env`, `from_config`, one call) in a child
//! process whose environment points every client at those servers, and search its
//! trace-level log for the secret.

// Helpers shared by tests that each need one cloud's feature.
#![allow(dead_code, unused_imports)]

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

use super::tests::{Seen, Server, anthropic_answer, gemini_answer, json_response, request};
use super::*;

/// The metadata server's token endpoint, as google-cloud-auth calls it.
const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

/// A metadata server handing out `tokens` in order (the last one repeated), each as
/// `(access_token, expires_in)`; requests without `Metadata-Flavor: Google` are refused
/// as the real one refuses them.
async fn metadata_server(tokens: Vec<(&'static str, u64)>) -> Server {
    Server::start(move |n, seen: &Seen| {
        if seen.headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
            return json_response(403, json!({"error": "Missing Metadata-Flavor: Google header"}));
        }
        if seen.path != TOKEN_PATH {
            return json_response(404, json!({"error": "not found"}));
        }
        let (token, expires_in) = tokens[n.min(tokens.len() - 1)];
        json_response(200, json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}))
    })
    .await
}

/// `AccessSecretVersionResponse` for `value`, with its CRC32C as an int64 string.
#[cfg(any(feature = "gcs", feature = "pubsub"))]
fn access_response(name: &str, value: &[u8]) -> Value {
    use base64::Engine;
    json!({
        "name": name.replace("/versions/latest", "/versions/3").replace("projects/p/", "projects/123456/"),
        "payload": {
            "data": base64::engine::general_purpose::STANDARD.encode(value),
            "dataCrc32c": crate::secrets::gcp_sm::crc32c(value).to_string(),
        }
    })
}

/// Google's error shape.
fn google_error(code: u16, status: &str, message: &str) -> axum::response::Response {
    json_response(code, json!({"error": {"code": code, "message": message, "status": status}}))
}

fn bearer(seen: &Seen) -> Option<&str> {
    seen.headers.get("authorization").and_then(|v| v.to_str().ok())
}

// ------------------------------------------------------------ Google Secret Manager

#[cfg(any(feature = "gcs", feature = "pubsub"))]
#[tokio::test]
async fn gcp_secret_is_read_with_a_metadata_server_token() {
    use crate::gcp::GoogleAuth;
    use crate::secrets::{SecretRef, finish, gcp_sm};
    let mds = metadata_server(vec![("ya29.mds-token-1", 3600)]).await;
    let name = "projects/p/secrets/catalyst-llm/versions/latest";
    let sm = Server::start(move |n, seen: &Seen| {
        if bearer(seen) != Some("Bearer ya29.mds-token-1") {
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
        }
        match n {
            // One transient failure first: retried.
            0 => google_error(503, "UNAVAILABLE", "The service is currently unavailable."),
            _ => json_response(200, access_response(name, b"{\"api_key\": \"g-key-from-secret-manager\"}\n")),
        }
    })
    .await;

    let reference = SecretRef::parse("projects/p/secrets/catalyst-llm").unwrap();
    let auth = GoogleAuth::metadata_server(&mds.base).unwrap();
    let base = sm.base.parse().unwrap();
    let raw = gcp_sm::read(&gcp_sm::client().unwrap(), &base, &auth, "LLM_API_KEY_SECRET", name).await.unwrap();
    let value = finish("LLM_API_KEY_SECRET", &reference, raw).unwrap();
    assert_eq!(value.expose(), "g-key-from-secret-manager");

    assert_eq!(sm.hits(), 2, "the 503 was retried once");
    let r = sm.request(1);
    assert_eq!(r.path, format!("/v1/{name}:access"));
    assert_eq!(bearer(&r), Some("Bearer ya29.mds-token-1"));
    let t = mds.request(0);
    assert_eq!(t.path, TOKEN_PATH);
    assert_eq!(t.headers["metadata-flavor"], "Google");
    assert!(t.query.as_deref().unwrap_or("").contains("cloud-platform"), "{:?}", t.query);
}

#[cfg(any(feature = "gcs", feature = "pubsub"))]
#[tokio::test]
async fn gcp_secret_errors_name_the_secret_and_never_the_value() {
    use crate::error::ErrorKind;
    use crate::gcp::GoogleAuth;
    use crate::secrets::gcp_sm;
    let mds = metadata_server(vec![("ya29.t", 3600)]).await;
    let sm = Server::start(|_, seen: &Seen| {
        if seen.path.contains("/secrets/denied/") {
            google_error(
                403,
                "PERMISSION_DENIED",
                "Permission 'secretmanager.versions.access' denied for resource 'projects/p/secrets/denied/versions/latest'.",
            )
        } else if seen.path.contains("/secrets/missing/") {
            google_error(404, "NOT_FOUND", "Secret [projects/p/secrets/missing] not found or has no versions.")
        } else {
            // A payload damaged in transit: its checksum does not match.
            let mut v = access_response("projects/p/secrets/damaged/versions/latest", b"sk-DAMAGED-VALUE");
            v["payload"]["dataCrc32c"] = json!("12345");
            json_response(200, v)
        }
    })
    .await;
    let auth = GoogleAuth::metadata_server(&mds.base).unwrap();
    let (client, base) = (gcp_sm::client().unwrap(), sm.base.parse().unwrap());
    let read = |secret: &'static str| {
        let (client, base, auth) = (&client, &base, &auth);
        async move {
            let name = format!("projects/p/secrets/{secret}/versions/latest");
            gcp_sm::read(client, base, auth, "LLM_BACKUP_API_KEY_SECRET", &name).await.err().expect("an error")
        }
    };

    let e = read("denied").await;
    assert_eq!((e.kind(), e.code()), (ErrorKind::Forbidden, "secret_forbidden"));
    assert!(
        e.message().starts_with(
            "LLM_BACKUP_API_KEY_SECRET: cannot read Google Secret Manager secret `projects/p/secrets/denied/versions/latest`: PERMISSION_DENIED (HTTP 403)"
        ),
        "{}",
        e.message()
    );
    let e = read("missing").await;
    assert_eq!((e.kind(), e.code()), (ErrorKind::NotFound, "secret_not_found"));
    assert!(e.message().contains("`projects/p/secrets/missing/versions/latest`: NOT_FOUND (HTTP 404)"));
    let e = read("damaged").await;
    assert!(e.message().contains("CRC32C") && !e.message().contains("DAMAGED-VALUE"), "{}", e.message());
    assert!(!format!("{e:?}").contains("DAMAGED-VALUE"));
    assert_eq!(sm.hits(), 3, "client errors and a bad checksum are not retried");
}

// ------------------------------------------------------------------- Vertex AI

#[cfg(any(feature = "gcs", feature = "pubsub"))]
#[tokio::test]
async fn vertex_gets_and_refreshes_adc_tokens_before_they_expire() {
    use super::providers::{Gemini, Hosted};
    use crate::gcp::GoogleAuth;
    // google-cloud-auth refreshes a token 4 minutes before it expires: one that lives
    // 241 s is replaced about a second after it was fetched, still valid.
    let mds = metadata_server(vec![("ya29.first", 241), ("ya29.second", 3600)]).await;
    let srv = Server::start(|n, _| {
        if n == 0 {
            json_response(200, gemini_answer("one", "STOP"))
        } else {
            let body = format!("data: {}\n\n", gemini_answer("two", "STOP"));
            axum::response::Response::builder()
                .header("content-type", "text/event-stream")
                .body(axum::body::Body::from(body))
                .unwrap()
        }
    })
    .await;
    let base = format!("{}/v1/projects/p1/locations/europe-west1/publishers/google/models", srv.base);
    let auth = GoogleAuth::metadata_server(&mds.base).unwrap();
    let m = Hosted::new(
        Gemini::vertex_with_google_auth(base.parse().unwrap(), "gemini-test", auth),
        super::tests::policy(),
        None,
    )
    .unwrap();

    assert_eq!(m.complete(&request()).await.unwrap().text, "one");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while mds.hits() < 2 {
        assert!(std::time::Instant::now() < deadline, "no second token was fetched");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (text, _, _) = collect(m.stream(&request()).await.unwrap()).await.unwrap();
    assert_eq!(text, "two");

    let (first, second) = (srv.request(0), srv.request(1));
    assert_eq!(
        first.path,
        "/v1/projects/p1/locations/europe-west1/publishers/google/models/gemini-test:generateContent"
    );
    assert_eq!(bearer(&first), Some("Bearer ya29.first"));
    assert_eq!(bearer(&second), Some("Bearer ya29.second"));
    assert!(first.headers.get("x-goog-api-key").is_none());
}

#[cfg(any(feature = "gcs", feature = "pubsub"))]
#[tokio::test]
async fn vertex_token_failures_are_typed_errors() {
    use super::providers::{Gemini, Hosted};
    use crate::gcp::GoogleAuth;
    // A metadata server that refuses: the call fails with a typed error, no panic.
    let mds = Server::start(|_, _| json_response(403, json!({"error": "forbidden"}))).await;
    let srv = Server::start(|_, _| json_response(200, gemini_answer("never", "STOP"))).await;
    let auth = GoogleAuth::metadata_server(&mds.base).unwrap();
    let m = Hosted::new(
        Gemini::vertex_with_google_auth(format!("{}/v1/models", srv.base).parse().unwrap(), "g", auth),
        super::tests::policy(),
        None,
    )
    .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(20), m.complete(&request())).await.unwrap().unwrap_err();
    assert_eq!(e.code(), "llm_auth_failed");
    assert!(e.message().starts_with("vertex: cannot get a Google access token"), "{}", e.message());
    assert_eq!(srv.hits(), 0);
}

// ---------------------------------------------------------- AWS Secrets Manager

#[cfg(feature = "secretsmanager")]
async fn moto_secret(config: &aws_config::SdkConfig, name: &str, value: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let out = client.create_secret().name(name).secret_string(value).send().await.expect("create secret on moto");
    out.arn().expect("moto returns the ARN").to_string()
}

#[cfg(feature = "secretsmanager")]
#[tokio::test]
async fn aws_secrets_manager_serves_keys_by_arn_and_name() {
    use crate::error::ErrorKind;
    use crate::secrets::{SecretRef, aws_sm, finish};
    let moto = crate::testkit::aws::Moto::start();
    let config = moto.config();
    let arn = moto_secret(&config, "catalyst/llm", " sk-plain-from-moto\n").await;
    moto_secret(&config, "catalyst/json", r#"{"api_key": "sk-json-from-moto"}"#).await;
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name("catalyst/binary")
        .secret_binary(aws_smithy_types::Blob::new(b"sk-binary-from-moto".to_vec()))
        .send()
        .await
        .unwrap();

    let read = |reference: &str| {
        let (config, reference) = (&config, SecretRef::parse(reference).unwrap());
        async move {
            let SecretRef::Aws { id, region } = &reference else { panic!("not an AWS reference") };
            let raw = aws_sm::read(config, "LLM_API_KEY_SECRET", id, region.as_deref()).await?;
            finish("LLM_API_KEY_SECRET", &reference, raw)
        }
    };
    assert!(arn.starts_with("arn:aws:secretsmanager:us-east-1:"), "{arn}");
    assert_eq!(read(&arn).await.unwrap().expose(), "sk-plain-from-moto");
    assert_eq!(read("catalyst/llm").await.unwrap().expose(), "sk-plain-from-moto");
    assert_eq!(read("catalyst/json").await.unwrap().expose(), "sk-json-from-moto");
    assert_eq!(read("catalyst/binary").await.unwrap().expose(), "sk-binary-from-moto");

    let e = read("catalyst/missing").await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::NotFound, "secret_not_found"));
    assert!(
        e.message().starts_with(
            "LLM_API_KEY_SECRET: cannot read AWS Secrets Manager secret `catalyst/missing`: ResourceNotFoundException"
        ),
        "{}",
        e.message()
    );
}

// ------------------------------------------------------------------ logs

#[cfg(all(feature = "secretsmanager", any(feature = "gcs", feature = "pubsub")))]
#[tokio::test(flavor = "current_thread")]
async fn secret_values_never_reach_the_logs() {
    use super::providers::{Gemini, Hosted};
    use crate::gcp::GoogleAuth;
    use crate::secrets::{SecretRef, aws_sm, finish, gcp_sm};
    use tracing_subscriber::layer::SubscriberExt;
    let capture = super::tests::Capture::default();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

    // AWS: the SDK's own logs, every level.
    let moto = crate::testkit::aws::Moto::start();
    let arn = moto_secret(&moto.config(), "catalyst/log-check", "sk-LOGCHECK-aws-value").await;
    let reference = SecretRef::parse(&arn).unwrap();
    let raw = aws_sm::read(&moto.config(), "LLM_API_KEY_SECRET", &arn, Some("us-east-1")).await.unwrap();
    assert_eq!(finish("LLM_API_KEY_SECRET", &reference, raw).unwrap().expose(), "sk-LOGCHECK-aws-value");

    // Google: a retried read, then the key used on a provider that echoes it in an error.
    let mds = metadata_server(vec![("ya29.log-token", 3600)]).await;
    let name = "projects/p/secrets/log-check/versions/latest";
    let sm = Server::start(move |n, _| match n {
        0 => google_error(500, "INTERNAL", "Internal error encountered."),
        _ => json_response(200, access_response(name, b"g-LOGCHECK-gcp-value")),
    })
    .await;
    let auth = GoogleAuth::metadata_server(&mds.base).unwrap();
    let raw = gcp_sm::read(&gcp_sm::client().unwrap(), &sm.base.parse().unwrap(), &auth, "LLM_API_KEY_SECRET", name)
        .await
        .unwrap();
    let key = finish("LLM_API_KEY_SECRET", &SecretRef::parse(name).unwrap(), raw).unwrap();
    let gemini = Server::start(|_, seen: &Seen| {
        let echoed = seen.headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        google_error(400, "INVALID_ARGUMENT", &format!("API key not valid: {echoed}"))
    })
    .await;
    let m = Chain::new(vec![Arc::new(
        Hosted::new(
            Gemini::new(
                format!("{}/v1beta", gemini.base).parse().unwrap(),
                "g",
                Some(ApiKey::new(key.expose())),
                false,
            ),
            super::tests::policy(),
            None,
        )
        .unwrap(),
    )])
    .unwrap();
    let e = m.complete(&request()).await.unwrap_err();
    assert!(e.message().contains("<redacted>"), "{}", e.message());
    assert_eq!(gemini.request(0).headers["x-goog-api-key"], "g-LOGCHECK-gcp-value");

    let seen = capture.0.lock().unwrap().clone();
    let all = format!("{seen:?}");
    assert!(all.contains("secret read failed; retrying") && all.contains(name), "the capture works: {all}");
    assert!(all.contains("GetSecretValue"), "the SDK's logs were captured too");
    assert!(!all.contains("LOGCHECK"), "a secret value reached the log: {all}");
}

// --------------------------------------------------- the environment, end to end

/// The child half of the environment tests: the cold-start path exactly as a function
/// runs it, with every log line at every level written to stdout for the parent.
#[tokio::test]
#[ignore = "run by the environment tests in a child process, with their environment"]
async fn env_child() {
    let Ok(expect) = std::env::var("CATALYST_TEST_CHILD_EXPECT") else { return };
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let config = LlmConfig::from_env("/nonexistent".into()).unwrap_or_else(|e| panic!("{}: {}", e.var, e.message));
    let model = from_config(&config).await.unwrap_or_else(|e| panic!("building: {}", e.message()));
    let answer = model.complete(&request()).await.unwrap_or_else(|e| panic!("calling: {}", e.message()));
    assert_eq!(answer.text, expect);
}

/// Run [`env_child`] in a child process with only `env` (and a home of its own: no
/// cloud configuration files); its output, both streams.
async fn run_child(env: &[(&str, String)]) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["llm::secret_tests::env_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.path().join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("aws-credentials"))
        .env("LLM_MAX_RETRIES", "0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output()).await.expect("child timed out").unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child failed ({}):\n{text}", out.status);
    assert!(text.contains("1 passed"), "the child test did not run:\n{text}");
    text
}

#[cfg(feature = "secretsmanager")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_aws_secret_arn_becomes_the_providers_key() {
    let moto = crate::testkit::aws::Moto::start();
    let arn = moto_secret(&moto.config(), "catalyst/llm", r#"{"api_key": "sk-ant-ENV-FROM-MOTO"}"#).await;
    let srv = Server::start(|_, _| {
        json_response(200, anthropic_answer(json!([{"type": "text", "text": "from anthropic"}]), "end_turn"))
    })
    .await;
    let log = run_child(&[
        ("CATALYST_TEST_CHILD_EXPECT", "from anthropic".into()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.url()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("LLM_PROVIDER", "anthropic".into()),
        ("LLM_URL", format!("{}/v1", srv.base)),
        ("LLM_MODEL", "claude-test".into()),
        ("LLM_API_KEY_SECRET", arn.clone()),
    ])
    .await;
    assert_eq!(srv.request(0).headers["x-api-key"], "sk-ant-ENV-FROM-MOTO");
    assert!(log.contains("secret read from AWS Secrets Manager") && log.contains(&arn), "{log}");
    assert!(!log.contains("ENV-FROM-MOTO"), "the key reached the log:\n{log}");
}

#[cfg(any(feature = "gcs", feature = "pubsub"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_gcp_secret_and_vertex_adc_use_the_metadata_server() {
    let mds = metadata_server(vec![("ya29.child-token", 3600)]).await;
    let name = "projects/p/secrets/gemini-key/versions/latest";
    let sm = Server::start(move |_, seen: &Seen| {
        if bearer(seen) != Some("Bearer ya29.child-token") {
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
        }
        json_response(200, access_response(name, b"g-ENV-FROM-SECRET-MANAGER"))
    })
    .await;
    // The primary (Gemini, keyed from Secret Manager) is down; the fallback is Vertex AI
    // with no key at all.
    let gemini = Server::start(|_, _| google_error(503, "UNAVAILABLE", "overloaded")).await;
    let vertex = Server::start(|_, _| json_response(200, gemini_answer("from vertex", "STOP"))).await;
    let log = run_child(&[
        ("CATALYST_TEST_CHILD_EXPECT", "from vertex".into()),
        ("GCE_METADATA_HOST", mds.base.trim_start_matches("http://").into()),
        ("CATALYST_SECRET_MANAGER_URL", sm.base.clone()),
        ("LLM_PROVIDER", "gemini".into()),
        ("LLM_URL", format!("{}/v1beta", gemini.base)),
        ("LLM_MODEL", "gemini-test".into()),
        ("LLM_API_KEY_SECRET", "projects/p/secrets/gemini-key".into()),
        ("LLM_FALLBACKS", "vertex".into()),
        ("LLM_VERTEX_PROVIDER", "vertex".into()),
        ("LLM_VERTEX_URL", format!("{}/v1/projects/p/locations/l/publishers/google/models", vertex.base)),
        ("LLM_VERTEX_MODEL", "gemini-test".into()),
    ])
    .await;
    assert_eq!(sm.request(0).path, format!("/v1/{name}:access"));
    assert_eq!(gemini.request(0).headers["x-goog-api-key"], "g-ENV-FROM-SECRET-MANAGER");
    assert_eq!(bearer(&vertex.request(0)), Some("Bearer ya29.child-token"));
    assert!(vertex.request(0).headers.get("x-goog-api-key").is_none());
    assert_eq!(mds.request(0).headers["metadata-flavor"], "Google");
    assert!(log.contains("secret read from Google Secret Manager") && log.contains(name), "{log}");
    assert!(!log.contains("ENV-FROM-SECRET-MANAGER"), "the key reached the log:\n{log}");
    assert!(!log.contains("ya29.child-token"), "the access token reached the log:\n{log}");
}
