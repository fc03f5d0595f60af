//! The parse function in Lambda mode over real S3 and SQS protocol servers (moto): an
//! upload raises an S3 ObjectCreated notification into SQS, exactly as S3 sends it; that
//! event, delivered twice, is parsed once, with the result written back to S3. And
//! optimize's LLM key, read from Secrets Manager (moto) at cold start.

use aws_sdk_s3::types::{
    BucketVersioningStatus, Event, FilterRule, FilterRuleName, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter, VersioningConfiguration,
};
use bytes::Bytes;
use catalyst_e2e::lambda_api::{Outcome, RuntimeApi};
use catalyst_e2e::{Proc, bin, models_dir};
use catalyst_shared::blob::{BlobStore, PutOptions, s3::S3BlobStore};
use catalyst_shared::queue::{Queue, sqs::SqsQueue};
use catalyst_shared::testkit::aws::{Moto, s3_client};
use std::collections::HashMap;
use std::time::Duration;

const RESUME: &str = "Ada Lovelace\nada@example.com | +44 20 7946 0958\n\nEXPERIENCE\nAnalyst, Analytical Engine Co. (1842 - 1843)\n- Wrote the first published algorithm for a machine\n\nEDUCATION\nPrivate tutoring in mathematics, 1835\n\nSKILLS\nMathematics, Algorithms\n";

