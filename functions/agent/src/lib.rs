//! The `agent` function: the interview, turn by turn, run by six agents (Context,
//! Evaluator, Story Analysis, Orchestrator, Synthesis, Achievement Reframing; see
//! [`agents`]) over the LLM port, the evaluate library and the question bank.
//!
//! Interviews live in the document store under `interviews/{uid}/{id}`, so a caller can
//! only ever address their own: the uid comes from the verified principal, never the URL.
//! Routes: `POST /v1/interviews`, `GET /v1/interviews`, `GET /v1/interviews/{id}`,
//! `POST /v1/interviews/{id}/turns` (JSON, or SSE with `Accept: text/event-stream`),
//! `POST /v1/interviews/{id}/report`. Queue messages on `agent` run a turn the same way.

pub mod agents;
pub mod bank;
pub mod engine;
pub mod index;
pub mod model;
pub mod prompts;
pub mod replay;
#[cfg(any(test, feature = "testkit"))]
pub mod testing;

use async_trait::async_trait;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use catalyst_shared::auth::Principal;
use catalyst_shared::blob::SharedBlobStore;
use catalyst_shared::evaluation::Evaluator;
use catalyst_shared::event::QueueMessage;
use catalyst_shared::llm::LanguageModel;
use catalyst_shared::store::SharedDocumentStore;
use catalyst_shared::{Deps, Error, ErrorKind, Function, JsonBody, Result, Triggers};
use engine::{CreateInterview, Created, Engine, INTERVIEWS, TurnEvent, TurnInput, TurnResult};
use model::{Interview, Report};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::OnceCell;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the engine is built from; the parts that need storage (prompt registry, question
/// bank index) load once, on the first request or right at start when a runtime is there.
pub struct Agent {
    pub store: SharedDocumentStore,
    pub blob: SharedBlobStore,
    pub llm: Arc<dyn LanguageModel>,
    pub evaluator: Arc<Evaluator>,
    engine: OnceCell<Arc<Engine>>,
}

impl Agent {
    pub fn new(
        store: SharedDocumentStore,
        blob: SharedBlobStore,
        llm: Arc<dyn LanguageModel>,
        evaluator: Arc<Evaluator>,
    ) -> Agent {
        Agent { store, blob, llm, evaluator, engine: OnceCell::new() }
    }

    pub async fn engine(&self) -> Result<Arc<Engine>> {
        self.engine
            .get_or_try_init(|| async {
                let started = std::time::Instant::now();
                let prompts = Arc::new(
                    catalyst_shared::prompts::Registry::load(
                        self.store.clone(),
                        &prompts::defaults(),
                        prompts::refresh_interval(),
                    )
                    .await?,
                );
                let fingerprint = model_fingerprint(&self.evaluator)?;
                let bank =
                    bank::QuestionBank::load_or_build(bank::BANK_TOML, &self.blob, &self.evaluator, &fingerprint)
                        .await?;
                tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    questions = bank.questions.len(),
                    "agent ready"
                );
                Ok::<_, Error>(Arc::new(Engine {
                    store: self.store.clone(),
                    blob: self.blob.clone(),
                    llm: self.llm.clone(),
                    evaluator: self.evaluator.clone(),
                    bank: Arc::new(bank),
                    prompts,
                    evaluations: Arc::new(tokio::sync::Semaphore::new(1)),
                }))
            })
            .await
            .cloned()
    }
}

/// Identifies the embedding model by what it computes, so a new model never reads an
/// index embedded by another.
fn model_fingerprint(evaluator: &Evaluator) -> Result<String> {
    use sha2::{Digest, Sha256};
    let v = evaluator.embedder().embed(&["catalyst question bank fingerprint"])?;
    let mut h = Sha256::new();
    for x in &v[0] {
        h.update(((x * 1e4).round() as i32).to_le_bytes());
    }
    Ok(format!("{}d:{}", v[0].len(), &hex::encode(h.finalize())[..16]))
}

#[derive(Clone)]
pub struct AppState {
    pub agent: Arc<Agent>,
}

