//! The interview engine: creating an interview, taking a turn, writing the report. State
//! is one document per interview, updated with optimistic concurrency:
//!
//! 1. a turn first *claims* the interview (a versioned write naming its Idempotency-Key),
//!    so a concurrent turn is refused at once with 409 instead of spending LLM calls;
//! 2. every agent runs with nothing written;
//! 3. the turn, the story bank, the next question and the released claim are written in
//!    one versioned put. A failure before that releases the claim and writes nothing else,
//!    so the same request can simply be retried; a retry after success finds its turn by
//!    the key and gets the first result back without another LLM call.
//!
//! A claim older than [`CLAIM_TTL`] (an instance that died mid-turn) may be taken over.

use crate::agents::context::{self, JobFacts};
use crate::agents::orchestrator::{self, Situation};
use crate::agents::reframe::{self, Achievement};
use crate::agents::story::{self, StoryInput};
use crate::agents::synthesis::{self, SynthesisInput, SynthesisOutput};
use crate::agents::{call_record, evaluator as eval_agent};
use crate::bank::{Kind, QuestionBank};
use crate::model::*;
use crate::prompts;
use catalyst_shared::blob::SharedBlobStore;
use catalyst_shared::evaluation::{self, Evaluator, Segment, Timing};
use catalyst_shared::llm::LanguageModel;
use catalyst_shared::store::{DocumentStoreExt, Precondition, SharedDocumentStore};
use catalyst_shared::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const INTERVIEWS: &str = "interviews";
/// The turn log the optimize function reads.
pub const TURNS: &str = "turns";
/// A claim this old belongs to an instance that died: the function timeout plus margin.
pub const CLAIM_TTL: Duration = Duration::from_secs(120);
pub const MAX_QUESTIONS: usize = 12;
pub const DEFAULT_QUESTIONS: usize = 5;
/// Longest answer accepted, in characters (about 20 minutes of speech).
pub const MAX_ANSWER_CHARS: usize = 20_000;
const MAX_IDEMPOTENCY_KEY: usize = 128;

