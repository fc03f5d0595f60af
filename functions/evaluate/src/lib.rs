//! The `evaluate` function: scores an interview answer — STAR coverage, relevance, job
//! fit, fillers, pace — deterministically, with sentence embeddings on ONNX Runtime.
//!
//! `POST /v1/evaluate` evaluates a request; queue messages (an answer or a finished
//! transcript of an interview turn) are evaluated and stored in the document store under
//! `evaluations/{uid}/{interview_id}/{turn}`, created conditionally so a redelivered
//! message stores nothing twice. The `agent` function uses [`Evaluator`] directly.

use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use catalyst_shared::auth::Principal;
use catalyst_shared::event::QueueMessage;
use catalyst_shared::store::{Precondition, SharedDocumentStore};
use catalyst_shared::{Deps, Error, ErrorKind, Function, JsonBody, Result, Triggers};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use catalyst_shared::evaluation::{
    self, Embedder, EmbedderConfig, Evaluation, EvaluationRequest, Evaluator, EvaluatorConfig, Job, Rubric, Segment,
    Timing,
};

/// Collection the queue trigger writes evaluations to.
pub const EVALUATIONS: &str = "evaluations";

#[derive(Clone)]
pub struct AppState {
    pub evaluator: Arc<Evaluator>,
}

/// Evaluate one answer.
#[utoipa::path(post, path = "/v1/evaluate", tag = "evaluate", request_body = EvaluationRequest,
    responses((status = 200, body = Evaluation), (status = 400, body = catalyst_shared::error::ErrorBody),
        (status = 401, body = catalyst_shared::error::ErrorBody)))]
async fn evaluate(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody(req): JsonBody<EvaluationRequest>,
) -> Result<Json<Evaluation>> {
    principal.require_scope("evaluate")?;
    Ok(Json(evaluation::evaluate_blocking(state.evaluator.clone(), req).await?))
}

/// A queue message: one answered interview turn, as text or as a finished transcript.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateMessage {
    pub uid: String,
    pub interview_id: String,
    pub turn: u32,
    pub question: String,
    /// The answer as text; or leave empty and send `transcript`.
    #[serde(default)]
    pub answer: String,
    #[serde(default)]
    pub transcript: Option<Transcript>,
    #[serde(default)]
    pub job: Option<Job>,
    #[serde(default)]
    pub timing: Option<Timing>,
    #[serde(default)]
    pub rubric: Option<Rubric>,
}

/// A finished transcript (what `transcribe` produces).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Transcript {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub duration_s: Option<f64>,
    #[serde(default)]
    pub segments: Option<Vec<Segment>>,
}

/// What is stored for each evaluated turn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEvaluation {
    pub uid: String,
    pub interview_id: String,
    pub turn: u32,
    /// The queue message that produced it.
    pub message_id: String,
    pub evaluated_at: String,
    pub evaluation: serde_json::Value,
}

fn valid_part(what: &str, v: &str) -> Result<()> {
    let ok = !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!("`{what}` must be 1-128 letters, digits, `-` or `_`"))
            .with_code("invalid_message"))
    }
}

impl EvaluateMessage {
    /// The document key: the same turn always lands on the same key.
    pub fn key(&self) -> Result<String> {
        valid_part("uid", &self.uid)?;
        valid_part("interview_id", &self.interview_id)?;
        Ok(format!("{}/{}/{:05}", self.uid, self.interview_id, self.turn))
    }

    pub fn request(&self) -> EvaluationRequest {
        let mut timing = self.timing.clone();
        let mut answer = self.answer.clone();
        if let Some(t) = &self.transcript {
            if answer.trim().is_empty() {
                answer = t.text.clone();
            }
            let tm = timing.get_or_insert_with(Timing::default);
            if tm.duration_s.is_none() {
                tm.duration_s = t.duration_s;
            }
            if tm.segments.is_none() {
                tm.segments = t.segments.clone();
            }
        }
        EvaluationRequest {
            question: self.question.clone(),
            answer,
            job: self.job.clone(),
            timing,
            rubric: self.rubric,
        }
    }
}

