//! Trigger payloads of both clouds, normalized.
//!
//! A function handles three kinds of non-HTTP trigger — an object landing in storage, a
//! queue message, a schedule firing — and must not care which cloud sent it. The parsers
//! here take the providers' own payloads (via `aws_lambda_events` and the CloudEvents SDK
//! where they fit) and produce one type per trigger.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::SqsEvent;
use base64::Engine;
use chrono::{DateTime, Utc};
use cloudevents::AttributesReader;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Which system delivered a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Aws,
    Gcp,
    Local,
}

/// An object was created (or overwritten) in a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCreated {
    pub origin: Origin,
    pub bucket: String,
    /// The object key, decoded (S3 notifications URL-encode it).
    pub key: String,
    pub size: Option<u64>,
    /// Content identity: S3 ETag, GCS etag/md5, local content hash. Idempotency keys use it.
    pub etag: Option<String>,
    pub content_type: Option<String>,
    /// Orders events for one key: S3 sequencer, GCS generation.
    pub sequencer: Option<String>,
    pub time: Option<DateTime<Utc>>,
}

impl ObjectCreated {
    /// A stable identity of this object version, for idempotent processing: the same
    /// object delivered twice gives the same key.
    pub fn version_key(&self) -> String {
        let version = self.etag.as_deref().or(self.sequencer.as_deref()).unwrap_or("");
        format!("{}/{}#{}", self.bucket, self.key, version.trim_matches('"'))
    }
}

/// One message from a queue or topic subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueMessage {
    pub origin: Origin,
    /// Provider message id; stable across redeliveries, so handlers can de-duplicate on it.
    pub id: String,
    /// Queue or subscription name.
    pub queue: String,
    pub body: Vec<u8>,
    /// String attributes (SQS message attributes, Pub/Sub attributes), e.g. `traceparent`.
    pub attributes: BTreeMap<String, String>,
    /// How many times this message has been delivered, 1 on first delivery, when known.
    pub attempt: Option<u32>,
    pub published: Option<DateTime<Utc>>,
}

impl QueueMessage {
    /// The body as JSON of type `T`, with a clear error when it is not.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::bad_request(format!("queue message {} is not the expected JSON: {e}", self.id))
                .with_code("invalid_message")
        })
    }
}

/// A schedule fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scheduled {
    pub origin: Origin,
    pub id: String,
    /// Rule or job name, e.g. `catalyst-optimize-nightly`.
    pub schedule: String,
    pub time: DateTime<Utc>,
    /// Whatever input the schedule was configured with (`{}` when none).
    pub payload: serde_json::Value,
}

/// The shapes a Lambda invocation payload can take, told apart by their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaShape {
    /// API Gateway v1/v2, function URL or ALB request: handled as HTTP.
    Http,
    /// API Gateway HTTP API REQUEST authorizer (payload 2.0) or REST TOKEN/REQUEST authorizer.
    Authorizer,
    S3,
    Sqs,
    Scheduled,
    Unknown,
}

/// Decide what a Lambda payload is from its shape.
pub fn lambda_shape(v: &serde_json::Value) -> LambdaShape {
    let s = |p: &str| v.pointer(p).and_then(|x| x.as_str());
    if let Some(source) = s("/Records/0/eventSource").or_else(|| s("/Records/0/EventSource")) {
        return match source {
            "aws:s3" => LambdaShape::S3,
            "aws:sqs" => LambdaShape::Sqs,
            _ => LambdaShape::Unknown,
        };
    }
    if matches!(s("/type"), Some("REQUEST") | Some("TOKEN"))
        && (v.get("routeArn").is_some() || v.get("methodArn").is_some())
    {
        return LambdaShape::Authorizer;
    }
    if v.get("detail-type").is_some() && v.get("source").is_some() {
        return LambdaShape::Scheduled;
    }
    if v.get("httpMethod").is_some()
        || v.pointer("/requestContext/http/method").is_some()
        || v.pointer("/requestContext/elb").is_some()
    {
        return LambdaShape::Http;
    }
    LambdaShape::Unknown
}

