//! An embedded queue in SQLite (WAL): durable across restarts, safe for several
//! consumers and processes. Leases implement the visibility timeout; a receipt names
//! the lease, so only the current holder can acknowledge.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Delivery, Outgoing, Queue, Requeued, dead_letter_queue, validate_queue};
use crate::error::{Error, Result};
use crate::event::{Origin, QueueMessage};

/// Attempts before dead-lettering, and how long a de-duplication id is remembered.
#[derive(Debug, Clone, Copy)]
pub struct QueuePolicy {
    pub max_attempts: u32,
    pub dedupe_window: Duration,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        QueuePolicy { max_attempts: 5, dedupe_window: Duration::from_secs(24 * 3600) }
    }
}

#[derive(Clone)]
pub struct SqliteQueue {
    path: PathBuf,
    policy: QueuePolicy,
    conn: Arc<Mutex<Connection>>,
    _checkpointer: Arc<crate::sqlite::Checkpointer>,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn db_err(e: rusqlite::Error) -> Error {
    crate::sqlite::error(e)
}

impl SqliteQueue {
    pub fn open(path: impl AsRef<Path>, policy: QueuePolicy) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let conn = crate::sqlite::open(&path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS messages (
                id TEXT PRIMARY KEY,
                queue TEXT NOT NULL,
                body BLOB NOT NULL,
                attributes TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                visible_at INTEGER NOT NULL,
                lease TEXT,
                created_at INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, visible_at);
            CREATE TABLE IF NOT EXISTS dedupe (
                queue TEXT NOT NULL,
                dedupe_id TEXT NOT NULL,
                message_id TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (queue, dedupe_id)
            ) WITHOUT ROWID;",
        )
        .map_err(db_err)?;
        let checkpointer = Arc::new(crate::sqlite::checkpoint_in_background(&conn, &path)?);
        Ok(SqliteQueue { path, policy, conn: Arc::new(Mutex::new(conn)), _checkpointer: checkpointer })
    }

    pub fn policy(&self) -> QueuePolicy {
        self.policy
    }

    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        crate::sqlite::blocking(&self.conn, f).await
    }

    /// Messages waiting (visible or leased) in a queue, for the local stack's status page and tests.
    pub async fn depth(&self, queue: &str) -> Result<u64> {
        let queue = queue.to_string();
        self.with_conn(move |c| {
            c.query_row("SELECT COUNT(*) FROM messages WHERE queue = ?1", params![queue], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(db_err)
        })
        .await
    }

    /// Every queue with messages, and its depth.
    pub async fn queues(&self) -> Result<Vec<(String, u64)>> {
        self.with_conn(|c| {
            let mut stmt =
                c.prepare("SELECT queue, COUNT(*) FROM messages GROUP BY queue ORDER BY queue").map_err(db_err)?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))).map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
        })
        .await
    }
}

fn parse_receipt(receipt: &str) -> Result<(&str, &str)> {
    receipt.split_once('.').ok_or_else(|| Error::bad_request("malformed receipt").with_code("invalid_receipt"))
}

#[async_trait]
impl Queue for SqliteQueue {
    fn location(&self) -> String {
        format!("file://{}", self.path.display())
    }

    async fn send(&self, queue: &str, message: Outgoing) -> Result<String> {
        validate_queue(queue)?;
        let queue = queue.to_string();
        let window = self.policy.dedupe_window;
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let now = now_ms();
            if let Some(dedupe) = &message.dedupe_id {
                tx.execute("DELETE FROM dedupe WHERE created_at < ?1", params![now - window.as_millis() as i64]).map_err(db_err)?;
                let existing: Option<String> = tx
                    .query_row("SELECT message_id FROM dedupe WHERE queue = ?1 AND dedupe_id = ?2", params![queue, dedupe], |r| r.get(0))
                    .optional()
                    .map_err(db_err)?;
                if let Some(id) = existing {
                    return Ok(id);
                }
            }
            let id = uuid::Uuid::now_v7().to_string();
            let visible_at = now + message.delay.map_or(0, |d| d.as_millis() as i64);
            let attributes = serde_json::to_string(&message.attributes).expect("string map serializes");
            tx.execute(
                "INSERT INTO messages (id, queue, body, attributes, attempts, visible_at, created_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)",
                params![id, queue, message.body, attributes, visible_at, now],
            )
            .map_err(db_err)?;
            if let Some(dedupe) = &message.dedupe_id {
                tx.execute(
                    "INSERT INTO dedupe (queue, dedupe_id, message_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![queue, dedupe, id, now],
                )
                .map_err(db_err)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(id)
        })
        .await
    }

    async fn receive(&self, queue: &str, max: usize, visibility: Duration) -> Result<Vec<Delivery>> {
        validate_queue(queue)?;
        let queue = queue.to_string();
        let max = max.clamp(1, 100);
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let now = now_ms();
            let rows: Vec<(String, Vec<u8>, String, i64, i64)> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT id, body, attributes, attempts, created_at FROM messages
                         WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, id LIMIT ?3",
                    )
                    .map_err(db_err)?;
                stmt.query_map(params![queue, now, max as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(db_err)?
                .collect::<rusqlite::Result<_>>()
                .map_err(db_err)?
            };
            let mut out = Vec::with_capacity(rows.len());
            for (id, body, attributes, attempts, created) in rows {
                let lease = uuid::Uuid::new_v4().simple().to_string();
                tx.execute(
                    "UPDATE messages SET attempts = attempts + 1, lease = ?1, visible_at = ?2 WHERE id = ?3",
                    params![lease, now + visibility.as_millis() as i64, id],
                )
                .map_err(db_err)?;
                let attributes: BTreeMap<String, String> = serde_json::from_str(&attributes).unwrap_or_default();
                out.push(Delivery {
                    receipt: format!("{id}.{lease}"),
                    message: QueueMessage {
                        origin: Origin::Local,
                        id,
                        queue: queue.clone(),
                        body,
                        attributes,
                        attempt: Some(attempts as u32 + 1),
                        published: DateTime::from_timestamp_millis(created),
                    },
                });
            }
            tx.commit().map_err(db_err)?;
            Ok(out)
        })
        .await
    }

    async fn ack(&self, queue: &str, receipt: &str) -> Result<()> {
        validate_queue(queue)?;
        let (id, lease) = parse_receipt(receipt)?;
        let (queue, id, lease) = (queue.to_string(), id.to_string(), lease.to_string());
        self.with_conn(move |c| {
            let n = c
                .execute("DELETE FROM messages WHERE id = ?1 AND queue = ?2 AND lease = ?3", params![id, queue, lease])
                .map_err(db_err)?;
            if n == 0 {
                return Err(Error::conflict(format!(
                    "receipt for message {id} is no longer valid (lease expired or already acknowledged)"
                ))
                .with_code("stale_receipt"));
            }
            Ok(())
        })
        .await
    }

    async fn nack(&self, queue: &str, receipt: &str, delay: Duration, error: &str) -> Result<Requeued> {
        self.give_back(queue, receipt, delay, error, false).await
    }
}