/// A stored interview as the API returns it: the transcript so far, scores, progress.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InterviewRecord {
    pub id: String,
    /// Store version, for optimistic concurrency on updates.
    pub version: u64,
    pub interview: InterviewView,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TranscriptEntry {
    pub turn: u32,
    pub question: String,
    pub answer: String,
    pub score: u32,
    pub reply: String,
    pub coaching: Vec<String>,
    pub competency: String,
    pub follow_up: Option<model::Probe>,
    /// The measured evaluation of the answer (STAR, fillers, pace, feedback), as a
    /// streamed turn's `evaluation` event carries it; spoken answers show it from here.
    pub evaluation: model::EvalSummary,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InterviewView {
    pub mode: model::Mode,
    pub status: model::Status,
    pub persona: Option<String>,
    pub profile: model::Profile,
    pub plan: Vec<model::PlannedQuestion>,
    pub question: Option<engine::QuestionView>,
    pub transcript: Vec<TranscriptEntry>,
    pub progress: engine::Progress,
    /// The mean score of the answered questions so far.
    pub score: Option<u32>,
    pub stories: Vec<model::Story>,
    pub report: Option<Report>,
    pub prompts: std::collections::BTreeMap<String, u32>,
    pub created_at: String,
    pub updated_at: String,
}

fn view(i: &Interview) -> InterviewView {
    let transcript: Vec<TranscriptEntry> = i
        .turns
        .iter()
        .map(|t| TranscriptEntry {
            turn: t.n,
            question: t.question.clone(),
            answer: t.answer.clone(),
            score: t.score,
            reply: t.reply.clone(),
            coaching: t.coaching.clone(),
            competency: i.plan.get(t.plan_index).map(|p| p.competency.clone()).unwrap_or_default(),
            follow_up: t.follow_up,
            evaluation: t.summary.clone(),
        })
        .collect();
    let agg = engine::aggregate(i);
    InterviewView {
        mode: i.mode,
        status: i.status,
        persona: i.persona.clone(),
        profile: i.profile.clone(),
        plan: i.plan.clone(),
        question: engine::question_view(i),
        transcript,
        progress: engine::progress(i),
        score: (!i.turns.is_empty()).then_some(agg.overall),
        stories: i.stories.clone(),
        report: i.report.clone(),
        prompts: i.prompts.clone(),
        created_at: i.created_at.clone(),
        updated_at: i.updated_at.clone(),
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InterviewSummary {
    pub id: String,
    pub mode: model::Mode,
    pub status: model::Status,
    pub job_title: Option<String>,
    pub answers: usize,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InterviewList {
    pub interviews: Vec<InterviewSummary>,
    /// Pass as `after` for the next page.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<usize>,
    /// Cursor from the previous page.
    pub after: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TurnParams {
    /// Stream the reply as server-sent events (also chosen by `Accept: text/event-stream`).
    pub stream: Option<bool>,
}

use engine::valid_id;

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let k = v.to_str().map_err(|_| {
                Error::bad_request("Idempotency-Key must be visible ASCII").with_code("invalid_idempotency_key")
            })?;
            engine::valid_idempotency_key(k)?;
            Ok(Some(k.to_string()))
        }
    }
}

/// Start an interview: the candidate profile, the plan and the first question.
#[utoipa::path(post, path = "/v1/interviews", tag = "agent", request_body = CreateInterview,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the same interview")),
    responses((status = 201, body = Created), (status = 400, body = catalyst_shared::error::ErrorBody),
        (status = 404, body = catalyst_shared::error::ErrorBody), (status = 502, body = catalyst_shared::error::ErrorBody)))]
async fn create_interview(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    JsonBody(req): JsonBody<CreateInterview>,
) -> Result<(StatusCode, Json<Created>)> {
    principal.require_scope("interviews")?;
    let key = idempotency_key(&headers)?;
    let engine = state.agent.engine().await?;
    let created = engine.create(&principal.uid, req, key.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Answer the waiting question. Needs an `Idempotency-Key`: a retry with the same key
/// returns the first result without running the agents again.
#[utoipa::path(post, path = "/v1/interviews/{id}/turns", tag = "agent", request_body = TurnInput,
    params(("id" = String, Path, description = "Interview id"), TurnParams,
        ("Idempotency-Key" = String, Header, description = "One key per answer")),
    responses((status = 200, body = TurnResult, description = "JSON, or `text/event-stream` with events `evaluation`, `delta`, `done`, `error`"),
        (status = 202, description = "`audio_ref` given and its transcript not ready yet: the turn runs when it is (GET the interview to see it)"),
        (status = 400, body = catalyst_shared::error::ErrorBody), (status = 404, body = catalyst_shared::error::ErrorBody),
        (status = 409, body = catalyst_shared::error::ErrorBody), (status = 502, body = catalyst_shared::error::ErrorBody)))]