#[tokio::test]
async fn an_s3_notification_delivered_twice_is_parsed_once() {
    let moto = Moto::start();
    let config = moto.config();
    let s3 = s3_client(&config);
    s3.create_bucket().bucket("uploads").send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket("uploads")
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs_client(&config);
    sqs.create_queue().queue_name("catalyst-uploads").send().await.unwrap();
    notify_uploads_queue(&s3).await;

    // The candidate's upload, through the blob port's S3 adapter.
    let blob = S3BlobStore::with_config(&config, "uploads", "");
    blob.put(
        "uploads/resumes/u_1/cv.txt",
        Bytes::from_static(RESUME.as_bytes()),
        PutOptions::content_type("text/plain"),
    )
    .await
    .unwrap();

    // S3 put the notification on the queue (after its s3:TestEvent, which is skipped).
    let queue = SqsQueue::with_config(&config, "catalyst", 5);
    let mut notification = None;
    for _ in 0..50 {
        for d in queue.receive("uploads", 10, Duration::from_secs(30)).await.unwrap() {
            let body: serde_json::Value = serde_json::from_slice(&d.message.body).unwrap();
            if body.get("Records").is_some() {
                notification = Some(body);
            }
            queue.ack("uploads", &d.receipt).await.unwrap();
        }
        if notification.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let notification = notification.expect("S3 sent no ObjectCreated notification");
    // moto percent-encodes the whole key (S3 encodes less); the function decodes either.
    let key = notification["Records"][0]["s3"]["object"]["key"].as_str().unwrap();
    assert!(key.ends_with("cv.txt") && key.starts_with("uploads"), "{key}");

    // The parse binary in Lambda mode, its blob port on the same S3.
    let dir = tempfile::tempdir().unwrap();
    let (api, addr) = RuntimeApi::start().await;
    let _parse = Proc::start(&bin("parse"), &[], &parse_env(addr, &moto, dir.path()), dir.path());
    for delivery in 1..=2 {
        let outcome = api.call(notification.clone()).await;
        assert!(matches!(outcome, Outcome::Response(_)), "delivery {delivery}: {outcome:?}");
    }

    let parsed = blob.get("parsed/resumes/u_1/cv.txt.json").await.unwrap();
    let result: serde_json::Value = serde_json::from_slice(&parsed.data).unwrap();
    assert_eq!(result["resume"]["basics"]["name"], "Ada Lovelace", "{result}");
    assert_eq!(result["resume"]["basics"]["email"], "ada@example.com");
    // The redelivery wrote nothing: the bucket is versioned and the result has one version.
    let versions = s3.list_object_versions().bucket("uploads").prefix("parsed/").send().await.unwrap();
    assert_eq!(versions.versions().len(), 1, "{:?}", versions.versions());
    assert!(api.init_error().is_none());
}

fn aws_sdk_sqs_client(config: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

/// Lambda's SQS event source mapping, played by the test over real SQS (moto): receive a
/// batch, invoke the function with it, delete what succeeded and return the rest, as
/// `ReportBatchItemFailures` does. Only the failed message comes back, and after the
/// redrive policy's `maxReceiveCount` it sits in the dead-letter queue.
#[tokio::test]
async fn sqs_batches_return_only_failed_messages_until_they_are_dead_lettered() {
    use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
    let moto = Moto::start();
    let config = moto.config();
    let s3 = s3_client(&config);
    s3.create_bucket().bucket("uploads").send().await.unwrap();
    let sqs = aws_sdk_sqs_client(&config);
    let dlq = sqs.create_queue().queue_name("catalyst-uploads-dlq").send().await.unwrap().queue_url.unwrap();
    let queue = sqs
        .create_queue()
        .queue_name("catalyst-uploads")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:catalyst-uploads-dlq","maxReceiveCount":"2"}"#,
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    notify_uploads_queue(&s3).await;
    let blob = S3BlobStore::with_config(&config, "uploads", "");
    blob.put("uploads/resumes/u_1/good.txt", Bytes::from_static(RESUME.as_bytes()), PutOptions::default())
        .await
        .unwrap();
    // Bytes that claim to be a PDF and are not: a permanent failure.
    blob.put("uploads/resumes/u_1/broken.pdf", Bytes::from_static(b"%PDF-1.7\n\x00\x01garbage"), PutOptions::default())
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (api, addr) = RuntimeApi::start().await;
    let _parse = Proc::start(&bin("parse"), &[], &parse_env(addr, &moto, dir.path()), dir.path());

    let mut failed_ids = Vec::new();
    for round in 1..=3 {
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if round == 3 {
            assert!(messages.is_empty(), "the failed message should be in the DLQ by now: {messages:?}");
            break;
        }
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                let attrs: serde_json::Map<String, serde_json::Value> = m
                    .attributes()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_owned(), serde_json::Value::String(v.clone())))
                    .collect();
                serde_json::json!({
                    "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                    "attributes": attrs, "messageAttributes": {}, "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:catalyst-uploads",
                })
            })
            .collect();
        let Outcome::Response(response) = api.call(serde_json::json!({ "Records": records })).await else {
            panic!("round {round}: the batch itself failed")
        };
        let failures: Vec<String> = response["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
            .collect();
        // What the event source mapping does with the answer.
        for m in &messages {
            let id = m.message_id().unwrap().to_owned();
            if failures.contains(&id) {
                sqs.change_message_visibility()
                    .queue_url(&queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
            } else {
                sqs.delete_message()
                    .queue_url(&queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        if round == 1 {
            // Both uploads (and S3's test event) were in the batch; only the broken one failed.
            let bodies: Vec<&str> = messages.iter().filter_map(|m| m.body()).collect();
            assert!(bodies.iter().any(|b| b.contains("good.txt")), "{bodies:?}");
            assert_eq!(failures.len(), 1, "{response}");
            failed_ids = failures;
        } else {
            let bodies: Vec<(&str, &str)> =
                messages.iter().map(|m| (m.message_id().unwrap(), m.body().unwrap())).collect();
            assert_eq!(
                messages.len(),
                1,
                "only the failed message came back: {bodies:#?} (failed before: {failed_ids:?})"
            );
            assert_eq!(failures, failed_ids);
        }
    }
    let dead = sqs.receive_message().queue_url(&dlq).max_number_of_messages(10).send().await.unwrap();
    let dead = dead.messages.unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body().unwrap().contains("broken.pdf"));
    // The good resume was parsed; the broken one has its failure recorded for the user.
    assert!(blob.head("parsed/resumes/u_1/good.txt.json").await.is_ok());
    let broken: serde_json::Value =
        serde_json::from_slice(&blob.get("parsed/resumes/u_1/broken.pdf.json").await.unwrap().data).unwrap();
    assert!(broken["error"]["code"].is_string(), "{broken}");
}

fn parse_env(api: std::net::SocketAddr, moto: &Moto, dir: &std::path::Path) -> HashMap<String, String> {
    HashMap::from([
        ("AWS_LAMBDA_RUNTIME_API".to_owned(), api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), "parse".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(), "512".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION".to_owned(), "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_STREAM_NAME".to_owned(), "stream".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME".to_owned(), "/aws/lambda/parse".to_owned()),
        ("AWS_ENDPOINT_URL".to_owned(), moto.url()),
        ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned()),
        ("CATALYST_BLOB_URL".to_owned(), "s3://uploads/".to_owned()),
        ("CATALYST_DATA_DIR".to_owned(), dir.display().to_string()),
        ("CATALYST_MODELS_DIR".to_owned(), models_dir().display().to_string()),
    ])
}

/// S3 -> SQS ObjectCreated notifications for `uploads/resumes/`, as Terraform wires the
/// storage trigger: parse's own outputs must not notify.
async fn notify_uploads_queue(s3: &aws_sdk_s3::Client) {
    s3.put_bucket_notification_configuration()
        .bucket("uploads")
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn("arn:aws:sqs:us-east-1:123456789012:catalyst-uploads")
                        .events(Event::S3ObjectCreated)
                        .filter(resumes_only())
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
}

