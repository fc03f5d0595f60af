//! Queue port: send, receive with a visibility timeout, acknowledge, or give back for a
//! retry; after `max_attempts` deliveries a message goes to the queue's dead-letter
//! queue with the last error. Embedded SQLite locally; SQS and Pub/Sub behind the same trait.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::QueueMessage;

#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "pubsub")]
pub mod pubsub;
#[cfg(feature = "sqs")]
pub mod sqs;

/// A message to send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    pub body: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
    /// Sending twice with the same id (within the de-duplication window) enqueues once.
    pub dedupe_id: Option<String>,
    pub delay: Option<Duration>,
}

impl Outgoing {
    pub fn json<T: Serialize>(value: &T) -> Result<Self> {
        let body =
            serde_json::to_vec(value).map_err(|e| Error::internal("message does not serialize").with_source(e))?;
        Ok(Outgoing { body, ..Default::default() })
    }
    pub fn with_dedupe_id(mut self, id: impl Into<String>) -> Self {
        self.dedupe_id = Some(id.into());
        self
    }
    /// Carry the current trace (W3C `traceparent`) so the consumer's work joins it.
    pub fn traced(self) -> Self {
        #[cfg(feature = "otel")]
        if let Some(tp) = crate::otel::current_traceparent() {
            return self.with_attribute("traceparent", tp);
        }
        self
    }
    pub fn with_attribute(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.attributes.insert(k.into(), v.into());
        self
    }
}

/// A received message and the handle that acknowledges this delivery of it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: QueueMessage,
    /// Valid only for this lease: after the visibility timeout the message can be
    /// delivered again and this receipt no longer acknowledges it.
    pub receipt: String,
}

/// What happened when a delivery was given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeued {
    /// It will be delivered again after the delay.
    Retry,
    /// It used its last attempt and is now in the dead-letter queue.
    DeadLettered,
}

#[async_trait]
pub trait Queue: Send + Sync + 'static {
    fn location(&self) -> String;

    /// Enqueue; returns the message id (the existing one for a de-duplicated send).
    async fn send(&self, queue: &str, message: Outgoing) -> Result<String>;

    /// Lease up to `max` visible messages for `visibility`.
    async fn receive(&self, queue: &str, max: usize, visibility: Duration) -> Result<Vec<Delivery>>;

    /// Done with it: remove. `Conflict` if the lease expired and it was handed out again.
    async fn ack(&self, queue: &str, receipt: &str) -> Result<()>;

    /// Failed: make it visible again after `delay`, or dead-letter it after its last attempt.
    async fn nack(&self, queue: &str, receipt: &str, delay: Duration, error: &str) -> Result<Requeued>;
}

pub type SharedQueue = Arc<dyn Queue>;

/// Name of a queue's dead-letter queue.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}-dlq")
}

/// Exponential backoff with full jitter for the `attempt`-th retry (1-based).
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    use rand::Rng;
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let max = exp.min(cap);
    let ms = rand::rng().random_range(0..=max.as_millis().max(1) as u64);
    Duration::from_millis(ms)
}

pub(crate) fn validate_queue(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 80
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!("invalid queue name `{}`", name.escape_debug())).with_code("invalid_queue"))
    }
}

/// Open the adapter a URL names. Cloud clients are created here without any network
/// call; credentials are resolved on first use.
pub fn open(url: &url::Url) -> Result<SharedQueue> {
    match url.scheme() {
        #[cfg(feature = "local")]
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|_| Error::bad_request(format!("CATALYST_QUEUE_URL `{url}` is not a local path")))?;
            Ok(Arc::new(local::SqliteQueue::open(path, local::QueuePolicy::default())?))
        }
        #[cfg(feature = "sqs")]
        "sqs" => Ok(Arc::new(sqs::SqsQueue::from_url(url)?)),
        #[cfg(feature = "pubsub")]
        "pubsub" => Ok(Arc::new(pubsub::PubSubQueue::from_url(url)?)),
        other => Err(Error::unavailable(format!(
            "CATALYST_QUEUE_URL: the `{other}` queue adapter is not built into this binary"
        ))
        .with_code("adapter_unavailable")),
    }
}

/// The conformance suite every adapter that can receive runs. The queue must allow at
/// least 3 attempts before dead-lettering.
pub mod conformance {
    use super::*;
    use crate::error::ErrorKind;

    /// Where a service's semantics differ from the embedded queue's, and the suite must
    /// know it rather than pretend.
    #[derive(Debug, Clone, Copy)]
    pub struct Semantics {
        /// Sending twice with one `dedupe_id` enqueues once (SQS standard queues cannot).
        pub send_dedupe: bool,
        /// Acknowledging with a receipt from an expired lease fails with `Conflict` (SQS
        /// accepts it and may or may not delete the message).
        pub stale_receipt_conflict: bool,
        /// The smallest visibility timeout / delay the service honours (SQS: 1 s).
        pub tick: Duration,
    }