pub struct EvaluateTriggers {
    pub evaluator: Arc<Evaluator>,
    pub store: SharedDocumentStore,
}

#[async_trait]
impl Triggers for EvaluateTriggers {
    async fn queue_message(&self, message: QueueMessage) -> Result<()> {
        let msg: EvaluateMessage = message.json()?;
        let key = msg.key()?;
        // Already evaluated (a redelivery): nothing to do, and no model time spent.
        if self.store.get(EVALUATIONS, &key).await?.is_some() {
            tracing::info!(key = %key, message = %message.id, "evaluation already stored");
            return Ok(());
        }
        let evaluation = evaluation::evaluate_blocking(self.evaluator.clone(), msg.request()).await.map_err(|e| {
            // Bad input can never succeed: mark it so it goes to the dead-letter queue.
            if e.kind() == ErrorKind::BadRequest { e.with_code("invalid_message") } else { e }
        })?;
        let record = StoredEvaluation {
            uid: msg.uid.clone(),
            interview_id: msg.interview_id.clone(),
            turn: msg.turn,
            message_id: message.id.clone(),
            evaluated_at: chrono_now(),
            evaluation: serde_json::to_value(&evaluation)
                .map_err(|e| Error::internal("evaluation does not serialize").with_source(e))?,
        };
        let value =
            serde_json::to_value(&record).map_err(|e| Error::internal("record does not serialize").with_source(e))?;
        match self.store.put(EVALUATIONS, &key, value, Precondition::Absent, None).await {
            Ok(_) => {
                tracing::info!(key = %key, overall = evaluation.overall, "evaluation stored");
                Ok(())
            }
            // Two deliveries raced; the first one's evaluation stands.
            Err(e) if e.kind() == ErrorKind::Conflict => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn routes(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(evaluate)).with_state(state)
}

/// Build the function: find and load the models once (a missing one stops start-up with
/// the variable to set), then serve.
pub fn function(deps: &Deps) -> Result<Function> {
    let evaluator = evaluation::load_at_start(&deps.config)?;
    let store = deps.store()?;
    Ok(Function::new(
        "evaluate",
        routes(AppState { evaluator: evaluator.clone() }),
        Arc::new(EvaluateTriggers { evaluator, store }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use catalyst_shared::auth::PrincipalKind;
    use catalyst_shared::event::Origin;
    use catalyst_shared::store::local::SqliteDocumentStore;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn post(app: axum::Router, principal: Option<Principal>, body: &str) -> (u16, serde_json::Value) {
        let mut req = axum::http::Request::post("/v1/evaluate")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        if let Some(p) = principal {
            req.extensions_mut().insert(p);
        }
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    fn user() -> Principal {
        Principal { kind: PrincipalKind::User, uid: "alice".into(), email: None, scopes: vec![] }
    }

    #[tokio::test]
    async fn http_evaluates_and_refuses_bad_input() {
        let ev = catalyst_shared::evaluation::testutil::evaluator();
        let (app, openapi) = routes(AppState { evaluator: ev }).split_for_parts();
        assert!(openapi.paths.paths.contains_key("/v1/evaluate"));

        let body = serde_json::json!({
            "question": "Tell me about a time you improved a process.",
            "answer": "At my last company, deploys took two hours and often failed. My job was to make releases safe. \
                       I wrote a pipeline in GitHub Actions, um, added canary checks and I trained the team. \
                       As a result, deploy time fell from 2 hours to 15 minutes and failed releases dropped by 80%.",
            "job": {"skills": ["CI/CD", "Kubernetes", "GitHub Actions"]},
            "timing": {"duration_s": 30.0},
            "rubric": {"impact": 2.0}
        });
        let (status, v) = post(app.clone(), Some(user()), &body.to_string()).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["metrics"]["words"], 52);
        assert_eq!(v["metrics"]["words_per_minute"], 104.0);
        assert_eq!(v["metrics"]["fillers"]["by_word"]["um"], 1);
        assert_eq!(v["metrics"]["quantified_results"], 1);
        assert_eq!(v["star"]["coverage"], 1.0, "{}", v["star"]);
        assert_eq!(v["skills"]["shown"], serde_json::json!(["GitHub Actions"]));
        assert!(v["overall"].as_u64().unwrap() >= 60, "{v}");
        assert!(!v["feedback"].as_array().unwrap().is_empty());
        assert!(v["model"]["weights"]["impact"].as_f64().unwrap() > 0.4);

        let (status, v) = post(app.clone(), Some(user()), r#"{"question":"q","answer":""}"#).await;
        assert_eq!((status, v["error"]["code"].as_str()), (400, Some("missing_answer")));
        let (status, v) = post(app.clone(), Some(user()), r#"{"question":"q","answer":"a","extra":1}"#).await;
        assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_json")));
        let (status, v) = post(app.clone(), Some(user()), "not json").await;
        assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_json")));
        let (status, _) = post(app.clone(), None, r#"{"question":"q","answer":"a"}"#).await;
        assert_eq!(status, 401);
        let key = Principal { kind: PrincipalKind::ApiKey, uid: "k".into(), email: None, scopes: vec!["other".into()] };
        let (status, v) = post(app, Some(key), r#"{"question":"q","answer":"a"}"#).await;
        assert_eq!((status, v["error"]["code"].as_str()), (403, Some("missing_scope")));
    }

    fn message(id: &str, body: serde_json::Value) -> QueueMessage {
        QueueMessage {
            origin: Origin::Local,
            id: id.into(),
            queue: "evaluate".into(),
            body: body.to_string().into_bytes(),
            attributes: Default::default(),
            attempt: Some(1),
            published: None,
        }
    }

    #[tokio::test]
    async fn queue_messages_are_stored_once_per_turn() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedDocumentStore = Arc::new(SqliteDocumentStore::open(dir.path().join("s.db")).unwrap());
        let t =
            EvaluateTriggers { evaluator: catalyst_shared::evaluation::testutil::evaluator(), store: store.clone() };
        let body = serde_json::json!({
            "uid": "alice", "interview_id": "i1", "turn": 3,
            "question": "Why do you want this job?",
            "transcript": {"text": "", "segments": [
                {"start": 0.0, "end": 4.0, "text": "I love building developer tools,"},
                {"start": 4.0, "end": 10.0, "text": "and I have shipped three of them used by 2,000 engineers."}
            ]}
        });
        t.queue_message(message("m1", body.clone())).await.unwrap();
        let doc = store.get(EVALUATIONS, "alice/i1/00003").await.unwrap().unwrap();
        assert_eq!(doc.value["message_id"], "m1");
        assert_eq!(doc.value["evaluation"]["metrics"]["words"], 16);
        assert_eq!(doc.value["evaluation"]["metrics"]["duration_s"], 10.0);
        assert_eq!(doc.value["evaluation"]["metrics"]["words_per_minute"], 96.0);
        // Redelivered under another id: the stored evaluation stands unchanged.
        t.queue_message(message("m2", body)).await.unwrap();
        let again = store.get(EVALUATIONS, "alice/i1/00003").await.unwrap().unwrap();
        assert_eq!((again.version, again.value["message_id"].as_str()), (1, Some("m1")));

        let err = t.queue_message(message("m3", serde_json::json!({"uid": "a"}))).await.unwrap_err();
        assert_eq!((err.code(), err.retryable()), ("invalid_message", false));
        let bad_key =
            serde_json::json!({"uid": "../x", "interview_id": "i", "turn": 1, "question": "q", "answer": "a"});
        assert_eq!(t.queue_message(message("m4", bad_key)).await.unwrap_err().code(), "invalid_message");
        let empty = serde_json::json!({"uid": "a", "interview_id": "i", "turn": 1, "question": "q", "answer": " "});
        let err = t.queue_message(message("m5", empty)).await.unwrap_err();
        assert_eq!((err.code(), err.retryable()), ("invalid_message", false));
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = chrono_now();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T", "{t}");
    }
}
