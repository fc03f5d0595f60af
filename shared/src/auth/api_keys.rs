//! API keys for integrations: issued to a signed-in user, sent as `x-api-key` (or
//! `Authorization: Bearer ck_live_...`), limited to their scopes, revocable at once.
//!
//! A key reads `ck_live_<id>_<secret>`: `id` is 12 public alphanumerics that name the key,
//! `secret` is 32 random alphanumerics (190 bits). Only the SHA-256 of the whole key is
//! stored; a slow password hash is not needed because the secret is random, not chosen.
//!
//! Store layout, collection [`COLLECTION`]:
//! - `key:<id>` holds what verification needs (owner, hash, scopes, expiry): one point read
//!   per request, then a constant-time comparison of hashes;
//! - `user:<uid>:<id>` holds what the owner sees (name, prefix, usage): listing a user's
//!   keys is one prefix query. The uid is form-encoded, so no uid can be a prefix of another's
//!   (`a` vs `a:b`).
//!
//! Revocation deletes `key:<id>` first, so the next request with the key is refused even
//! if removing the listing entry then fails (a retried DELETE finishes it). Usage (last
//! used, count) is sent to a background task that batches it into the listing entry, so the
//! request path never waits for a write.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;
use subtle::ConstantTimeEq as _;
use tokio::sync::mpsc;

use super::{Authenticator, NO_CREDENTIAL, Principal, PrincipalKind, firebase};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Precondition, SharedDocumentStore};

/// Every key starts with this, so leaked keys are easy to recognise and scan for.
pub const API_KEY_PREFIX: &str = "ck_live_";
pub const COLLECTION: &str = "api_keys";
/// The header integrations send the key in.
pub const HEADER: &str = "x-api-key";
pub const MAX_KEYS_PER_USER: usize = 100;
pub const MAX_SCOPES: usize = 32;
pub const MAX_EXPIRES_IN_DAYS: u32 = 3650;
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 32;
const KEY_LEN: usize = API_KEY_PREFIX.len() + ID_LEN + 1 + SECRET_LEN;
/// Expired keys are kept this long so a caller hears "expired", not "unknown".
const EXPIRED_RETENTION: chrono::Duration = chrono::Duration::days(30);
const USAGE_QUEUE: usize = 4096;

/// `POST /v1/auth/api-keys` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What the key is for, 1-100 characters.
    pub name: String,
    /// What the key may do, e.g. `["scrape", "interviews:write"]`; `*` is everything.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Lifetime in days (1-3650); without it the key lasts until revoked.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A new key. `key` is shown this once and cannot be recovered.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    pub id: String,
    pub key: String,
    /// The key's public beginning, to recognise it in lists and logs.
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key as its owner sees it later: no secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyInfo {
    pub id: String,
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<DateTime<Utc>>,
    pub use_count: u64,
}

/// `key:<id>`: what verification reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Credential {
    uid: String,
    /// Hex SHA-256 of the whole key.
    sha256: String,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
}

struct Usage {
    listing_key: String,
    at: DateTime<Utc>,
}

/// Issues, lists, revokes and verifies API keys over the document store.
pub struct ApiKeys {
    store: SharedDocumentStore,
    usage: OnceLock<mpsc::Sender<Usage>>,
    flush_interval: Duration,
}

impl ApiKeys {
    pub fn new(store: SharedDocumentStore) -> Self {
        ApiKeys { store, usage: OnceLock::new(), flush_interval: Duration::from_secs(1) }
    }

