//! The `parse` function: a resume in any common format (PDF, DOCX, ODT, RTF, HTML,
//! Markdown, plain text) to its text, its sections and a JSON Resume.
//!
//! Two ways in: `POST /v1/parse` with the file, and the storage event for an upload
//! under `uploads/resumes/{uid}/...`, whose result goes to
//! `parsed/resumes/{uid}/{name}.json`. Both run the same [`Parser`]: bounded in size,
//! pages, zip expansion and time, on a blocking thread so parsing never stalls the
//! async runtime.

use async_trait::async_trait;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use bytes::Bytes;
use catalyst_shared::auth::Principal;
use catalyst_shared::blob::{PutOptions, SharedBlobStore};
use catalyst_shared::event::ObjectCreated;
use catalyst_shared::{Deps, Error, ErrorKind, Function, Result, Triggers};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::sync::Arc;
use tokio::sync::Semaphore;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod dates;
pub mod extract;
pub mod resume;
pub mod sections;
pub mod skills;

pub use extract::{Deadline, Format, Limits, Warning};
pub use resume::Resume;
pub use sections::Section;
pub use skills::Gazetteer;

/// Where storage events come from and where results go.
pub const UPLOAD_PREFIX: &str = "uploads/resumes/";
pub const PARSED_PREFIX: &str = "parsed/resumes/";

/// What a parse returns, over HTTP and in `parsed/resumes/...`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ParseOutput {
    /// The document's text, reading order, one line per line.
    pub text: String,
    pub format: Format,
    /// Page count (PDF only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    /// The resume in JSON Resume form (jsonresume.org).
    pub resume: Resume,
    pub sections: Vec<Section>,
    pub warnings: Vec<Warning>,
}

/// The capability: bounded extraction plus structuring.
pub struct Parser {
    gazetteer: Arc<Gazetteer>,
    limits: Limits,
    /// Parses run on blocking threads; this bounds how many at once, so a burst of
    /// uploads queues instead of exhausting memory.
    permits: Arc<Semaphore>,
}

impl Parser {
    pub fn new(gazetteer: Arc<Gazetteer>, limits: Limits) -> Self {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(1);
        Parser { gazetteer, limits, permits: Arc::new(Semaphore::new(n)) }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parse on the calling thread (CPU-bound): for tests, benchmarks and `spawn_blocking`.
    pub fn parse_blocking(
        &self,
        bytes: &[u8],
        declared_type: Option<&str>,
        name: Option<&str>,
        deadline: Deadline,
    ) -> Result<ParseOutput> {
        let ex = extract::extract(bytes, declared_type, name, &self.limits, deadline)?;
        deadline.check()?;
        let sections = sections::split(&ex.text);
        let resume = resume::structure(&ex.text, &sections, &self.gazetteer);
        Ok(ParseOutput { text: ex.text, format: ex.format, pages: ex.pages, resume, sections, warnings: ex.warnings })
    }

    /// Parse on a blocking thread, within the time limit.
    pub async fn parse(
        &self,
        bytes: Bytes,
        declared_type: Option<String>,
        name: Option<String>,
    ) -> Result<ParseOutput> {
        if bytes.len() > self.limits.max_bytes {
            return Err(extract::too_large(bytes.len(), self.limits.max_bytes));
        }
        let permit =
            self.permits.clone().acquire_owned().await.map_err(|e| Error::internal("parse permits").with_source(e))?;
        let deadline = Deadline::after(self.limits.timeout);
        let this =
            Parser { gazetteer: self.gazetteer.clone(), limits: self.limits.clone(), permits: self.permits.clone() };
        // The permit moves into the thread: a parse that outlives its caller's timeout
        // still counts against the limit until its thread really ends.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            this.parse_blocking(&bytes, declared_type.as_deref(), name.as_deref(), deadline)
        });
        // The extractors check the same deadline, so the thread also stops soon after.
        match tokio::time::timeout(self.limits.timeout + std::time::Duration::from_millis(250), task).await {
            Err(_) => Err(extract::timeout_error()),
            Ok(Ok(r)) => r,
            // A panic in a parser is a bug for this file: refuse it rather than retry forever.
            Ok(Err(e)) => {
                Err(Error::unprocessable("the document could not be parsed").with_code("parse_failed").with_source(e))
            }
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub parser: Arc<Parser>,
    /// Where uploads go; signs direct-upload URLs.
    pub blob: SharedBlobStore,
}

/// Read a request body up to `max` bytes, with 413 beyond.
async fn read_body(body: Body, max: usize) -> Result<Bytes> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(Error::new(ErrorKind::PayloadTooLarge, format!("the file is larger than {max} bytes"))
                .with_code("file_too_large"))
        }
        Err(e) => Err(Error::bad_request(format!("could not read the request body: {e}")).with_code("invalid_body")),
    }
}

