//! Objects in Google Cloud Storage: `gs://bucket/prefix`, keys are `prefix` + key.
//!
//! Uploads and downloads go through the official `google-cloud-storage` client (checksums,
//! retries, resumable uploads at and above its threshold, 16 MiB by default). Metadata,
//! listing and deletion go to the JSON API directly with the same credentials: the crate
//! offers those only through `StorageControl`, which speaks gRPC (storage v2), and keeping
//! every call on the JSON API means the protocol the tests exercise against
//! fake-gcs-server is the one production uses.
//!
//! Etags are the MD5 of the content (hex), so the same bytes give the same etag as the
//! port requires (GCS's own etag changes with every generation); composite objects, which
//! have no MD5, fall back to their CRC32C.

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use google_cloud_auth::credentials::{CacheableResource, Credentials};
use google_cloud_gax::retry_policy::RetryPolicyExt as _;
use google_cloud_storage::client::Storage;
use std::time::Duration;
use tokio::sync::OnceCell;

use super::{BlobStore, Listing, Object, ObjectMeta, PutOptions, SignedUpload, validate_key};
use crate::error::{Error, ErrorKind, Result};

const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";

/// Tuning and test hooks; production uses the defaults.
#[derive(Debug, Clone)]
pub struct GcsOptions {
    /// `None`: `https://storage.googleapis.com`.
    pub endpoint: Option<String>,
    /// Send no credentials (emulators).
    pub anonymous: bool,
    /// Payloads this size and larger use resumable uploads; `None` keeps the crate's
    /// default (16 MiB).
    pub resumable_upload_threshold: Option<usize>,
    /// Attempts per request, the first included, on 408/429/5xx and transport errors.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A service-account key (JSON) to sign upload URLs with locally. Without one, signing
    /// uses the Application Default Credentials: a key file they name signs locally, the
    /// metadata server's account signs through the IAM `signBlob` API.
    pub signing_key: Option<serde_json::Value>,
}

impl Default for GcsOptions {
    fn default() -> Self {
        GcsOptions {
            endpoint: None,
            anonymous: false,
            resumable_upload_threshold: None,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            signing_key: None,
        }
    }
}

pub struct GcsBlobStore {
    bucket: String,
    prefix: String,
    options: GcsOptions,
    clients: OnceCell<Clients>,
    signer: OnceCell<google_cloud_auth::signer::Signer>,
}

struct Clients {
    storage: Storage,
    credentials: Credentials,
    http: reqwest::Client,
}

impl GcsBlobStore {
    /// `gs://bucket/prefix`. No network: clients and credentials are created on first use.
    /// `STORAGE_EMULATOR_HOST` (the Google SDKs' convention, e.g. `http://127.0.0.1:4443`)
    /// points it at an emulator, with no credentials.
    pub fn from_url(url: &url::Url) -> Result<Self> {
        let mut options = GcsOptions::default();
        if let Some(host) = std::env::var("STORAGE_EMULATOR_HOST").ok().filter(|h| !h.is_empty()) {
            options.endpoint = Some(if host.contains("://") { host } else { format!("http://{host}") });
            options.anonymous = true;
        }
        Self::from_url_with(url, options)
    }

    pub fn from_url_with(url: &url::Url, options: GcsOptions) -> Result<Self> {
        let bad = |why: &str| {
            Error::bad_request(format!("CATALYST_BLOB_URL `{url}`: {why} (expected gs://BUCKET/PREFIX)"))
                .with_code("invalid_blob_url")
        };
        if url.scheme() != "gs" {
            return Err(bad("not a gs:// URL"));
        }
        let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| bad("no bucket"))?;
        // Bucket naming rules: 3-222 characters, lowercase letters, digits, `-`, `_`, `.`.
        let valid_bucket = (3..=222).contains(&bucket.len())
            && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !valid_bucket {
            return Err(bad("invalid bucket name"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("no query or fragment allowed"));
        }
        let prefix = percent_decode(url.path().trim_start_matches('/')).ok_or_else(|| bad("prefix is not UTF-8"))?;
        if !prefix.is_empty() {
            validate_key(prefix.trim_end_matches('/')).map_err(|_| bad("invalid prefix"))?;
        }
        Ok(GcsBlobStore {
            bucket: bucket.to_string(),
            prefix,
            options,
            clients: OnceCell::new(),
            signer: OnceCell::new(),
        })
    }

