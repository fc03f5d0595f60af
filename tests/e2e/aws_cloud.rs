//! The parse function in Lambda mode over real S3 and SQS protocol servers (moto): an
//! upload raises an S3 ObjectCreated notification into SQS, exactly as S3 sends it; that
//! event, delivered twice, is parsed once, with the result written back to S3.

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
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(FilterRule::builder().name(FilterRuleName::Prefix).value("uploads/resumes/").build())
                .build(),
        )
        .build();
    s3.put_bucket_notification_configuration()
        .bucket("uploads")
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn("arn:aws:sqs:us-east-1:123456789012:catalyst-uploads")
                        .events(Event::S3ObjectCreated)
                        .filter(filter)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

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
    let env = HashMap::from([
        ("AWS_LAMBDA_RUNTIME_API".to_owned(), addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), "parse".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(), "512".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION".to_owned(), "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_STREAM_NAME".to_owned(), "stream".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME".to_owned(), "/aws/lambda/parse".to_owned()),
        ("AWS_ENDPOINT_URL".to_owned(), moto.url()),
        ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned()),
        ("CATALYST_BLOB_URL".to_owned(), "s3://uploads/".to_owned()),
        ("CATALYST_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("CATALYST_MODELS_DIR".to_owned(), models_dir().display().to_string()),
    ]);
    let _parse = Proc::start(&bin("parse"), &[], &env, dir.path());
    for delivery in 1..=2 {
        let outcome = api.call(notification.clone()).await;
        assert!(matches!(outcome, Outcome::Response(_)), "delivery {delivery}: {outcome:?}");
    }

    let parsed = blob.get("parsed/resumes/u_1/cv.json").await.unwrap();
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