/// The file of a `multipart/form-data` body: the field named `file`, else the first
/// field with a file name.
async fn read_multipart(body: Body, boundary: String, max: usize) -> Result<(Bytes, Option<String>, Option<String>)> {
    let bad = |e: multer::Error| match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            Error::new(ErrorKind::PayloadTooLarge, format!("the file is larger than {max} bytes"))
                .with_code("file_too_large")
        }
        other => Error::bad_request(format!("malformed multipart body: {other}")).with_code("invalid_multipart"),
    };
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(max as u64 + 64 * 1024).per_field(max as u64));
    let mut mp = multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        let is_file = field.name() == Some("file") || field.file_name().is_some();
        if !is_file {
            continue;
        }
        let ct = field.content_type().map(|m| m.to_string());
        let name = field.file_name().map(str::to_string);
        let data = field.bytes().await.map_err(bad)?;
        return Ok((data, ct, name));
    }
    Err(Error::bad_request("the multipart body has no file field (send it as `file`)").with_code("missing_file"))
}

fn disposition_filename(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(http::header::CONTENT_DISPOSITION)?.to_str().ok()?;
    let i = v.find("filename=")?;
    Some(v[i + 9..].split(';').next()?.trim().trim_matches('"').to_string()).filter(|s| !s.is_empty())
}

/// Parse a resume.
///
/// Send the file as the body with its content type (`application/pdf`, DOCX, ODT,
/// RTF, `text/html`, `text/markdown`, `text/plain`), or as the `file` field of a
/// `multipart/form-data` body. The format is detected from the bytes.
#[utoipa::path(post, path = "/v1/parse", tag = "parse",
    request_body(description = "The resume file, raw or as multipart field `file`", content(
        (Vec<u8> = "application/pdf"),
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (Vec<u8> = "application/vnd.oasis.opendocument.text"),
        (Vec<u8> = "application/rtf"),
        (String = "text/html"),
        (String = "text/markdown"),
        (String = "text/plain"),
        (Vec<u8> = "multipart/form-data"))),
    responses(
        (status = 200, body = ParseOutput),
        (status = 413, description = "Larger than the size limit (`file_too_large`)", body = catalyst_shared::error::ErrorBody),
        (status = 415, description = "Not a resume format (`unsupported_format`)", body = catalyst_shared::error::ErrorBody),
        (status = 422, description = "Damaged or unreadable: `corrupt_file`, `no_text_layer`, `zip_bomb`, `too_many_pages`, `encrypted_pdf`, `parse_timeout`, `empty_file`", body = catalyst_shared::error::ErrorBody),
    ))]
