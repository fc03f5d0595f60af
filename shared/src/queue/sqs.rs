//! Amazon SQS behind the queue port: `sqs://{prefix}` maps the port's queue `scrape` to
//! the SQS queue `{prefix}-scrape` and its dead-letter queue to `{prefix}-scrape-dlq`,
//! the names Terraform creates.
//!
//! In the cloud, Lambda's event source mapping does the receiving (with the redrive
//! policy's `maxReceiveCount` as the attempt limit); this adapter's `receive`, `ack` and
//! `nack` serve tools and tests, and behave like the embedded queue: a message that used
//! its last attempt is moved to the dead-letter queue *with the error*, which SQS's own
//! redrive cannot record.
//!
//! Where SQS differs, it says so rather than pretending (see `conformance::Semantics`):
//! standard queues have no send-side de-duplication, so a `dedupe_id` travels as the
//! `catalyst-dedupe-id` attribute and consumers stay idempotent (every consumer here
//! writes with conditional creates); visibility and delays are whole seconds; bodies are
//! text (SQS refuses arbitrary bytes), which every message of ours is (JSON).

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::OnceCell;

use super::{Delivery, Outgoing, Queue, Requeued, dead_letter_queue, validate_queue};
use crate::aws::{sdk_config, sdk_error, url_error};
use crate::error::{Error, Result};
use crate::event::{Origin, QueueMessage};

const VAR: &str = "CATALYST_QUEUE_URL";
/// SQS allows 10 message attributes; two are ours.
const MAX_ATTRIBUTES: usize = 10;
/// SQS's longest delay and visibility timeout.
const MAX_DELAY: Duration = Duration::from_secs(900);
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

pub struct SqsQueue {
    prefix: String,
    max_attempts: u32,
    client: OnceCell<Client>,
    /// Queue URLs by port name: resolved once per queue (GetQueueUrl), not per call.
    urls: Mutex<HashMap<String, String>>,
    /// What a lease needs to be given back or dead-lettered, by receipt handle; dropped on
    /// ack/nack. A receipt from another process falls back to SQS's own redrive.
    leases: Mutex<HashMap<String, Lease>>,
}

#[derive(Clone)]
struct Lease {
    body: String,
    attributes: BTreeMap<String, String>,
    attempt: u32,
}

impl SqsQueue {
    /// `sqs://{prefix}[?max_attempts=N]`; no network until first use.
    pub fn from_url(url: &url::Url) -> Result<Self> {
        let prefix =
            url.host_str().filter(|p| !p.is_empty()).ok_or_else(|| url_error(VAR, url, "no queue-name prefix"))?;
        if !url.path().trim_matches('/').is_empty() {
            return Err(url_error(VAR, url, "expected sqs://{prefix}, the prefix of the queue names"));
        }
        let mut max_attempts = 5;
        for (k, v) in url.query_pairs() {
            match (&*k, v.parse::<u32>()) {
                ("max_attempts", Ok(n)) if n >= 1 => max_attempts = n,
                _ => return Err(url_error(VAR, url, &format!("unknown option `{k}={v}` (only max_attempts=N)"))),
            }
        }
        Ok(Self::new(prefix, max_attempts, OnceCell::new()))
    }

    /// Over an explicit SDK configuration (tests, self-hosted SQS-compatible servers).
    pub fn with_config(config: &aws_config::SdkConfig, prefix: &str, max_attempts: u32) -> Self {
        Self::new(prefix, max_attempts, OnceCell::new_with(Some(Client::new(config))))
    }

    fn new(prefix: &str, max_attempts: u32, client: OnceCell<Client>) -> Self {
        SqsQueue {
            prefix: prefix.to_owned(),
            max_attempts,
            client,
            urls: Mutex::new(HashMap::new()),
            leases: Mutex::new(HashMap::new()),
        }
    }

    async fn client(&self) -> &Client {
        self.client.get_or_init(|| async { Client::new(sdk_config().await) }).await
    }

    /// The SQS name of the port's queue `queue`.
    pub fn sqs_name(&self, queue: &str) -> String {
        format!("{}-{queue}", self.prefix)
    }