    fn endpoint(&self) -> &str {
        self.options.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT).trim_end_matches('/')
    }

    async fn clients(&self) -> Result<&Clients> {
        self.clients
            .get_or_try_init(|| async {
                let unavailable = |what: &str| {
                    Error::unavailable(format!("{}: cannot create the {what}", self.location()))
                        .with_code("blob_unavailable")
                };
                let credentials = crate::gcp::credentials(self.options.anonymous, unavailable)?;
                let backoff = crate::gcp::backoff(self.options.initial_backoff, self.options.max_backoff);
                let mut builder = Storage::builder()
                    .with_credentials(credentials.clone())
                    .with_retry_policy(
                        google_cloud_storage::retry_policy::RetryableErrors
                            .with_attempt_limit(self.options.max_attempts.max(1)),
                    )
                    .with_backoff_policy(backoff);
                if let Some(endpoint) = &self.options.endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                if let Some(threshold) = self.options.resumable_upload_threshold {
                    builder = builder.with_resumable_upload_threshold(threshold);
                }
                let storage = builder.build().await.map_err(|e| unavailable("Cloud Storage client").with_source(e))?;
                let http = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .timeout(Duration::from_secs(60))
                    .build()
                    .map_err(|e| unavailable("HTTP client").with_source(e))?;
                Ok(Clients { storage, credentials, http })
            })
            .await
    }

    fn bucket_path(&self) -> String {
        format!("projects/_/buckets/{}", self.bucket)
    }

    fn name_of(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    fn key_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_prefix(self.prefix.as_str())
    }

    fn object_url(&self, name: &str) -> String {
        format!("{}/storage/v1/b/{}/o/{}", self.endpoint(), self.bucket, percent_encode(name))
    }

    /// A JSON API request with the credentials' headers, retried with backoff on
    /// 408/429/5xx and transport errors (only idempotent requests come here).
    async fn json_call(&self, method: http::Method, url: &str, query: &[(&str, String)]) -> Result<reqwest::Response> {
        let clients = self.clients().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let headers = match clients.credentials.headers(http::Extensions::new()).await {
                Ok(CacheableResource::New { data, .. }) => data,
                Ok(CacheableResource::NotModified) => http::HeaderMap::new(),
                Err(e) if e.is_transient() && attempt < self.options.max_attempts => {
                    self.pause(attempt).await;
                    continue;
                }
                Err(e) => {
                    return Err(Error::unavailable(format!("{}: no Google credentials", self.location()))
                        .with_code("blob_unavailable")
                        .with_source(e));
                }
            };
            let sent = clients.http.request(method.clone(), url).headers(headers).query(query).send().await;
            let retry = match &sent {
                Ok(resp) => matches!(resp.status().as_u16(), 408 | 429 | 500..=599),
                Err(e) => e.is_connect() || e.is_timeout() || e.is_request(),
            };
            if retry && attempt < self.options.max_attempts {
                self.pause(attempt).await;
                continue;
            }
            return match sent {
                Ok(resp) => Ok(resp),
                Err(e) => Err(Error::unavailable(format!("{}: Cloud Storage unreachable", self.location()))
                    .with_code("blob_unavailable")
                    .with_source(e)),
            };
        }
    }

    async fn pause(&self, attempt: u32) {
        tokio::time::sleep(crate::queue::backoff(attempt, self.options.initial_backoff, self.options.max_backoff))
            .await;
    }

    /// A JSON API error response as our error.
    async fn json_error(&self, resp: reqwest::Response, key: &str, bucket_only: bool) -> Error {
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(body);
        self.status_error(status, &message, key, bucket_only)
    }

    /// `bucket_only`: the request names no existing object (upload, listing), so a 404 can
    /// only mean the bucket is missing; otherwise GCS's message says which.
    fn status_error(&self, status: u16, message: &str, key: &str, bucket_only: bool) -> Error {
        let location = self.location();
        match status {
            404 if bucket_only || message.to_ascii_lowercase().contains("bucket") => {
                Error::unavailable(format!("{location}: bucket `{}` does not exist", self.bucket))
                    .with_code("bucket_not_found")
            }
            404 => Error::not_found(format!("no object `{key}`")),
            409 | 412 => Error::conflict(format!("object `{key}` already exists")).with_code("already_exists"),
            400 => Error::bad_request(format!("Cloud Storage refused `{key}`: {message}")),
            401 | 403 => {
                Error::unavailable(format!("{location}: access denied ({message})")).with_code("blob_access_denied")
            }
            408 => Error::new(ErrorKind::Timeout, format!("{location}: timed out")),
            429 => Error::new(ErrorKind::TooManyRequests, format!("{location}: rate limited")),
            500..=599 => Error::unavailable(format!("{location}: Cloud Storage answered {status}")),
            _ => Error::internal(format!("{location}: unexpected status {status}: {message}")),
        }
    }

    /// An error of the official client as ours.
    fn client_error(&self, e: google_cloud_storage::Error, key: &str, bucket_only: bool) -> Error {
        let err = if let Some(status) = e.http_status_code() {
            let message = e.http_payload().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
            self.status_error(status, &message, key, bucket_only)
        } else if let Some(status) = e.status() {
            use google_cloud_gax::error::rpc::Code;
            let code = match status.code {
                Code::NotFound => 404,
                Code::AlreadyExists => 409,
                Code::FailedPrecondition => 412,
                Code::InvalidArgument | Code::OutOfRange => 400,
                Code::PermissionDenied | Code::Unauthenticated => 403,
                Code::ResourceExhausted => 429,
                Code::DeadlineExceeded => 408,
                _ => 503,
            };
            self.status_error(code, &status.message, key, bucket_only)
        } else if e.is_timeout() {
            Error::new(ErrorKind::Timeout, format!("{}: timed out", self.location()))
        } else if e.is_authentication() {
            Error::unavailable(format!("{}: no usable Google credentials", self.location()))
                .with_code("blob_unavailable")
        } else if e.is_transport() || e.is_io() || e.is_connect() || e.is_exhausted() {
            Error::unavailable(format!("{}: Cloud Storage unreachable", self.location())).with_code("blob_unavailable")
        } else {
            Error::internal(format!("{}: unexpected Cloud Storage error", self.location()))
        };
        err.with_source(e)
    }

    /// Set the content type of the object generation just written.
    async fn patch_content_type(&self, name: &str, generation: i64, content_type: &str, key: &str) -> Result<()> {
        let clients = self.clients().await?;
        let headers = match clients.credentials.headers(http::Extensions::new()).await {
            Ok(CacheableResource::New { data, .. }) => data,
            _ => http::HeaderMap::new(),
        };
        let resp = clients
            .http
            .patch(self.object_url(name))
            .headers(headers)
            .query(&[("ifGenerationMatch", generation.to_string())])
            .json(&serde_json::json!({ "contentType": content_type }))
            .send()
            .await
            .map_err(|e| {
                Error::unavailable(format!("{}: Cloud Storage unreachable", self.location())).with_source(e)
            })?;
        if resp.status().is_success() { Ok(()) } else { Err(self.json_error(resp, key, false).await) }
    }

    fn meta_of(&self, json: &JsonObject) -> Result<ObjectMeta> {
        let key = self.key_of(&json.name).ok_or_else(|| Error::internal("object outside the prefix"))?.to_string();
        let b64 = base64::engine::general_purpose::STANDARD;
        let etag = match (&json.md5_hash, &json.crc32c) {
            (Some(md5), _) => hex::encode(b64.decode(md5).map_err(|e| Error::internal("bad md5Hash").with_source(e))?),
            (None, Some(crc)) => format!("crc32c-{}", hex::encode(b64.decode(crc).unwrap_or_default())),
            (None, None) => json.etag.clone().unwrap_or_default(),
        };
        Ok(ObjectMeta {
            key,
            size: json.size.parse().unwrap_or(0),
            etag,
            content_type: json.content_type.clone().filter(|c| !c.is_empty()),
            last_modified: json
                .updated
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
        })
    }
}