async fn parse_resume(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ParseOutput>> {
    principal.require_scope("parse")?;
    let max = state.parser.limits().max_bytes;
    let ct = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (bytes, ct, name) = match ct.as_deref().and_then(|c| multer::parse_boundary(c).ok()) {
        Some(boundary) => read_multipart(body, boundary, max).await?,
        None => (read_body(body, max).await?, ct, disposition_filename(&headers)),
    };
    tracing::info!(uid = %principal.uid, bytes = bytes.len(), "parse request");
    Ok(Json(state.parser.parse(bytes, ct, name).await?))
}

/// The content types an upload may declare: the formats the parser reads.
const UPLOAD_TYPES: &[&str] = &[
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.oasis.opendocument.text",
    "application/rtf",
    "text/rtf",
    "text/html",
    "text/markdown",
    "text/plain",
];

/// Get a URL to upload a resume to directly.
///
/// Returns a presigned (S3) or signed (GCS) URL for `PUT`, valid for 15 minutes, under
/// the caller's own folder `uploads/resumes/{uid}/`. The upload's storage event parses
/// it into `result_key`. Storage that cannot sign (the embedded local store) answers 503
/// `signing_unsupported`; there, send the file to `POST /v1/parse` instead.
#[utoipa::path(post, path = "/v1/parse/uploads", tag = "parse",
    request_body = catalyst_shared::blob::UploadRequest,
    responses(
        (status = 201, body = catalyst_shared::blob::UploadTicket),
        (status = 400, description = "`invalid_filename`, `invalid_uid`", body = catalyst_shared::error::ErrorBody),
        (status = 415, description = "Not a resume format (`unsupported_format`)", body = catalyst_shared::error::ErrorBody),
        (status = 503, description = "This storage cannot sign URLs (`signing_unsupported`)", body = catalyst_shared::error::ErrorBody),
    ))]
async fn upload_url(
    State(state): State<AppState>,
    principal: Principal,
    catalyst_shared::error::JsonBody(req): catalyst_shared::error::JsonBody<catalyst_shared::blob::UploadRequest>,
) -> Result<(http::StatusCode, Json<catalyst_shared::blob::UploadTicket>)> {
    principal.require_scope("parse")?;
    let ticket = catalyst_shared::blob::issue_upload(
        &*state.blob,
        &principal.uid,
        "resumes",
        &req,
        |ct| UPLOAD_TYPES.contains(&ct),
        |key| output_key(key).map(|(_, result)| result),
    )
    .await?;
    Ok((http::StatusCode::CREATED, Json(ticket)))
}

pub fn routes(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(parse_resume)).routes(routes!(upload_url)).with_state(state)
}

/// A stored result: the parse (or the reason it failed) and the exact input it came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredResult {
    pub source: Source,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ParseOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<catalyst_shared::error::ErrorDetail>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Source {
    pub key: String,
    pub etag: String,
    /// Content hash of the input: the idempotency key.
    pub sha256: String,
    pub size: u64,
}

/// `uploads/resumes/{uid}/{path}` → (`uid`, `parsed/resumes/{uid}/{path}.json`), e.g.
/// `uploads/resumes/u1/cv.pdf` → `parsed/resumes/u1/cv.pdf.json`.
pub fn output_key(upload_key: &str) -> Result<(String, String)> {
    let bad = || {
        Error::bad_request(format!("`{upload_key}` is not under {UPLOAD_PREFIX}{{uid}}/")).with_code("unexpected_key")
    };
    let rest = upload_key.strip_prefix(UPLOAD_PREFIX).ok_or_else(bad)?;
    let (uid, file) = rest.split_once('/').ok_or_else(bad)?;
    if uid.is_empty() || file.is_empty() || file.ends_with('/') {
        return Err(bad());
    }
    // The whole file name, extension included: `cv.pdf` and `cv.docx` side by side must
    // not overwrite each other's result.
    let out = format!("{PARSED_PREFIX}{uid}/{file}.json");
    catalyst_shared::blob::validate_key(&out)?;
    Ok((uid.to_string(), out))
}

pub struct ParseTriggers {
    pub parser: Arc<Parser>,
    pub blob: SharedBlobStore,
}

fn stored_error(detail: &catalyst_shared::error::ErrorDetail) -> Error {
    // Re-raised on redelivery of a file that already failed: same reason, not retryable.
    Error::unprocessable(detail.message.clone()).with_code(detail.code.clone())
}