pub struct Engine {
    pub store: SharedDocumentStore,
    pub blob: SharedBlobStore,
    pub llm: Arc<dyn LanguageModel>,
    pub evaluator: Arc<Evaluator>,
    pub bank: Arc<QuestionBank>,
    /// The prompt registry, re-read every minute so promotions, canaries and rollbacks
    /// reach a running instance; an interview keeps the versions it started on.
    pub prompts: Arc<catalyst_shared::prompts::Registry>,
    /// Evaluations run one at a time per instance: inference is serialised by the
    /// session anyway, and letting every waiting turn tokenise and score in parallel
    /// only takes the CPU from the rest of the turns (store, HTTP), which then stall.
    pub evaluations: Arc<tokio::sync::Semaphore>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInterview {
    /// A JSON Resume object (or a `parse` result holding one).
    #[schema(value_type = Option<Object>)]
    pub resume: Option<Value>,
    /// Or the key of a `parse` result: `parsed/resumes/{your uid}/...json`.
    pub resume_ref: Option<String>,
    /// A `scrape` result.
    #[schema(value_type = Option<Object>)]
    pub job: Option<Value>,
    /// Or the key of a stored scrape result: `scrape/results/...json`.
    pub job_ref: Option<String>,
    /// Or the posting as plain text.
    pub job_text: Option<String>,
    pub mode: Mode,
    /// Planned questions, 1-12 (default 5); follow-ups come on top.
    pub questions: Option<usize>,
    /// How the interviewer should come across (e.g. "friendly staff engineer").
    pub persona: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuestionView {
    pub text: String,
    pub competency: String,
    pub kind: Kind,
    /// 0-based position in the plan.
    pub plan_index: usize,
    pub follow_up: Option<Probe>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Created {
    pub id: String,
    pub profile: Profile,
    pub plan: Vec<PlannedQuestion>,
    /// The first question (none only if the interview was finished since).
    pub question: Option<QuestionView>,
    /// Prompt versions the interview runs on.
    pub prompts: BTreeMap<String, u32>,
}

/// An answer: text, the key of a finished transcript (`transcripts/{your uid}/...json`),
/// or the key of an uploaded recording (`uploads/audio/{your uid}/...`) whose transcript
/// the turn waits for.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TurnInput {
    pub answer: Option<String>,
    pub transcript_ref: Option<String>,
    pub audio_ref: Option<String>,
}

/// A recording whose transcript a turn is waiting for (collection `interviews`, key
/// `~audio/{uid}/{hash of the recording's key}`, kept a day).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AwaitingAudio {
    pub uid: String,
    pub interview_id: String,
    pub idempotency_key: String,
    pub audio_ref: String,
    pub transcript_ref: String,
}

pub fn awaiting_key(uid: &str, audio_ref: &str) -> String {
    format!("~audio/{uid}/{}", &hex::encode(Sha256::digest(audio_ref.as_bytes()))[..32])
}

/// What a turn with a recording comes to.
#[derive(Debug)]
pub enum Spoken {
    /// The transcript was there: the turn ran.
    Done(Box<TurnResult>),
    /// Registered: the turn runs when `transcribe` announces the transcript.
    Awaiting { transcript_ref: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    /// Planned questions asked so far (the pending one included).
    pub asked: usize,
    pub planned: usize,
    pub answers: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TurnResult {
    pub turn: u32,
    /// The turn's score, 0-100.
    pub score: u32,
    pub evaluation: EvalSummary,
    pub judgement: Judgement,
    pub decision: Decision,
    pub reply: String,
    pub coaching: Vec<String>,
    /// The question now waiting for an answer; none once the interview is finished.
    pub next_question: Option<QuestionView>,
    pub status: Status,
    pub progress: Progress,
    /// True when this is the stored result of an earlier request with the same key.
    pub replayed: bool,
    /// Where this request's time went (none for a replay).
    pub timings: Option<Timings>,
}

/// Events of a streamed turn.
#[derive(Debug, Clone)]
pub enum TurnEvent {
    /// The scores, before the reply is written.
    Evaluated { score: u32, evaluation: EvalSummary, decision: Decision },
    /// A piece of the interviewer's acknowledgement as the model writes it.
    Delta(String),
}

pub type EventSink = tokio::sync::mpsc::Sender<TurnEvent>;

fn bad(code: &'static str, msg: impl Into<String>) -> Error {
    Error::bad_request(msg.into()).with_code(code)
}

pub fn valid_id(id: &str) -> Result<()> {
    let ok = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok { Ok(()) } else { Err(bad("invalid_id", "interview ids are 1-64 letters, digits, `-` or `_`")) }
}

pub fn valid_idempotency_key(key: &str) -> Result<()> {
    let ok = !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY && key.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(bad("invalid_idempotency_key", "Idempotency-Key must be 1-128 visible ASCII characters"))
    }
}

/// Turn-log keys start with the turn's time, so `optimize` reads a window as a key range.
pub fn turn_log_key(created_at: &str, uid: &str, id: &str, n: u32) -> String {
    format!("{created_at}/{uid}/{id}/{n:05}")
}

/// A candidate's rating of one turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rating {
    /// 1 (unhelpful) to 5 (very helpful).
    pub rating: u8,
    pub comment: Option<String>,
}

pub fn doc_key(uid: &str, id: &str) -> String {
    format!("{uid}/{id}")
}

impl QuestionView {
    fn of(interview: &Interview, text: &str, plan_index: usize, follow_up: Option<Probe>) -> Option<QuestionView> {
        let planned = interview.plan.get(plan_index)?;
        Some(QuestionView {
            text: text.to_string(),
            competency: planned.competency.clone(),
            kind: planned.kind,
            plan_index,
            follow_up,
        })
    }
}

/// The question waiting for an answer.
pub fn question_view(interview: &Interview) -> Option<QuestionView> {
    let p = interview.pending.as_ref()?;
    QuestionView::of(interview, &p.text, p.plan_index, p.follow_up)
}

pub fn progress(interview: &Interview) -> Progress {
    let asked = match &interview.pending {
        Some(p) => p.plan_index + 1,
        None => interview.turns.iter().map(|t| t.plan_index + 1).max().unwrap_or(0),
    };
    Progress { asked, planned: interview.plan.len(), answers: interview.turns.len() }
}

fn turn_result(interview: &Interview, turn: &Turn, replayed: bool) -> TurnResult {
    // The question that followed this turn: the pending one if this is the last turn.
    let is_last = interview.turns.last().is_some_and(|t| t.n == turn.n);
    let next_question = if is_last {
        question_view(interview)
    } else {
        interview
            .turns
            .iter()
            .find(|t| t.n == turn.n + 1)
            .and_then(|t| QuestionView::of(interview, &t.question, t.plan_index, t.follow_up))
    };
    TurnResult {
        turn: turn.n,
        score: turn.score,
        evaluation: turn.summary.clone(),
        judgement: turn.judgement.clone(),
        decision: turn.decision.clone(),
        reply: turn.reply.clone(),
        coaching: turn.coaching.clone(),
        next_question,
        status: if is_last { interview.status } else { Status::Active },
        progress: progress(interview),
        replayed,
        timings: None,
    }
}

fn expired(claim: &Claim) -> bool {
    chrono::DateTime::parse_from_rfc3339(&claim.started_at)
        .map(|t| chrono::Utc::now().signed_duration_since(t).to_std().unwrap_or_default() > CLAIM_TTL)
        .unwrap_or(true)
}

impl Engine {
    async fn load(&self, uid: &str, id: &str) -> Result<(Interview, u64)> {
        valid_id(id)?;
        self.store
            .get_as::<Interview>(INTERVIEWS, &doc_key(uid, id))
            .await?
            .ok_or_else(|| Error::not_found(format!("no interview `{id}`")))
    }

    async fn save(&self, interview: &Interview, version: u64) -> Result<u64> {
        self.store
            .put_as(INTERVIEWS, &doc_key(&interview.uid, &interview.id), interview, Precondition::Version(version))
            .await
    }

    pub async fn get(&self, uid: &str, id: &str) -> Result<(Interview, u64)> {
        self.load(uid, id).await
    }

