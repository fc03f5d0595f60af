//! Object storage port: the local filesystem now; S3 and GCS behind the same trait.
//!
//! Keys are `/`-separated paths such as `uploads/resumes/{uid}/cv.pdf`. Every adapter
//! validates them the same way ([`validate_key`]) so a key that works locally works in
//! the cloud, and no key can escape its bucket or root directory.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::error::{Error, Result};

#[cfg(feature = "gcs")]
pub mod gcs;
#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "s3")]
pub mod s3;

/// What is known about a stored object without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Content identity; changes whenever the bytes change.
    pub etag: String,
    pub content_type: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Object {
    pub meta: ObjectMeta,
    pub data: Bytes,
}

#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    /// Refuse with `Conflict` when the key already exists (conditional create).
    pub if_absent: bool,
}

impl PutOptions {
    pub fn content_type(ct: impl Into<String>) -> Self {
        PutOptions { content_type: Some(ct.into()), ..Default::default() }
    }
}

/// One page of a listing. Keys come in lexicographic order; pass `next` back as the
/// cursor to continue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub objects: Vec<ObjectMeta>,
    pub next: Option<String>,
}

/// Where and how a client uploads an object directly to storage, bypassing the functions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedUpload {
    pub url: String,
    /// Always `PUT`.
    pub method: String,
    /// Headers the upload must carry exactly as given (they are part of the signature).
    pub headers: std::collections::BTreeMap<String, String>,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: DateTime<Utc>,
}

/// The object storage port.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Where objects go, e.g. `file:///data/blobs/` or `s3://bucket/prefix`, for logs.
    fn location(&self) -> String;

    /// Store `data` at `key`, replacing what is there. Readers never see a partial object.
    async fn put(&self, key: &str, data: Bytes, options: PutOptions) -> Result<ObjectMeta>;

    /// Read a whole object; `NotFound` if absent.
    async fn get(&self, key: &str) -> Result<Object>;

    /// Metadata only; `NotFound` if absent.
    async fn head(&self, key: &str) -> Result<ObjectMeta>;

    /// Up to `limit` objects whose key starts with `prefix`, after `cursor`.
    async fn list(&self, prefix: &str, cursor: Option<&str>, limit: usize) -> Result<Listing>;

    /// Remove `key`. Removing an absent key succeeds, so retries are harmless.
    async fn delete(&self, key: &str) -> Result<()>;

    /// A URL through which a client can PUT `key` directly, valid for `ttl` (presigned S3
    /// URL, signed GCS URL). Adapters that cannot sign say so with `signing_unsupported`.
    async fn signed_upload_url(
        &self,
        key: &str,
        content_type: Option<&str>,
        ttl: std::time::Duration,
    ) -> Result<SignedUpload> {
        let _ = (key, content_type, ttl);
        Err(Error::unavailable(format!("{} cannot sign upload URLs", self.location())).with_code("signing_unsupported"))
    }
}

pub type SharedBlobStore = Arc<dyn BlobStore>;

/// Maximum key length, S3's limit (GCS allows the same).
pub const MAX_KEY_LEN: usize = 1024;

/// Check a key is a clean relative path: no empty, `.` or `..` segments, no leading
/// slash, no backslashes or control characters, not in the adapters' reserved space.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::bad_request(format!("invalid object key `{}`: {why}", key.escape_debug())).with_code("invalid_key"))
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > MAX_KEY_LEN {
        return bad("longer than 1024 bytes");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return bad("control characters and backslashes are not allowed");
    }
    if key.starts_with('/') {
        return bad("must not start with `/`");
    }
    for segment in key.split('/') {
        match segment {
            "" if !key.ends_with('/') => return bad("empty path segment"),
            "." | ".." => return bad("`.` and `..` segments are not allowed"),
            _ => {}
        }
    }
    if key.ends_with('/') {
        return bad("must not end with `/`");
    }
    if key.starts_with(".catalyst") {
        return bad("`.catalyst*` is reserved");
    }
    Ok(())
}

/// Where a user's direct upload goes: `uploads/{area}/{uid}/{id}-{name}`. The name is
/// reduced to a safe file name (letters, digits, `.`, `-`, `_`; at most 80 characters,
/// extension kept) and prefixed with a fresh time-ordered id, so what a browser sends
/// can neither escape the user's folder nor overwrite an earlier upload.
pub fn user_upload_key(area: &str, uid: &str, filename: &str) -> Result<String> {
    let safe_segment = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !safe_segment(area) {
        return Err(Error::internal(format!("upload area `{area}` is not a plain name")));
    }
    if !safe_segment(uid) || uid.len() > 128 {
        return Err(Error::bad_request("this user id cannot name an upload folder (letters, digits, `-`, `_`)")
            .with_code("invalid_uid"));
    }
    let base = filename.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    name = name.trim_start_matches('.').to_owned();
    if name.len() > 80 {
        let ext = name.rsplit_once('.').map(|(_, e)| e).filter(|e| e.len() <= 10).unwrap_or("").to_owned();
        name.truncate(80 - ext.len() - usize::from(!ext.is_empty()));
        if !ext.is_empty() {
            name = format!("{name}.{ext}");
        }
    }
    if name.is_empty() {
        return Err(Error::bad_request("the file name is empty").with_code("invalid_filename"));
    }
    let key = format!("uploads/{area}/{uid}/{}-{name}", uuid::Uuid::now_v7().simple());
    validate_key(&key)?;
    Ok(key)
}

