//! Document store port: JSON documents in collections (interviews, API keys, the prompt
//! registry), with versions for optimistic concurrency, conditional create, prefix
//! queries and expiry. Embedded SQLite locally; DynamoDB and Firestore behind the same trait.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::sync::Arc;

use crate::error::{Error, Result};

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "firestore")]
pub mod firestore;
#[cfg(feature = "local")]
pub mod local;

/// A stored document. `version` starts at 1 and grows by one on every write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub collection: String,
    pub key: String,
    pub value: serde_json::Value,
    pub version: u64,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Document {
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.value.clone()).map_err(|e| {
            Error::internal(format!("stored document {}/{} does not match its type", self.collection, self.key))
                .with_source(e)
        })
    }
}

/// What must hold for a write to go ahead; otherwise it fails with `Conflict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Write whatever is there.
    None,
    /// Only if no (unexpired) document exists: conditional create.
    Absent,
    /// Only if the current version is exactly this: optimistic concurrency.
    Version(u64),
}

/// One page of a prefix query, in key order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub documents: Vec<Document>,
    /// Pass back as `after` to continue.
    pub next: Option<String>,
}

#[async_trait]
pub trait DocumentStore: Send + Sync + 'static {
    fn location(&self) -> String;

    /// The document, or `None` if absent or expired.
    async fn get(&self, collection: &str, key: &str) -> Result<Option<Document>>;

    /// Write `value` if `condition` holds; returns the new version.
    async fn put(
        &self,
        collection: &str,
        key: &str,
        value: serde_json::Value,
        condition: Precondition,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<u64>;

    /// Remove the document if `condition` holds. Returns whether something was removed;
    /// removing an absent document with `Precondition::None` is not an error.
    async fn delete(&self, collection: &str, key: &str, condition: Precondition) -> Result<bool>;

    /// Up to `limit` unexpired documents whose key starts with `prefix`, after key `after`.
    async fn query_prefix(&self, collection: &str, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page>;
}

pub type SharedDocumentStore = Arc<dyn DocumentStore>;

/// Typed helpers over any store.
#[async_trait]
pub trait DocumentStoreExt: DocumentStore {
    async fn get_as<T: DeserializeOwned + Send>(&self, collection: &str, key: &str) -> Result<Option<(T, u64)>> {
        match self.get(collection, key).await? {
            Some(doc) => Ok(Some((doc.parse()?, doc.version))),
            None => Ok(None),
        }
    }

    async fn put_as<T: Serialize + Sync>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
        condition: Precondition,
    ) -> Result<u64> {
        let value =
            serde_json::to_value(value).map_err(|e| Error::internal("document does not serialize").with_source(e))?;
        self.put(collection, key, value, condition, None).await
    }

    /// Read-modify-write with optimistic concurrency. `change` gets the current value
    /// (`None` when absent) and returns the value to write, or `None` to leave it as it
    /// is; a write that loses a race reads again, up to `attempts` times with a growing
    /// pause. Returns whether it wrote; an error from `change` is returned as it is.
    async fn update_as<T, F>(&self, collection: &str, key: &str, attempts: u32, mut change: F) -> Result<bool>
    where
        T: Serialize + DeserializeOwned + Send + Sync,
        F: FnMut(Option<T>) -> Result<Option<T>> + Send,
    {
        for attempt in 0..attempts.max(1) {
            let (current, version) = match self.get_as::<T>(collection, key).await? {
                Some((v, version)) => (Some(v), Some(version)),
                None => (None, None),
            };
            let Some(next) = change(current)? else { return Ok(false) };
            let condition = version.map(Precondition::Version).unwrap_or(Precondition::Absent);
            match self.put_as(collection, key, &next, condition).await {
                Ok(_) => return Ok(true),
                Err(e) if e.kind() == crate::ErrorKind::Conflict => {
                    tokio::time::sleep(std::time::Duration::from_millis(2 + attempt as u64 * 3)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(format!("`{collection}/{key}` keeps changing; try again")).with_code("update_conflict"))
    }
}

impl<S: DocumentStore + ?Sized> DocumentStoreExt for S {}

pub(crate) fn validate_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 1024 || name.chars().any(char::is_control) {
        return Err(
            Error::bad_request(format!("invalid document {what} `{}`", name.escape_debug())).with_code("invalid_key")
        );
    }
    Ok(())
}

/// Open the adapter a URL names. Cloud clients are created here without any network
/// call; credentials are resolved on first use.
pub fn open(url: &url::Url) -> Result<SharedDocumentStore> {
    match url.scheme() {
        #[cfg(feature = "local")]
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|_| Error::bad_request(format!("CATALYST_STORE_URL `{url}` is not a local path")))?;
            Ok(Arc::new(local::SqliteDocumentStore::open(path)?))
        }
        #[cfg(feature = "dynamodb")]
        "dynamodb" => Ok(Arc::new(dynamodb::DynamoDocumentStore::from_url(url)?)),
        #[cfg(feature = "firestore")]
        "firestore" => Ok(Arc::new(firestore::FirestoreDocumentStore::from_url(url)?)),
        other => Err(Error::unavailable(format!(
            "CATALYST_STORE_URL: the `{other}` store adapter is not built into this binary"
        ))
        .with_code("adapter_unavailable")),
    }
}