fn resumes_only() -> NotificationConfigurationFilter {
    NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(FilterRule::builder().name(FilterRuleName::Prefix).value("uploads/resumes/").build())
                .build(),
        )
        .build()
}

/// A browser's direct upload: parse (HTTP mode, blobs on s3s-fs, which checks SigV4)
/// hands out a presigned URL under the caller's folder, and a plain PUT to it lands.
#[tokio::test]
async fn parse_hands_out_presigned_upload_urls_that_s3_accepts() {
    use catalyst_shared::testkit::aws::S3sFs;
    let s3 = S3sFs::start();
    s3.create_bucket("uploads").await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = catalyst_e2e::local_env(dir.path());
    env.insert("CATALYST_AUTH".into(), "off".into());
    env.insert("CATALYST_BLOB_URL".into(), "s3://uploads/".into());
    env.insert("AWS_ENDPOINT_URL".into(), s3.url());
    env.insert("AWS_ACCESS_KEY_ID".into(), S3sFs::ACCESS_KEY.into());
    env.insert("AWS_SECRET_ACCESS_KEY".into(), S3sFs::SECRET_KEY.into());
    let parse = Proc::start_http(&bin("parse"), &[], env, dir.path()).await;
    let client = catalyst_e2e::client();
    let r = client
        .post(parse.url("/v1/parse/uploads"))
        .json(&serde_json::json!({"filename": "../My CV.txt", "content_type": "text/plain"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", parse.output());
    let ticket: serde_json::Value = r.json().await.unwrap();
    let key = ticket["key"].as_str().unwrap();
    assert!(key.starts_with("uploads/resumes/dev/") && key.ends_with("-My_CV.txt"), "{ticket}");
    assert!(ticket["result_key"].as_str().unwrap().starts_with("parsed/resumes/dev/"), "{ticket}");
    assert_eq!(ticket["method"], "PUT");
    let mut put = client.put(ticket["url"].as_str().unwrap()).body(RESUME);
    for (k, v) in ticket["headers"].as_object().unwrap() {
        put = put.header(k.as_str(), v.as_str().unwrap());
    }
    let response = put.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    let blob = S3BlobStore::with_config(&s3.config(), "uploads", "");
    assert_eq!(&blob.get(key).await.unwrap().data[..], RESUME.as_bytes());
}

/// optimize reads a hosted provider's API key from Secrets Manager at cold start, as the
/// agent does: a missing secret stops start-up (naming the variable) rather than the
/// first nightly run hours later. Secrets Manager is moto; the provider is never called.
#[tokio::test]
async fn optimize_reads_its_llm_secret_at_cold_start() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let env = |secret: &str| {
        let mut env = catalyst_e2e::local_env(dir.path());
        env.extend([
            ("AWS_ENDPOINT_URL".to_owned(), moto.url()),
            ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned()),
            ("CATALYST_AUTH".to_owned(), "off".to_owned()),
            ("LLM_URL".to_owned(), "http://127.0.0.1:9/v1".to_owned()),
            ("LLM_MODEL".to_owned(), "gpt-test".to_owned()),
            ("LLM_API_KEY_SECRET".to_owned(), secret.to_owned()),
        ]);
        env
    };

    let mut missing = Proc::start(&bin("optimize"), &[], &env("catalyst/llm-missing"), dir.path());
    let status = missing.wait_exit(Duration::from_secs(60)).await;
    assert!(!status.success(), "started without its secret:\n{}", missing.output());
    assert!(missing.output().contains("LLM_API_KEY_SECRET"), "{}", missing.output());

    // Secrets Manager's JSON protocol, as the SDK speaks it; moto reads the service and
    // region from the credential scope and checks no signature.
    let scope = "AWS4-HMAC-SHA256 Credential=testing/20261125/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0";
    let created = catalyst_e2e::client()
        .post(moto.url())
        .header("authorization", scope)
        .header("x-amz-target", "secretsmanager.CreateSecret")
        .header("content-type", "application/x-amz-json-1.1")
        .body(r#"{"Name": "catalyst/llm", "SecretString": "sk-test-from-secrets-manager"}"#)
        .send()
        .await
        .unwrap();
    let status = created.status();
    let body = created.text().await.unwrap();
    assert!(status.is_success() && body.contains("catalyst/llm"), "{status}: {body}");
    let ok = Proc::start_http(&bin("optimize"), &[], env("catalyst/llm"), dir.path()).await;
    assert_eq!(catalyst_e2e::get(ok.url("/healthz")).await.status(), 200);
    assert!(!ok.output().contains("sk-test-from-secrets-manager"), "the key reached the log");
}
