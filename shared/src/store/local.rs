//! Documents in an embedded SQLite database (WAL mode), safe to share between the local
//! stack and function processes on the same machine, and durable across restarts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{Document, DocumentStore, Page, Precondition, validate_name};
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct SqliteDocumentStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    _checkpointer: Arc<crate::sqlite::Checkpointer>,
}

impl SqliteDocumentStore {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let conn = crate::sqlite::open(&path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS documents (
                collection TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                version INTEGER NOT NULL,
                expires_at INTEGER,
                PRIMARY KEY (collection, key)
            ) WITHOUT ROWID;",
        )
        .map_err(db_err)?;
        let checkpointer = crate::sqlite::checkpoint_in_background(&conn, &path)?;
        Ok(SqliteDocumentStore { path, conn: Arc::new(Mutex::new(conn)), _checkpointer: Arc::new(checkpointer) })
    }

    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        crate::sqlite::blocking(&self.conn, f).await
    }

    /// Remove expired documents (reads already ignore them; this reclaims space).
    pub async fn purge_expired(&self) -> Result<usize> {
        self.with_conn(|c| {
            c.execute("DELETE FROM documents WHERE expires_at IS NOT NULL AND expires_at <= ?1", params![now_ms()])
                .map_err(db_err)
        })
        .await
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn db_err(e: rusqlite::Error) -> Error {
    crate::sqlite::error(e)
}

/// Current (unexpired) version of a document, inside a transaction.
fn current_version(tx: &rusqlite::Transaction<'_>, collection: &str, key: &str) -> Result<Option<u64>> {
    tx.query_row(
        "SELECT version FROM documents WHERE collection = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        params![collection, key, now_ms()],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|v| v.map(|v| v as u64))
    .map_err(db_err)
}

fn check(condition: Precondition, current: Option<u64>, collection: &str, key: &str) -> Result<()> {
    let ok = match condition {
        Precondition::None => true,
        Precondition::Absent => current.is_none(),
        Precondition::Version(v) => current == Some(v),
    };
    if ok {
        Ok(())
    } else {
        let why = match (condition, current) {
            (Precondition::Absent, _) => "already exists".to_string(),
            (Precondition::Version(v), Some(c)) => format!("was modified (expected version {v}, found {c})"),
            (Precondition::Version(v), None) => format!("does not exist (expected version {v})"),
            _ => unreachable!("None always holds"),
        };
        Err(Error::conflict(format!("document {collection}/{key} {why}")).with_code("precondition_failed"))
    }
}

fn row_to_doc(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, i64, Option<i64>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_doc((collection, key, value, version, expires): (String, String, String, i64, Option<i64>)) -> Result<Document> {
    Ok(Document {
        value: serde_json::from_str(&value)
            .map_err(|e| Error::internal(format!("document {collection}/{key} is corrupt")).with_source(e))?,
        collection,
        key,
        version: version as u64,
        expires_at: expires.and_then(DateTime::from_timestamp_millis),
    })
}

/// Escape `%`, `_` and the escape character itself for a LIKE prefix match.
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[async_trait]
impl DocumentStore for SqliteDocumentStore {
    fn location(&self) -> String {
        format!("file://{}", self.path.display())
    }

    async fn get(&self, collection: &str, key: &str) -> Result<Option<Document>> {
        validate_name("collection", collection)?;
        validate_name("key", key)?;
        let (collection, key) = (collection.to_string(), key.to_string());
        self.with_conn(move |c| {
            let row = c
                .query_row(
                    "SELECT collection, key, value, version, expires_at FROM documents
                     WHERE collection = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
                    params![collection, key, now_ms()],
                    row_to_doc,
                )
                .optional()
                .map_err(db_err)?;
            row.map(to_doc).transpose()
        })
        .await
    }

    async fn put(
        &self,
        collection: &str,
        key: &str,
        value: serde_json::Value,
        condition: Precondition,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<u64> {
        validate_name("collection", collection)?;
        validate_name("key", key)?;
        let (collection, key) = (collection.to_string(), key.to_string());
        let text = value.to_string();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let current = current_version(&tx, &collection, &key)?;
            check(condition, current, &collection, &key)?;
            // An expired row counts as absent: its successor starts again at version 1.
            let version = current.map_or(1, |v| v + 1);
            tx.execute(
                "INSERT INTO documents (collection, key, value, version, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value, version = excluded.version,
                 expires_at = excluded.expires_at",
                params![collection, key, text, version as i64, expires_at.map(|t| t.timestamp_millis())],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(version)
        })
        .await
    }

    async fn delete(&self, collection: &str, key: &str, condition: Precondition) -> Result<bool> {
        validate_name("collection", collection)?;
        validate_name("key", key)?;
        let (collection, key) = (collection.to_string(), key.to_string());
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let current = current_version(&tx, &collection, &key)?;
            check(condition, current, &collection, &key)?;
            let n = tx
                .execute("DELETE FROM documents WHERE collection = ?1 AND key = ?2", params![collection, key])
                .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(n > 0 && current.is_some())
        })
        .await
    }

    async fn query_prefix(&self, collection: &str, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        validate_name("collection", collection)?;
        let (collection, pattern) = (collection.to_string(), like_prefix(prefix));
        let after = after.unwrap_or("").to_string();
        let limit = limit.clamp(1, 1000);
        self.with_conn(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT collection, key, value, version, expires_at FROM documents
                     WHERE collection = ?1 AND key LIKE ?2 ESCAPE '\\' AND key > ?3
                       AND (expires_at IS NULL OR expires_at > ?4)
                     ORDER BY key LIMIT ?5",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![collection, pattern, after, now_ms(), (limit + 1) as i64], row_to_doc)
                .map_err(db_err)?;
            let mut documents = Vec::new();
            for row in rows {
                documents.push(to_doc(row.map_err(db_err)?)?);
            }
            let next = if documents.len() > limit {
                documents.truncate(limit);
                documents.last().map(|d| d.key.clone())
            } else {
                None
            };
            Ok(Page { documents, next })
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
        let store = SqliteDocumentStore::open(dir.path().join("store.db")).unwrap();
        super::super::conformance::run(&store).await;
    }

    #[tokio::test]
    async fn the_wal_is_checkpointed_in_the_background_not_by_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteDocumentStore::open(&path).unwrap();
        let auto = store
            .with_conn(|c| c.pragma_query_value(None, "wal_autocheckpoint", |r| r.get::<_, i64>(0)).map_err(db_err));
        assert_eq!(auto.await.unwrap(), 0, "commits must not checkpoint");
        // Well past SQLite's automatic checkpoint (1,000 pages).
        let big = "x".repeat(8 * 1024);
        for i in 0..1_200 {
            store.put("c", &format!("k{i:04}"), serde_json::json!({"v": big}), Precondition::None, None).await.unwrap();
        }
        // Only a checkpoint moves pages from the WAL into the database file, and nothing
        // but the background thread checkpoints here: the file fills within a few rounds.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::fs::metadata(&path).unwrap().len() < 9_000_000 {
            assert!(std::time::Instant::now() < deadline, "the database file was never checkpointed into");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(store.get("c", "k1199").await.unwrap().unwrap().value["v"], big);
    }

    // Store calls run inline (block_in_place) on a multi-threaded runtime: the same suite there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_with_calls_run_inline() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteDocumentStore::open(dir.path().join("store.db")).unwrap();
        super::super::conformance::run(&store).await;
        super::super::conformance::concurrent_increments(Arc::new(store)).await;
    }

    #[tokio::test]
    async fn concurrent_read_modify_write_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteDocumentStore::open(dir.path().join("store.db")).unwrap();
        super::super::conformance::concurrent_increments(Arc::new(store)).await;
    }

    #[tokio::test]
    async fn two_handles_on_one_file_see_each_other_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let a = SqliteDocumentStore::open(&path).unwrap();
        let b = SqliteDocumentStore::open(&path).unwrap();
        a.put("c", "k", serde_json::json!({"x": 1}), Precondition::Absent, None).await.unwrap();
        assert_eq!(
            b.put("c", "k", serde_json::json!({"x": 2}), Precondition::Absent, None).await.unwrap_err().code(),
            "precondition_failed"
        );
        drop((a, b));
        let c = SqliteDocumentStore::open(&path).unwrap();
        assert_eq!(c.get("c", "k").await.unwrap().unwrap().value["x"], 1);
        assert_eq!(c.purge_expired().await.unwrap(), 0);
    }
}
