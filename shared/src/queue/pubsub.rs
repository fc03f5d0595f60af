//! Publishing to Google Cloud Pub/Sub through the official `google-cloud-pubsub` client
//! (gRPC, batching, retries).
//!
//! `pubsub://projects/{project}/topics/{prefix}`: queue `scrape` is the topic
//! `projects/{project}/topics/{prefix}-scrape`, as Terraform creates them
//! (terraform/gcp/pubsub.tf); dead-letter topics `{prefix}-{queue}-dlq` are configured on
//! the push subscriptions by Terraform, not here.
//!
//! Only `send` is implemented. Deliveries reach the functions by push subscriptions
//! (`/_/events`, parsed by `crate::event`), and Pub/Sub's own ack deadline, retry policy and
//! dead-lettering replace the port's receive/ack/nack, which therefore answer
//! `pull_unsupported`.
//!
//! Differences from the port, by Pub/Sub's design:
//! - no send-side de-duplication: `dedupe_id` travels as the attribute
//!   `catalyst-dedupe-id`, so a consumer can drop repeats (delivery is at-least-once anyway);
//! - no delayed delivery: a `delay` is refused with `delay_unsupported` rather than
//!   silently delivered early;
//! - no empty messages: one with neither body nor attributes carries the attribute
//!   `catalyst-empty: true`.
//!
//! `PUBSUB_EMULATOR_HOST` (`host:port`), the Pub/Sub emulator's convention, points the
//! client at an emulator over plain HTTP/2 with no credentials.

use async_trait::async_trait;
use google_cloud_gax::retry_policy::RetryPolicyExt as _;
use google_cloud_pubsub::client::{BasePublisher, Publisher};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::OnceCell;

use super::{Delivery, Outgoing, Queue, Requeued, validate_queue};
use crate::error::{Error, ErrorKind, Result};

/// The attribute carrying `Outgoing::dedupe_id`.
pub const DEDUPE_ATTRIBUTE: &str = "catalyst-dedupe-id";

/// The attribute marking a message sent with no body and no attributes.
pub const EMPTY_ATTRIBUTE: &str = "catalyst-empty";