/// The fields of a JSON API object resource we use.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonObject {
    name: String,
    #[serde(default)]
    size: String,
    md5_hash: Option<String>,
    crc32c: Option<String>,
    etag: Option<String>,
    content_type: Option<String>,
    updated: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonList {
    #[serde(default)]
    items: Vec<JsonObject>,
    next_page_token: Option<String>,
}

fn etag_from_checksums(checksums: Option<&google_cloud_storage::model::ObjectChecksums>) -> String {
    match checksums {
        Some(c) if !c.md5_hash.is_empty() => hex::encode(&c.md5_hash),
        Some(c) => c.crc32c.map(|crc| format!("crc32c-{}", hex::encode(crc.to_be_bytes()))).unwrap_or_default(),
        None => String::new(),
    }
}

/// Percent-encode an object name for a URL path segment (everything but unreserved).
fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let v = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[async_trait]
impl BlobStore for GcsBlobStore {
    fn location(&self) -> String {
        format!("gs://{}/{}", self.bucket, self.prefix)
    }

    async fn put(&self, key: &str, data: Bytes, options: PutOptions) -> Result<ObjectMeta> {
        let name = self.name_of(key)?;
        let clients = self.clients().await?;
        let size = data.len() as u64;
        let content_type = options
            .content_type
            .clone()
            .or_else(|| mime_guess::from_path(key).first().map(|m| m.essence_str().to_string()));
        let mut write = clients.storage.write_object(self.bucket_path(), name, data);
        if let Some(ct) = &content_type {
            write = write.set_content_type(ct.clone());
        }
        if options.if_absent {
            // Generation 0 matches only "no live object": an atomic create-if-absent.
            write = write.set_if_generation_match(0);
        } else {
            // Writing the same bytes twice leaves the same object: safe to retry.
            write = write.with_idempotency(true);
        }
        let object = write.send_buffered().await.map_err(|e| self.client_error(e, key, true))?;
        if let Some(ct) = content_type.as_deref().filter(|_| object.content_type.is_empty()) {
            // The server ignored the content type of the multipart upload's metadata part
            // (fake-gcs-server takes it from the media part only, which the crate leaves
            // untyped); GCS itself keeps it, so this never runs there.
            self.patch_content_type(&object.name, object.generation, ct, key).await?;
        }
        Ok(ObjectMeta {
            key: key.to_string(),
            size: u64::try_from(object.size).unwrap_or(size),
            etag: etag_from_checksums(object.checksums.as_ref()),
            content_type,
            last_modified: object
                .update_time
                .and_then(|t| DateTime::from_timestamp(t.seconds(), t.nanos().max(0) as u32)),
        })
    }