    async fn read_json(&self, key: &str, what: &str) -> Result<Value> {
        catalyst_shared::blob::validate_key(key)
            .map_err(|_| bad("invalid_ref", format!("`{key}` is not a valid {what} key")))?;
        let obj = self.blob.get(key).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::not_found(format!("no {what} at `{key}`")).with_code("ref_not_found")
            } else {
                e
            }
        })?;
        serde_json::from_slice(&obj.data)
            .map_err(|e| bad("invalid_ref", format!("the {what} at `{key}` is not JSON: {e}")))
    }

    /// Create an interview: the Context agent's profile, plan and adapted questions.
    /// With an idempotency key, a retried creation returns the first interview.
    pub async fn create(&self, uid: &str, req: CreateInterview, idempotency_key: Option<&str>) -> Result<Created> {
        let id = match idempotency_key {
            Some(k) => {
                valid_idempotency_key(k)?;
                let h = Sha256::digest(format!("{uid}\0{k}").as_bytes());
                let id = format!("i{}", &hex::encode(h)[..24]);
                if let Some((existing, _)) = self.store.get_as::<Interview>(INTERVIEWS, &doc_key(uid, &id)).await? {
                    return Ok(created_view(&existing));
                }
                id
            }
            None => format!("i{}", uuid::Uuid::now_v7().simple()),
        };
        let n = req.questions.unwrap_or(DEFAULT_QUESTIONS);
        if !(1..=MAX_QUESTIONS).contains(&n) {
            return Err(bad("invalid_questions", format!("`questions` must be 1 to {MAX_QUESTIONS}")));
        }
        let persona = req.persona.as_deref().map(str::trim).filter(|p| !p.is_empty()).map(str::to_string);
        if persona.as_ref().is_some_and(|p| p.chars().count() > 300) {
            return Err(bad("invalid_persona", "`persona` is at most 300 characters"));
        }
        let resume = match (req.resume, req.resume_ref) {
            (Some(r), None) => r,
            (None, Some(key)) => {
                if !key.starts_with(&format!("parsed/resumes/{uid}/")) {
                    return Err(bad(
                        "invalid_ref",
                        "`resume_ref` must be one of your parsed resumes: parsed/resumes/{uid}/...",
                    ));
                }
                self.read_json(&key, "parsed resume").await?
            }
            _ => return Err(bad("invalid_resume", "give exactly one of `resume` or `resume_ref`")),
        };
        let resume = context::resume_of(&resume)?.clone();
        let job = match (req.job, req.job_ref, req.job_text) {
            (Some(j), None, None) => JobFacts::from_scrape(&j)?,
            (None, Some(key), None) => {
                if !key.starts_with("scrape/results/") {
                    return Err(bad("invalid_ref", "`job_ref` must be a scrape result: scrape/results/..."));
                }
                JobFacts::from_scrape(&self.read_json(&key, "scrape result").await?)?
            }
            (None, None, Some(t)) => JobFacts::from_text(&t)?,
            _ => return Err(bad("invalid_job", "give exactly one of `job`, `job_ref` or `job_text`")),
        };

        // Profile and plan are CPU work (embeddings): off the async workers.
        let (evaluator, bank, mode) = (self.evaluator.clone(), self.bank.clone(), req.mode);
        let job_for_plan = job.clone();
        let (mut profile, mut plan) = tokio::task::spawn_blocking(move || {
            let profile = context::profile(&resume, &job_for_plan, &evaluator);
            let plan = context::plan(&bank, &evaluator, &profile, &job_for_plan, mode, n)?;
            Ok::<_, Error>((profile, plan))
        })
        .await
        .map_err(|e| Error::internal("planning task failed").with_source(e))??;

        let current = self.prompts.current().await;
        let versions = current.versions_for(&id);
        let chosen = current.for_versions(&self.store, &versions).await?;
        let prompt = chosen.get(prompts::CONTEXT);
        let call = context::adapt(self.llm.as_ref(), prompt, &mut profile, &mut plan, persona.as_deref()).await?;
        let now = now();
        let first = plan[0].text.clone();
        let interview = Interview {
            id: id.clone(),
            uid: uid.to_string(),
            mode,
            persona,
            status: Status::Active,
            profile,
            plan,
            pending: Some(Pending { text: first, plan_index: 0, follow_up: None }),
            turns: Vec::new(),
            stories: Vec::new(),
            claim: None,
            prompts: versions,
            job_text: crate::agents::clip(&job.text, 6_000),
            report: None,
            created_at: now.clone(),
            updated_at: now,
            calls: vec![call],
        };
        match self.store.put_as(INTERVIEWS, &doc_key(uid, &id), &interview, Precondition::Absent).await {
            Ok(_) => {}
            // The same creation raced itself: the first one stands.
            Err(e) if e.kind() == ErrorKind::Conflict => {
                let (existing, _) = self.load(uid, &id).await?;
                return Ok(created_view(&existing));
            }
            Err(e) => return Err(e),
        }
        tracing::info!(interview = %id, questions = interview.plan.len(), "interview created");
        Ok(created_view(&interview))
    }

    /// Resolve the answer text and timing of a turn.
    async fn answer_of(&self, uid: &str, input: &TurnInput) -> Result<(String, Option<Timing>)> {
        match (&input.answer, &input.transcript_ref) {
            (Some(a), None) => Ok((a.clone(), None)),
            (None, Some(key)) => {
                if !key.starts_with(&format!("transcripts/{uid}/")) {
                    return Err(bad(
                        "invalid_ref",
                        "`transcript_ref` must be one of your transcripts: transcripts/{uid}/...",
                    ));
                }
                let v = self.read_json(key, "transcript").await?;
                let t = if v.get("transcript").is_some() { &v["transcript"] } else { &v };
                let text = t["text"].as_str().unwrap_or_default().to_string();
                let duration_s = t["duration"].as_f64().or_else(|| t["duration_s"].as_f64());
                let segments: Option<Vec<Segment>> = t["segments"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|s| serde_json::from_value(s.clone()).ok()).collect());
                Ok((text, Some(Timing { duration_s, segments })))
            }
            _ => Err(bad("invalid_answer", "give exactly one of `answer`, `transcript_ref` or `audio_ref`")),
        }
    }

    /// A turn answered by a recording: run now if its transcript is ready, else wait for it.
    pub async fn spoken_turn(&self, uid: &str, id: &str, idempotency_key: &str, audio_ref: &str) -> Result<Spoken> {
        valid_idempotency_key(idempotency_key)?;
        let (owner, transcript_ref) = catalyst_shared::blob::audio_transcript_key(audio_ref)
            .map_err(|_| bad("invalid_ref", "`audio_ref` must be one of your recordings: uploads/audio/{uid}/..."))?;
        if owner != uid {
            return Err(bad("invalid_ref", "`audio_ref` must be one of your recordings: uploads/audio/{uid}/..."));
        }
        let (interview, _) = self.load(uid, id).await?;
        if interview.turns.iter().any(|t| t.idempotency_key == idempotency_key) || self.exists(&transcript_ref).await? {
            let input = TurnInput { transcript_ref: Some(transcript_ref), ..Default::default() };
            return Ok(Spoken::Done(Box::new(self.turn(uid, id, idempotency_key, input, None).await?)));
        }
        let waiting = AwaitingAudio {
            uid: uid.to_string(),
            interview_id: id.to_string(),
            idempotency_key: idempotency_key.to_string(),
            audio_ref: audio_ref.to_string(),
            transcript_ref: transcript_ref.clone(),
        };
        let value = serde_json::to_value(&waiting).map_err(|e| Error::internal("serialize").with_source(e))?;
        let expires = chrono::Utc::now() + chrono::Duration::days(1);
        match self
            .store
            .put(INTERVIEWS, &awaiting_key(uid, audio_ref), value, Precondition::Absent, Some(expires))
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Conflict => {}
            Err(e) => return Err(e),
        }
        // The transcript may have landed while we registered (and its announcement found
        // nothing waiting): look once more.
        if self.exists(&transcript_ref).await? {
            let input = TurnInput { transcript_ref: Some(transcript_ref), ..Default::default() };
            return Ok(Spoken::Done(Box::new(self.turn(uid, id, idempotency_key, input, None).await?)));
        }
        Ok(Spoken::Awaiting { transcript_ref })
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        match self.blob.head(key).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `transcribe` announced a transcript: run the turn waiting for it, if any.
    pub async fn transcript_ready(
        &self,
        uid: &str,
        audio_ref: &str,
        transcript_ref: &str,
    ) -> Result<Option<TurnResult>> {
        let key = awaiting_key(uid, audio_ref);
        let Some((waiting, _)) = self.store.get_as::<AwaitingAudio>(INTERVIEWS, &key).await? else {
            return Ok(None);
        };
        let input = TurnInput { transcript_ref: Some(transcript_ref.to_string()), ..Default::default() };
        let result = self.turn(uid, &waiting.interview_id, &waiting.idempotency_key, input, None).await?;
        if let Err(e) = self.store.delete(INTERVIEWS, &key, Precondition::None).await {
            tracing::warn!(error = %e, "could not remove the finished audio wait; it expires by itself");
        }
        Ok(Some(result))
    }

    /// One turn. `events`, when given, receives the evaluation and the reply as they come.
    pub async fn turn(
        &self,
        uid: &str,
        id: &str,
        idempotency_key: &str,
        input: TurnInput,
        events: Option<EventSink>,
    ) -> Result<TurnResult> {
        valid_idempotency_key(idempotency_key)?;
        let started = std::time::Instant::now();
        let mut store_ms = 0.0;
        let t = std::time::Instant::now();
        let (mut interview, version) = self.load(uid, id).await?;
        store_ms += t.elapsed().as_secs_f64() * 1e3;
        if let Some(t) = interview.turns.iter().find(|t| t.idempotency_key == idempotency_key) {
            return Ok(turn_result(&interview, t, true));
        }
        if interview.status == Status::Finished {
            return Err(Error::conflict("the interview is finished").with_code("interview_finished"));
        }
        if let Some(c) = &interview.claim
            && !expired(c)
        {
            return Err(if c.idempotency_key == idempotency_key {
                Error::conflict("this turn is still being processed; retry shortly").with_code("turn_in_progress")
            } else {
                Error::conflict("another answer to this question is being processed").with_code("turn_conflict")
            });
        }
        if input.audio_ref.is_some() {
            // A recording alone goes through `spoken_turn`; with another answer it is ambiguous.
            return Err(bad("invalid_answer", "give exactly one of `answer`, `transcript_ref` or `audio_ref`"));
        }
        let (answer, timing) = self.answer_of(uid, &input).await?;
        let answer = answer.trim().to_string();
        if answer.is_empty() {
            return Err(bad("missing_answer", "the answer is empty"));
        }
        if answer.chars().count() > MAX_ANSWER_CHARS {
            return Err(bad("answer_too_long", format!("answers are at most {MAX_ANSWER_CHARS} characters")));
        }

        // Claim: from here a concurrent turn is refused without any LLM call.
        interview.claim = Some(Claim { idempotency_key: idempotency_key.to_string(), started_at: now() });
        let t = std::time::Instant::now();
        let claimed = match self.save(&interview, version).await {
            Ok(v) => v,
            Err(e) if e.kind() == ErrorKind::Conflict => {
                // Someone else got there first; if it was this same request, return its result.
                let (now_there, _) = self.load(uid, id).await?;
                if let Some(t) = now_there.turns.iter().find(|t| t.idempotency_key == idempotency_key) {
                    return Ok(turn_result(&now_there, t, true));
                }
                return Err(
                    Error::conflict("another answer to this question is being processed").with_code("turn_conflict")
                );
            }
            Err(e) => return Err(e),
        };
        let transcript_ref = input.transcript_ref.clone();
        match self.run_turn(interview.clone(), idempotency_key, answer, timing, transcript_ref, events).await {
            Ok((done, spent, trace)) => {
                store_ms += t.elapsed().as_secs_f64() * 1e3 - spent.total_ms;
                let t = std::time::Instant::now();
                match self.save(&done, claimed).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Conflict => {
                        return Err(Error::conflict("the interview changed while this turn ran (its claim expired)")
                            .with_code("turn_conflict"));
                    }
                    Err(e) => return Err(e),
                }
                let Some(turn) = done.turns.last() else {
                    return Err(Error::internal("the turn was not recorded"));
                };
                store_ms += t.elapsed().as_secs_f64() * 1e3;
                let total = started.elapsed().as_secs_f64() * 1e3;
                let timings = Timings {
                    total_ms: total,
                    llm_ms: spent.llm_ms,
                    evaluation_ms: spent.evaluation_ms,
                    store_ms,
                    overhead_ms: (total - spent.llm_ms - spent.evaluation_ms).max(0.0),
                };
                self.log_turn(&done, turn, &timings, &trace).await;
                Ok(TurnResult { timings: Some(timings), ..turn_result(&done, turn, false) })
            }
            Err(e) => {
                // Nothing of the turn is written; release the claim so a retry can run.
                interview.claim = None;
                if let Err(release) = self.save(&interview, claimed).await {
                    tracing::warn!(error = %release, "could not release the turn claim; it expires by itself");
                }
                Err(e)
            }
        }
    }

    /// Every agent of a turn, with nothing written. Returns the updated interview.
    async fn run_turn(
        &self,
        mut interview: Interview,
        idempotency_key: &str,
        answer: String,
        timing: Option<Timing>,
        transcript_ref: Option<String>,
        events: Option<EventSink>,
    ) -> Result<(Interview, Timings, Trace)> {
        let mut spent = Timings::default();
        let clock = std::time::Instant::now;
        let run_started = clock();
        let ms = |since: std::time::Instant| since.elapsed().as_secs_f64() * 1e3;
        let prompts = self.prompts.current().await.for_versions(&self.store, &interview.prompts).await?;
        let pending = interview
            .pending
            .clone()
            .ok_or_else(|| Error::conflict("no question is waiting").with_code("interview_finished"))?;
        let planned =
            interview.plan.get(pending.plan_index).cloned().ok_or_else(|| {
                Error::internal("the waiting question is not in the plan").with_code("corrupt_interview")
            })?;
        let n = interview.turns.len() as u32 + 1;
        let mut calls = Vec::new();

        // Evaluator: everything said on this planned question, so a follow-up answer
        // completes the story rather than being judged alone.
        let earlier: Vec<&Turn> = interview.turns.iter().filter(|t| t.plan_index == pending.plan_index).collect();
        let mut combined: Vec<&str> = earlier.iter().map(|t| t.answer.as_str()).collect();
        combined.push(&answer);
        let combined = combined.join("\n\n");
        let job = evaluation::Job {
            description: Some(interview.job_text.clone()).filter(|t| !t.is_empty()),
            skills: Some(interview.profile.required_skills.clone()).filter(|s| !s.is_empty()),
        };
        let timing = if earlier.is_empty() { timing } else { timing.map(|t| Timing { segments: None, ..t }) };
        let t = clock();
        let evaluation = {
            let _slot = self
                .evaluations
                .acquire()
                .await
                .map_err(|e| Error::internal("evaluation slots closed").with_source(e))?;
            eval_agent::evaluate(self.evaluator.clone(), &planned.text, &combined, Some(job), timing.clone()).await?
        };
        spent.evaluation_ms += ms(t);
        let summary = EvalSummary::from_evaluation(&evaluation);

        let mut turns_for_story: Vec<u32> = earlier.iter().map(|t| t.n).collect();
        turns_for_story.push(n);
        let requirements: Vec<String> = interview.profile.required_skills.clone();
        let evidence: Vec<EvidenceLine> = evaluation
            .star
            .evidence
            .iter()
            .map(|e| EvidenceLine { component: e.component.name().to_string(), sentence: e.sentence.clone() })
            .collect();
        let t = clock();
        let (judged, story) = tokio::join!(
            eval_agent::judge(
                self.llm.as_ref(),
                prompts.get(prompts::EVALUATOR),
                eval_agent::JudgeInput {
                    question: &pending.text,
                    answer: &combined,
                    competency: &planned.competency,
                    requirements: &requirements,
                    grounding: &planned.grounding,
                    metrics: &summary,
                }
            ),
            story::analyse(
                self.llm.as_ref(),
                prompts.get(prompts::STORY),
                StoryInput {
                    question: &planned.text,
                    competency: &planned.competency,
                    plan_index: pending.plan_index,
                    answer: &combined,
                    evidence: &evidence,
                    turns: turns_for_story.clone(),
                }
            )
        );
        let mut trace = Trace::default();
        trace.inputs.evaluator = Some(JudgeLog {
            question: pending.text.clone(),
            answer: combined.clone(),
            competency: planned.competency.clone(),
            requirements: requirements.clone(),
            grounding: planned.grounding.clone(),
        });
        trace.inputs.story = Some(StoryLog {
            question: planned.text.clone(),
            competency: planned.competency.clone(),
            plan_index: pending.plan_index,
            answer: combined.clone(),
            evidence: evidence.clone(),
            turns: turns_for_story,
        });
        spent.llm_ms += ms(t);
        let (judgement, judge_call) = judged?;
        let (story, story_call) = story?;
        trace.outputs.evaluator = Some(judgement.clone());
        trace.outputs.story = Some(story.clone());
        calls.push(judge_call);
        calls.push(story_call);
        let score = eval_agent::blend(evaluation.overall, judgement.score);

        // Orchestrator.
        let asked: Vec<Probe> = earlier.iter().filter_map(|t| t.follow_up).chain(pending.follow_up).collect();
        let remaining = interview.plan.len() - pending.plan_index - 1;
        let decision =
            orchestrator::decide(&Situation { kind: planned.kind, evaluation: &summary, asked: &asked, remaining });
        if let Some(tx) = &events {
            let _ =
                tx.send(TurnEvent::Evaluated { score, evaluation: summary.clone(), decision: decision.clone() }).await;
        }
        let next: Option<Pending> = match decision.action {
            Action::FollowUp => {
                let probe = decision.probe.unwrap_or(Probe::Depth);
                let t = clock();
                let (q, call) = orchestrator::phrase_follow_up(
                    self.llm.as_ref(),
                    prompts.get(prompts::ORCHESTRATOR),
                    &pending.text,
                    &combined,
                    probe,
                )
                .await?;
                spent.llm_ms += ms(t);
                calls.push(call);
                trace.inputs.orchestrator =
                    Some(FollowUpLog { question: pending.text.clone(), answer: combined.clone(), probe });
                trace.outputs.orchestrator = Some(q.clone());
                Some(Pending { text: q, plan_index: pending.plan_index, follow_up: Some(probe) })
            }
            // `remaining > 0` made it Next, so the plan has this question.
            Action::Next => interview.plan.get(pending.plan_index + 1).map(|q| Pending {
                text: q.text.clone(),
                plan_index: pending.plan_index + 1,
                follow_up: None,
            }),
            Action::WrapUp => None,
        };

        // Synthesis.
        let input = SynthesisInput {
            persona: interview.persona.as_deref(),
            question: &pending.text,
            answer: &answer,
            decision: &decision,
            candidate_name: interview.profile.name.as_deref(),
        };
        let synthesis_prompt = prompts.get(prompts::SYNTHESIS);
        let next_text = next.as_ref().map(|p| p.text.as_str());
        let t = clock();
        let (out, call): (SynthesisOutput, Call) = match &events {
            None => {
                synthesis::synthesize(self.llm.as_ref(), synthesis_prompt, &input, next_text, &summary, &judgement)
                    .await?
            }
            Some(tx) => self.stream_synthesis(synthesis_prompt, &input, next_text, &summary, &judgement, tx).await?,
        };
        spent.llm_ms += ms(t);
        calls.push(call);
        trace.inputs.synthesis = Some(SynthesisLog {
            persona: interview.persona.clone(),
            candidate_name: interview.profile.name.clone(),
            question: pending.text.clone(),
            answer: answer.clone(),
            action: decision.action,
        });
        trace.outputs.synthesis = Some(out.acknowledgement.clone());

        let turn = Turn {
            n,
            idempotency_key: idempotency_key.to_string(),
            question: pending.text.clone(),
            plan_index: pending.plan_index,
            follow_up: pending.follow_up,
            answer,
            transcript_ref,
            duration_s: timing.and_then(|t| t.duration_s),
            evidence,
            full_evaluation: Some(
                serde_json::to_value(&evaluation)
                    .map_err(|e| Error::internal("evaluation does not serialize").with_source(e))?,
            ),
            summary,
            judgement,
            score,
            decision,
            reply: out.reply,
            coaching: out.coaching,
            calls,
            created_at: now(),
        };
        interview.stories.retain(|s| s.plan_index != story.plan_index);
        if !story.title.is_empty() && (!story.action.is_empty() || !story.result.is_empty()) {
            interview.stories.push(story);
        }
        interview.status = if next.is_some() { Status::Active } else { Status::Finished };
        interview.pending = next;
        interview.turns.push(turn);
        interview.claim = None;
        interview.updated_at = now();
        spent.total_ms = ms(run_started);
        Ok((interview, spent, trace))
    }

    async fn stream_synthesis(
        &self,
        prompt: &crate::prompts::PromptVersion,
        input: &SynthesisInput<'_>,
        next: Option<&str>,
        summary: &EvalSummary,
        judgement: &Judgement,
        tx: &EventSink,
    ) -> Result<(SynthesisOutput, Call)> {
        use futures::StreamExt;
        let started = std::time::Instant::now();
        let mut stream =
            crate::agents::text_stream(self.llm.as_ref(), prompt, synthesis::facts_for(input), synthesis::MAX_TOKENS)
                .await?;
        let (mut text, mut usage) = (String::new(), None);
        while let Some(delta) = stream.next().await {
            let delta = delta?;
            if !delta.text.is_empty() {
                text.push_str(&delta.text);
                let _ = tx.send(TurnEvent::Delta(delta.text)).await;
            }
            if delta.usage.is_some() {
                usage = delta.usage;
            }
        }
        let usage = usage.unwrap_or_default();
        let completion = catalyst_shared::llm::Completion {
            text: text.clone(),
            usage,
            model: self.llm.model().to_string(),
            provider: self.llm.provider(),
            finish_reason: catalyst_shared::llm::FinishReason::Stop,
            latency: started.elapsed(),
            cost_usd: self.llm.price().map(|p| p.cost(usage)),
        };
        let call = call_record(&prompt.agent, prompt, &completion);
        Ok((synthesis::finish(&text, next, input.decision.action, summary, judgement), call))
    }

    /// The turn log for the optimize function: inputs, outputs, prompt versions, model,
    /// tokens, latency and scores. Written after the turn; a failure here is logged, not
    /// returned (the interview itself is safe), and a retry writes the same key.
    async fn log_turn(&self, interview: &Interview, turn: &Turn, timings: &Timings, trace: &Trace) {
        let record = serde_json::json!({
            "uid": interview.uid,
            "interview_id": interview.id,
            "turn": turn.n,
            "mode": interview.mode,
            "competency": interview.plan.get(turn.plan_index).map(|p| p.competency.clone()),
            "question": turn.question,
            "follow_up": turn.follow_up,
            "answer": turn.answer,
            "score": turn.score,
            "evaluation": turn.full_evaluation,
            "summary": turn.summary,
            "judgement": turn.judgement,
            "decision": turn.decision,
            "reply": turn.reply,
            "coaching": turn.coaching,
            "inputs": trace.inputs,
            "outputs": trace.outputs,
            "prompts": interview.prompts,
            "calls": turn.calls,
            "timings": timings,
            "created_at": turn.created_at,
        });
        let key = turn_log_key(&turn.created_at, &interview.uid, &interview.id, turn.n);
        match self.store.put(TURNS, &key, record, Precondition::Absent, None).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Conflict => {}
            Err(e) => tracing::warn!(key = %key, error = %e, "turn log not written"),
        }
    }

    /// The candidate's rating (1-5) of a turn, kept in the turn log where `optimize`
    /// reads it beside the evaluator's scores. Rating again replaces it.
    pub async fn rate(&self, uid: &str, id: &str, n: u32, rating: Rating) -> Result<Rating> {
        if !(1..=5).contains(&rating.rating) {
            return Err(Error::bad_request("`rating` is 1 to 5").with_code("invalid_rating"));
        }
        if rating.comment.as_ref().is_some_and(|c| c.chars().count() > 500) {
            return Err(Error::bad_request("`comment` is at most 500 characters").with_code("invalid_rating"));
        }
        let (interview, _) = self.load(uid, id).await?;
        let turn =
            interview.turns.iter().find(|t| t.n == n).ok_or_else(|| {
                Error::not_found(format!("interview `{id}` has no turn {n}")).with_code("turn_not_found")
            })?;
        let key = turn_log_key(&turn.created_at, uid, id, n);
        self.store
            .update_as::<Value, _>(TURNS, &key, 3, |entry| {
                let Some(mut entry) = entry else {
                    return Err(Error::unavailable("the turn's log entry is not written yet; try again")
                        .with_code("turn_log_missing"));
                };
                entry["rating"] = serde_json::json!(rating.rating);
                entry["rating_comment"] = serde_json::json!(rating.comment);
                Ok(Some(entry))
            })
            .await
            .map_err(|e| if e.code() == "update_conflict" { e.with_code("turn_conflict") } else { e })?;
        Ok(rating)
    }

    /// The final report; written once (a second request returns it). Ends the interview.
    pub async fn report(&self, uid: &str, id: &str) -> Result<Report> {
        let (mut interview, version) = self.load(uid, id).await?;
        if let Some(r) = &interview.report {
            return Ok(r.clone());
        }
        if interview.turns.is_empty() {
            return Err(
                Error::conflict("answer at least one question before asking for the report").with_code("no_answers")
            );
        }
        if interview.claim.as_ref().is_some_and(|c| !expired(c)) {
            return Err(Error::conflict("a turn is still being processed").with_code("turn_in_progress"));
        }
        let prompts = self.prompts.current().await.for_versions(&self.store, &interview.prompts).await?;
        let mut report = aggregate(&interview);
        let achievements = achievements(&interview);
        let (reframed, call) =
            reframe::reframe(self.llm.as_ref(), prompts.get(prompts::REFRAME), &achievements).await?;
        report.achievements = reframed;
        report.calls.extend(call);
        interview.report = Some(report.clone());
        interview.status = Status::Finished;
        interview.pending = None;
        interview.updated_at = now();
        match self.save(&interview, version).await {
            Ok(_) => Ok(report),
            Err(e) if e.kind() == ErrorKind::Conflict => {
                // Written concurrently: the stored one is the report.
                let (now_there, _) = self.load(uid, id).await?;
                now_there
                    .report
                    .ok_or_else(|| Error::conflict("the interview changed; retry").with_code("turn_conflict"))
            }
            Err(e) => Err(e),
        }
    }
}