async fn take_turn(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(params): Query<TurnParams>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<TurnInput>,
) -> Result<Response> {
    principal.require_scope("interviews")?;
    valid_id(&id)?;
    let key = idempotency_key(&headers)?.ok_or_else(|| {
        Error::bad_request("turns need an Idempotency-Key header (one per answer)").with_code("missing_idempotency_key")
    })?;
    let engine = state.agent.engine().await?;
    let wants_stream = params.stream.unwrap_or(false)
        || headers.get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/event-stream"));
    if let (Some(audio), None, None) = (&input.audio_ref, &input.answer, &input.transcript_ref) {
        return Ok(match engine.spoken_turn(&principal.uid, &id, &key, audio).await? {
            engine::Spoken::Done(result) => Json(*result).into_response(),
            engine::Spoken::Awaiting { transcript_ref } => (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({"status": "awaiting_transcript", "transcript_ref": transcript_ref})),
            )
                .into_response(),
        });
    }
    if !wants_stream {
        return Ok(Json(engine.turn(&principal.uid, &id, &key, input, None).await?).into_response());
    }
    // Errors the request itself has are answered with their status before streaming starts.
    engine.get(&principal.uid, &id).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let uid = principal.uid.clone();
    // The turn runs to completion even if the client goes away: it is then stored, and a
    // retry with the same key returns it.
    let task = tokio::spawn(async move { engine.turn(&uid, &id, &key, input, Some(tx)).await });
    Ok(Sse::new(sse_events(rx, task)).keep_alive(KeepAlive::default()).into_response())
}

type TurnTask = tokio::task::JoinHandle<Result<TurnResult>>;

fn sse_events(
    rx: tokio::sync::mpsc::Receiver<TurnEvent>,
    task: TurnTask,
) -> impl futures::Stream<Item = std::result::Result<Event, std::convert::Infallible>> {
    enum State {
        Running(tokio::sync::mpsc::Receiver<TurnEvent>, TurnTask),
        Done,
    }
    futures::stream::unfold(State::Running(rx, task), |state| async move {
        let State::Running(mut rx, task) = state else { return None };
        match rx.recv().await {
            Some(TurnEvent::Evaluated { score, evaluation, decision }) => {
                let v = serde_json::json!({"score": score, "evaluation": evaluation, "decision": decision});
                Some((Ok(json("evaluation", &v)), State::Running(rx, task)))
            }
            Some(TurnEvent::Delta(text)) => {
                Some((Ok(json("delta", &serde_json::json!({"text": text}))), State::Running(rx, task)))
            }
            // The sender is gone: the turn has finished one way or the other.
            None => {
                let event = match task.await {
                    Ok(Ok(result)) => json("done", &result),
                    Ok(Err(e)) => json("error", &e.body()),
                    Err(_) => json("error", &Error::internal("the turn task failed").body()),
                };
                Some((Ok(event), State::Done))
            }
        }
    })
}

/// A named SSE event with a JSON body (axum serialises it).
fn json<T: Serialize>(name: &str, v: &T) -> Event {
    Event::default().event(name).json_data(v).unwrap_or_else(|_| Event::default().event("error").data("{}"))
}

/// The final report: per-competency scores, strengths and improvements with evidence,
/// the story bank, and reframed achievements. Ends the interview; asking again returns it.
#[utoipa::path(post, path = "/v1/interviews/{id}/report", tag = "agent",
    params(("id" = String, Path, description = "Interview id")),
    responses((status = 200, body = Report), (status = 404, body = catalyst_shared::error::ErrorBody),
        (status = 409, body = catalyst_shared::error::ErrorBody)))]