/// S3 ObjectCreated notifications (delivered to Lambda directly, or wrapped in SQS/SNS).
pub fn from_s3_event(mut payload: serde_json::Value) -> Result<Vec<ObjectCreated>> {
    // S3-compatible servers (moto, MinIO) leave out parts of a record we never read but the
    // aws_lambda_events type requires; fill them in rather than refuse a usable event.
    if let Some(records) = payload.get_mut("Records").and_then(|r| r.as_array_mut()) {
        for record in records.iter_mut().filter_map(|r| r.as_object_mut()) {
            for field in ["userIdentity", "requestParameters", "responseElements"] {
                record.entry(field).or_insert_with(|| serde_json::json!({}));
            }
        }
    }
    let event: S3Event = serde_json::from_value(payload)
        .map_err(|e| Error::bad_request(format!("not an S3 event: {e}")).with_code("invalid_event"))?;
    let mut out = Vec::new();
    for r in event.records {
        let name = r.event_name.as_deref().unwrap_or("");
        // S3 also sends ObjectRemoved, replication and test events; only creations matter here.
        if !name.starts_with("ObjectCreated:") {
            continue;
        }
        let bucket =
            r.s3.bucket
                .name
                .ok_or_else(|| Error::bad_request("S3 record without bucket name").with_code("invalid_event"))?;
        let raw_key =
            r.s3.object
                .key
                .ok_or_else(|| Error::bad_request("S3 record without object key").with_code("invalid_event"))?;
        out.push(ObjectCreated {
            origin: Origin::Aws,
            bucket,
            key: decode_s3_key(&raw_key)?,
            size: r.s3.object.size.and_then(|s| u64::try_from(s).ok()),
            etag: r.s3.object.e_tag,
            content_type: None,
            sequencer: r.s3.object.sequencer,
            time: Some(r.event_time),
        });
    }
    Ok(out)
}

/// S3 event keys are form-URL-encoded (`+` for space, `%XX` for the rest).
fn decode_s3_key(key: &str) -> Result<String> {
    let plus_decoded = key.replace('+', " ");
    url::form_urlencoded::parse(format!("k={}", plus_decoded.replace('&', "%26").replace('=', "%3D")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| Error::bad_request(format!("undecodable S3 key `{key}`")).with_code("invalid_event"))
}

/// An SQS batch, one message per record. Message attributes of type String become attributes.
pub fn from_sqs_event(payload: serde_json::Value) -> Result<Vec<QueueMessage>> {
    let event: SqsEvent = serde_json::from_value(payload)
        .map_err(|e| Error::bad_request(format!("not an SQS event: {e}")).with_code("invalid_event"))?;
    event
        .records
        .into_iter()
        .map(|m| {
            let id = m
                .message_id
                .ok_or_else(|| Error::bad_request("SQS record without messageId").with_code("invalid_event"))?;
            let queue = m.event_source_arn.as_deref().and_then(|arn| arn.rsplit(':').next()).unwrap_or("").to_string();
            let attributes =
                m.message_attributes.into_iter().filter_map(|(k, a)| a.string_value.map(|v| (k, v))).collect();
            let attempt = m.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok());
            let published = m
                .attributes
                .get("SentTimestamp")
                .and_then(|t| t.parse::<i64>().ok())
                .and_then(DateTime::from_timestamp_millis);
            Ok(QueueMessage {
                origin: Origin::Aws,
                id,
                queue,
                body: m.body.unwrap_or_default().into_bytes(),
                attributes,
                attempt,
                published,
            })
        })
        .collect()
}

/// EventBridge scheduled events (rules) and EventBridge Scheduler invocations.
pub fn from_eventbridge(payload: serde_json::Value) -> Result<Scheduled> {
    let event: EventBridgeEvent<serde_json::Value> = serde_json::from_value(payload)
        .map_err(|e| Error::bad_request(format!("not an EventBridge event: {e}")).with_code("invalid_event"))?;
    let schedule = event
        .resources
        .as_ref()
        .and_then(|r| r.first())
        .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_string())
        .unwrap_or_else(|| event.detail_type.clone());
    Ok(Scheduled {
        origin: Origin::Aws,
        id: event.id.unwrap_or_default(),
        schedule,
        time: event.time.unwrap_or_else(Utc::now),
        payload: event.detail,
    })
}