impl SqliteQueue {
    /// Move a delivery straight to the dead-letter queue: for failures no retry can fix
    /// (malformed input), so they do not occupy the queue for every remaining attempt.
    pub async fn dead_letter(&self, queue: &str, receipt: &str, error: &str) -> Result<()> {
        self.give_back(queue, receipt, Duration::ZERO, error, true).await.map(|_| ())
    }

    async fn give_back(
        &self,
        queue: &str,
        receipt: &str,
        delay: Duration,
        error: &str,
        force_dead: bool,
    ) -> Result<Requeued> {
        validate_queue(queue)?;
        let (id, lease) = parse_receipt(receipt)?;
        let (queue, id, lease, error) = (queue.to_string(), id.to_string(), lease.to_string(), error.to_string());
        let max_attempts = self.policy.max_attempts as i64;
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let row: Option<(i64, String)> = tx
                .query_row(
                    "SELECT attempts, attributes FROM messages WHERE id = ?1 AND queue = ?2 AND lease = ?3",
                    params![id, queue, lease],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db_err)?;
            let Some((attempts, attributes)) = row else {
                return Err(Error::conflict(format!("receipt for message {id} is no longer valid")).with_code("stale_receipt"));
            };
            let outcome = if force_dead || attempts >= max_attempts {
                let mut attrs: BTreeMap<String, String> = serde_json::from_str(&attributes).unwrap_or_default();
                attrs.insert("catalyst-error".into(), error.chars().take(1000).collect());
                attrs.insert("catalyst-source-queue".into(), queue.clone());
                attrs.insert("catalyst-attempts".into(), attempts.to_string());
                tx.execute(
                    "UPDATE messages SET queue = ?1, attributes = ?2, attempts = 0, lease = NULL, visible_at = ?3 WHERE id = ?4",
                    params![dead_letter_queue(&queue), serde_json::to_string(&attrs).expect("serializes"), now_ms(), id],
                )
                .map_err(db_err)?;
                Requeued::DeadLettered
            } else {
                tx.execute(
                    "UPDATE messages SET lease = NULL, visible_at = ?1 WHERE id = ?2",
                    params![now_ms() + delay.as_millis() as i64, id],
                )
                .map_err(db_err)?;
                Requeued::Retry
            };
            tx.commit().map_err(db_err)?;
            Ok(outcome)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let q =
            SqliteQueue::open(dir.path().join("q.db"), QueuePolicy { max_attempts: 3, ..Default::default() }).unwrap();
        super::super::conformance::run(&q, 3).await;
    }

    #[tokio::test]
    async fn messages_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let q = SqliteQueue::open(&path, QueuePolicy::default()).unwrap();
        q.send("jobs", Outgoing::json(&1).unwrap()).await.unwrap();
        drop(q);
        let q = SqliteQueue::open(&path, QueuePolicy::default()).unwrap();
        assert_eq!(q.depth("jobs").await.unwrap(), 1);
        assert_eq!(q.receive("jobs", 5, Duration::from_secs(5)).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn competing_consumers_each_get_a_message_once() {
        let dir = tempfile::tempdir().unwrap();
        let q = SqliteQueue::open(dir.path().join("q.db"), QueuePolicy::default()).unwrap();
        for i in 0..50 {
            q.send("work", Outgoing::json(&i).unwrap()).await.unwrap();
        }
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let q = q.clone();
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let got = q.receive("work", 3, Duration::from_secs(60)).await.unwrap();
                    if got.is_empty() {
                        break seen;
                    }
                    for d in got {
                        seen.push(d.message.json::<i32>().unwrap());
                        q.ack("work", &d.receipt).await.unwrap();
                    }
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
    }
}
