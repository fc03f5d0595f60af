//! Amazon S3 (and S3-compatible servers) behind the blob port: `s3://bucket/prefix`.
//!
//! Objects above a threshold (8 MiB by default) go up as multipart uploads, four parts at
//! a time, and an upload that fails is aborted so no parts are left behind. Conditional
//! create is S3's `If-None-Match: *`, on single puts and on completing a multipart upload.
//! Listing pages with `start-after` on the last key, so a cursor is just a key and means
//! the same on every adapter.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::OnceCell;

use super::{BlobStore, Listing, Object, ObjectMeta, PutOptions, SignedUpload, validate_key};
use crate::aws::{sdk_config, sdk_error, url_error};
use crate::error::{Error, Result};

const VAR: &str = "CATALYST_BLOB_URL";
/// S3's smallest part (except the last) is 5 MiB; 8 MiB parts keep a 9 MiB upload at two.
const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight at once: enough to fill a Lambda's network link, few enough for its memory.
const PARTS_IN_FLIGHT: usize = 4;

pub struct S3BlobStore {
    bucket: String,
    /// Empty, or ends with `/`.
    prefix: String,
    /// `None`: decide from the configuration (path style when a custom endpoint is set).
    path_style: Option<bool>,
    part_size: usize,
    multipart_threshold: usize,
    client: OnceCell<Client>,
}

