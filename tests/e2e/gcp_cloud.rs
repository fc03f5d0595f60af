//! The parse function as Cloud Run runs it, its blob port on GCS (fake-gcs-server on
//! 127.0.0.1): a structured CloudEvent for an object finalized under `uploads/resumes/`,
//! delivered twice (Eventarc delivers at least once), is parsed once.

use bytes::Bytes;
use catalyst_e2e::{Proc, bin, event, local_env};
use catalyst_shared::blob::gcs::{GcsBlobStore, GcsOptions};
use catalyst_shared::blob::{BlobStore, PutOptions};
use catalyst_shared::testkit::gcp::{create_bucket, fake_gcs, http_client};

const RESUME: &str = "Grace Hopper\ngrace@example.com\n\nEXPERIENCE\nRear Admiral, US Navy (1943 - 1986)\n- Led the team that wrote the first compiler\n\nSKILLS\nCOBOL, Compilers\n";

#[tokio::test]
async fn a_gcs_finalized_event_delivered_twice_is_parsed_once() {
    let gcs = fake_gcs();
    create_bucket(&gcs, "catalyst-uploads").await;
    let options = GcsOptions { endpoint: Some(gcs.url()), anonymous: true, ..GcsOptions::default() };
    let blob = GcsBlobStore::from_url_with(&"gs://catalyst-uploads/".parse().unwrap(), options).unwrap();
    blob.put(
        "uploads/resumes/u_7/cv.txt",
        Bytes::from_static(RESUME.as_bytes()),
        PutOptions::content_type("text/plain"),
    )
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut env = local_env(dir.path());
    env.insert("CATALYST_AUTH".into(), "off".into());
    env.insert("CATALYST_BLOB_URL".into(), "gs://catalyst-uploads/".into());
    env.insert("STORAGE_EMULATOR_HOST".into(), gcs.url());
    let parse = Proc::start_http(&bin("parse"), &[], env, dir.path()).await;

    // Eventarc's structured CloudEvent, naming our object.
    let mut ce = event("gcp/gcs-finalized-structured.json");
    ce["subject"] = "objects/uploads/resumes/u_7/cv.txt".into();
    ce["data"]["name"] = "uploads/resumes/u_7/cv.txt".into();
    ce["data"]["size"] = RESUME.len().to_string().into();
    let client = catalyst_e2e::client();
    let mut generations = Vec::new();
    for delivery in 1..=2 {
        let r = client
            .post(parse.url("/"))
            .header("content-type", "application/cloudevents+json")
            .body(serde_json::to_vec(&ce).unwrap())
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert!(status.is_success(), "delivery {delivery}: {status} {}\n{}", r.text().await.unwrap(), parse.output());
        // The result's generation: a write would make a new one.
        let meta: serde_json::Value = http_client()
            .get(format!("{}/storage/v1/b/catalyst-uploads/o/parsed%2Fresumes%2Fu_7%2Fcv.txt.json", gcs.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        generations.push(meta["generation"].as_str().expect("parsed result exists").to_owned());
    }
    assert_eq!(generations[0], generations[1], "the redelivery rewrote the result");
    let result: serde_json::Value =
        serde_json::from_slice(&blob.get("parsed/resumes/u_7/cv.txt.json").await.unwrap().data).unwrap();
    assert_eq!(result["resume"]["basics"]["name"], "Grace Hopper", "{result}");
}