pub fn created_view(i: &Interview) -> Created {
    Created {
        id: i.id.clone(),
        profile: i.profile.clone(),
        plan: i.plan.clone(),
        question: question_view(i).or_else(|| i.plan.first().and_then(|q| QuestionView::of(i, &q.text, 0, None))),
        prompts: i.prompts.clone(),
    }
}

fn competency_of(interview: &Interview, plan_index: usize) -> String {
    interview.plan.get(plan_index).map(|q| q.competency.clone()).unwrap_or_else(|| "general".into())
}

/// The scores side of the report: no model, only what was measured.
pub fn aggregate(interview: &Interview) -> Report {
    let mut by_competency: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    // A planned question is scored by its last turn (which saw every answer on it).
    let mut last_per_question: BTreeMap<usize, &Turn> = BTreeMap::new();
    for t in &interview.turns {
        last_per_question.insert(t.plan_index, t);
    }
    for (i, t) in &last_per_question {
        let c = competency_of(interview, *i);
        let e = by_competency.entry(c).or_default();
        e.0 += t.score;
        e.1 += 1;
    }
    let competencies: Vec<CompetencyScore> = by_competency
        .into_iter()
        .map(|(competency, (sum, n))| CompetencyScore {
            competency,
            score: (sum as f64 / n as f64).round() as u32,
            answers: n,
        })
        .collect();
    let overall = if last_per_question.is_empty() {
        0
    } else {
        (last_per_question.values().map(|t| t.score as f64).sum::<f64>() / last_per_question.len() as f64).round()
            as u32
    };
    let answers = interview
        .turns
        .iter()
        .map(|t| AnswerScore {
            turn: t.n,
            competency: competency_of(interview, t.plan_index),
            score: t.score,
            structure: t.summary.structure,
            relevance: t.summary.relevance,
            clarity: t.summary.clarity,
            impact: t.summary.impact,
        })
        .collect();

    // Strengths: the best answers' strongest dimensions with the sentence that shows it;
    // improvements: the weakest, with the coaching given at the time.
    let mut ranked: Vec<&Turn> = last_per_question.values().copied().collect();
    ranked.sort_by_key(|t| std::cmp::Reverse(t.score));
    let evidence_of = |t: &Turn, component: &str| -> Option<String> {
        t.evidence.iter().find(|e| e.component == component).map(|e| e.sentence.clone())
    };
    let mut strengths = Vec::new();
    for t in ranked.iter().take(3) {
        let competency = competency_of(interview, t.plan_index);
        if let Some(s) = t.judgement.strengths.first() {
            strengths.push(Point {
                text: format!("{competency}: {s}"),
                evidence: evidence_of(t, "action"),
                turn: Some(t.n),
            });
        } else if t.summary.coverage >= 0.75 {
            strengths.push(Point {
                text: format!("{competency}: a complete STAR answer"),
                evidence: evidence_of(t, "result"),
                turn: Some(t.n),
            });
        }
    }
    let mut improvements = Vec::new();
    for t in ranked.iter().rev().take(3) {
        let competency = competency_of(interview, t.plan_index);
        if let Some(c) = t.coaching.first() {
            let missing = ["situation", "task", "action", "result"]
                .into_iter()
                .find(|c| evidence_of(t, c).is_none())
                .map(|c| format!("no {c} was stated"));
            improvements.push(Point {
                text: format!("{competency}: {c}"),
                evidence: missing.or_else(|| Some(crate::agents::clip(&t.answer, 200))),
                turn: Some(t.n),
            });
        }
    }
    Report {
        overall,
        competencies,
        answers,
        strengths,
        improvements,
        stories: interview.stories.clone(),
        achievements: Vec::new(),
        calls: Vec::new(),
        created_at: now(),
    }
}

/// What Achievement Reframing rewrites: each story's action and result (with the answer
/// as the source of allowed numbers), then the resume's outcome lines.
pub fn achievements(interview: &Interview) -> Vec<Achievement> {
    let mut out = Vec::new();
    for s in &interview.stories {
        let text = format!("{} {}", s.action, s.result).trim().to_string();
        if text.len() < 10 {
            continue;
        }
        let source = interview
            .turns
            .iter()
            .filter(|t| s.turns.contains(&t.n))
            .map(|t| t.answer.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        out.push(Achievement { text, source });
    }
    // Resume lines are the candidate's own words, numbers included.
    for h in &interview.profile.highlights {
        out.push(Achievement { text: h.clone(), source: h.clone() });
    }
    out.truncate(reframe::MAX_ITEMS);
    out
}