/// The conformance suite every adapter runs, so they behave the same.
pub mod conformance {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    pub async fn run(store: &dyn DocumentStore) {
        // Conditional create, then a second create loses.
        let v1 = store.put("interviews", "i1", json!({"n": 1}), Precondition::Absent, None).await.unwrap();
        assert_eq!(v1, 1);
        let err = store.put("interviews", "i1", json!({"n": 2}), Precondition::Absent, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);

        // Versioned update; a stale version is refused and changes nothing.
        let v2 = store.put("interviews", "i1", json!({"n": 2}), Precondition::Version(1), None).await.unwrap();
        assert_eq!(v2, 2);
        let err = store.put("interviews", "i1", json!({"n": 99}), Precondition::Version(1), None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        let doc = store.get("interviews", "i1").await.unwrap().unwrap();
        assert_eq!(doc.value, json!({"n": 2}));
        assert_eq!(doc.version, 2);
        // A versioned update of something absent is a conflict too.
        let err = store.put("interviews", "nope", json!({}), Precondition::Version(1), None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        // Unconditional put bumps the version.
        assert_eq!(store.put("interviews", "i1", json!({"n": 3}), Precondition::None, None).await.unwrap(), 3);

        // Collections are separate namespaces.
        assert!(store.get("api_keys", "i1").await.unwrap().is_none());

        // Prefix query with pagination.
        for i in 0..5 {
            store.put("api_keys", &format!("user:u1:{i}"), json!({"i": i}), Precondition::None, None).await.unwrap();
        }
        store.put("api_keys", "user:u2:0", json!({"i": 0}), Precondition::None, None).await.unwrap();
        let p1 = store.query_prefix("api_keys", "user:u1:", None, 3).await.unwrap();
        assert_eq!(p1.documents.len(), 3);
        let p2 = store.query_prefix("api_keys", "user:u1:", p1.next.as_deref(), 3).await.unwrap();
        assert_eq!(p2.documents.len(), 2);
        assert!(p2.next.is_none());
        let keys: Vec<_> = p1.documents.iter().chain(&p2.documents).map(|d| d.key.clone()).collect();
        assert_eq!(keys, (0..5).map(|i| format!("user:u1:{i}")).collect::<Vec<_>>());
        // `%` and `_` in a prefix are literal, not wildcards.
        store.put("api_keys", "a%b", json!({}), Precondition::None, None).await.unwrap();
        store.put("api_keys", "axb", json!({}), Precondition::None, None).await.unwrap();
        assert_eq!(store.query_prefix("api_keys", "a%", None, 10).await.unwrap().documents.len(), 1);

        // TTL: an expired document is invisible, and counts as absent for a create.
        let past = Utc::now() - chrono::Duration::seconds(5);
        store.put("sessions", "s1", json!({}), Precondition::None, Some(past)).await.unwrap();
        assert!(store.get("sessions", "s1").await.unwrap().is_none());
        assert!(store.query_prefix("sessions", "", None, 10).await.unwrap().documents.is_empty());
        store.put("sessions", "s1", json!({"fresh": true}), Precondition::Absent, None).await.unwrap();
        let future = Utc::now() + chrono::Duration::hours(1);
        store.put("sessions", "s2", json!({}), Precondition::None, Some(future)).await.unwrap();
        let s2 = store.get("sessions", "s2").await.unwrap().unwrap();
        assert!(s2.expires_at.is_some());

        // Delete: conditional and idempotent.
        let err = store.delete("interviews", "i1", Precondition::Version(1)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(store.delete("interviews", "i1", Precondition::Version(3)).await.unwrap());
        assert!(!store.delete("interviews", "i1", Precondition::None).await.unwrap());
        assert!(store.get("interviews", "i1").await.unwrap().is_none());
    }

    /// Many writers racing on one document with read-modify-write: no update is lost.
    pub async fn concurrent_increments(store: std::sync::Arc<dyn DocumentStore>) {
        store.put("counters", "c", json!({"n": 0}), Precondition::None, None).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    loop {
                        let doc = store.get("counters", "c").await.unwrap().unwrap();
                        let n = doc.value["n"].as_u64().unwrap();
                        match store
                            .put("counters", "c", json!({"n": n + 1}), Precondition::Version(doc.version), None)
                            .await
                        {
                            Ok(_) => break,
                            Err(e) if e.kind() == ErrorKind::Conflict => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let doc = store.get("counters", "c").await.unwrap().unwrap();
        assert_eq!(doc.value["n"], 80);
    }
}