    /// How long usage is gathered before it is written (default 1 s).
    pub fn with_usage_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Issue a key owned by `owner`, who must be a signed-in user: API keys cannot mint keys.
    pub async fn create(&self, owner: &Principal, req: NewApiKey) -> Result<CreatedApiKey> {
        require_user(owner)?;
        let name = req.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Error::bad_request("`name` must be 1-100 characters without control characters")
                .with_code("invalid_name"));
        }
        let scopes = validate_scopes(req.scopes)?;
        let created_at = Utc::now();
        let expires_at = match req.expires_in_days {
            None => None,
            Some(d) if (1..=MAX_EXPIRES_IN_DAYS).contains(&d) => Some(created_at + chrono::Duration::days(d.into())),
            Some(_) => {
                return Err(Error::bad_request(format!("`expires_in_days` must be 1-{MAX_EXPIRES_IN_DAYS}"))
                    .with_code("invalid_expiry"));
            }
        };
        let existing =
            self.store.query_prefix(COLLECTION, &listing_prefix(&owner.uid), None, MAX_KEYS_PER_USER).await?;
        if existing.documents.len() >= MAX_KEYS_PER_USER {
            return Err(Error::conflict(format!(
                "you already have {MAX_KEYS_PER_USER} API keys; revoke one before creating another"
            ))
            .with_code("too_many_api_keys"));
        }

        let id = random_alphanumeric(ID_LEN);
        let key = format!("{API_KEY_PREFIX}{id}_{}", random_alphanumeric(SECRET_LEN));
        let credential = Credential {
            uid: owner.uid.clone(),
            sha256: hex::encode(Sha256::digest(key.as_bytes())),
            scopes: scopes.clone(),
            expires_at,
        };
        let info = ApiKeyInfo {
            id: id.clone(),
            prefix: format!("{API_KEY_PREFIX}{id}"),
            name,
            scopes,
            created_at,
            expires_at,
            last_used_at: None,
            use_count: 0,
        };
        let ttl = expires_at.map(|e| e + EXPIRED_RETENTION);
        // `Absent`: a (vanishingly unlikely) id collision fails instead of overwriting.
        self.store.put(COLLECTION, &credential_key(&id), to_json(&credential)?, Precondition::Absent, ttl).await?;
        if let Err(e) =
            self.store.put(COLLECTION, &listing_key(&owner.uid, &id), to_json(&info)?, Precondition::Absent, ttl).await
        {
            // The key was never shown to anyone; do not leave a usable credential behind.
            let _ = self.store.delete(COLLECTION, &credential_key(&id), Precondition::None).await;
            return Err(e);
        }
        tracing::info!(key_id = %id, uid = %owner.uid, "API key created");
        Ok(CreatedApiKey { id, key, prefix: info.prefix, name: info.name, scopes: info.scopes, created_at, expires_at })
    }

    /// One page of `owner`'s keys, in id order; pass the returned cursor as `after`.
    pub async fn list(
        &self,
        owner: &Principal,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ApiKeyInfo>, Option<String>)> {
        require_user(owner)?;
        let prefix = listing_prefix(&owner.uid);
        let after = match after {
            Some(a) => Some(listing_key(&owner.uid, valid_id(a)?)),
            None => None,
        };
        let page = self.store.query_prefix(COLLECTION, &prefix, after.as_deref(), limit.clamp(1, 100)).await?;
        let keys = page.documents.iter().map(|d| d.parse()).collect::<Result<Vec<ApiKeyInfo>>>()?;
        Ok((keys, page.next.map(|k| k[prefix.len()..].to_string())))
    }

    /// One of `owner`'s keys; someone else's is "not found".
    pub async fn get(&self, owner: &Principal, id: &str) -> Result<ApiKeyInfo> {
        require_user(owner)?;
        let doc = self.store.get(COLLECTION, &listing_key(&owner.uid, valid_id(id)?)).await?;
        doc.ok_or_else(|| not_found(id))?.parse()
    }

    /// Revoke one of `owner`'s keys. Effective for the very next request.
    pub async fn revoke(&self, owner: &Principal, id: &str) -> Result<()> {
        require_user(owner)?;
        let id = valid_id(id)?;
        let mut found = false;
        if let Some(doc) = self.store.get(COLLECTION, &credential_key(id)).await? {
            let cred: Credential = doc.parse()?;
            if cred.uid != owner.uid {
                return Err(not_found(id));
            }
            // Versioned, so a concurrent re-issue under the same id (impossible in practice) is not removed.
            found |= self.store.delete(COLLECTION, &credential_key(id), Precondition::Version(doc.version)).await?;
        }
        found |= self.store.delete(COLLECTION, &listing_key(&owner.uid, id), Precondition::None).await?;
        if !found {
            return Err(not_found(id));
        }
        tracing::info!(key_id = %id, uid = %owner.uid, "API key revoked");
        Ok(())
    }

    /// The principal a key stands for, or a 401.
    pub async fn verify(&self, key: &str) -> Result<Principal> {
        let id = parse_key(key).ok_or_else(|| {
            Error::unauthenticated(format!(
                "malformed API key: keys look like `{API_KEY_PREFIX}` followed by {} characters",
                KEY_LEN - API_KEY_PREFIX.len()
            ))
            .with_code("invalid_api_key")
        })?;
        let unknown = || Error::unauthenticated("unknown or revoked API key").with_code("invalid_api_key");
        let doc = self.store.get(COLLECTION, &credential_key(id)).await?.ok_or_else(unknown)?;
        let cred: Credential = doc.parse()?;
        let presented = Sha256::digest(key.as_bytes());
        let stored =
            hex::decode(&cred.sha256).map_err(|e| Error::internal("stored API key hash is not hex").with_source(e))?;
        // Constant-time, so response timing says nothing about how much of a guess was right.
        if !bool::from(presented.as_slice().ct_eq(&stored)) {
            return Err(unknown());
        }
        let now = Utc::now();
        if let Some(exp) = cred.expires_at
            && exp <= now
        {
            return Err(
                Error::unauthenticated(format!("API key expired at {}", exp.to_rfc3339())).with_code("api_key_expired")
            );
        }
        self.record_usage(Usage { listing_key: listing_key(&cred.uid, id), at: now });
        Ok(Principal { kind: PrincipalKind::ApiKey, uid: cred.uid, email: None, scopes: cred.scopes })
    }

    /// Hand usage to the background writer; drop it rather than wait if the writer is behind.
    fn record_usage(&self, usage: Usage) {
        let tx = match self.usage.get() {
            Some(tx) => tx,
            None => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
                let (tx, rx) = mpsc::channel(USAGE_QUEUE);
                if self.usage.set(tx).is_ok() {
                    runtime.spawn(usage_writer(self.store.clone(), rx, self.flush_interval));
                }
                self.usage.get().expect("set above")
            }
        };
        if tx.try_send(usage).is_err() {
            tracing::debug!("API key usage queue full; dropping one usage record");
        }
    }
}