impl S3BlobStore {
    /// `s3://bucket/optional/prefix[?path_style=true|false]`; no network until first use.
    pub fn from_url(url: &url::Url) -> Result<Self> {
        let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| url_error(VAR, url, "no bucket name"))?;
        let mut path_style = None;
        for (k, v) in url.query_pairs() {
            match (&*k, &*v) {
                ("path_style", "true") => path_style = Some(true),
                ("path_style", "false") => path_style = Some(false),
                _ => {
                    return Err(url_error(VAR, url, &format!("unknown option `{k}={v}` (only path_style=true|false)")));
                }
            }
        }
        let prefix = url.path().trim_start_matches('/');
        Ok(Self::new(bucket, prefix, path_style, OnceCell::new()))
    }

    /// Over an explicit SDK configuration (tests, self-hosted S3 servers): path-style
    /// addressing, as such servers expect.
    pub fn with_config(config: &aws_config::SdkConfig, bucket: &str, prefix: &str) -> Self {
        let client = Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build());
        Self::new(bucket, prefix, Some(true), OnceCell::new_with(Some(client)))
    }

    fn new(bucket: &str, prefix: &str, path_style: Option<bool>, client: OnceCell<Client>) -> Self {
        let mut prefix = prefix.trim_matches('/').to_owned();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        S3BlobStore {
            bucket: bucket.to_owned(),
            prefix,
            path_style,
            part_size: DEFAULT_PART_SIZE,
            multipart_threshold: DEFAULT_PART_SIZE,
            client,
        }
    }

    /// Objects larger than `threshold` are uploaded in parts of `part_size` (at least 5 MiB).
    pub fn with_multipart(mut self, threshold: usize, part_size: usize) -> Self {
        self.multipart_threshold = threshold;
        self.part_size = part_size.max(5 * 1024 * 1024);
        self
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let config = sdk_config().await;
                let path_style = self.path_style.unwrap_or(config.endpoint_url().is_some());
                Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(path_style).build())
            })
            .await
    }

    fn full_key(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    fn meta(
        &self,
        full_key: &str,
        size: Option<i64>,
        etag: Option<&str>,
        ct: Option<&str>,
        modified: Option<&aws_sdk_s3::primitives::DateTime>,
    ) -> ObjectMeta {
        ObjectMeta {
            key: full_key.strip_prefix(&self.prefix).unwrap_or(full_key).to_owned(),
            size: size.unwrap_or(0).max(0) as u64,
            etag: etag.unwrap_or_default().trim_matches('"').to_owned(),
            content_type: ct.map(str::to_owned),
            last_modified: modified.and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())),
        }
    }

    async fn put_multipart(&self, key: &str, data: Bytes, options: &PutOptions) -> Result<Option<String>> {
        let client = self.client().await;
        let what = format!("s3 multipart upload of {key}");
        let created = client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_content_type(options.content_type.clone())
            .send()
            .await
            .map_err(|e| sdk_error(&what, e))?;
        let upload_id = created.upload_id().ok_or_else(|| Error::internal("S3 returned no multipart upload id"))?;
        let what = &what;
        let parts = async {
            let chunks: Vec<(i32, Bytes)> = (0..data.len())
                .step_by(self.part_size)
                .enumerate()
                .map(|(i, start)| (i as i32 + 1, data.slice(start..(start + self.part_size).min(data.len()))))
                .collect();
            let mut parts: Vec<CompletedPart> = futures::stream::iter(chunks)
                .map(|(number, chunk)| async move {
                    let out = client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .body(ByteStream::from(chunk))
                        .send()
                        .await
                        .map_err(|e| sdk_error(what, e))?;
                    Ok::<_, Error>(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag).build())
                })
                .buffer_unordered(PARTS_IN_FLIGHT)
                .try_collect()
                .await?;
            parts.sort_by_key(|p| p.part_number());
            let mut complete = client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build());
            if options.if_absent {
                complete = complete.if_none_match("*");
            }
            let done = complete.send().await.map_err(|e| sdk_error(what, e))?;
            Ok::<_, Error>(done.e_tag)
        }
        .await;
        if parts.is_err() {
            // Parts of an unfinished upload are billed until aborted.
            let _ = client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id).send().await;
        }
        parts
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn put(&self, key: &str, data: Bytes, options: PutOptions) -> Result<ObjectMeta> {
        let full = self.full_key(key)?;
        let size = data.len();
        let etag = if size > self.multipart_threshold {
            self.put_multipart(&full, data, &options).await?
        } else {
            let mut put = self
                .client()
                .await
                .put_object()
                .bucket(&self.bucket)
                .key(&full)
                .set_content_type(options.content_type.clone())
                .body(ByteStream::from(data));
            if options.if_absent {
                put = put.if_none_match("*");
            }
            put.send().await.map_err(|e| map_put_error(key, sdk_error(&format!("s3 put {key}"), e)))?.e_tag
        };
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: size as u64,
            etag: etag.unwrap_or_default().trim_matches('"').to_owned(),
            content_type: options.content_type,
            last_modified: Some(Utc::now()),
        })
    }

    async fn get(&self, key: &str) -> Result<Object> {
        let full = self.full_key(key)?;
        let what = format!("s3 get {key}");
        let out = self
            .client()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| sdk_error(&what, e))?;
        let meta = self.meta(
            &full,
            out.content_length,
            out.e_tag.as_deref(),
            out.content_type.as_deref(),
            out.last_modified.as_ref(),
        );
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| Error::unavailable(format!("{what}: the body was cut off")).with_source(e))?
            .into_bytes();
        Ok(Object { meta: ObjectMeta { size: data.len() as u64, ..meta }, data })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let full = self.full_key(key)?;
        let out = self
            .client()
            .await
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("s3 head {key}"), e))?;
        Ok(self.meta(
            &full,
            out.content_length,
            out.e_tag.as_deref(),
            out.content_type.as_deref(),
            out.last_modified.as_ref(),
        ))
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>, limit: usize) -> Result<Listing> {
        let limit = limit.clamp(1, 1000);
        let out = self
            .client()
            .await
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}{prefix}", self.prefix))
            .set_start_after(cursor.map(|c| format!("{}{c}", self.prefix)))
            .max_keys(limit as i32)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("s3 list {prefix}"), e))?;
        let objects: Vec<ObjectMeta> = out
            .contents()
            .iter()
            .filter_map(|o| {
                let key = o.key()?;
                Some(self.meta(key, o.size, o.e_tag(), None, o.last_modified()))
            })
            .collect();
        let next = if out.is_truncated().unwrap_or(false) { objects.last().map(|o| o.key.clone()) } else { None };
        Ok(Listing { objects, next })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let full = self.full_key(key)?;
        self.client()
            .await
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("s3 delete {key}"), e))?;
        Ok(())
    }

    async fn signed_upload_url(&self, key: &str, content_type: Option<&str>, ttl: Duration) -> Result<SignedUpload> {
        let full = self.full_key(key)?;
        let config = PresigningConfig::expires_in(ttl)
            .map_err(|e| Error::bad_request("upload URL lifetime must be between 1 s and 7 days").with_source(e))?;
        let request = self
            .client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .set_content_type(content_type.map(str::to_owned))
            .presigned(config)
            .await
            .map_err(|e| sdk_error(&format!("s3 presign {key}"), e))?;
        let headers: BTreeMap<String, String> = request.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        Ok(SignedUpload {
            url: request.uri().to_owned(),
            method: request.method().to_owned(),
            headers,
            expires_at: Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default(),
        })
    }
}