/// What a CloudEvent (GCS or Pub/Sub through Eventarc) turned into.
#[derive(Debug, Clone, PartialEq)]
pub enum CloudEventTrigger {
    Object(ObjectCreated),
    Message(QueueMessage),
}

pub const GCS_FINALIZED: &str = "google.cloud.storage.object.v1.finalized";
pub const PUBSUB_PUBLISHED: &str = "google.cloud.pubsub.topic.v1.messagePublished";

/// A CloudEvent in binary (`ce-*` headers) or structured (`application/cloudevents+json`) mode.
pub fn from_cloudevent_http(headers: &http::HeaderMap, body: Vec<u8>) -> Result<CloudEventTrigger> {
    let mut event = cloudevents::binding::http::to_event(headers, body)
        .map_err(|e| Error::bad_request(format!("not a CloudEvent: {e}")).with_code("invalid_event"))?;
    let ty = event.ty().to_string();
    let id = event.id().to_string();
    let source = event.source().to_string();
    let time = event.time().cloned();
    let (_, _, data) = event.take_data();
    let data: serde_json::Value = match data {
        Some(cloudevents::Data::Json(v)) => v,
        Some(cloudevents::Data::Binary(b)) => serde_json::from_slice(&b)?,
        Some(cloudevents::Data::String(s)) => serde_json::from_str(&s)?,
        None => return Err(Error::bad_request(format!("CloudEvent {id} has no data")).with_code("invalid_event")),
    };
    match ty.as_str() {
        GCS_FINALIZED => Ok(CloudEventTrigger::Object(gcs_object(data, time)?)),
        PUBSUB_PUBLISHED => {
            let envelope: PubSubEnvelope = serde_json::from_value(data).map_err(|e| {
                Error::bad_request(format!("Pub/Sub CloudEvent without a message: {e}")).with_code("invalid_event")
            })?;
            let mut msg = envelope.into_message()?;
            if msg.queue.is_empty() {
                msg.queue = source.rsplit('/').next().unwrap_or_default().to_string();
            }
            Ok(CloudEventTrigger::Message(msg))
        }
        other => {
            Err(Error::bad_request(format!("CloudEvent type `{other}` is not handled")).with_code("unsupported_event"))
        }
    }
}

/// GCS `StorageObjectData`; numbers arrive as strings.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GcsObjectData {
    bucket: String,
    name: String,
    #[serde(default)]
    size: Option<serde_json::Value>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    md5_hash: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    generation: Option<serde_json::Value>,
    #[serde(default)]
    time_created: Option<DateTime<Utc>>,
}

fn gcs_object(data: serde_json::Value, time: Option<DateTime<Utc>>) -> Result<ObjectCreated> {
    let d: GcsObjectData = serde_json::from_value(data).map_err(|e| {
        Error::bad_request(format!("GCS event data is not a storage object: {e}")).with_code("invalid_event")
    })?;
    let num = |v: Option<serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Ok(ObjectCreated {
        origin: Origin::Gcp,
        bucket: d.bucket,
        key: d.name,
        size: num(d.size).and_then(|s| s.parse().ok()),
        etag: d.md5_hash.or(d.etag),
        content_type: d.content_type,
        sequencer: num(d.generation),
        time: d.time_created.or(time),
    })
}

