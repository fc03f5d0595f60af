//! Documents in Firestore (native mode), through the `firestore` crate.
//!
//! `firestore://{project}/{database}`: the port's collection `interviews` is the Firestore
//! collection `interviews`. Each document holds
//! - `key`: the port's key as given, so prefix queries are range queries on one field
//!   (Firestore's automatic single-field index; no composite index needed);
//! - `value`: the JSON text of the value. Text rather than a Firestore map because JSON
//!   round-trips exactly (nested arrays, integer/float distinction, large numbers), and
//!   Firestore maps do not allow arrays of arrays;
//! - `version`: an integer, 1 on create, +1 on every write;
//! - `expires_at`: a timestamp, the field Terraform's TTL policy deletes on
//!   (terraform/gcp/firestore.tf). TTL deletion runs within about a day, so reads treat an
//!   expired document as absent themselves, as the local adapter does.
//!
//! Preconditions are enforced by Firestore: a write reads the document, checks the
//! condition, and commits with a precondition on that read (`update_time` of the document
//! read, or `exists: false`), so a concurrent write in between makes it fail and nothing is
//! lost (optimistic concurrency, no transaction held open).
//!
//! Document ids: Firestore ids cannot contain `/` nor be `.`, `..` or `__*__`, so ids are
//! the keys with `%` and `/` percent-encoded (and `.`/`..`/`__*__` escaped the same way):
//! reversible, and readable in the console.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::OnceCell;

use ::firestore::errors::FirestoreError;
use ::firestore::gcloud_sdk::google::firestore::v1::{Document as FsDocument, Value, value::ValueType};
use ::firestore::gcloud_sdk::prost_types::Timestamp;
use ::firestore::{FirestoreDb, FirestoreDbOptions, FirestoreWritePrecondition};

use super::{Document, DocumentStore, Page, Precondition, validate_name};
use crate::error::{Error, Result};

const KEY: &str = "key";
const VALUE: &str = "value";
const VERSION: &str = "version";
/// The field terraform/gcp/firestore.tf sets the TTL policy on.
const EXPIRES_AT: &str = "expires_at";

/// How often an unconditional write retries when another writer got in between its read
/// and its commit (each retry re-reads, so it only repeats under real contention).
const MAX_CAS_ATTEMPTS: u32 = 16;

pub struct FirestoreDocumentStore {
    project: String,
    database: String,
    /// `None`: production (or `FIRESTORE_EMULATOR_HOST`, which the crate honours itself).
    endpoint: Option<String>,
    db: OnceCell<FirestoreDb>,
}

impl FirestoreDocumentStore {
    /// `firestore://{project}/{database}` (database `(default)` when the path is empty).
    /// No network: the client is created on first use.
    pub fn from_url(url: &url::Url) -> Result<Self> {
        let bad = |why: &str| {
            Error::bad_request(format!("CATALYST_STORE_URL `{url}`: {why} (expected firestore://PROJECT/DATABASE)"))
                .with_code("invalid_store_url")
        };
        if url.scheme() != "firestore" {
            return Err(bad("not a firestore:// URL"));
        }
        let project = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no project"))?;
        let mut segments =
            url.path_segments().map(|s| s.filter(|s| !s.is_empty()).collect::<Vec<_>>()).unwrap_or_default();
        let database = match segments.len() {
            0 => "(default)".to_string(),
            1 => segments.remove(0).to_string(),
            _ => return Err(bad("the path must be one database id")),
        };
        let valid_id = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:()".contains(c));
        if !valid_id(project) || !valid_id(&database) {
            return Err(bad("invalid project or database id"));
        }
        Ok(Self::new(project, &database, None))
    }

    /// A store on the Firestore (emulator) at `endpoint`, e.g. `http://127.0.0.1:8080`,
    /// sending no credentials.
    pub fn with_endpoint(project: &str, database: &str, endpoint: impl Into<String>) -> Self {
        Self::new(project, database, Some(endpoint.into()))
    }