/// Batches usage for `interval`, then applies each key's count with optimistic
/// concurrency. Stops when the [`ApiKeys`] is dropped, after writing what it has.
async fn usage_writer(store: SharedDocumentStore, mut rx: mpsc::Receiver<Usage>, interval: Duration) {
    while let Some(first) = rx.recv().await {
        let mut batch: HashMap<String, (u64, DateTime<Utc>)> = HashMap::new();
        let mut add = |u: Usage| {
            let e = batch.entry(u.listing_key).or_insert((0, u.at));
            e.0 += 1;
            e.1 = e.1.max(u.at);
        };
        add(first);
        let deadline = tokio::time::sleep(interval);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                u = rx.recv() => match u {
                    Some(u) => add(u),
                    None => break,
                },
                _ = &mut deadline => break,
            }
        }
        for (key, (count, at)) in batch {
            if let Err(e) = apply_usage(&store, &key, count, at).await {
                tracing::warn!(code = e.code(), error = %e.message(), "could not record API key usage");
            }
        }
    }
}

async fn apply_usage(store: &SharedDocumentStore, key: &str, count: u64, at: DateTime<Utc>) -> Result<()> {
    for _ in 0..8 {
        // Revoked meanwhile: nothing to record, and nothing is resurrected.
        let Some(doc) = store.get(COLLECTION, key).await? else { return Ok(()) };
        let mut info: ApiKeyInfo = doc.parse()?;
        info.use_count += count;
        info.last_used_at = Some(info.last_used_at.map_or(at, |t| t.max(at)));
        match store.put(COLLECTION, key, to_json(&info)?, Precondition::Version(doc.version), doc.expires_at).await {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Conflict => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict("API key usage lost too many races"))
}

#[async_trait]
impl Authenticator for ApiKeys {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal> {
        let mut values = headers.get_all(HEADER).iter();
        let key = match (values.next(), values.next()) {
            (Some(_), Some(_)) => {
                return Err(
                    Error::unauthenticated("send exactly one x-api-key header").with_code("invalid_credentials")
                );
            }
            (Some(v), None) => {
                if v.len() > 1024 {
                    return Err(firebase::too_large(v.len()));
                }
                v.to_str().map_err(|_| {
                    Error::unauthenticated("the x-api-key header is not visible ASCII").with_code("invalid_api_key")
                })?
            }
            (None, _) => match firebase::bearer(headers) {
                Ok(Some(token)) if token.starts_with(API_KEY_PREFIX) => token,
                Err(e) if e.code() != NO_CREDENTIAL => return Err(e),
                _ => return Err(super::no_credential()),
            },
        };
        self.verify(key.trim()).await
    }
}

fn require_user(p: &Principal) -> Result<()> {
    match p.kind {
        PrincipalKind::User | PrincipalKind::Dev => Ok(()),
        PrincipalKind::ApiKey => {
            Err(Error::forbidden("API keys cannot create, list or revoke API keys; sign in as the user who owns them")
                .with_code("api_key_not_allowed"))
        }
    }
}

/// Scopes are short names like `scrape` or `interviews:write`; duplicates are dropped.
fn validate_scopes(scopes: Vec<String>) -> Result<Vec<String>> {
    if scopes.len() > MAX_SCOPES {
        return Err(Error::bad_request(format!("at most {MAX_SCOPES} scopes")).with_code("invalid_scopes"));
    }
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for s in scopes {
        let ok = !s.is_empty()
            && s.len() <= 64
            && (s == "*"
                || s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, ':' | '_' | '-' | '.')));
        if !ok {
            return Err(Error::bad_request(format!(
                "scope `{}` is not 1-64 of a-z, 0-9, `:`, `_`, `-`, `.` (or `*`)",
                firebase::shorten(&s)
            ))
            .with_code("invalid_scopes"));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

fn valid_id(id: &str) -> Result<&str> {
    if id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        Err(Error::bad_request(format!("API key ids are {ID_LEN} letters and digits")).with_code("invalid_id"))
    }
}

/// The id of a well-formed key.
fn parse_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let ok = key.len() == KEY_LEN
        && id.len() == ID_LEN
        && secret.len() == SECRET_LEN
        && rest.bytes().filter(|&b| b != b'_').all(|b| b.is_ascii_alphanumeric());
    ok.then_some(id)
}