async fn report(State(state): State<AppState>, principal: Principal, Path(id): Path<String>) -> Result<Json<Report>> {
    principal.require_scope("interviews")?;
    valid_id(&id)?;
    let engine = state.agent.engine().await?;
    Ok(Json(engine.report(&principal.uid, &id).await?))
}

/// Rate how helpful a turn was (1-5, an optional comment): the prompt optimizer weighs
/// these beside the evaluator's scores.
#[utoipa::path(post, path = "/v1/interviews/{id}/turns/{n}/rating", tag = "agent", request_body = engine::Rating,
    params(("id" = String, Path, description = "Interview id"), ("n" = u32, Path, description = "Turn number, from 1")),
    responses((status = 200, body = engine::Rating), (status = 400, body = catalyst_shared::error::ErrorBody),
        (status = 404, body = catalyst_shared::error::ErrorBody)))]
async fn rate_turn(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, n)): Path<(String, u32)>,
    JsonBody(rating): JsonBody<engine::Rating>,
) -> Result<Json<engine::Rating>> {
    principal.require_scope("interviews")?;
    valid_id(&id)?;
    let engine = state.agent.engine().await?;
    Ok(Json(engine.rate(&principal.uid, &id, n, rating).await?))
}

/// One of the caller's interviews: transcript so far, scores, plan progress.
#[utoipa::path(get, path = "/v1/interviews/{id}", tag = "agent",
    params(("id" = String, Path, description = "Interview id")),
    responses((status = 200, body = InterviewRecord), (status = 404, body = catalyst_shared::error::ErrorBody)))]
async fn get_interview(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<InterviewRecord>> {
    valid_id(&id)?;
    let doc = state
        .agent
        .store
        .get(INTERVIEWS, &engine::doc_key(&principal.uid, &id))
        .await?
        .ok_or_else(|| Error::not_found(format!("no interview `{id}`")))?;
    let interview: Interview = doc.parse()?;
    Ok(Json(InterviewRecord { id, version: doc.version, interview: view(&interview) }))
}

/// The caller's interviews, oldest id first.
#[utoipa::path(get, path = "/v1/interviews", tag = "agent", params(ListParams),
    responses((status = 200, body = InterviewList)))]
async fn list_interviews(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<ListParams>,
) -> Result<Json<InterviewList>> {
    let limit = params.limit.unwrap_or(20).clamp(1, 100);
    let prefix = format!("{}/", principal.uid);
    let after = match params.after {
        Some(a) => {
            valid_id(&a)?;
            Some(engine::doc_key(&principal.uid, &a))
        }
        None => None,
    };
    let page = state.agent.store.query_prefix(INTERVIEWS, &prefix, after.as_deref(), limit).await?;
    let mut interviews = Vec::with_capacity(page.documents.len());
    for d in page.documents {
        let i: Interview = d.parse()?;
        interviews.push(InterviewSummary {
            id: i.id,
            mode: i.mode,
            status: i.status,
            job_title: i.profile.job_title,
            answers: i.turns.len(),
            created_at: i.created_at,
        });
    }
    Ok(Json(InterviewList { interviews, next: page.next.map(|k| k[prefix.len()..].to_string()) }))
}

pub fn routes(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_interview, list_interviews))
        .routes(routes!(get_interview))
        .routes(routes!(take_turn))
        .routes(routes!(report))
        .routes(routes!(rate_turn))
        .with_state(state)
}

/// A queue message on `agent`: one answer (text, a transcript or a recording).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnMessage {
    pub uid: String,
    pub interview_id: String,
    pub idempotency_key: String,
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(default)]
    pub transcript_ref: Option<String>,
    #[serde(default)]
    pub audio_ref: Option<String>,
}

/// What `transcribe` announces on `transcripts` (the fields the agent reads).
#[derive(Debug, Clone, Deserialize)]
pub struct TranscriptReady {
    pub uid: String,
    /// The recording.
    pub source: String,
    pub transcript_key: String,
}

pub struct AgentTriggers {
    pub agent: Arc<Agent>,
}