    fn new(project: &str, database: &str, endpoint: Option<String>) -> Self {
        FirestoreDocumentStore {
            project: project.to_string(),
            database: database.to_string(),
            endpoint,
            db: OnceCell::new(),
        }
    }

    async fn db(&self) -> Result<&FirestoreDb> {
        self.db
            .get_or_try_init(|| async {
                // The Google crates are built without a TLS provider of their own (no aws-lc):
                // they use the process default, ring, as the rest of the workspace does.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let options = FirestoreDbOptions::new(self.project.clone())
                    .with_database_id(self.database.clone())
                    // A hung connection must not hold a request forever; retries get a fresh limit.
                    .with_request_timeout(Duration::from_secs(30));
                let db = match &self.endpoint {
                    Some(endpoint) => {
                        let anonymous =
                            ::firestore::gcloud_sdk::google_cloud_auth::credentials::anonymous::Builder::new().build();
                        FirestoreDb::with_options_auth(options.with_firebase_api_url(endpoint.clone()), anonymous).await
                    }
                    None => FirestoreDb::with_options(options).await,
                };
                db.map_err(|e| {
                    Error::unavailable(format!("cannot create the Firestore client for {}", self.location()))
                        .with_code("store_unavailable")
                        .with_source(e)
                })
            })
            .await
    }

    /// The document as stored (expired or not) and its update time, for a precondition.
    async fn read(&self, collection: &str, key: &str) -> Result<Option<FsDocument>> {
        let db = self.db().await?;
        // `one` answers `None` for NOT_FOUND, which a missing database also is: reads of a
        // misnamed database find nothing, and its first write fails with `database_not_found`.
        db.fluent().select().by_id_in(encode_id(collection)).one(encode_id(key)).await.map_err(|e| self.error(e))
    }

