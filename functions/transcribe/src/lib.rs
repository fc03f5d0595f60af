//! The `transcribe` function: Whisper speech-to-text on candle, audio in the formats
//! browsers and phones record.
//!
//! - `POST /v1/transcribe` with the audio as the body returns the transcript.
//! - Audio stored under `uploads/audio/{uid}/{name}` is transcribed to
//!   `transcripts/{uid}/{name}.json` (created conditionally, so a redelivered event writes
//!   nothing twice), then a message on the `transcripts` queue announces it.
//!
//! The model loads once, at cold start, from `$CATALYST_MODELS_DIR/whisper-tiny.en` or
//! `WHISPER_MODEL` (a directory or bucket URI); without it the function does not start.

pub mod audio;
pub mod ct2;
pub mod mel;
pub mod model;
mod ops;
pub mod vocab;
pub mod webm;
pub mod whisper;

use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use bytes::Bytes;
use catalyst_shared::auth::Principal;
use catalyst_shared::blob::{PutOptions, SharedBlobStore};
use catalyst_shared::config::Config;
use catalyst_shared::event::ObjectCreated;
use catalyst_shared::models::{self, ModelSpec};
use catalyst_shared::queue::{Outgoing, SharedQueue};
use catalyst_shared::{Deps, Error, ErrorKind, Function, Result, Triggers};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use audio::{Audio, AudioError, Container};
pub use whisper::{Segment, Transcriber, Transcript};

/// Whisper tiny.en in CTranslate2 form, as `catalyst models fetch` lays it out.
pub const WHISPER: ModelSpec = ModelSpec {
    name: "whisper-tiny.en",
    var: "WHISPER_MODEL",
    files: &["model.bin", "config.json", "tokenizer.json", "vocabulary.txt"],
};
/// Longest audio accepted, in seconds (default 900: 15 minutes).
pub const MAX_SECONDS_VAR: &str = "TRANSCRIBE_MAX_SECONDS";
/// Largest audio body or object accepted, in bytes (default 32 MiB).
pub const MAX_BYTES_VAR: &str = "TRANSCRIBE_MAX_BYTES";
/// Compute device for Whisper. Only `cpu` is built in; GPU backends are candle cargo
/// features this crate does not enable, so asking for one is a start-up error.
pub const DEVICE_VAR: &str = "WHISPER_DEVICE";
/// Where finished transcripts are announced.
pub const TRANSCRIPTS_QUEUE: &str = "transcripts";
pub use catalyst_shared::blob::{AUDIO_UPLOAD_PREFIX as UPLOAD_PREFIX, TRANSCRIPT_PREFIX};

/// Limits on what one request or object may hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub max_seconds: f64,
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_seconds: 900.0, max_bytes: 32 << 20 }
    }
}

impl Limits {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Limits> {
        let mut l = Limits::default();
        if let Some(v) = lookup(MAX_SECONDS_VAR).filter(|v| !v.trim().is_empty()) {
            l.max_seconds =
                v.trim().parse::<f64>().ok().filter(|s| *s >= 1.0 && *s <= 4.0 * 3600.0).ok_or_else(|| {
                    Error::bad_request(format!("{MAX_SECONDS_VAR}: `{v}` is not a number of seconds from 1 to 14400"))
                        .with_code("invalid_config")
                })?;
        }
        if let Some(v) = lookup(MAX_BYTES_VAR).filter(|v| !v.trim().is_empty()) {
            l.max_bytes = v.trim().parse::<usize>().ok().filter(|b| *b >= 1024).ok_or_else(|| {
                Error::bad_request(format!("{MAX_BYTES_VAR}: `{v}` is not a byte count of at least 1024"))
                    .with_code("invalid_config")
            })?;
        }
        Ok(l)
    }
}

/// The loaded model and the limits: everything a transcription needs.
pub struct Engine {
    pub transcriber: Transcriber,
    pub limits: Limits,
}

/// Every audio problem is the caller's input being unusable: 422 with a stable code.
fn audio_error(e: AudioError) -> Error {
    Error::unprocessable(e.message()).with_code(e.code())
}

impl Engine {
    /// Load the model from `dir` (once, at cold start).
    pub fn load(dir: &std::path::Path, limits: Limits) -> Result<Engine> {
        let started = std::time::Instant::now();
        let transcriber = Transcriber::load(dir).map_err(|e| {
            Error::unavailable(format!("Whisper model in {} could not be loaded: {e}", dir.display()))
                .with_code("model_invalid")
        })?;
        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "whisper model loaded");
        Ok(Engine { transcriber, limits })
    }

    /// Decode and transcribe `bytes` (blocking: call from a blocking thread).
    pub fn transcribe_bytes(&self, bytes: Bytes) -> Result<Transcript> {
        if bytes.is_empty() {
            return Err(Error::bad_request("the audio body is empty").with_code("empty_body"));
        }
        if bytes.len() > self.limits.max_bytes {
            return Err(too_large(self.limits.max_bytes));
        }
        let audio = audio::decode(bytes, self.limits.max_seconds).map_err(audio_error)?;
        let started = std::time::Instant::now();
        let t = self.transcriber.transcribe(&audio.samples).map_err(|e| Error::internal("whisper").with_source(e))?;
        tracing::info!(
            container = audio.container.name(),
            audio_s = t.duration,
            elapsed_ms = started.elapsed().as_millis() as u64,
            segments = t.segments.len(),
            "transcribed"
        );
        Ok(t)
    }

    /// [`Engine::transcribe_bytes`] on the blocking pool, so the decode never stalls the runtime.
    pub async fn transcribe(self: &Arc<Self>, bytes: Bytes) -> Result<Transcript> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.transcribe_bytes(bytes))
            .await
            .map_err(|e| Error::internal("transcription task failed").with_source(e))?
    }
}