/// The JSON a Pub/Sub push subscription POSTs (also the data of a messagePublished CloudEvent).
#[derive(Debug, Deserialize)]
pub struct PubSubEnvelope {
    pub message: PubSubMessage,
    #[serde(default)]
    pub subscription: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PubSubMessage {
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub attributes: Option<BTreeMap<String, String>>,
    // Pub/Sub sends both spellings of these fields in the same message, so they cannot be
    // serde aliases (that is a duplicate-field error); read both and prefer camelCase.
    #[serde(rename = "messageId", default)]
    pub message_id: Option<String>,
    #[serde(rename = "message_id", default)]
    pub message_id_snake: Option<String>,
    #[serde(rename = "publishTime", default)]
    pub publish_time: Option<DateTime<Utc>>,
    #[serde(rename = "publish_time", default)]
    pub publish_time_snake: Option<DateTime<Utc>>,
    #[serde(rename = "deliveryAttempt", default)]
    pub delivery_attempt: Option<u32>,
}

impl PubSubEnvelope {
    pub fn into_message(self) -> Result<QueueMessage> {
        let m = self.message;
        let body = match m.data {
            None => Vec::new(),
            Some(d) => base64::engine::general_purpose::STANDARD.decode(d.as_bytes()).map_err(|e| {
                Error::bad_request(format!("Pub/Sub data is not base64: {e}")).with_code("invalid_event")
            })?,
        };
        let id = m
            .message_id
            .ok_or_else(|| Error::bad_request("Pub/Sub message without messageId").with_code("invalid_event"))?;
        let queue =
            self.subscription.as_deref().map(|s| s.rsplit('/').next().unwrap_or(s).to_string()).unwrap_or_default();
        Ok(QueueMessage {
            origin: Origin::Gcp,
            id,
            queue,
            body,
            attributes: m.attributes.unwrap_or_default(),
            attempt: m.delivery_attempt,
            published: m.publish_time.or(m.publish_time_snake),
        })
    }
}

/// A Cloud Storage Pub/Sub notification (`google_storage_notification` with an object-name
/// prefix: how Google Cloud filters storage events by prefix, which Eventarc's direct
/// Cloud Storage triggers cannot). `None` if `msg` is not one; `Some(Ok(None))` for
/// notifications other than a finalized object (deletes, metadata updates), which need no work.
pub fn gcs_notification(msg: &QueueMessage) -> Option<Result<Option<ObjectCreated>>> {
    let event_type = msg.attributes.get("eventType")?;
    msg.attributes.get("objectId")?;
    if event_type != "OBJECT_FINALIZE" {
        return Some(Ok(None));
    }
    let parsed = serde_json::from_slice::<serde_json::Value>(&msg.body)
        .map_err(|e| {
            Error::bad_request(format!("Cloud Storage notification data is not JSON: {e}")).with_code("invalid_event")
        })
        .and_then(|data| gcs_object(data, msg.published));
    Some(parsed.map(Some))
}

/// A Pub/Sub push request body.
pub fn from_pubsub_push(body: &[u8]) -> Result<QueueMessage> {
    let envelope: PubSubEnvelope = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("not a Pub/Sub push envelope: {e}")).with_code("invalid_event"))?;
    envelope.into_message()
}

/// Whether a request comes from Cloud Scheduler (it sets these headers on HTTP targets).
pub fn is_cloud_scheduler(headers: &http::HeaderMap) -> bool {
    headers.get("x-cloudscheduler").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
}