    /// Commit `doc` (or a delete when `doc` is `None`) on condition that the stored document
    /// is still `seen`. `Ok(false)`: someone else wrote in between.
    async fn write_if_unchanged(
        &self,
        collection: &str,
        key: &str,
        seen: Option<&FsDocument>,
        doc: Option<FsDocument>,
    ) -> Result<bool> {
        let db = self.db().await?;
        let precondition = match seen.and_then(|d| d.update_time) {
            Some(t) => FirestoreWritePrecondition::UpdateTime(
                ::firestore::timestamp_utils::from_timestamp(t).map_err(|e| self.error(e))?,
            ),
            None => FirestoreWritePrecondition::Exists(false),
        };
        let result = match doc {
            Some(doc) => db
                .fluent()
                .update()
                .in_col(encode_id(collection))
                .precondition(precondition)
                .document(doc)
                .execute()
                .await
                .map(|_| ()),
            None if seen.is_none() => return Ok(true),
            None => {
                db.fluent()
                    .delete()
                    .from(encode_id(collection))
                    .precondition(precondition)
                    .document_id(encode_id(key))
                    .execute()
                    .await
            }
        };
        match result {
            Ok(()) => Ok(true),
            Err(e) if lost_race(&e) => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    fn error(&self, e: FirestoreError) -> Error {
        let location = self.location();
        match &e {
            FirestoreError::DataNotFoundError(d) if is_missing_database(&d.data_detail_message) => {
                Error::unavailable(format!("{location}: the Firestore database does not exist"))
                    .with_code("database_not_found")
            }
            FirestoreError::DataConflictError(_) => Error::conflict(format!("{location}: write conflict")),
            FirestoreError::InvalidParametersError(p) => {
                Error::bad_request(format!("Firestore refused the request: {}", p.public)).with_code("invalid_document")
            }
            FirestoreError::DatabaseError(d) => match d.public.code.as_str() {
                "InvalidArgument" => {
                    Error::bad_request("Firestore refused the document (too large, or a key longer than 1500 bytes?)")
                        .with_code("invalid_document")
                }
                "PermissionDenied" | "Unauthenticated" => {
                    Error::unavailable(format!("{location}: access denied")).with_code("store_access_denied")
                }
                "ResourceExhausted" => {
                    Error::new(crate::error::ErrorKind::TooManyRequests, format!("{location}: quota exhausted"))
                }
                "DeadlineExceeded" => Error::new(crate::error::ErrorKind::Timeout, format!("{location}: timed out")),
                _ if d.retry_possible => Error::unavailable(format!("{location}: unavailable")),
                _ => Error::internal(format!("{location}: unexpected Firestore error")),
            },
            FirestoreError::SerializeError(_) | FirestoreError::DeserializeError(_) => {
                Error::internal(format!("{location}: a stored document does not decode"))
            }
            _ => Error::unavailable(format!("{location}: Firestore unreachable")).with_code("store_unavailable"),
        }
        .with_source(e)
    }

    fn document(
        &self,
        collection: &str,
        key: &str,
        value: &serde_json::Value,
        version: u64,
        expires_at: Option<DateTime<Utc>>,
    ) -> FsDocument {
        let mut fields = HashMap::from([
            (KEY.to_string(), value_of(ValueType::StringValue(key.to_string()))),
            (VALUE.to_string(), value_of(ValueType::StringValue(value.to_string()))),
            (VERSION.to_string(), value_of(ValueType::IntegerValue(version as i64))),
        ]);
        if let Some(t) = expires_at {
            let ts = Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 };
            fields.insert(EXPIRES_AT.to_string(), value_of(ValueType::TimestampValue(ts)));
        }
        FsDocument {
            name: format!(
                "projects/{}/databases/{}/documents/{}/{}",
                self.project,
                self.database,
                encode_id(collection),
                encode_id(key)
            ),
            fields,
            create_time: None,
            update_time: None,
        }
    }
}

fn value_of(v: ValueType) -> Value {
    Value { value_type: Some(v) }
}

fn is_missing_database(details: &str) -> bool {
    details.contains("database") && details.contains("does not exist")
}

/// A precondition failed: another writer changed (or created, or deleted) the document.
fn lost_race(e: &FirestoreError) -> bool {
    match e {
        FirestoreError::DataConflictError(_) => true,
        FirestoreError::DataNotFoundError(d) => !is_missing_database(&d.data_detail_message),
        FirestoreError::DatabaseError(d) => d.public.code == "FailedPrecondition" || d.public.code == "Aborted",
        _ => false,
    }
}

/// Percent-encode what a Firestore id cannot hold; `%` too, so it is reversible.
fn encode_id(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
    if out == "." || out == ".." {
        return out.replace('.', "%2E");
    }
    if out.len() >= 4 && out.starts_with("__") && out.ends_with("__") {
        return format!("%5F{}", &out[1..]);
    }
    out
}

struct Stored {
    key: String,
    value: serde_json::Value,
    version: u64,
    expires_at: Option<DateTime<Utc>>,
}

impl Stored {
    fn live(&self) -> bool {
        self.expires_at.is_none_or(|t| t > Utc::now())
    }
}

fn decode(doc: &FsDocument) -> Result<Stored> {
    let corrupt = || Error::internal(format!("Firestore document {} is not a catalyst document", doc.name));
    let field = |name: &str| doc.fields.get(name).and_then(|v| v.value_type.as_ref());
    let key = match field(KEY) {
        Some(ValueType::StringValue(s)) => s.clone(),
        _ => return Err(corrupt()),
    };
    let value = match field(VALUE) {
        Some(ValueType::StringValue(s)) => serde_json::from_str(s).map_err(|e| corrupt().with_source(e))?,
        _ => return Err(corrupt()),
    };
    let version = match field(VERSION) {
        Some(ValueType::IntegerValue(v)) if *v > 0 => *v as u64,
        _ => return Err(corrupt()),
    };
    let expires_at = match field(EXPIRES_AT) {
        Some(ValueType::TimestampValue(t)) => DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32),
        None | Some(ValueType::NullValue(_)) => None,
        _ => return Err(corrupt()),
    };
    Ok(Stored { key, value, version, expires_at })
}