fn too_large(max: usize) -> Error {
    Error::new(ErrorKind::PayloadTooLarge, format!("the audio is larger than the limit of {max} bytes"))
        .with_code("payload_too_large")
}

/// Media types taken as audio; anything else is refused before decoding. The container
/// itself is always detected from the bytes, so a mislabelled file still works.
fn acceptable_media_type(headers: &HeaderMap) -> Result<()> {
    let Some(ct) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let ok = ct.starts_with("audio/")
        || matches!(
            ct.as_str(),
            "video/webm" | "video/mp4" | "video/ogg" | "application/ogg" | "application/octet-stream" | ""
        );
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "Content-Type `{ct}` is not audio: send the recording itself (audio/webm, audio/wav, audio/mpeg, ...)"
            ),
        )
        .with_code("unsupported_media_type"))
    }
}

/// The recording's raw bytes (documented as a binary string, not an array of numbers).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct AudioBody(pub Vec<u8>);

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// Where recordings are uploaded; signs direct-upload URLs.
    pub blob: SharedBlobStore,
}

/// Transcribe the audio in the request body.
#[utoipa::path(post, path = "/v1/transcribe", tag = "transcribe",
    request_body(content = AudioBody, description = "The recording: WAV, MP3, FLAC, OGG (Vorbis or Opus), WebM/Opus or M4A/AAC; the format is detected from the bytes",
        content_type = "audio/*"),
    responses(
        (status = 200, body = Transcript),
        (status = 400, description = "Empty body", body = catalyst_shared::error::ErrorBody),
        (status = 401, body = catalyst_shared::error::ErrorBody),
        (status = 413, description = "Larger than the size limit", body = catalyst_shared::error::ErrorBody),
        (status = 415, description = "Content-Type is not audio", body = catalyst_shared::error::ErrorBody),
        (status = 422, description = "Not decodable audio, an unsupported codec, or longer than the duration limit", body = catalyst_shared::error::ErrorBody)))]
async fn transcribe(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Transcript>> {
    principal.require_scope("transcribe")?;
    acceptable_media_type(&headers)?;
    let body = body.map_err(|e| {
        if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
            too_large(state.engine.limits.max_bytes)
        } else {
            Error::bad_request(format!("could not read the body: {e}")).with_code("bad_body")
        }
    })?;
    Ok(Json(state.engine.transcribe(body).await?))
}

/// Get a URL to upload a recording to directly.
///
/// Returns a presigned (S3) or signed (GCS) URL for `PUT`, valid for 15 minutes, under
/// the caller's own folder `uploads/audio/{uid}/`; the upload's storage event transcribes
/// it into `result_key` and announces it on the `transcripts` queue. Storage that cannot
/// sign (the embedded local store) answers 503 `signing_unsupported`.
#[utoipa::path(post, path = "/v1/transcribe/uploads", tag = "transcribe",
    request_body = catalyst_shared::blob::UploadRequest,
    responses(
        (status = 201, body = catalyst_shared::blob::UploadTicket),
        (status = 400, description = "`invalid_filename`, `invalid_uid`", body = catalyst_shared::error::ErrorBody),
        (status = 415, description = "Not an audio type (`unsupported_format`)", body = catalyst_shared::error::ErrorBody),
        (status = 503, description = "This storage cannot sign URLs (`signing_unsupported`)", body = catalyst_shared::error::ErrorBody),
    ))]
async fn upload_url(
    State(state): State<AppState>,
    principal: Principal,
    catalyst_shared::error::JsonBody(req): catalyst_shared::error::JsonBody<catalyst_shared::blob::UploadRequest>,
) -> Result<(http::StatusCode, Json<catalyst_shared::blob::UploadTicket>)> {
    principal.require_scope("transcribe")?;
    let ticket = catalyst_shared::blob::issue_upload(
        &*state.blob,
        &principal.uid,
        "audio",
        &req,
        // Browsers and phones label recordings many ways (audio/webm;codecs=opus, video/webm
        // from MediaRecorder, audio/x-m4a); the format is detected from the bytes anyway.
        |ct| ct.starts_with("audio/") || ct == "video/webm" || ct == "video/mp4" || ct == "application/ogg",
        |key| transcript_key(key).map(|(_, result)| result),
    )
    .await?;
    Ok((http::StatusCode::CREATED, Json(ticket)))
}