    async fn queue_url(&self, queue: &str) -> Result<String> {
        validate_queue(queue)?;
        if let Some(url) = self.urls.lock().unwrap_or_else(|e| e.into_inner()).get(queue) {
            return Ok(url.clone());
        }
        let name = self.sqs_name(queue);
        let out = self
            .client()
            .await
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("sqs queue {name}"), e))?;
        let url = out.queue_url.ok_or_else(|| Error::internal(format!("SQS returned no URL for {name}")))?;
        self.urls.lock().unwrap_or_else(|e| e.into_inner()).insert(queue.to_owned(), url.clone());
        Ok(url)
    }

    async fn send_text(
        &self,
        queue: &str,
        body: String,
        attributes: &BTreeMap<String, String>,
        delay: Option<Duration>,
    ) -> Result<String> {
        if attributes.len() > MAX_ATTRIBUTES {
            return Err(Error::bad_request(format!("SQS carries at most {MAX_ATTRIBUTES} message attributes"))
                .with_code("too_many_attributes"));
        }
        let url = self.queue_url(queue).await?;
        let mut send = self.client().await.send_message().queue_url(&url).message_body(body);
        for (k, v) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| Error::internal("SQS message attribute").with_source(e))?;
            send = send.message_attributes(k, value);
        }
        if let Some(delay) = delay.filter(|d| !d.is_zero()) {
            send = send.delay_seconds(whole_seconds(delay.min(MAX_DELAY)));
        }
        let out = send.send().await.map_err(|e| sdk_error(&format!("sqs send to {}", self.sqs_name(queue)), e))?;
        out.message_id.ok_or_else(|| Error::internal("SQS returned no message id"))
    }

    fn lease(&self, receipt: &str) -> Option<Lease> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner()).remove(receipt)
    }
}

/// Round up to whole seconds: SQS's granularity, and never shorter than asked.
fn whole_seconds(d: Duration) -> i32 {
    d.as_secs_f64().ceil() as i32
}

#[async_trait]
impl Queue for SqsQueue {
    fn location(&self) -> String {
        format!("sqs://{}", self.prefix)
    }

    async fn send(&self, queue: &str, message: Outgoing) -> Result<String> {
        let body = String::from_utf8(message.body).map_err(|_| {
            Error::bad_request("SQS message bodies are text; send JSON or base64").with_code("invalid_message")
        })?;
        let mut attributes = message.attributes;
        if let Some(id) = message.dedupe_id {
            attributes.insert("catalyst-dedupe-id".into(), id);
        }
        self.send_text(queue, body, &attributes, message.delay).await
    }