#[async_trait]
impl Triggers for ParseTriggers {
    /// Idempotent by content: the result records the input's sha256, and a delivery whose
    /// input already has a result writes nothing. Results are deterministic, so two
    /// deliveries racing write identical bytes; a plain put (not `if_absent`) is right
    /// because a re-upload under the same name must replace the old result.
    async fn object_created(&self, event: ObjectCreated) -> Result<()> {
        let (uid, out_key) = output_key(&event.key)?;
        // Refuse an oversized upload from its metadata, before reading it into memory.
        let max = self.parser.limits().max_bytes;
        match self.blob.head(&event.key).await {
            Ok(meta) if meta.size > max as u64 => {
                let err = extract::too_large(meta.size as usize, max);
                let source =
                    Source { key: event.key.clone(), etag: meta.etag.clone(), sha256: String::new(), size: meta.size };
                let stored = StoredResult { source, output: None, error: Some(err.body().error) };
                let json = serde_json::to_vec(&stored).map_err(|e| Error::internal("serializing").with_source(e))?;
                self.blob.put(&out_key, Bytes::from(json), PutOptions::content_type("application/json")).await?;
                return Err(err);
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                tracing::info!(key = %event.key, "upload gone before it was parsed");
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let obj = match self.blob.get(&event.key).await {
            Ok(o) => o,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // Deleted since the event: nothing to parse and nothing to lose.
                tracing::info!(key = %event.key, "upload gone before it was parsed");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let sha = hex::encode(sha2::Sha256::digest(&obj.data));
        match self.blob.get(&out_key).await {
            Ok(existing) => {
                if let Ok(prev) = serde_json::from_slice::<StoredResult>(&existing.data)
                    && prev.source.sha256 == sha
                {
                    tracing::info!(key = %event.key, "already parsed; redelivery ignored");
                    return match prev.error {
                        Some(detail) => Err(stored_error(&detail)),
                        None => Ok(()),
                    };
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let name = event.key.rsplit('/').next().map(str::to_string);
        let ct = obj.meta.content_type.clone().or(event.content_type.clone());
        let source =
            Source { key: event.key.clone(), etag: obj.meta.etag.clone(), sha256: sha, size: obj.data.len() as u64 };
        let (stored, failure) = match self.parser.parse(obj.data.clone(), ct, name).await {
            Ok(out) => (StoredResult { source, output: Some(out), error: None }, None),
            Err(e) if !e.retryable() => {
                let detail = e.body().error;
                (StoredResult { source, output: None, error: Some(detail) }, Some(e))
            }
            Err(e) => return Err(e),
        };
        // A newer upload replaced the object while we parsed: its own event writes the
        // result; writing ours now could overwrite a newer one.
        match self.blob.head(&event.key).await {
            Ok(meta) if meta.etag != stored.source.etag => {
                tracing::info!(key = %event.key, "object changed while parsing; leaving it to the newer event");
                return Ok(());
            }
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let json =
            serde_json::to_vec(&stored).map_err(|e| Error::internal("serializing the parse result").with_source(e))?;
        self.blob.put(&out_key, Bytes::from(json), PutOptions::content_type("application/json")).await?;
        tracing::info!(key = %event.key, out = %out_key, uid = %uid, ok = failure.is_none(), "resume parsed");
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Load the skills gazetteer where `SKILLS_GAZETTEER` or `$CATALYST_MODELS_DIR/skills` says.
pub fn load_gazetteer(deps: &Deps, lookup: impl Fn(&str) -> Option<String> + Send + Sync) -> Result<Gazetteer> {
    let config = deps.config.clone();
    let dir = catalyst_shared::runtime::block_on_startup(async move {
        catalyst_shared::models::resolve(&config, &skills::SPEC, lookup).await
    })??;
    let started = std::time::Instant::now();
    let g = Gazetteer::load(&dir)?;
    tracing::info!(skills = g.len(), elapsed_ms = started.elapsed().as_millis() as u64, "skills gazetteer loaded");
    Ok(g)
}

pub fn function(deps: &Deps) -> Result<Function> {
    let env = |k: &str| std::env::var(k).ok();
    let limits = Limits::from_lookup(env)?;
    let gazetteer = Arc::new(load_gazetteer(deps, env)?);
    let parser = Arc::new(Parser::new(gazetteer, limits));
    let blob = deps.blob()?;
    let state = AppState { parser: parser.clone(), blob: blob.clone() };
    Ok(Function::new("parse", routes(state), Arc::new(ParseTriggers { parser, blob })))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod eval;

#[cfg(test)]
mod eval_holdout;
