//! The local stack's own bookkeeping (SQLite): which object versions have been turned
//! into storage events, so each reaches its function once, also across restarts; and a
//! log of every delivery, for `/_local/status` and tests.

use anyhow::Context as _;
use rusqlite::{Connection, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Ledger {
    conn: Arc<Mutex<Connection>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryRecord {
    pub function: String,
    pub trigger: String,
    pub subject: String,
    pub message_id: String,
    pub attempt: u32,
    pub outcome: String,
    pub error: Option<String>,
    pub at: String,
}

impl Ledger {
    pub fn open(path: &Path) -> anyhow::Result<Ledger> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS seen_objects (
                function TEXT NOT NULL, key TEXT NOT NULL, etag TEXT NOT NULL, at TEXT NOT NULL,
                PRIMARY KEY (function, key, etag)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS deliveries (
                id INTEGER PRIMARY KEY AUTOINCREMENT, function TEXT NOT NULL, trigger TEXT NOT NULL,
                subject TEXT NOT NULL, message_id TEXT NOT NULL, attempt INTEGER NOT NULL,
                outcome TEXT NOT NULL, error TEXT, at TEXT NOT NULL);",
        )?;
        Ok(Ledger { conn: Arc::new(Mutex::new(conn)) })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> anyhow::Result<T> {
        let guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&guard)?)
    }

    pub fn is_seen(&self, function: &str, key: &str, etag: &str) -> anyhow::Result<bool> {
        self.with(|c| {
            c.query_row(
                "SELECT 1 FROM seen_objects WHERE function = ?1 AND key = ?2 AND etag = ?3",
                params![function, key, etag],
                |_| Ok(()),
            )
            .map(|_| true)
            .or_else(|e| if matches!(e, rusqlite::Error::QueryReturnedNoRows) { Ok(false) } else { Err(e) })
        })
    }

    pub fn mark_seen(&self, function: &str, key: &str, etag: &str) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO seen_objects (function, key, etag, at) VALUES (?1, ?2, ?3, ?4)",
                params![function, key, etag, chrono::Utc::now().to_rfc3339()],
            )
            .map(|_| ())
        })
    }

    pub fn record(&self, d: &DeliveryRecord) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO deliveries (function, trigger, subject, message_id, attempt, outcome, error, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![d.function, d.trigger, d.subject, d.message_id, d.attempt, d.outcome, d.error, d.at],
            )
            .map(|_| ())
        })
    }

    /// The most recent deliveries, newest last.
    pub fn recent(&self, limit: usize) -> anyhow::Result<Vec<DeliveryRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT function, trigger, subject, message_id, attempt, outcome, error, at FROM
                 (SELECT * FROM deliveries ORDER BY id DESC LIMIT ?1) ORDER BY id",
            )?;
            let rows = stmt.query_map(params![limit as i64], |r| {
                Ok(DeliveryRecord {
                    function: r.get(0)?,
                    trigger: r.get(1)?,
                    subject: r.get(2)?,
                    message_id: r.get(3)?,
                    attempt: r.get(4)?,
                    outcome: r.get(5)?,
                    error: r.get(6)?,
                    at: r.get(7)?,
                })
            })?;
            rows.collect()
        })
    }
}