/// Where recordings are uploaded (`uploads/audio/{uid}/{name}`) and where `transcribe`
/// writes their transcripts (`transcripts/{uid}/{name}.json`): the convention between
/// `transcribe`, which writes, and `agent`, which waits for a spoken answer.
pub const AUDIO_UPLOAD_PREFIX: &str = "uploads/audio/";
pub const TRANSCRIPT_PREFIX: &str = "transcripts/";

/// `uploads/audio/{uid}/{name}` → (`uid`, `transcripts/{uid}/{name}.json`).
pub fn audio_transcript_key(object_key: &str) -> Result<(String, String)> {
    let bad = || {
        Error::bad_request(format!("`{object_key}` is not under {AUDIO_UPLOAD_PREFIX}{{uid}}/{{name}}"))
            .with_code("bad_key")
    };
    let rest = object_key.strip_prefix(AUDIO_UPLOAD_PREFIX).ok_or_else(bad)?;
    let (uid, name) = rest.split_once('/').ok_or_else(bad)?;
    if uid.is_empty() || name.is_empty() || name.ends_with('/') {
        return Err(bad());
    }
    let key = format!("{TRANSCRIPT_PREFIX}{uid}/{name}.json");
    validate_key(&key).map_err(|_| bad())?;
    Ok((uid.to_string(), key))
}

/// What a client asks for to upload a file straight to storage.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct UploadRequest {
    /// The file's name on the user's device; only a safe form of it is kept.
    pub filename: String,
    /// The type the upload will carry (it is part of the signature).
    pub content_type: Option<String>,
}

/// A signed URL to `PUT` the file to, and where the function's result will appear.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UploadTicket {
    /// The object the upload creates; its storage event starts the work.
    pub key: String,
    /// Where the function writes its result for this upload.
    pub result_key: String,
    #[serde(flatten)]
    pub upload: SignedUpload,
}

/// How long a signed upload URL stays valid.
pub const UPLOAD_URL_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Issue a signed direct-upload URL for `uid` under `uploads/{area}/{uid}/`, the declared
/// content type checked by `accepts` (and then signed), the result key named by
/// `result_key`. Storage that cannot sign answers `signing_unsupported`.
pub async fn issue_upload(
    blob: &dyn BlobStore,
    uid: &str,
    area: &str,
    request: &UploadRequest,
    accepts: impl Fn(&str) -> bool,
    result_key: impl Fn(&str) -> Result<String>,
) -> Result<UploadTicket> {
    let content_type =
        request.content_type.as_deref().map(|c| c.split(';').next().unwrap_or(c).trim().to_ascii_lowercase());
    if let Some(ct) = content_type.as_deref().filter(|ct| !accepts(ct)) {
        return Err(Error::new(crate::error::ErrorKind::UnsupportedMediaType, format!("`{ct}` is not accepted here"))
            .with_code("unsupported_format"));
    }
    let key = user_upload_key(area, uid, &request.filename)?;
    let result_key = result_key(&key)?;
    let upload = blob.signed_upload_url(&key, content_type.as_deref(), UPLOAD_URL_TTL).await?;
    tracing::info!(uid, key = %key, "signed upload URL issued");
    Ok(UploadTicket { key, result_key, upload })
}