/// Uniform over [A-Za-z0-9] from the thread-local CSPRNG (ChaCha, seeded by the OS).
fn random_alphanumeric(len: usize) -> String {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(len).map(char::from).collect()
}

fn credential_key(id: &str) -> String {
    format!("key:{id}")
}

fn listing_prefix(uid: &str) -> String {
    // Form encoding escapes `:` and `%`, so the prefix of one uid never matches another.
    format!("user:{}:", url::form_urlencoded::byte_serialize(uid.as_bytes()).collect::<String>())
}

fn listing_key(uid: &str, id: &str) -> String {
    format!("{}{id}", listing_prefix(uid))
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("no API key `{}`", firebase::shorten(id)))
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::internal("API key record does not serialize").with_source(e))
}

#[cfg(all(test, feature = "local"))]
mod tests {
    use super::*;
    use crate::store::local::SqliteDocumentStore;
    use std::sync::Arc;

    fn user(uid: &str) -> Principal {
        Principal { kind: PrincipalKind::User, uid: uid.into(), email: None, scopes: vec![] }
    }

    fn keys(dir: &tempfile::TempDir) -> (ApiKeys, SharedDocumentStore) {
        let store: SharedDocumentStore = Arc::new(SqliteDocumentStore::open(dir.path().join("s.db")).unwrap());
        (ApiKeys::new(store.clone()).with_usage_flush_interval(Duration::from_millis(20)), store)
    }