fn check(condition: Precondition, current: Option<u64>, collection: &str, key: &str) -> Result<()> {
    let ok = match condition {
        Precondition::None => true,
        Precondition::Absent => current.is_none(),
        Precondition::Version(v) => current == Some(v),
    };
    if ok {
        return Ok(());
    }
    let why = match (condition, current) {
        (Precondition::Absent, _) => "already exists".to_string(),
        (Precondition::Version(v), Some(c)) => format!("was modified (expected version {v}, found {c})"),
        (_, _) => "does not exist".to_string(),
    };
    Err(Error::conflict(format!("document {collection}/{key} {why}")).with_code("precondition_failed"))
}

fn lost_race_error(collection: &str, key: &str) -> Error {
    Error::conflict(format!("document {collection}/{key} was modified concurrently")).with_code("precondition_failed")
}

#[async_trait]
impl DocumentStore for FirestoreDocumentStore {
    fn location(&self) -> String {
        format!("firestore://{}/{}", self.project, self.database)
    }

    async fn get(&self, collection: &str, key: &str) -> Result<Option<Document>> {
        validate_name("collection", collection)?;
        validate_name("key", key)?;
        let Some(doc) = self.read(collection, key).await? else { return Ok(None) };
        let stored = decode(&doc)?;
        Ok(stored.live().then(|| Document {
            collection: collection.to_string(),
            key: key.to_string(),
            value: stored.value,
            version: stored.version,
            expires_at: stored.expires_at,
        }))
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
        for attempt in 1..=MAX_CAS_ATTEMPTS {
            let seen = self.read(collection, key).await?;
            let current = seen.as_ref().map(decode).transpose()?.filter(Stored::live).map(|s| s.version);
            check(condition, current, collection, key)?;
            // An expired document counts as absent: its successor starts again at version 1.
            let version = current.map_or(1, |v| v + 1);
            let doc = self.document(collection, key, &value, version, expires_at);
            if self.write_if_unchanged(collection, key, seen.as_ref(), Some(doc)).await? {
                return Ok(version);
            }
            if condition != Precondition::None {
                // The condition held on what we read, and that changed: it no longer holds.
                return Err(lost_race_error(collection, key));
            }
            cas_backoff(attempt).await;
        }
        Err(contention_error(collection, key))
    }

    async fn delete(&self, collection: &str, key: &str, condition: Precondition) -> Result<bool> {
        validate_name("collection", collection)?;
        validate_name("key", key)?;
        for attempt in 1..=MAX_CAS_ATTEMPTS {
            let seen = self.read(collection, key).await?;
            let current = seen.as_ref().map(decode).transpose()?.filter(Stored::live).map(|s| s.version);
            check(condition, current, collection, key)?;
            if self.write_if_unchanged(collection, key, seen.as_ref(), None).await? {
                return Ok(current.is_some());
            }
            if condition != Precondition::None {
                return Err(lost_race_error(collection, key));
            }
            cas_backoff(attempt).await;
        }
        Err(contention_error(collection, key))
    }