/// Open the adapter a URL names. Cloud clients are created here without any network
/// call; credentials are resolved on first use.
pub fn open(url: &url::Url) -> Result<SharedBlobStore> {
    match url.scheme() {
        #[cfg(feature = "local")]
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|_| Error::bad_request(format!("CATALYST_BLOB_URL `{url}` is not a local path")))?;
            Ok(Arc::new(local::LocalBlobStore::open(path)?))
        }
        #[cfg(feature = "s3")]
        "s3" => Ok(Arc::new(s3::S3BlobStore::from_url(url)?)),
        #[cfg(feature = "gcs")]
        "gs" => Ok(Arc::new(gcs::GcsBlobStore::from_url(url)?)),
        other => Err(Error::unavailable(format!(
            "CATALYST_BLOB_URL: the `{other}` blob adapter is not built into this binary"
        ))
        .with_code("adapter_unavailable")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_keys_stay_in_the_users_folder() {
        let k = user_upload_key("resumes", "u_1", "My CV (final).pdf").unwrap();
        assert!(k.starts_with("uploads/resumes/u_1/") && k.ends_with("-My_CV__final_.pdf"), "{k}");
        for evil in ["../../etc/passwd", "..\\..\\x.pdf", "/abs/cv.pdf", "a/../../b.pdf"] {
            let k = user_upload_key("resumes", "u_1", evil).unwrap();
            assert!(k.starts_with("uploads/resumes/u_1/") && !k[20..].contains('/'), "{evil} -> {k}");
        }
        let long = format!("{}.docx", "x".repeat(300));
        let k = user_upload_key("resumes", "u_1", &long).unwrap();
        assert!(k.ends_with(".docx") && k.rsplit('/').next().unwrap().len() <= 80 + 33, "{k}");
        assert_ne!(user_upload_key("a", "u", "f").unwrap(), user_upload_key("a", "u", "f").unwrap());
        assert_eq!(user_upload_key("resumes", "u/1", "cv.pdf").unwrap_err().code(), "invalid_uid");
        assert_eq!(user_upload_key("resumes", "u_1", "...").unwrap_err().code(), "invalid_filename");
    }

    #[test]
    fn keys_are_validated() {
        for ok in ["a", "uploads/resumes/u_1/cv.pdf", "a/b c/ü.txt", "x..y/z"] {
            validate_key(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a\0b",
            ".catalyst-tmp/x",
            &"k".repeat(1025),
        ] {
            assert_eq!(validate_key(bad).unwrap_err().code(), "invalid_key", "{bad:?}");
        }
    }
}

/// One conformance suite for every adapter of the port, so they behave the same.
/// Adapters call it from their own tests with a fresh, empty store.
pub mod conformance {
    use super::*;

    pub async fn run(store: &dyn BlobStore) {
        // Round trip with metadata.
        let meta = store
            .put("docs/a.txt", Bytes::from_static(b"hello"), PutOptions::content_type("text/plain"))
            .await
            .unwrap();
        assert_eq!(meta.size, 5);
        let got = store.get("docs/a.txt").await.unwrap();
        assert_eq!(&got.data[..], b"hello");
        assert_eq!(got.meta.etag, meta.etag);
        assert_eq!(got.meta.content_type.as_deref(), Some("text/plain"));
        let head = store.head("docs/a.txt").await.unwrap();
        assert_eq!(head.size, 5);
        assert_eq!(head.etag, meta.etag);

        // Overwrite changes the etag; same bytes give the same etag.
        let meta2 = store.put("docs/a.txt", Bytes::from_static(b"hello, world"), PutOptions::default()).await.unwrap();
        assert_ne!(meta2.etag, meta.etag);
        let meta3 = store.put("docs/a.txt", Bytes::from_static(b"hello, world"), PutOptions::default()).await.unwrap();
        assert_eq!(meta3.etag, meta2.etag);

        // Conditional create.
        let err = store
            .put("docs/a.txt", Bytes::from_static(b"x"), PutOptions { if_absent: true, ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Conflict);
        store
            .put("docs/new.txt", Bytes::from_static(b"x"), PutOptions { if_absent: true, ..Default::default() })
            .await
            .unwrap();

        // Missing objects are typed errors.
        assert_eq!(store.get("docs/missing").await.unwrap_err().kind(), crate::error::ErrorKind::NotFound);
        assert_eq!(store.head("docs/missing").await.unwrap_err().kind(), crate::error::ErrorKind::NotFound);

        // Listing with pagination, in key order, by prefix (not only directory).
        for i in 0..7 {
            store.put(&format!("list/item-{i:02}"), Bytes::from(vec![b'x'; i]), PutOptions::default()).await.unwrap();
        }
        store.put("list/sub/deep.txt", Bytes::from_static(b"d"), PutOptions::default()).await.unwrap();
        store.put("listing-other", Bytes::from_static(b"o"), PutOptions::default()).await.unwrap();
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = store.list("list/", cursor.as_deref(), 3).await.unwrap();
            assert!(page.objects.len() <= 3);
            keys.extend(page.objects.iter().map(|o| o.key.clone()));
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        let mut expected: Vec<String> = (0..7).map(|i| format!("list/item-{i:02}")).collect();
        expected.push("list/sub/deep.txt".into());
        assert_eq!(keys, expected);
        let partial = store.list("list/item-0", None, 100).await.unwrap();
        assert_eq!(partial.objects.len(), 7);
        let all = store.list("list", None, 100).await.unwrap();
        assert_eq!(all.objects.len(), 9);

        // Delete is idempotent.
        store.delete("docs/a.txt").await.unwrap();
        store.delete("docs/a.txt").await.unwrap();
        assert_eq!(store.get("docs/a.txt").await.unwrap_err().kind(), crate::error::ErrorKind::NotFound);

        // Invalid keys are refused before touching storage.
        assert_eq!(
            store.put("../escape", Bytes::new(), PutOptions::default()).await.unwrap_err().code(),
            "invalid_key"
        );
        assert_eq!(store.get("/abs").await.unwrap_err().code(), "invalid_key");

        // Large objects round-trip intact.
        let big: Vec<u8> = (0..(9 * 1024 * 1024)).map(|i| (i % 251) as u8).collect();
        store.put("big/blob.bin", Bytes::from(big.clone()), PutOptions::default()).await.unwrap();
        assert_eq!(&store.get("big/blob.bin").await.unwrap().data[..], &big[..]);
    }
}