/// S3 answers a lost `If-None-Match: *` race with 412 PreconditionFailed, or with 409
/// ConditionalRequestConflict while another conditional write is in flight: both mean
/// the object exists (or is about to).
fn map_put_error(key: &str, error: Error) -> Error {
    if error.kind() == crate::error::ErrorKind::Conflict {
        return Error::conflict(format!("object {key} already exists")).with_code("already_exists");
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::testkit::aws::{Moto, S3sFs};

    #[tokio::test]
    async fn conformance_on_moto() {
        let moto = Moto::start();
        moto.create_bucket("conformance").await;
        let store = S3BlobStore::with_config(&moto.config(), "conformance", "tenant-a");
        crate::blob::conformance::run(&store).await;
        // The prefix really is a prefix in the bucket.
        store.put("x/y.txt", Bytes::from_static(b"y"), PutOptions::default()).await.unwrap();
        let raw = S3BlobStore::with_config(&moto.config(), "conformance", "");
        assert_eq!(&raw.get("tenant-a/x/y.txt").await.unwrap().data[..], b"y");
    }

    #[tokio::test]
    async fn conformance_on_s3s_fs_which_checks_signatures() {
        let server = S3sFs::start();
        server.create_bucket("conformance").await;
        let store = S3BlobStore::with_config(&server.config(), "conformance", "");
        crate::blob::conformance::run(&store).await;

        // A wrong secret is refused by the server: the adapter really signs.
        let wrong = crate::aws::static_config(&server.url(), "us-east-1", S3sFs::ACCESS_KEY, "not-the-secret");
        let refused = S3BlobStore::with_config(&wrong, "conformance", "");
        let err = refused.put("k", Bytes::from_static(b"v"), PutOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");
    }

    #[tokio::test]
    async fn missing_bucket_is_not_found() {
        let moto = Moto::start();
        let store = S3BlobStore::with_config(&moto.config(), "no-such-bucket", "");
        let err = store.get("a").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        let err = store.put("a", Bytes::from_static(b"x"), PutOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert_eq!(err.code(), "no_such_bucket");
    }

    #[tokio::test]
    async fn multipart_upload_with_small_parts_and_conditional_complete() {
        let moto = Moto::start();
        moto.create_bucket("big").await;
        let store =
            S3BlobStore::with_config(&moto.config(), "big", "").with_multipart(6 * 1024 * 1024, 5 * 1024 * 1024);
        let data: Vec<u8> = (0..(17 * 1024 * 1024 + 3)).map(|i| (i * 7 % 253) as u8).collect();
        let meta = store.put("v/huge.bin", Bytes::from(data.clone()), PutOptions::default()).await.unwrap();
        assert!(meta.etag.ends_with("-4"), "a 4-part upload's etag: {}", meta.etag);
        let got = store.get("v/huge.bin").await.unwrap();
        assert_eq!(got.data.len(), data.len());
        assert!(got.data[..] == data[..]);
        let err = store
            .put("v/huge.bin", Bytes::from(data), PutOptions { if_absent: true, ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        // Nothing left half-done: no multipart uploads remain open.
        let open = store.client().await.list_multipart_uploads().bucket("big").send().await.unwrap();
        assert!(open.uploads().is_empty(), "{:?}", open.uploads());
    }

    #[tokio::test]
    async fn throttling_and_server_errors_are_retried() {
        let moto = Moto::start();
        moto.create_bucket("flaky").await;
        // Two 503 SlowDown answers, then the real server: the SDK's retries get through.
        let proxy = crate::testkit::FlakyProxy::start(
            moto.addr(),
            2,
            503,
            "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>",
        );
        let config = crate::aws::static_config(&proxy.url(), "us-east-1", "test", "test");
        let store = S3BlobStore::with_config(&config, "flaky", "");
        store.put("k", Bytes::from_static(b"v"), PutOptions::default()).await.unwrap();
        assert_eq!(proxy.failed(), 2);
        // More failures in a row than attempts: a retryable Unavailable, not a panic.
        let proxy = crate::testkit::FlakyProxy::start(
            moto.addr(),
            100,
            500,
            "<Error><Code>InternalError</Code><Message>boom</Message></Error>",
        );
        let config = crate::aws::static_config(&proxy.url(), "us-east-1", "test", "test");
        let store = S3BlobStore::with_config(&config, "flaky", "");
        let err = store.get("k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.retryable());
        assert_eq!(proxy.failed(), 4, "four attempts in all");
    }

    #[tokio::test]
    async fn presigned_upload_url_works_with_a_plain_http_put() {
        let server = S3sFs::start();
        server.create_bucket("uploads").await;
        let store = S3BlobStore::with_config(&server.config(), "uploads", "");
        let signed = store
            .signed_upload_url("uploads/resumes/u1/cv.pdf", Some("application/pdf"), Duration::from_secs(300))
            .await
            .unwrap();
        assert_eq!(signed.method, "PUT");
        assert!(signed.url.contains("X-Amz-Signature="), "{}", signed.url);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let mut put = client.put(&signed.url).body("%PDF-1.4 fake");
        for (k, v) in &signed.headers {
            put = put.header(k, v);
        }
        let response = put.send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.text().await.unwrap());
        let got = store.get("uploads/resumes/u1/cv.pdf").await.unwrap();
        assert_eq!(&got.data[..], b"%PDF-1.4 fake");
        // A signature changed in one digit is refused, and nothing is written.
        let (head, sig) = signed.url.split_once("X-Amz-Signature=").unwrap();
        let flipped = match sig.strip_prefix('0') {
            Some(rest) => format!("1{rest}"),
            None => format!("0{}", &sig[1..]),
        };
        let tampered = format!("{head}X-Amz-Signature={flipped}");
        let mut put = client.put(&tampered).body("evil");
        for (k, v) in &signed.headers {
            put = put.header(k, v);
        }
        let refused = put.send().await.unwrap();
        let status = refused.status();
        let body = refused.text().await.unwrap();
        assert!(status.is_client_error() && body.contains("Signature"), "{status}: {body}");
        assert_eq!(&store.get("uploads/resumes/u1/cv.pdf").await.unwrap().data[..], b"%PDF-1.4 fake");
    }

    #[test]
    fn urls_are_checked() {
        let store = S3BlobStore::from_url(&"s3://bucket/some/prefix/".parse().unwrap()).unwrap();
        assert_eq!(store.location(), "s3://bucket/some/prefix/");
        assert_eq!(S3BlobStore::from_url(&"s3://bucket".parse().unwrap()).unwrap().location(), "s3://bucket/");
        let err = S3BlobStore::from_url(&"s3://bucket/p?region=x".parse().unwrap()).err().unwrap();
        assert!(err.message().contains("CATALYST_BLOB_URL"), "{err}");
        assert!(S3BlobStore::from_url(&"s3:///p".parse().unwrap()).is_err());
    }
}