    async fn receive(&self, queue: &str, max: usize, visibility: Duration) -> Result<Vec<Delivery>> {
        let url = self.queue_url(queue).await?;
        let out = self
            .client()
            .await
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(whole_seconds(visibility.min(MAX_VISIBILITY)))
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("sqs receive from {}", self.sqs_name(queue)), e))?;
        let mut deliveries = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let (Some(id), Some(receipt)) = (m.message_id, m.receipt_handle) else { continue };
            let system = m.attributes.unwrap_or_default();
            let attempt = system
                .get(&MessageSystemAttributeName::ApproximateReceiveCount)
                .and_then(|c| c.parse::<u32>().ok())
                .unwrap_or(1);
            let published = system
                .get(&MessageSystemAttributeName::SentTimestamp)
                .and_then(|t| t.parse::<i64>().ok())
                .and_then(chrono::DateTime::from_timestamp_millis);
            let attributes: BTreeMap<String, String> = m
                .message_attributes
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                .collect();
            let body = m.body.unwrap_or_default();
            self.leases
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(receipt.clone(), Lease { body: body.clone(), attributes: attributes.clone(), attempt });
            deliveries.push(Delivery {
                message: QueueMessage {
                    origin: Origin::Aws,
                    id,
                    queue: queue.to_owned(),
                    body: body.into_bytes(),
                    attributes,
                    attempt: Some(attempt),
                    published,
                },
                receipt,
            });
        }
        Ok(deliveries)
    }

    async fn ack(&self, queue: &str, receipt: &str) -> Result<()> {
        let url = self.queue_url(queue).await?;
        self.lease(receipt);
        self.client()
            .await
            .delete_message()
            .queue_url(&url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("sqs delete from {}", self.sqs_name(queue)), e))?;
        Ok(())
    }

    async fn nack(&self, queue: &str, receipt: &str, delay: Duration, error: &str) -> Result<Requeued> {
        let url = self.queue_url(queue).await?;
        let lease = self.lease(receipt);
        if let Some(lease) = lease.filter(|l| l.attempt >= self.max_attempts) {
            // Copy to the dead-letter queue with the reason first, then delete: a crash in
            // between leaves a duplicate in the DLQ, never a lost message.
            let mut attributes = lease.attributes;
            attributes.insert("catalyst-error".into(), error.chars().take(1000).collect());
            attributes.insert("catalyst-source-queue".into(), queue.to_owned());
            while attributes.len() > MAX_ATTRIBUTES {
                let drop = attributes.keys().find(|k| !k.starts_with("catalyst-")).cloned();
                match drop {
                    Some(k) => attributes.remove(&k),
                    None => break,
                };
            }
            self.send_text(&dead_letter_queue(queue), lease.body, &attributes, None).await?;
            self.ack(queue, receipt).await?;
            return Ok(Requeued::DeadLettered);
        }
        self.client()
            .await
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(receipt)
            .visibility_timeout(whole_seconds(delay.min(MAX_VISIBILITY)))
            .send()
            .await
            .map_err(|e| sdk_error(&format!("sqs give back to {}", self.sqs_name(queue)), e))?;
        Ok(Requeued::Retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::queue::conformance::{Semantics, run_with};
    use crate::testkit::aws::Moto;

    async fn create_queues(moto: &Moto, prefix: &str, names: &[&str]) {
        let client = Client::new(&moto.config());
        for name in names {
            for q in [format!("{prefix}-{name}"), format!("{prefix}-{name}-dlq")] {
                client.create_queue().queue_name(q).send().await.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn conformance_on_moto() {
        let moto = Moto::start();
        create_queues(&moto, "catalyst", &["jobs", "other", "dedupe", "vis", "flaky", "delayed"]).await;
        let queue = SqsQueue::with_config(&moto.config(), "catalyst", 3);
        let semantics = Semantics { send_dedupe: false, stale_receipt_conflict: false, tick: Duration::from_secs(1) };
        run_with(&queue, 3, semantics).await;
        // The dedupe id travels with the message for consumers to use.
        queue.send("dedupe", Outgoing::default().with_dedupe_id("evt-9")).await.unwrap();
        let got = queue.receive("dedupe", 10, Duration::from_secs(30)).await.unwrap();
        let ids: Vec<_> = got.iter().filter_map(|d| d.message.attributes.get("catalyst-dedupe-id")).collect();
        assert!(ids.iter().any(|i| *i == "evt-9"), "{ids:?}");
    }

    #[tokio::test]
    async fn missing_queue_and_bad_bodies_are_typed_errors() {
        let moto = Moto::start();
        let queue = SqsQueue::with_config(&moto.config(), "catalyst", 3);
        let err = queue.send("nope", Outgoing::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        create_queues(&moto, "catalyst", &["jobs"]).await;
        let err = queue.send("jobs", Outgoing { body: vec![0xff, 0xfe], ..Default::default() }).await.unwrap_err();
        assert_eq!(err.code(), "invalid_message");
        let mut many = Outgoing::default();
        for i in 0..11 {
            many = many.with_attribute(format!("a{i}"), "v");
        }
        assert_eq!(queue.send("jobs", many).await.unwrap_err().code(), "too_many_attributes");
    }

    #[tokio::test]
    async fn server_errors_are_retried_with_backoff() {
        let moto = Moto::start();
        create_queues(&moto, "catalyst", &["jobs"]).await;
        let proxy = crate::testkit::FlakyProxy::start(moto.addr(), 2, 503, "Service Unavailable");
        let config = crate::aws::static_config(&proxy.url(), "us-east-1", "test", "test");
        let queue = SqsQueue::with_config(&config, "catalyst", 3);
        queue.send("jobs", Outgoing::json(&"x").unwrap()).await.unwrap();
        assert_eq!(proxy.failed(), 2);
        assert_eq!(queue.receive("jobs", 10, Duration::from_secs(30)).await.unwrap().len(), 1);
    }

    #[test]
    fn urls_are_checked() {
        let q = SqsQueue::from_url(&"sqs://catalyst-prod?max_attempts=7".parse().unwrap()).unwrap();
        assert_eq!(q.sqs_name("scrape"), "catalyst-prod-scrape");
        assert_eq!(q.max_attempts, 7);
        for bad in ["sqs:///x", "sqs://p/extra", "sqs://p?max_attempts=0", "sqs://p?x=1"] {
            let err = SqsQueue::from_url(&bad.parse().unwrap()).err().unwrap_or_else(|| panic!("{bad}"));
            assert!(err.message().contains("CATALYST_QUEUE_URL"), "{err}");
        }
    }

    #[test]
    fn delays_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::ZERO), 0);
    }
}