    impl Default for Semantics {
        fn default() -> Self {
            Semantics { send_dedupe: true, stale_receipt_conflict: true, tick: Duration::from_millis(50) }
        }
    }

    pub async fn run(q: &dyn Queue, max_attempts: u32) {
        run_with(q, max_attempts, Semantics::default()).await
    }

    pub async fn run_with(q: &dyn Queue, max_attempts: u32, semantics: Semantics) {
        let tick = semantics.tick;
        let vis = Duration::from_secs(30);
        // Send / receive / ack.
        let id = q
            .send(
                "jobs",
                Outgoing::json(&serde_json::json!({"n": 1})).unwrap().with_attribute("traceparent", "00-abc-def-01"),
            )
            .await
            .unwrap();
        let got = q.receive("jobs", 10, vis).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].message.id, id);
        assert_eq!(got[0].message.attempt, Some(1));
        assert_eq!(got[0].message.attributes["traceparent"], "00-abc-def-01");
        assert_eq!(got[0].message.json::<serde_json::Value>().unwrap()["n"], 1);
        // Leased: invisible to other consumers.
        assert!(q.receive("jobs", 10, vis).await.unwrap().is_empty());
        q.ack("jobs", &got[0].receipt).await.unwrap();
        assert!(q.receive("jobs", 10, Duration::ZERO).await.unwrap().is_empty());

        // Queues are separate.
        q.send("other", Outgoing::default()).await.unwrap();
        assert!(q.receive("jobs", 10, vis).await.unwrap().is_empty());

        // De-duplication: same id sends once.
        if semantics.send_dedupe {
            let a = q.send("dedupe", Outgoing::default().with_dedupe_id("evt-1")).await.unwrap();
            let b = q.send("dedupe", Outgoing::default().with_dedupe_id("evt-1")).await.unwrap();
            assert_eq!(a, b);
            let got = q.receive("dedupe", 10, vis).await.unwrap();
            assert_eq!(got.len(), 1);
            q.ack("dedupe", &got[0].receipt).await.unwrap();
            // ... also after it was processed.
            q.send("dedupe", Outgoing::default().with_dedupe_id("evt-1")).await.unwrap();
            assert!(q.receive("dedupe", 10, vis).await.unwrap().is_empty());
        }

        // Visibility timeout: an unacknowledged message comes back, and the old receipt is void.
        q.send("vis", Outgoing::default()).await.unwrap();
        let first = q.receive("vis", 1, tick).await.unwrap();
        assert_eq!(first.len(), 1);
        tokio::time::sleep(tick * 12 / 5).await;
        let second = q.receive("vis", 1, vis).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].message.attempt, Some(2));
        if semantics.stale_receipt_conflict {
            assert_eq!(q.ack("vis", &first[0].receipt).await.unwrap_err().kind(), ErrorKind::Conflict);
        }
        q.ack("vis", &second[0].receipt).await.unwrap();

        // Retries, then the dead-letter queue with the reason.
        q.send("flaky", Outgoing::json(&"payload").unwrap()).await.unwrap();
        for attempt in 1..=max_attempts {
            let got = q.receive("flaky", 1, vis).await.unwrap();
            assert_eq!(got.len(), 1, "attempt {attempt}");
            let outcome = q.nack("flaky", &got[0].receipt, Duration::ZERO, "boom").await.unwrap();
            let expected = if attempt == max_attempts { Requeued::DeadLettered } else { Requeued::Retry };
            assert_eq!(outcome, expected);
        }
        assert!(q.receive("flaky", 1, vis).await.unwrap().is_empty());
        let dead = q.receive(&dead_letter_queue("flaky"), 1, vis).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].message.json::<String>().unwrap(), "payload");
        assert_eq!(dead[0].message.attributes.get("catalyst-error").map(String::as_str), Some("boom"));

        // Delay.
        q.send("delayed", Outgoing { delay: Some(tick * 3), ..Default::default() }).await.unwrap();
        assert!(q.receive("delayed", 1, vis).await.unwrap().is_empty());
        tokio::time::sleep(tick * 5).await;
        assert_eq!(q.receive("delayed", 1, vis).await.unwrap().len(), 1);

        // Bad names are refused.
        assert_eq!(q.send("../x", Outgoing::default()).await.unwrap_err().code(), "invalid_queue");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..30 {
            let d = backoff(attempt, Duration::from_millis(100), Duration::from_secs(5));
            assert!(d <= Duration::from_secs(5));
        }
        assert!(backoff(1, Duration::from_millis(100), Duration::from_secs(5)) <= Duration::from_millis(100));
    }
}