    async fn get(&self, key: &str) -> Result<Object> {
        let name = self.name_of(key)?;
        let clients = self.clients().await?;
        let mut resp = clients
            .storage
            .read_object(self.bucket_path(), name)
            .send()
            .await
            .map_err(|e| self.client_error(e, key, false))?;
        let highlights = resp.object();
        let mut data = Vec::with_capacity(usize::try_from(highlights.size).unwrap_or(0));
        while let Some(chunk) = resp.next().await {
            data.extend_from_slice(&chunk.map_err(|e| self.client_error(e, key, false))?);
        }
        let meta = ObjectMeta {
            key: key.to_string(),
            size: data.len() as u64,
            etag: etag_from_checksums(highlights.checksums.as_ref()),
            content_type: Some(highlights.content_type).filter(|c| !c.is_empty()),
            last_modified: None,
        };
        // A download whose headers carried no checksum still gets the content etag the
        // port promises, from the object's metadata.
        let meta = if meta.etag.is_empty() { ObjectMeta { etag: self.head(key).await?.etag, ..meta } } else { meta };
        Ok(Object { meta, data: Bytes::from(data) })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let name = self.name_of(key)?;
        let resp = self.json_call(http::Method::GET, &self.object_url(&name), &[]).await?;
        if !resp.status().is_success() {
            return Err(self.json_error(resp, key, false).await);
        }
        let json: JsonObject = resp
            .json()
            .await
            .map_err(|e| Error::unavailable("Cloud Storage sent an unreadable object").with_source(e))?;
        self.meta_of(&json)
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>, limit: usize) -> Result<Listing> {
        let limit = limit.clamp(1, 1000);
        let full_prefix = format!("{}{prefix}", self.prefix);
        let url = format!("{}/storage/v1/b/{}/o", self.endpoint(), self.bucket);
        let mut objects = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut query = vec![
                ("prefix", full_prefix.clone()),
                // One more than needed tells whether there is a next page; one more again
                // because `startOffset` is inclusive and the cursor itself is skipped.
                ("maxResults", (limit + 2 - objects.len()).to_string()),
                ("fields", "items(name,size,md5Hash,crc32c,etag,contentType,updated),nextPageToken".to_string()),
            ];
            if let Some(c) = cursor {
                query.push(("startOffset", format!("{}{c}", self.prefix)));
            }
            if let Some(t) = &page_token {
                query.push(("pageToken", t.clone()));
            }
            let resp = self.json_call(http::Method::GET, &url, &query).await?;
            if !resp.status().is_success() {
                return Err(self.json_error(resp, prefix, true).await);
            }
            let page: JsonList = resp
                .json()
                .await
                .map_err(|e| Error::unavailable("Cloud Storage sent an unreadable listing").with_source(e))?;
            for item in &page.items {
                let meta = self.meta_of(item)?;
                if cursor.is_none_or(|c| meta.key.as_str() > c) {
                    objects.push(meta);
                }
            }
            page_token = page.next_page_token;
            if page_token.is_none() || objects.len() > limit {
                break;
            }
        }
        let next = if objects.len() > limit {
            objects.truncate(limit);
            objects.last().map(|o| o.key.clone())
        } else {
            None
        };
        Ok(Listing { objects, next })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let name = self.name_of(key)?;
        let resp = self.json_call(http::Method::DELETE, &self.object_url(&name), &[]).await?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            404 => match self.json_error(resp, key, false).await {
                // Already gone: deleting is idempotent. A missing bucket is still an error.
                e if e.kind() == ErrorKind::NotFound => Ok(()),
                e => Err(e),
            },
            _ => Err(self.json_error(resp, key, false).await),
        }
    }

    async fn signed_upload_url(&self, key: &str, content_type: Option<&str>, ttl: Duration) -> Result<SignedUpload> {
        use google_cloud_storage::builder::storage::SignedUrlBuilder;
        let name = self.name_of(key)?;
        if ttl.is_zero() || ttl > Duration::from_secs(7 * 24 * 3600) {
            return Err(Error::bad_request("signed URLs live between 1 second and 7 days").with_code("invalid_ttl"));
        }
        let signer = self
            .signer
            .get_or_try_init(|| async {
                let built = match &self.options.signing_key {
                    Some(key) => {
                        google_cloud_auth::credentials::service_account::Builder::new(key.clone()).build_signer()
                    }
                    None if self.options.anonymous => {
                        return Err(Error::unavailable(format!("{} has no credentials to sign with", self.location()))
                            .with_code("signing_unsupported"));
                    }
                    None => google_cloud_auth::credentials::Builder::default().build_signer(),
                };
                built.map_err(|e| {
                    Error::unavailable(format!("{}: no credentials can sign upload URLs", self.location()))
                        .with_code("signing_unsupported")
                        .with_source(e)
                })
            })
            .await?;
        let mut builder =
            SignedUrlBuilder::for_object(self.bucket_path(), name).with_method(http::Method::PUT).with_expiration(ttl);
        if let Some(endpoint) = &self.options.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        let mut headers = std::collections::BTreeMap::new();
        if let Some(ct) = content_type {
            builder = builder.with_header("content-type", ct);
            headers.insert("content-type".to_string(), ct.to_string());
        }
        let expires_at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
        let url = builder.sign_with(signer).await.map_err(|e| {
            if e.is_invalid_parameter() {
                Error::bad_request(format!("cannot sign an upload URL for `{key}`")).with_source(e)
            } else {
                Error::unavailable(format!("{}: signing failed", self.location()))
                    .with_code("signing_failed")
                    .with_source(e)
            }
        })?;
        Ok(SignedUpload { url, method: "PUT".to_string(), headers, expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::gcp::{Failure, FlakyProxy, create_bucket, fake_gcs};

    /// Test options for an emulator at `endpoint`. The resumable-upload threshold is raised
    /// above every test payload (the conformance suite's 9 MiB object included): resumable
    /// uploads hang against fake-gcs-server, single-shot (multipart) uploads work.
    fn options(endpoint: String) -> GcsOptions {
        GcsOptions {
            endpoint: Some(endpoint),
            anonymous: true,
            resumable_upload_threshold: Some(64 * 1024 * 1024),
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..Default::default()
        }
    }

    fn store(url: &str, endpoint: String) -> GcsBlobStore {
        GcsBlobStore::from_url_with(&url.parse().unwrap(), options(endpoint)).unwrap()
    }

    #[tokio::test]
    async fn conformance() {
        let server = fake_gcs();
        create_bucket(&server, "conformance").await;
        crate::blob::conformance::run(&store("gs://conformance/", server.url())).await;
    }

    #[tokio::test]
    async fn prefix_and_odd_keys_round_trip() {
        let server = fake_gcs();
        create_bucket(&server, "prefixed").await;
        let tenant = store("gs://prefixed/tenant-a/", server.url());
        let root = store("gs://prefixed", server.url());
        for key in ["a b/ü+%?#&=.txt", "x..y/z", "emoji/😀", "plus+and space"] {
            let meta = tenant.put(key, Bytes::from(key.as_bytes().to_vec()), PutOptions::default()).await.unwrap();
            assert_eq!(meta.key, key);
            let got = tenant.get(key).await.unwrap();
            assert_eq!(&got.data[..], key.as_bytes(), "{key}");
            assert_eq!(got.meta.etag, meta.etag, "{key}");
            assert_eq!(tenant.head(key).await.unwrap().etag, meta.etag, "{key}");
            // Seen from the bucket root, the object sits under the prefix.
            let full = format!("tenant-a/{key}");
            assert_eq!(&root.get(&full).await.unwrap().data[..], key.as_bytes());
        }
        let listed = tenant.list("", None, 100).await.unwrap();
        assert_eq!(listed.objects.len(), 4);
        assert!(listed.objects.iter().all(|o| !o.key.starts_with("tenant-a/")));
        assert_eq!(root.list("tenant-a/", None, 100).await.unwrap().objects.len(), 4);
        // The etag is the content's MD5, as GCS reports it.
        let meta = tenant.put("md5", Bytes::from_static(b"hello"), PutOptions::default()).await.unwrap();
        assert_eq!(meta.etag, "5d41402abc4b2a76b9719d911017c592");
        tenant.delete("emoji/😀").await.unwrap();
        assert_eq!(tenant.head("emoji/😀").await.unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn missing_bucket_is_a_typed_error() {
        let server = fake_gcs();
        let store = store("gs://no-such-bucket/", server.url());
        let err = store.list("", None, 10).await.unwrap_err();
        assert_eq!(err.code(), "bucket_not_found", "{err}");
        assert!(err.message().contains("no-such-bucket"), "{err}");
        let err = store.put("k", Bytes::from_static(b"x"), PutOptions::default()).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::NotFound), "{err}");
        assert!(err.message().contains("no-such-bucket") || err.code() == "not_found", "{err}");
    }

    #[tokio::test]
    async fn retries_5xx_and_429_with_backoff() {
        let server = fake_gcs();
        create_bucket(&server, "flaky").await;
        // Two failures, then the real server: every call succeeds, after 2 extra requests.
        let proxy = FlakyProxy::start(Some(server.url()), 2, Failure::Http(503)).await;
        let s = store("gs://flaky/", proxy.url());
        s.put("a", Bytes::from_static(b"1"), PutOptions::default()).await.unwrap();
        assert_eq!(proxy.requests(), 3, "the upload was retried twice");
        let proxy = FlakyProxy::start(Some(server.url()), 2, Failure::Http(429)).await;
        let s = store("gs://flaky/", proxy.url());
        assert_eq!(&s.get("a").await.unwrap().data[..], b"1");
        assert_eq!(proxy.requests(), 3, "the download was retried twice");
        let proxy = FlakyProxy::start(Some(server.url()), 2, Failure::Http(503)).await;
        let s = store("gs://flaky/", proxy.url());
        assert_eq!(s.list("", None, 10).await.unwrap().objects.len(), 1);
        assert_eq!(proxy.requests(), 3, "the listing was retried twice");

        // A server that keeps failing: the configured attempts, then a retryable error.
        let proxy = FlakyProxy::start(None, usize::MAX, Failure::Http(503)).await;
        let s = GcsBlobStore::from_url_with(
            &"gs://flaky/".parse().unwrap(),
            GcsOptions { max_attempts: 3, ..options(proxy.url()) },
        )
        .unwrap();
        let err = s.put("b", Bytes::from_static(b"2"), PutOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.retryable());
        assert_eq!(proxy.requests(), 3);
        let err = s.head("b").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert_eq!(proxy.requests(), 6);
    }

    #[test]
    fn urls_parse_and_errors_name_the_variable() {
        let s = GcsBlobStore::from_url(&"gs://my-bucket/uploads/".parse().unwrap()).unwrap();
        assert_eq!(s.location(), "gs://my-bucket/uploads/");
        assert_eq!(s.name_of("a/b.txt").unwrap(), "uploads/a/b.txt");
        let s = GcsBlobStore::from_url(&"gs://my-bucket".parse().unwrap()).unwrap();
        assert_eq!(s.name_of("a").unwrap(), "a");
        assert_eq!(s.name_of("../a").unwrap_err().code(), "invalid_key");
        for bad in ["gs:///x", "gs://Bad_Bucket/", "gs://ab/", "gs://b-1/a//b/", "gs://b-1/p?x=1", "s3://b-1/"] {
            let err = GcsBlobStore::from_url(&bad.parse().unwrap()).err().unwrap_or_else(|| panic!("{bad} parsed"));
            assert_eq!(err.kind(), ErrorKind::BadRequest, "{bad}");
            assert!(err.message().contains("CATALYST_BLOB_URL"), "{bad}: {err}");
        }
    }

    /// A throwaway service-account key, generated for the test.
    fn service_account_key() -> (serde_json::Value, rsa::RsaPublicKey) {
        use rsa::pkcs8::EncodePrivateKey as _;
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let pem = private.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let key = serde_json::json!({
            "type": "service_account",
            "project_id": "catalyst-test",
            "private_key_id": "test-key-1",
            "private_key": pem.as_str(),
            "client_email": "uploader@catalyst-test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "http://127.0.0.1:9/token",
        });
        (key, private.to_public_key())
    }

    #[tokio::test]
    async fn signed_upload_urls_verify_and_upload() {
        let server = fake_gcs();
        create_bucket(&server, "uploads").await;
        let (key, public) = service_account_key();
        let s = GcsBlobStore::from_url_with(
            &"gs://uploads/in/".parse().unwrap(),
            GcsOptions { signing_key: Some(key), ..options(server.url()) },
        )
        .unwrap();
        let signed =
            s.signed_upload_url("cv/ü 1.pdf", Some("application/pdf"), Duration::from_secs(900)).await.unwrap();
        assert_eq!(signed.method, "PUT");
        assert_eq!(signed.headers.get("content-type").map(String::as_str), Some("application/pdf"));
        assert!(signed.expires_at > Utc::now() + chrono::Duration::seconds(890));

        // The URL's shape: V4, our account, the signed headers, the lifetime.
        let url = url::Url::parse(&signed.url).unwrap();
        assert_eq!(url.path(), "/uploads/in/cv/%C3%BC%201.pdf");
        let params: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(params["X-Goog-Algorithm"], "GOOG4-RSA-SHA256");
        assert!(params["X-Goog-Credential"].starts_with("uploader@catalyst-test.iam.gserviceaccount.com/"));
        assert!(params["X-Goog-Credential"].ends_with("/auto/storage/goog4_request"));
        assert_eq!(params["X-Goog-Expires"], "900");
        assert_eq!(params["X-Goog-SignedHeaders"], "content-type;host");

        // The signature verifies against the key's public half, over the canonical request
        // rebuilt here from the URL (V4 signing process).
        let raw_query = url.query().unwrap();
        let mut pairs: Vec<&str> = raw_query.split('&').filter(|p| !p.starts_with("X-Goog-Signature=")).collect();
        pairs.sort();
        // The crate signs the host without its port: right for storage.googleapis.com, which
        // is all production uses; an emulator on a port that checked signatures would refuse.
        let host = url.host_str().unwrap();
        let canonical = format!(
            "PUT\n{}\n{}\ncontent-type:application/pdf\nhost:{host}\n\ncontent-type;host\nUNSIGNED-PAYLOAD",
            url.path(),
            pairs.join("&")
        );
        let scope = params["X-Goog-Credential"].split_once('/').unwrap().1;
        let to_sign = format!(
            "GOOG4-RSA-SHA256\n{}\n{scope}\n{}",
            params["X-Goog-Date"],
            hex::encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
        );
        let signature = hex::decode(&params["X-Goog-Signature"]).unwrap();
        use rsa::pkcs1::EncodeRsaPublicKey as _;
        let der = public.to_pkcs1_der().unwrap();
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, der.as_bytes())
            .verify(to_sign.as_bytes(), &signature)
            .unwrap_or_else(|_| {
                panic!("signature does not verify over:\n{canonical}\n---\n{to_sign}\n---\n{}", signed.url)
            });

        // A real upload through the URL (fake-gcs-server does not check signatures, but
        // takes the path-style PUT): the object is there with its content type.
        let resp = crate::testkit::gcp::http_client()
            .put(&signed.url)
            .header("content-type", "application/pdf")
            .body("%PDF-1.4 test")
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}: {}", resp.status(), resp.text().await.unwrap_or_default());
        let got = s.get("cv/ü 1.pdf").await.unwrap();
        assert_eq!(&got.data[..], b"%PDF-1.4 test");
        assert_eq!(got.meta.content_type.as_deref(), Some("application/pdf"));

        // Without a key and without credentials there is nothing to sign with.
        let anonymous = store("gs://uploads/", server.url());
        let err = anonymous.signed_upload_url("x", None, Duration::from_secs(60)).await.unwrap_err();
        assert_eq!(err.code(), "signing_unsupported");
        let err = s.signed_upload_url("x", None, Duration::from_secs(8 * 24 * 3600)).await.unwrap_err();
        assert_eq!(err.code(), "invalid_ttl");
    }
}