    fn req(name: &str, scopes: &[&str]) -> NewApiKey {
        NewApiKey { name: name.into(), scopes: scopes.iter().map(|s| s.to_string()).collect(), expires_in_days: None }
    }

    #[test]
    fn key_format() {
        let k = format!("{API_KEY_PREFIX}{}_{}", random_alphanumeric(ID_LEN), random_alphanumeric(SECRET_LEN));
        assert_eq!(k.len(), KEY_LEN);
        assert!(parse_key(&k).is_some());
        for bad in [
            "",
            "ck_live_",
            &k[..KEY_LEN - 1],
            &format!("{k}x"),
            &k.replace("ck_live_", "ck_test_"),
            &format!("{API_KEY_PREFIX}{}_{}!", random_alphanumeric(ID_LEN), random_alphanumeric(SECRET_LEN - 1)),
        ] {
            assert!(parse_key(bad).is_none(), "{bad}");
        }
        // 62^32 > 2^190: well over 128 bits of randomness in the secret.
        assert!((SECRET_LEN as f64) * 62f64.log2() >= 128.0);
    }

    #[test]
    fn uids_cannot_prefix_each_other() {
        assert!(!listing_key("a:b", "x").starts_with(&listing_prefix("a")));
        assert!(!listing_key("a%3Ab", "x").starts_with(&listing_prefix("a:b")));
    }