    async fn query_prefix(&self, collection: &str, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        validate_name("collection", collection)?;
        let limit = limit.clamp(1, 1000);
        let db = self.db().await?;
        let collection_id = encode_id(collection);
        // Everything starting with `prefix` sorts below `prefix` + U+10FFFF (the largest
        // code point; Firestore orders strings by UTF-8 bytes).
        let upper = format!("{prefix}\u{10FFFF}");
        let mut cursor: Option<String> = after.filter(|a| *a >= prefix).map(str::to_string);
        let mut documents = Vec::new();
        loop {
            // Expired documents are skipped here, so a batch may yield fewer than asked for.
            let batch = (limit + 1 - documents.len()) as u32;
            let (lower, lower_inclusive) = match &cursor {
                Some(c) => (c.clone(), false),
                None => (prefix.to_string(), true),
            };
            let upper = upper.clone();
            let docs = db
                .fluent()
                .select()
                .from(collection_id.as_str())
                .filter(move |q| {
                    let low = if lower_inclusive {
                        q.field(KEY).greater_than_or_equal(lower.clone())
                    } else {
                        q.field(KEY).greater_than(lower.clone())
                    };
                    q.for_all([low, q.field(KEY).less_than(upper.clone())])
                })
                .order(|o| o.fields([o.field(KEY).ascending()]))
                .limit(batch)
                .query()
                .await
                .map_err(|e| self.error(e))?;
            let exhausted = docs.len() < batch as usize;
            for doc in &docs {
                let stored = decode(doc)?;
                cursor = Some(stored.key.clone());
                if stored.live() && stored.key.starts_with(prefix) {
                    documents.push(Document {
                        collection: collection.to_string(),
                        key: stored.key,
                        value: stored.value,
                        version: stored.version,
                        expires_at: stored.expires_at,
                    });
                }
            }
            if exhausted || documents.len() > limit {
                break;
            }
        }
        let next = if documents.len() > limit {
            documents.truncate(limit);
            documents.last().map(|d| d.key.clone())
        } else {
            None
        };
        Ok(Page { documents, next })
    }
}

/// Wait before re-reading after another writer won the race.
async fn cas_backoff(attempt: u32) {
    tokio::time::sleep(crate::queue::backoff(attempt, Duration::from_millis(5), Duration::from_millis(200))).await;
}