/// Tuning and test hooks; production uses the defaults.
#[derive(Debug, Clone)]
pub struct PubSubOptions {
    /// `None`: `https://pubsub.googleapis.com` (or `PUBSUB_EMULATOR_HOST` when set).
    pub endpoint: Option<String>,
    /// Send no credentials (emulators).
    pub anonymous: bool,
    /// Attempts per publish, the first included, on Pub/Sub's retryable codes.
    pub max_attempts: u32,
    /// Upper bound on the time spent retrying one publish.
    pub retry_time_limit: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for PubSubOptions {
    fn default() -> Self {
        PubSubOptions {
            endpoint: None,
            anonymous: false,
            max_attempts: 5,
            retry_time_limit: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

pub struct PubSubQueue {
    project: String,
    prefix: String,
    options: PubSubOptions,
    client: OnceCell<BasePublisher>,
    /// One publisher (with its batching task) per topic, created on first send.
    publishers: Mutex<HashMap<String, Publisher>>,
}

impl PubSubQueue {
    /// `pubsub://projects/{project}/topics/{prefix}`. No network: the client is created on
    /// first send.
    pub fn from_url(url: &url::Url) -> Result<Self> {
        let mut options = PubSubOptions::default();
        if let Some(host) = std::env::var("PUBSUB_EMULATOR_HOST").ok().filter(|h| !h.is_empty()) {
            options.endpoint = Some(format!("http://{host}"));
            options.anonymous = true;
        }
        Self::from_url_with(url, options)
    }

    pub fn from_url_with(url: &url::Url, options: PubSubOptions) -> Result<Self> {
        let bad = |why: &str| {
            Error::bad_request(format!(
                "CATALYST_QUEUE_URL `{url}`: {why} (expected pubsub://projects/PROJECT/topics/PREFIX)"
            ))
            .with_code("invalid_queue_url")
        };
        if url.scheme() != "pubsub" {
            return Err(bad("not a pubsub:// URL"));
        }
        if url.host_str() != Some("projects") {
            return Err(bad("must start with pubsub://projects/"));
        }
        let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
        let [project, "topics", prefix] = segments[..] else {
            return Err(bad("the path must be PROJECT/topics/PREFIX"));
        };
        // Project ids: 6-30 of [a-z0-9-] (domain-scoped ones have `:` and `.`).
        let valid_project = !project.is_empty()
            && project.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-:.".contains(c));
        if !valid_project {
            return Err(bad("invalid project id"));
        }
        // Topic names: letters, digits, `-_.~+%`, starting with a letter; the queue name
        // (validated on send) is appended to the prefix.
        let valid_prefix = prefix.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && prefix.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~+".contains(c));
        if !valid_prefix {
            return Err(bad("invalid topic prefix"));
        }
        Ok(PubSubQueue {
            project: project.to_string(),
            prefix: prefix.to_string(),
            options,
            client: OnceCell::new(),
            publishers: Mutex::new(HashMap::new()),
        })
    }

    /// The topic a queue publishes to.
    pub fn topic(&self, queue: &str) -> String {
        format!("projects/{}/topics/{}-{queue}", self.project, self.prefix)
    }

    async fn publisher(&self, queue: &str) -> Result<Publisher> {
        let topic = self.topic(queue);
        if let Some(p) = self.publishers.lock().unwrap_or_else(|e| e.into_inner()).get(&topic) {
            return Ok(p.clone());
        }
        let client = self
            .client
            .get_or_try_init(|| async {
                let unavailable = |what: &str| {
                    Error::unavailable(format!("{}: cannot create the {what}", self.location()))
                        .with_code("queue_unavailable")
                };
                let credentials = crate::gcp::credentials(self.options.anonymous, unavailable)?;
                let backoff = crate::gcp::backoff(self.options.initial_backoff, self.options.max_backoff);
                let mut builder = BasePublisher::builder()
                    .with_credentials(credentials)
                    .with_retry_policy(
                        google_cloud_pubsub::retry_policy::RetryableErrors
                            .with_time_limit(self.options.retry_time_limit)
                            .with_attempt_limit(self.options.max_attempts.max(1)),
                    )
                    .with_backoff_policy(backoff);
                if let Some(endpoint) = &self.options.endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                builder.build().await.map_err(|e| unavailable("Pub/Sub client").with_source(e))
            })
            .await?;
        let mut publishers = self.publishers.lock().unwrap_or_else(|e| e.into_inner());
        let publisher = publishers
            .entry(topic.clone())
            // A function sends one message and waits for its id: no batching delay.
            .or_insert_with(|| client.publisher(topic).set_delay_threshold(Duration::ZERO).build());
        Ok(publisher.clone())
    }

    fn publish_error(&self, queue: &str, e: google_cloud_pubsub::error::PublishError) -> Error {
        use google_cloud_gax::error::rpc::Code;
        use google_cloud_pubsub::error::PublishError;
        let topic = self.topic(queue);
        let err = match &e {
            PublishError::Rpc(rpc) => match rpc.status().map(|s| s.code) {
                Some(Code::NotFound) => {
                    Error::unavailable(format!("Pub/Sub topic `{topic}` does not exist")).with_code("topic_not_found")
                }
                Some(Code::PermissionDenied | Code::Unauthenticated) => {
                    Error::unavailable(format!("Pub/Sub refused publishing to `{topic}`"))
                        .with_code("queue_access_denied")
                }
                Some(Code::InvalidArgument) => Error::bad_request(format!(
                    "Pub/Sub refused the message for `{topic}`: {}",
                    rpc.status().map(|s| s.message.as_str()).unwrap_or_default()
                )),
                Some(Code::ResourceExhausted) => {
                    Error::new(ErrorKind::TooManyRequests, format!("Pub/Sub throttled publishing to `{topic}`"))
                }
                Some(Code::DeadlineExceeded) => {
                    Error::new(ErrorKind::Timeout, format!("publishing to `{topic}` timed out"))
                }
                _ => Error::unavailable(format!("publishing to `{topic}` failed")).with_code("queue_unavailable"),
            },
            _ => Error::unavailable(format!("publishing to `{topic}` failed")).with_code("queue_unavailable"),
        };
        err.with_source(e)
    }
}

fn pull_unsupported(what: &str) -> Error {
    Error::unavailable(format!(
        "Pub/Sub queues deliver by push subscription (/_/events); {what} is not available on pubsub:// queues"
    ))
    .with_code("pull_unsupported")
}

#[async_trait]
impl Queue for PubSubQueue {
    fn location(&self) -> String {
        format!("pubsub://projects/{}/topics/{}", self.project, self.prefix)
    }

    async fn send(&self, queue: &str, message: Outgoing) -> Result<String> {
        validate_queue(queue)?;
        if message.delay.is_some_and(|d| !d.is_zero()) {
            return Err(Error::bad_request("Pub/Sub cannot delay a message; send it when it is due")
                .with_code("delay_unsupported"));
        }
        let mut attributes: HashMap<String, String> = message.attributes.into_iter().collect();
        if let Some(id) = message.dedupe_id {
            attributes.insert(DEDUPE_ATTRIBUTE.to_string(), id);
        }
        if message.body.is_empty() && attributes.is_empty() {
            // Pub/Sub refuses a message with neither data nor attributes; the port allows
            // one (a bare "wake up"), so it travels with a marker attribute.
            attributes.insert(EMPTY_ATTRIBUTE.to_string(), "true".to_string());
        }
        let msg = google_cloud_pubsub::model::Message::new().set_data(message.body).set_attributes(attributes);
        let publisher = self.publisher(queue).await?;
        publisher.publish(msg).await.map_err(|e| self.publish_error(queue, e))
    }

    async fn receive(&self, _queue: &str, _max: usize, _visibility: Duration) -> Result<Vec<Delivery>> {
        Err(pull_unsupported("receive"))
    }

    async fn ack(&self, _queue: &str, _receipt: &str) -> Result<()> {
        Err(pull_unsupported("ack"))
    }

    async fn nack(&self, _queue: &str, _receipt: &str, _delay: Duration, _error: &str) -> Result<Requeued> {
        Err(pull_unsupported("nack"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::gcp::{pubsub_emulator, pubsub_pull, pubsub_topic_with_subscription};

    fn queue(server: &crate::testkit::ServerProcess) -> PubSubQueue {
        let options = PubSubOptions { endpoint: Some(server.url()), anonymous: true, ..Default::default() };
        PubSubQueue::from_url_with(&"pubsub://projects/catalyst-test/topics/cat".parse().unwrap(), options).unwrap()
    }

    #[tokio::test]
    async fn publishes_to_the_prefixed_topic_with_attributes() {
        let server = pubsub_emulator();
        let q = queue(&server);
        assert_eq!(q.topic("scrape"), "projects/catalyst-test/topics/cat-scrape");
        let subscription = "projects/catalyst-test/subscriptions/cat-scrape-check";
        pubsub_topic_with_subscription(&server, &q.topic("scrape"), subscription).await;
        // Another queue's topic gets nothing.
        let other = "projects/catalyst-test/subscriptions/cat-other-check";
        pubsub_topic_with_subscription(&server, &q.topic("other"), other).await;

        let first = q
            .send(
                "scrape",
                Outgoing::json(&serde_json::json!({"url": "https://example.com/a"}))
                    .unwrap()
                    .with_attribute("traceparent", "00-abc-def-01"),
            )
            .await
            .unwrap();
        let second = q
            .send("scrape", Outgoing { body: b"raw \x00 bytes".to_vec(), ..Default::default() }.with_dedupe_id("evt-1"))
            .await
            .unwrap();
        assert!(!first.is_empty());
        assert_ne!(first, second);

        let mut got = Vec::new();
        for _ in 0..50 {
            got.extend(pubsub_pull(&server, subscription, 10).await);
            if got.len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        got.sort_by_key(|m| m.message_id != first);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].message_id, first);
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&got[0].data).unwrap()["url"], "https://example.com/a");
        assert_eq!(got[0].attributes.get("traceparent").map(String::as_str), Some("00-abc-def-01"));
        assert!(!got[0].attributes.contains_key(DEDUPE_ATTRIBUTE));
        assert_eq!(got[1].message_id, second);
        assert_eq!(got[1].data, b"raw \x00 bytes");
        assert_eq!(got[1].attributes.get(DEDUPE_ATTRIBUTE).map(String::as_str), Some("evt-1"));
        assert!(pubsub_pull(&server, other, 10).await.is_empty());

        // An empty message (Pub/Sub refuses those) goes out with the marker attribute.
        let empty = q.send("other", Outgoing::default()).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..50 {
            got.extend(pubsub_pull(&server, other, 10).await);
            if !got.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].message_id, empty);
        assert!(got[0].data.is_empty());
        assert_eq!(got[0].attributes.get(EMPTY_ATTRIBUTE).map(String::as_str), Some("true"));
    }

    #[tokio::test]
    async fn missing_topic_is_a_typed_error() {
        let server = pubsub_emulator();
        let q = queue(&server);
        let err = q.send("nowhere", Outgoing::default()).await.unwrap_err();
        assert_eq!(err.code(), "topic_not_found", "{err}");
        assert!(err.message().contains("projects/catalyst-test/topics/cat-nowhere"), "{err}");
    }

    #[tokio::test]
    async fn retries_unavailable_with_backoff_then_gives_up() {
        use crate::testkit::gcp::{Failure, FlakyProxy};
        // A gRPC server that answers every Publish with UNAVAILABLE.
        let proxy = FlakyProxy::start(None, usize::MAX, Failure::GrpcUnavailable).await;
        let options = PubSubOptions {
            endpoint: Some(proxy.url()),
            anonymous: true,
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..Default::default()
        };
        let q = PubSubQueue::from_url_with(&"pubsub://projects/p-1/topics/cat".parse().unwrap(), options).unwrap();
        let err = q.send("jobs", Outgoing::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.retryable());
        assert_eq!(proxy.requests(), 3, "one publish, retried up to the attempt limit");
    }

    #[tokio::test]
    async fn unsupported_operations_say_so() {
        let q =
            PubSubQueue::from_url_with(&"pubsub://projects/p-1/topics/cat".parse().unwrap(), PubSubOptions::default())
                .unwrap();
        // Refused before any network call (and no credentials are looked up).
        let err =
            q.send("jobs", Outgoing { delay: Some(Duration::from_secs(5)), ..Default::default() }).await.unwrap_err();
        assert_eq!(err.code(), "delay_unsupported");
        assert_eq!(q.send("../x", Outgoing::default()).await.unwrap_err().code(), "invalid_queue");
        assert_eq!(q.receive("jobs", 1, Duration::from_secs(1)).await.unwrap_err().code(), "pull_unsupported");
        assert_eq!(q.ack("jobs", "r").await.unwrap_err().code(), "pull_unsupported");
        assert_eq!(q.nack("jobs", "r", Duration::ZERO, "e").await.unwrap_err().code(), "pull_unsupported");
    }

    #[test]
    fn urls_parse_and_errors_name_the_variable() {
        let q = PubSubQueue::from_url(&"pubsub://projects/my-proj/topics/catalyst".parse().unwrap()).unwrap();
        assert_eq!(q.topic("scrape"), "projects/my-proj/topics/catalyst-scrape");
        assert_eq!(q.location(), "pubsub://projects/my-proj/topics/catalyst");
        for bad in [
            "pubsub://my-proj/topics/catalyst",
            "pubsub://projects/my-proj/catalyst",
            "pubsub://projects/my-proj/topics/",
            "pubsub://projects/My_Proj/topics/c",
            "pubsub://projects/p/topics/1abc",
            "pubsub://projects/p/topics/a/b",
        ] {
            let err = PubSubQueue::from_url(&bad.parse().unwrap()).err().unwrap_or_else(|| panic!("{bad} parsed"));
            assert_eq!(err.kind(), ErrorKind::BadRequest, "{bad}");
            assert!(err.message().contains("CATALYST_QUEUE_URL"), "{bad}: {err}");
        }
    }
}