/// Errors of a queued turn: a busy interview is retried later; what can never succeed
/// goes straight to the dead-letter queue with the reason.
fn queued_turn_error(e: Error) -> Error {
    if e.code() == "turn_in_progress" || e.code() == "turn_conflict" {
        return Error::unavailable(e.message().to_string()).with_code(e.code().to_string());
    }
    if matches!(e.kind(), ErrorKind::BadRequest | ErrorKind::NotFound | ErrorKind::Conflict) {
        return e.with_code("invalid_message");
    }
    e
}

#[async_trait]
impl Triggers for AgentTriggers {
    async fn queue_message(&self, message: QueueMessage) -> Result<()> {
        let body: serde_json::Value = message.json()?;
        if message.queue == catalyst_shared::optimize::REPLAYS {
            let req: catalyst_shared::optimize::ReplayRequest = serde_json::from_value(body)
                .map_err(|e| Error::bad_request(format!("not a replay request: {e}")).with_code("invalid_message"))?;
            return replay::handle(self.agent.llm.as_ref(), &self.agent.store, &req).await;
        }
        let engine = self.agent.engine().await?;
        // `transcripts` carries transcribe's announcements; `agent` carries turns.
        if body.get("transcript_key").is_some() {
            let ready: TranscriptReady = serde_json::from_value(body).map_err(|e| {
                Error::bad_request(format!("not a transcript announcement: {e}")).with_code("invalid_message")
            })?;
            return match engine.transcript_ready(&ready.uid, &ready.source, &ready.transcript_key).await {
                Ok(Some(r)) => {
                    tracing::info!(turn = r.turn, replayed = r.replayed, "spoken answer evaluated");
                    Ok(())
                }
                Ok(None) => {
                    tracing::debug!("no interview waits for this recording");
                    Ok(())
                }
                Err(e) => Err(queued_turn_error(e)),
            };
        }
        let msg: TurnMessage = serde_json::from_value(body)
            .map_err(|e| Error::bad_request(format!("not a turn message: {e}")).with_code("invalid_message"))?;
        let outcome = match (msg.audio_ref, msg.answer, msg.transcript_ref) {
            (Some(audio), None, None) => {
                engine.spoken_turn(&msg.uid, &msg.interview_id, &msg.idempotency_key, &audio).await.map(|s| match s {
                    engine::Spoken::Done(r) => Some(*r),
                    engine::Spoken::Awaiting { .. } => None,
                })
            }
            (audio_ref, answer, transcript_ref) => {
                let input = TurnInput { answer, transcript_ref, audio_ref };
                engine.turn(&msg.uid, &msg.interview_id, &msg.idempotency_key, input, None).await.map(Some)
            }
        };
        match outcome {
            Ok(Some(r)) => {
                tracing::info!(interview = %msg.interview_id, turn = r.turn, replayed = r.replayed, "turn from queue");
                Ok(())
            }
            Ok(None) => {
                tracing::info!(interview = %msg.interview_id, "turn waits for its transcript");
                Ok(())
            }
            Err(e) => Err(queued_turn_error(e)),
        }
    }
}

/// Build the function: the evaluator's models and the LLM load once, here (a missing
/// model stops start-up with the variable to set); the prompt registry and the question
/// bank index load right after, in the background.
pub fn function(deps: &Deps) -> Result<Function> {
    let evaluator = catalyst_shared::evaluation::load_at_start(&deps.config)?;
    let llm_config = catalyst_shared::llm::LlmConfig::from_env(deps.config.models_dir.clone())
        .map_err(|e| Error::bad_request(e.to_string()).with_code("invalid_config"))?;
    let llm = catalyst_shared::runtime::block_on_startup(catalyst_shared::llm::from_config(&llm_config))??;
    let agent = Arc::new(Agent::new(deps.store()?, deps.blob()?, llm, evaluator));
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let warm = agent.clone();
        rt.spawn(async move {
            if let Err(e) = warm.engine().await {
                tracing::warn!(error = %e.message(), "agent warm-up failed; the first request retries");
            }
        });
    }
    Ok(Function::new("agent", routes(AppState { agent: agent.clone() }), Arc::new(AgentTriggers { agent })))
}

#[cfg(test)]
mod tests;