pub fn routes(state: AppState) -> OpenApiRouter {
    let max = state.engine.limits.max_bytes;
    OpenApiRouter::new()
        .routes(routes!(transcribe))
        .routes(routes!(upload_url))
        // The audio limit, not the platform's default JSON body limit, bounds this route.
        .layer(axum::extract::DefaultBodyLimit::max(max))
        .with_state(state)
}

/// What is stored at `transcripts/{uid}/{name}.json` and announced on the queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredTranscript {
    pub uid: String,
    /// The audio object that was transcribed.
    pub source: String,
    /// Its version (etag or sequencer), so a re-upload is told apart from a redelivery.
    pub source_version: String,
    pub transcript: Transcript,
}

/// The queue message saying a transcript is ready.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TranscriptReady {
    pub uid: String,
    pub source: String,
    pub transcript_key: String,
    pub text: String,
    pub duration: f64,
    pub words_per_minute: f64,
}

pub use catalyst_shared::blob::audio_transcript_key as transcript_key;

pub struct TranscribeTriggers {
    pub engine: Arc<Engine>,
    pub blob: SharedBlobStore,
    pub queue: SharedQueue,
}

#[async_trait]
impl Triggers for TranscribeTriggers {
    async fn object_created(&self, event: ObjectCreated) -> Result<()> {
        let (uid, key) = transcript_key(&event.key)?;
        if event.size.is_some_and(|s| s as usize > self.engine.limits.max_bytes) {
            return Err(too_large(self.engine.limits.max_bytes));
        }
        let version = event.version_key();
        let announce = |t: &Transcript| -> Result<Outgoing> {
            Ok(Outgoing::json(&TranscriptReady {
                uid: uid.clone(),
                source: event.key.clone(),
                transcript_key: key.clone(),
                text: t.text.clone(),
                duration: t.duration,
                words_per_minute: t.words_per_minute,
            })?
            // The same object version announces once, however often the event comes.
            .with_dedupe_id(version.clone())
            .traced())
        };
        // A redelivered event finds the transcript written: announce it again (the queue
        // de-duplicates) in case the first delivery died between the write and the send.
        match self.blob.get(&key).await {
            Ok(existing) => {
                if let Ok(stored) = serde_json::from_slice::<StoredTranscript>(&existing.data)
                    && stored.source_version == version
                {
                    self.queue.send(TRANSCRIPTS_QUEUE, announce(&stored.transcript)?).await?;
                    tracing::info!(key = %key, "transcript already written; announced again");
                    return Ok(());
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let object = self.blob.get(&event.key).await?;
        let transcript = self.engine.transcribe(object.data).await?;
        let stored = StoredTranscript {
            uid: uid.clone(),
            source: event.key.clone(),
            source_version: version.clone(),
            transcript,
        };
        let body = serde_json::to_vec(&stored).map_err(|e| Error::internal("transcript JSON").with_source(e))?;
        let put = self
            .blob
            .put(&key, Bytes::from(body), PutOptions { content_type: Some("application/json".into()), if_absent: true })
            .await;
        match put {
            Ok(_) => {}
            // Another delivery of the same event won the race: its transcript stands.
            Err(e) if e.kind() == ErrorKind::Conflict => {
                tracing::info!(key = %key, "transcript written by a concurrent delivery");
            }
            Err(e) => return Err(e),
        }
        self.queue.send(TRANSCRIPTS_QUEUE, announce(&stored.transcript)?).await?;
        Ok(())
    }
}

/// Where the model is, from configuration and the environment (`lookup`).
pub async fn resolve_model(config: &Config, lookup: impl Fn(&str) -> Option<String>) -> Result<PathBuf> {
    models::resolve(config, &WHISPER, lookup).await
}

fn check_device(lookup: impl Fn(&str) -> Option<String>) -> Result<()> {
    match lookup(DEVICE_VAR).map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty()) {
        None => Ok(()),
        Some(v) if v == "cpu" => Ok(()),
        Some(v) => Err(Error::bad_request(format!(
            "{DEVICE_VAR}: `{v}` is not available in this build; the only device is `cpu`"
        ))
        .with_code("invalid_config")),
    }
}

/// Build the function: find and load the model once (a missing one stops start-up with
/// the variable to set), then serve.
pub fn function(deps: &Deps) -> Result<Function> {
    let config = deps.config.clone();
    let limits = Limits::from_lookup(|k| std::env::var(k).ok())?;
    check_device(|k| std::env::var(k).ok())?;
    let dir = catalyst_shared::runtime::block_on_startup(resolve_model(&config, |k| std::env::var(k).ok()))??;
    let engine = Arc::new(Engine::load(&dir, limits)?);
    let blob = deps.blob()?;
    let triggers = TranscribeTriggers { engine: engine.clone(), blob: blob.clone(), queue: deps.queue()? };
    Ok(Function::new("transcribe", routes(AppState { engine, blob }), Arc::new(triggers)))
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests;