    #[tokio::test]
    async fn life_cycle_and_storage() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, store) = keys(&dir);
        let alice = user("alice");
        let created = keys.create(&alice, req("ci", &["scrape", "scrape", "evaluate"])).await.unwrap();
        assert!(created.key.starts_with(&created.prefix));
        assert_eq!(created.scopes, vec!["scrape", "evaluate"]);

        // The secret is nowhere in the store.
        let all = store.query_prefix(COLLECTION, "", None, 100).await.unwrap();
        assert_eq!(all.documents.len(), 2);
        for d in &all.documents {
            assert!(!d.value.to_string().contains(&created.key[API_KEY_PREFIX.len() + ID_LEN + 1..]));
        }
        let raw = std::fs::read(dir.path().join("s.db")).unwrap();
        assert!(!raw.windows(SECRET_LEN).any(|w| w == &created.key.as_bytes()[KEY_LEN - SECRET_LEN..]));

        let p = keys.verify(&created.key).await.unwrap();
        assert_eq!((p.kind, p.uid.as_str()), (PrincipalKind::ApiKey, "alice"));
        assert!(p.has_scope("scrape") && !p.has_scope("interviews:write"));

        // A wrong secret for a real id, and an unknown id, are the same 401.
        let mut forged = created.key.clone();
        forged.replace_range(KEY_LEN - 4.., "AAAA");
        assert_eq!(keys.verify(&forged).await.unwrap_err().code(), "invalid_api_key");

        // Usage arrives in the listing without the request waiting for it.
        let mut seen = 0;
        for _ in 0..100 {
            let (list, _) = keys.list(&alice, None, 10).await.unwrap();
            seen = list[0].use_count;
            if seen == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen, 1);

        // API keys cannot manage keys.
        assert_eq!(keys.create(&p, req("x", &[])).await.unwrap_err().status(), http::StatusCode::FORBIDDEN);
        // Another user neither sees nor revokes it.
        let bob = user("bob");
        assert!(keys.list(&bob, None, 10).await.unwrap().0.is_empty());
        assert_eq!(keys.revoke(&bob, &created.id).await.unwrap_err().status(), http::StatusCode::NOT_FOUND);
        assert!(keys.verify(&created.key).await.is_ok());

        keys.revoke(&alice, &created.id).await.unwrap();
        assert_eq!(keys.verify(&created.key).await.unwrap_err().code(), "invalid_api_key");
        assert_eq!(keys.revoke(&alice, &created.id).await.unwrap_err().status(), http::StatusCode::NOT_FOUND);
    }

    /// The same life cycle on a cloud store: keys live in DynamoDB or Firestore there.
    #[cfg(any(feature = "dynamodb", feature = "firestore"))]
    async fn life_cycle_on(store: SharedDocumentStore) {
        let keys = ApiKeys::new(store).with_usage_flush_interval(Duration::from_millis(20));
        let alice = user("alice");
        let created = keys.create(&alice, req("ci", &["scrape"])).await.unwrap();
        let p = keys.verify(&created.key).await.unwrap();
        assert_eq!((p.kind, p.uid.as_str()), (PrincipalKind::ApiKey, "alice"));
        let (list, _) = keys.list(&alice, None, 10).await.unwrap();
        assert_eq!(list.len(), 1);
        assert!(keys.list(&user("bob"), None, 10).await.unwrap().0.is_empty());
        assert_eq!(keys.revoke(&user("bob"), &created.id).await.unwrap_err().status(), http::StatusCode::NOT_FOUND);
        keys.revoke(&alice, &created.id).await.unwrap();
        assert_eq!(keys.verify(&created.key).await.unwrap_err().code(), "invalid_api_key");
    }

    #[cfg(feature = "dynamodb")]
    #[tokio::test]
    async fn life_cycle_on_dynamodb() {
        let moto = crate::testkit::aws::Moto::start();
        moto.create_table(&format!("catalyst-{COLLECTION}")).await;
        let store = crate::store::dynamodb::DynamoDocumentStore::with_config(&moto.config(), "catalyst");
        life_cycle_on(Arc::new(store)).await;
    }

    #[cfg(feature = "firestore")]
    #[tokio::test]
    async fn life_cycle_on_firestore() {
        let emulator = crate::testkit::gcp::firestore_emulator();
        let store = crate::store::firestore::FirestoreDocumentStore::with_endpoint("demo-keys", "keys", emulator.url());
        life_cycle_on(Arc::new(store)).await;
    }

    #[tokio::test]
    async fn expired_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, store) = keys(&dir);
        let created = keys.create(&user("u"), req("old", &[])).await.unwrap();
        // Age the stored credential.
        let k = credential_key(&created.id);
        let doc = store.get(COLLECTION, &k).await.unwrap().unwrap();
        let mut cred: Credential = doc.parse().unwrap();
        cred.expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
        store.put(COLLECTION, &k, to_json(&cred).unwrap(), Precondition::Version(doc.version), None).await.unwrap();
        assert_eq!(keys.verify(&created.key).await.unwrap_err().code(), "api_key_expired");
    }

    #[tokio::test]
    async fn bad_requests_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = keys(&dir);
        let u = user("u");
        let cases = [
            (req("", &[]), "invalid_name"),
            (req(&"n".repeat(101), &[]), "invalid_name"),
            (req("ok", &["Scrape"]), "invalid_scopes"),
            (req("ok", &["a b"]), "invalid_scopes"),
            (NewApiKey { expires_in_days: Some(0), ..req("ok", &[]) }, "invalid_expiry"),
            (NewApiKey { expires_in_days: Some(MAX_EXPIRES_IN_DAYS + 1), ..req("ok", &[]) }, "invalid_expiry"),
        ];
        for (r, code) in cases {
            assert_eq!(keys.create(&u, r).await.unwrap_err().code(), code);
        }
        assert_eq!(keys.revoke(&u, "../x").await.unwrap_err().code(), "invalid_id");
    }
}