fn contention_error(collection: &str, key: &str) -> Error {
    Error::unavailable(format!("document {collection}/{key}: too much write contention")).with_code("contention")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::store::DocumentStoreExt;
    use crate::testkit::gcp::firestore_emulator;
    use serde_json::json;
    use std::sync::Arc;

    fn store(server: &crate::testkit::ServerProcess, database: &str) -> FirestoreDocumentStore {
        FirestoreDocumentStore::with_endpoint("catalyst-test", database, server.url())
    }

    #[tokio::test]
    async fn conformance() {
        let server = firestore_emulator();
        crate::store::conformance::run(&store(&server, "conformance")).await;
    }

    #[tokio::test]
    async fn concurrent_read_modify_write_loses_nothing() {
        let server = firestore_emulator();
        crate::store::conformance::concurrent_increments(Arc::new(store(&server, "concurrent"))).await;
    }

    #[tokio::test]
    async fn odd_keys_round_trip_and_pages_follow_key_order() {
        let server = firestore_emulator();
        let store = store(&server, "odd-keys");
        let keys = ["a/b", "a%2Fb", ".", "..", "__x__", "ü/ñ 1", "a%b", "user:u1:0"];
        for (i, key) in keys.iter().enumerate() {
            store.put("odd/coll", key, json!({"i": i}), Precondition::Absent, None).await.unwrap();
        }
        for (i, key) in keys.iter().enumerate() {
            let doc = store.get("odd/coll", key).await.unwrap().unwrap_or_else(|| panic!("{key} missing"));
            assert_eq!(doc.key, *key);
            assert_eq!(doc.value, json!({"i": i}));
        }
        // `a/b` and `a%2Fb` are different keys, so different documents.
        assert_eq!(store.get_as::<serde_json::Value>("odd/coll", "a/b").await.unwrap().unwrap().0, json!({"i": 0}));
        // JSON Firestore maps cannot hold (nested arrays, big integers) round-trips exactly.
        let awkward = json!({"m": [[1, 2], [3.5]], "big": u64::MAX, "s": "x\u{1F600}"});
        store.put("odd/coll", "awkward", awkward.clone(), Precondition::None, None).await.unwrap();
        assert_eq!(store.get("odd/coll", "awkward").await.unwrap().unwrap().value, awkward);

        // 25 keys, pages of 4: every key once, in order, across 7 pages.
        for i in 0..25 {
            store.put("paged", &format!("k/{i:03}"), json!(i), Precondition::None, None).await.unwrap();
        }
        store.put("paged", "k0", json!("outside"), Precondition::None, None).await.unwrap();
        let (mut seen, mut after, mut pages) = (Vec::new(), None::<String>, 0);
        loop {
            let page = store.query_prefix("paged", "k/", after.as_deref(), 4).await.unwrap();
            pages += 1;
            seen.extend(page.documents.iter().map(|d| d.key.clone()));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, (0..25).map(|i| format!("k/{i:03}")).collect::<Vec<_>>());
        assert_eq!(pages, 7);
    }

    #[tokio::test]
    async fn expired_documents_do_not_shorten_pages() {
        let server = firestore_emulator();
        let store = store(&server, "expiry");
        let past = Utc::now() - chrono::Duration::seconds(1);
        for i in 0..6 {
            let expires = (i % 2 == 0).then_some(past);
            store.put("s", &format!("p{i}"), json!(i), Precondition::None, expires).await.unwrap();
        }
        let page = store.query_prefix("s", "p", None, 2).await.unwrap();
        assert_eq!(page.documents.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(), ["p1", "p3"]);
        let rest = store.query_prefix("s", "p", page.next.as_deref(), 2).await.unwrap();
        assert_eq!(rest.documents.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(), ["p5"]);
        assert!(rest.next.is_none());
        // The TTL field is a Firestore timestamp named as Terraform's TTL policy expects.
        let raw = store.read("s", "p0").await.unwrap().unwrap();
        assert!(matches!(raw.fields[EXPIRES_AT].value_type, Some(ValueType::TimestampValue(_))));
        let raw = store.read("s", "p1").await.unwrap().unwrap();
        assert!(!raw.fields.contains_key(EXPIRES_AT));
    }

    #[test]
    fn urls_parse_and_errors_name_the_variable() {
        let store = FirestoreDocumentStore::from_url(&"firestore://my-proj/catalyst".parse().unwrap()).unwrap();
        assert_eq!(store.location(), "firestore://my-proj/catalyst");
        let store = FirestoreDocumentStore::from_url(&"firestore://my-proj".parse().unwrap()).unwrap();
        assert_eq!(store.location(), "firestore://my-proj/(default)");
        for bad in ["firestore:///db", "firestore://p/a/b", "firestore://p/bad%20db"] {
            let err = FirestoreDocumentStore::from_url(&bad.parse().unwrap()).err().unwrap();
            assert_eq!(err.kind(), ErrorKind::BadRequest, "{bad}");
            assert!(err.message().contains("CATALYST_STORE_URL"), "{bad}: {err}");
        }
    }

    #[test]
    fn ids_are_encoded_reversibly() {
        assert_eq!(encode_id("a/b"), "a%2Fb");
        assert_eq!(encode_id("a%2Fb"), "a%252Fb");
        assert_eq!(encode_id("."), "%2E");
        assert_eq!(encode_id(".."), "%2E%2E");
        assert_eq!(encode_id("__x__"), "%5F_x__");
        assert_eq!(encode_id("user:u1:0"), "user:u1:0");
    }

    #[tokio::test]
    async fn retries_unavailable_then_gives_up() {
        use crate::testkit::gcp::{Failure, FlakyProxy};
        // A gRPC server that answers every call with UNAVAILABLE: the crate retries reads
        // (`max_retries`, 3 by default) before the error reaches us, typed and retryable.
        let proxy = FlakyProxy::start(None, usize::MAX, Failure::GrpcUnavailable).await;
        let store = FirestoreDocumentStore::with_endpoint("p", "d", proxy.url());
        let err = store.get("c", "k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.retryable());
        assert_eq!(proxy.requests(), 4, "one read and 3 retries");
    }

    #[tokio::test]
    async fn unreachable_firestore_is_a_typed_error() {
        // Nothing listens on this port: the error is Unavailable (retryable), not a panic.
        let port = crate::testkit::free_port();
        let store = FirestoreDocumentStore::with_endpoint("p", "d", format!("http://127.0.0.1:{port}"));
        let err = store.get("c", "k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.retryable());
    }
}