/// A Cloud Scheduler HTTP call: job name and schedule time from its headers, the body as payload.
pub fn from_cloud_scheduler(headers: &http::HeaderMap, body: &[u8]) -> Result<Scheduled> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let schedule = header("x-cloudscheduler-jobname").unwrap_or("cloud-scheduler").to_string();
    let time = header("x-cloudscheduler-scheduletime")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now);
    let payload = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| {
            Error::bad_request(format!("Cloud Scheduler body is not JSON: {e}")).with_code("invalid_event")
        })?
    };
    Ok(Scheduled { origin: Origin::Gcp, id: format!("{schedule}@{}", time.to_rfc3339()), schedule, time, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_keys_are_decoded() {
        assert_eq!(decode_s3_key("uploads/resumes/u_1/My+CV%281%29.pdf").unwrap(), "uploads/resumes/u_1/My CV(1).pdf");
        assert_eq!(decode_s3_key("a%2Bb%26c%3Dd").unwrap(), "a+b&c=d");
        assert_eq!(decode_s3_key("a&b=c").unwrap(), "a&b=c");
    }

    #[test]
    fn shapes_are_told_apart() {
        let j = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(lambda_shape(&j(r#"{"Records":[{"eventSource":"aws:s3"}]}"#)), LambdaShape::S3);
        assert_eq!(lambda_shape(&j(r#"{"Records":[{"eventSource":"aws:sqs"}]}"#)), LambdaShape::Sqs);
        assert_eq!(lambda_shape(&j(r#"{"version":"2.0","type":"REQUEST","routeArn":"x"}"#)), LambdaShape::Authorizer);
        assert_eq!(
            lambda_shape(&j(r#"{"detail-type":"Scheduled Event","source":"aws.events"}"#)),
            LambdaShape::Scheduled
        );
        assert_eq!(lambda_shape(&j(r#"{"httpMethod":"GET"}"#)), LambdaShape::Http);
        assert_eq!(lambda_shape(&j(r#"{"requestContext":{"http":{"method":"GET"}}}"#)), LambdaShape::Http);
        assert_eq!(lambda_shape(&j(r#"{"requestContext":{"elb":{}}}"#)), LambdaShape::Http);
        assert_eq!(lambda_shape(&j(r#"{"hello":1}"#)), LambdaShape::Unknown);
    }

    #[test]
    fn pubsub_push_decodes_data() {
        let body = br#"{"message":{"data":"eyJ1cmwiOiJ4In0=","attributes":{"traceparent":"t"},"messageId":"7","publishTime":"2026-01-01T00:00:00Z"},"subscription":"projects/p/subscriptions/s"}"#;
        let m = from_pubsub_push(body).unwrap();
        assert_eq!(m.body, br#"{"url":"x"}"#);
        assert_eq!(m.queue, "s");
        assert_eq!(m.id, "7");
        assert_eq!(m.attributes["traceparent"], "t");
    }

    #[test]
    fn gcs_pubsub_notifications_become_object_events() {
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD
            .encode(br#"{"bucket":"b","name":"uploads/audio/u/a.webm","size":"10","md5Hash":"abc","generation":"7","contentType":"audio/webm"}"#);
        let body = format!(
            r#"{{"message":{{"data":"{data}","attributes":{{"eventType":"OBJECT_FINALIZE","objectId":"uploads/audio/u/a.webm","bucketId":"b","payloadFormat":"JSON_API_V1"}},"messageId":"9"}},"subscription":"projects/p/subscriptions/s"}}"#
        );
        let msg = from_pubsub_push(body.as_bytes()).unwrap();
        let obj = gcs_notification(&msg).unwrap().unwrap().unwrap();
        assert_eq!(
            (obj.key.as_str(), obj.size, obj.sequencer.as_deref()),
            ("uploads/audio/u/a.webm", Some(10), Some("7"))
        );
        let mut deleted = msg.clone();
        deleted.attributes.insert("eventType".into(), "OBJECT_DELETE".into());
        assert!(gcs_notification(&deleted).unwrap().unwrap().is_none());
        let plain = QueueMessage { attributes: Default::default(), ..msg };
        assert!(gcs_notification(&plain).is_none());
    }

    #[test]
    fn bad_payloads_are_clear_errors() {
        assert_eq!(from_pubsub_push(b"{}").unwrap_err().code(), "invalid_event");
        assert_eq!(
            from_pubsub_push(br#"{"message":{"data":"!!","messageId":"1"}}"#).unwrap_err().code(),
            "invalid_event"
        );
        assert!(from_s3_event(serde_json::json!({"Records": "no"})).is_err());
        let h = http::HeaderMap::new();
        assert_eq!(from_cloudevent_http(&h, b"{}".to_vec()).unwrap_err().code(), "invalid_event");
    }

    /// Every sample payload in `events/` parses into what its trigger should produce.
    mod samples {
        use super::super::*;

        fn load(path: &str) -> serde_json::Value {
            let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(path);
            serde_json::from_str(&std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display())))
                .unwrap()
        }

        /// `{"headers", "body"}` wrapper of HTTP-delivered payloads.
        fn wrapped(path: &str) -> (http::HeaderMap, Vec<u8>) {
            let v = load(path);
            let mut headers = http::HeaderMap::new();
            for (k, val) in v["headers"].as_object().unwrap() {
                headers.insert(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    val.as_str().unwrap().parse().unwrap(),
                );
            }
            (headers, serde_json::to_vec(&v["body"]).unwrap())
        }

        #[test]
        fn aws_storage_queue_and_schedule() {
            for (file, key) in [
                ("aws/s3-put-resume.json", "uploads/resumes/u_123/resume.txt"),
                ("aws/s3-put-audio.json", "uploads/audio/u_123/answer-1.webm"),
            ] {
                let v = load(file);
                assert_eq!(lambda_shape(&v), LambdaShape::S3);
                let objs = from_s3_event(v).unwrap();
                assert_eq!(objs.len(), 1);
                assert_eq!(objs[0].bucket, "catalyst-uploads");
                assert_eq!(objs[0].key, key);
                assert!(objs[0].etag.is_some() && objs[0].size.is_some());
            }
            let v = load("aws/sqs-batch.json");
            assert_eq!(lambda_shape(&v), LambdaShape::Sqs);
            let msgs = from_sqs_event(v).unwrap();
            assert_eq!(msgs.len(), 2);
            assert_eq!(msgs[0].queue, "catalyst-scrape");
            assert!(msgs[0].attributes.contains_key("traceparent"));
            assert_eq!(msgs[0].attempt, Some(1));
            assert!(msgs[0].json::<serde_json::Value>().unwrap()["url"].is_string());
            let v = load("aws/eventbridge-scheduled.json");
            assert_eq!(lambda_shape(&v), LambdaShape::Scheduled);
            assert_eq!(from_eventbridge(v).unwrap().schedule, "catalyst-optimize-nightly");
        }

        #[test]
        fn aws_http_and_authorizer_shapes() {
            for file in [
                "aws/apigw-v2-request.json",
                "aws/apigw-v1-request.json",
                "aws/alb-request.json",
                "aws/function-url-request.json",
            ] {
                let v = load(file);
                assert_eq!(lambda_shape(&v), LambdaShape::Http, "{file}");
                let req: lambda_http::request::LambdaRequest =
                    serde_json::from_value(v).unwrap_or_else(|e| panic!("{file}: {e}"));
                let req: http::Request<lambda_http::Body> = req.into();
                assert_eq!(req.method(), http::Method::POST, "{file}");
                assert!(req.uri().path().ends_with("/v1/evaluate"), "{file}: {}", req.uri());
            }
            assert_eq!(lambda_shape(&load("aws/apigw-v2-authorizer.json")), LambdaShape::Authorizer);
        }

        #[test]
        fn gcp_cloudevents_push_and_scheduler() {
            let v = load("gcp/gcs-finalized-structured.json");
            let mut h = http::HeaderMap::new();
            h.insert(http::header::CONTENT_TYPE, "application/cloudevents+json".parse().unwrap());
            let CloudEventTrigger::Object(structured) =
                from_cloudevent_http(&h, serde_json::to_vec(&v).unwrap()).unwrap()
            else {
                panic!("not an object event")
            };
            assert_eq!(structured.key, "uploads/resumes/u_123/resume.txt");
            assert_eq!(structured.size, Some(512));
            let (h, body) = wrapped("gcp/gcs-finalized-binary.json");
            let CloudEventTrigger::Object(binary) = from_cloudevent_http(&h, body).unwrap() else {
                panic!("not an object event")
            };
            assert_eq!(binary, structured);
            assert_eq!(binary.version_key(), structured.version_key());

            let push = from_pubsub_push(&serde_json::to_vec(&load("gcp/pubsub-push.json")).unwrap()).unwrap();
            assert_eq!(push.json::<serde_json::Value>().unwrap()["url"], "https://jobs.example.com/postings/42");
            assert_eq!(push.queue, "catalyst-scrape-push");
            assert!(push.attributes.contains_key("traceparent"));
            let v = load("gcp/pubsub-cloudevent-structured.json");
            let mut h = http::HeaderMap::new();
            h.insert(http::header::CONTENT_TYPE, "application/cloudevents+json".parse().unwrap());
            let CloudEventTrigger::Message(m1) = from_cloudevent_http(&h, serde_json::to_vec(&v).unwrap()).unwrap()
            else {
                panic!("not a message")
            };
            let (h, body) = wrapped("gcp/pubsub-cloudevent-binary.json");
            let CloudEventTrigger::Message(m2) = from_cloudevent_http(&h, body).unwrap() else {
                panic!("not a message")
            };
            assert_eq!(m1.body, push.body);
            assert_eq!(m1, m2);

            let (h, body) = wrapped("gcp/cloud-scheduler.json");
            assert!(is_cloud_scheduler(&h));
            let s = from_cloud_scheduler(&h, &body).unwrap();
            assert_eq!(s.schedule, "catalyst-optimize-nightly");
            assert_eq!(s.payload["window_hours"], 24);
        }
    }
}
