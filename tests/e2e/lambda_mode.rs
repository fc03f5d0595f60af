//! Function binaries in Lambda mode against a Runtime API server on 127.0.0.1.

use catalyst_e2e::lambda_api::{Outcome, RuntimeApi};
use catalyst_e2e::{Proc, bin, event};
use catalyst_shared::store::DocumentStore;
use std::collections::HashMap;

fn lambda_env(api: std::net::SocketAddr, name: &str, data: &std::path::Path) -> HashMap<String, String> {
    HashMap::from([
        ("AWS_LAMBDA_RUNTIME_API".into(), api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), name.into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "256".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), "stream".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME".into(), format!("/aws/lambda/{name}")),
        ("CATALYST_DATA_DIR".into(), data.display().to_string()),
    ])
}

/// A function whose models are missing stops at start-up and tells Lambda why.
#[tokio::test]
async fn start_up_failures_are_reported_to_the_runtime_api() {
    let dir = tempfile::tempdir().unwrap();
    let (api, addr) = RuntimeApi::start().await;
    let mut env = lambda_env(addr, "agent", dir.path());
    env.insert("CATALYST_MODELS_DIR".into(), dir.path().join("no-models").display().to_string());
    let mut p = Proc::start(&bin("agent"), &[], &env, dir.path());
    let status = p.wait_exit(std::time::Duration::from_secs(30)).await;
    assert!(!status.success());
    let err = api.init_error().expect("the init error was reported");
    assert_eq!(err["errorType"], "Runtime.InitError");
    assert!(err["errorMessage"].as_str().unwrap().contains("MINILM_MODEL"), "{err}");
}

#[tokio::test]
async fn api_gateway_requests_use_the_authorizer_principal() {
    let dir = tempfile::tempdir().unwrap();
    let (api, addr) = RuntimeApi::start().await;
    // `auth` needs no model files, so this stays about the Lambda path alone.
    let _p = Proc::start(&bin("auth"), &[], &lambda_env(addr, "auth", dir.path()), dir.path());

    // API Gateway v2 with the authorizer's context: the principal is u_123.
    let mut req = event("aws/apigw-v2-request.json");
    req["rawPath"] = "/v1/auth/whoami".into();
    req["routeKey"] = "GET /v1/auth/whoami".into();
    req["requestContext"]["http"]["method"] = "GET".into();
    req["requestContext"]["http"]["path"] = "/v1/auth/whoami".into();
    req["body"] = serde_json::Value::Null;
    let Outcome::Response(resp) = api.call(req).await else { panic!("expected a response") };
    assert_eq!(resp["statusCode"], 200, "{resp}");
    let body: serde_json::Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["principal"]["uid"], "u_123", "{body}");

    // A function URL has no gateway authorizer: without a credential it is 401.
    let mut req = event("aws/function-url-request.json");
    req["rawPath"] = "/v1/auth/whoami".into();
    req["requestContext"]["http"]["method"] = "GET".into();
    req["requestContext"]["http"]["path"] = "/v1/auth/whoami".into();
    req["body"] = serde_json::Value::Null;
    let Outcome::Response(resp) = api.call(req).await else { panic!("expected a response") };
    assert_eq!(resp["statusCode"], 401, "{resp}");

    // API Gateway v1 and ALB shapes reach the same router (an unknown route is a JSON 404).
    for file in ["aws/apigw-v1-request.json", "aws/alb-request.json"] {
        let Outcome::Response(resp) = api.call(event(file)).await else { panic!("expected a response") };
        let status = resp["statusCode"].as_u64().unwrap();
        assert!(status == 404 || status == 401, "{file}: {resp}");
    }

    // Health answers through Lambda too.
    let mut req = event("aws/function-url-request.json");
    req["rawPath"] = "/healthz".into();
    req["requestContext"]["http"]["method"] = "GET".into();
    req["requestContext"]["http"]["path"] = "/healthz".into();
    let Outcome::Response(resp) = api.call(req).await else { panic!("expected a response") };
    assert_eq!(resp["statusCode"], 200);
    assert!(api.init_error().is_none());
}

#[tokio::test]
async fn schedules_sqs_batches_and_unhandled_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let (api, addr) = RuntimeApi::start().await;
    let _p = Proc::start(&bin("optimize"), &[], &lambda_env(addr, "optimize", dir.path()), dir.path());

    // EventBridge schedule: the run is recorded, and a redelivery records nothing new.
    for _ in 0..2 {
        let outcome = api.call(event("aws/eventbridge-scheduled.json")).await;
        assert!(matches!(outcome, Outcome::Response(serde_json::Value::Null)), "{outcome:?}");
    }
    let store = catalyst_shared::store::local::SqliteDocumentStore::open(dir.path().join("store.db")).unwrap();
    assert_eq!(store.query_prefix("optimize_runs", "", None, 10).await.unwrap().documents.len(), 1);

    // SQS batch of messages that are not optimize steps: every message is reported as a
    // batch item failure, so SQS returns exactly those to the queue (and its DLQ).
    let batch = event("aws/sqs-batch.json");
    let ids: Vec<String> =
        batch["Records"].as_array().unwrap().iter().map(|r| r["messageId"].as_str().unwrap().to_string()).collect();
    let Outcome::Response(resp) = api.call(batch).await else { panic!("expected a batch response") };
    let failed: Vec<String> = resp["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(failed, ids);

    // S3 event to a function without a storage trigger: an invocation error, not a crash.
    let outcome = api.call(event("aws/s3-put-resume.json")).await;
    assert!(matches!(outcome, Outcome::Error { .. }), "{outcome:?}");
    // Unknown payload shape.
    let outcome = api.call(serde_json::json!({"hello": "world"})).await;
    let Outcome::Error { body, .. } = outcome else { panic!("expected an error") };
    assert!(body.to_string().contains("invalid_event"), "{body}");

    // The runtime is still serving after all of that.
    let outcome = api.call(event("aws/eventbridge-scheduled.json")).await;
    assert!(matches!(outcome, Outcome::Response(_)));
}
