//! The interview as stored: one document per interview, written whole with optimistic
//! concurrency, so a turn is either all there or not at all.

use crate::bank::Kind;
use catalyst_shared::evaluation::Evaluation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Behavioral,
    Technical,
    Mixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the answer to `pending`.
    Active,
    /// The interviewer wrapped up; the report can be written.
    Finished,
}

/// What the Context agent knows about the candidate against the job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Profile {
    pub name: Option<String>,
    /// The candidate's current or most recent title.
    pub headline: Option<String>,
    pub years_experience: Option<f64>,
    /// junior, mid, senior or staff: from the job title when it says, else from experience.
    pub seniority: String,
    /// The role family of the job (software-engineering, data, product...).
    pub role_family: String,
    pub job_title: Option<String>,
    pub company: Option<String>,
    /// Skills the job asks for.
    pub required_skills: Vec<String>,
    /// Skills the resume shows.
    pub resume_skills: Vec<String>,
    /// Required skills the resume shows.
    pub matched_skills: Vec<String>,
    /// Required skills the resume does not show: the plan probes some of them.
    pub gaps: Vec<String>,
    /// Resume lines with outcomes (work highlights), the raw material of the interview.
    pub highlights: Vec<String>,
    /// The Context agent's short summary of the candidate for this job.
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlannedQuestion {
    /// The bank question it came from.
    pub bank_id: String,
    pub kind: Kind,
    pub competency: String,
    /// As asked: adapted to the resume and job by the Context agent.
    pub text: String,
    /// As written in the bank.
    pub bank_text: String,
    /// Why it is in the plan (a job requirement, a gap, the mode).
    pub reason: String,
    /// Job-page passages retrieved for this question, given to the agents as grounding.
    #[serde(default)]
    pub grounding: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// No outcome was given.
    Result,
    /// An outcome without a number.
    Quantify,
    /// "We" did things: what did the candidate do?
    Ownership,
    /// The setting or the candidate's own task is unclear.
    Context,
    /// Too short or off the question to judge.
    Depth,
}

impl Probe {
    pub fn describe(self) -> &'static str {
        match self {
            Probe::Result => "the answer gives no result or outcome",
            Probe::Quantify => "the result has no number (time, money, users, percentage)",
            Probe::Ownership => "the actions are described as what 'we' did, not what the candidate did",
            Probe::Context => "the situation or the candidate's own task is unclear",
            Probe::Depth => "the answer is too short or does not address the question",
        }
    }
}

/// The question waiting for an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pending {
    pub text: String,
    /// Index into the plan of the question this belongs to.
    pub plan_index: usize,
    /// Set when this is a follow-up, with what it probes.
    pub follow_up: Option<Probe>,
}

/// The evaluation facts the Orchestrator decides on (a typed subset of the full evaluation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvalSummary {
    pub overall: u32,
    pub structure: u32,
    pub relevance: u32,
    pub job_fit: Option<u32>,
    pub clarity: u32,
    pub impact: u32,
    pub situation: f64,
    pub task: f64,
    pub action: f64,
    pub result: f64,
    pub coverage: f64,
    pub actions_by_me: u32,
    pub actions_by_we: u32,
    pub result_quantified: bool,
    pub words: u32,
    pub quantified_results: u32,
    /// Delivery: pace (with timing), fillers and hedges.
    pub words_per_minute: Option<f64>,
    pub fillers: u32,
    pub fillers_per_minute: Option<f64>,
    pub hedges: u32,
    pub feedback: Vec<String>,
}

impl EvalSummary {
    pub fn from_evaluation(e: &Evaluation) -> EvalSummary {
        EvalSummary {
            overall: e.overall,
            structure: e.scores.structure,
            relevance: e.scores.relevance,
            job_fit: e.scores.job_fit,
            clarity: e.scores.clarity,
            impact: e.scores.impact,
            situation: e.star.situation,
            task: e.star.task,
            action: e.star.action,
            result: e.star.result,
            coverage: e.star.coverage,
            actions_by_me: e.star.actions_by_me,
            actions_by_we: e.star.actions_by_we,
            result_quantified: e.star.result_quantified,
            words: e.metrics.words,
            quantified_results: e.metrics.quantified_results,
            words_per_minute: e.metrics.words_per_minute,
            fillers: e.metrics.fillers.total,
            fillers_per_minute: e.metrics.fillers.per_minute,
            hedges: e.metrics.hedges,
            feedback: e.feedback.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvidenceLine {
    /// situation, task, action or result.
    pub component: String,
    pub sentence: String,
}

/// The LLM judge's view of one answer (the Evaluator agent's model half).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Judgement {
    pub score: u32,
    pub strengths: Vec<String>,
    pub improvements: Vec<String>,
}

/// A STAR story the candidate told, as Story Analysis extracted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Story {
    pub plan_index: usize,
    pub competency: String,
    pub title: String,
    pub situation: String,
    pub task: String,
    pub action: String,
    pub result: String,
    /// Numbers the candidate gave (as they said them).
    pub metrics: Vec<String>,
    /// Turns whose answers it was taken from.
    pub turns: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    FollowUp,
    Next,
    WrapUp,
}

/// The Orchestrator's decision after an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    pub action: Action,
    pub probe: Option<Probe>,
    /// Why, in one line (for the turn log and for optimize).
    pub reason: String,
}

/// One LLM call of a turn, as logged for the optimize function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Call {
    pub agent: String,
    pub prompt_version: u32,
    pub provider: String,
    pub model: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub latency_ms: u64,
    pub cost_usd: Option<f64>,
}

/// One answered question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Turn {
    /// 1-based.
    pub n: u32,
    pub idempotency_key: String,
    pub question: String,
    pub plan_index: usize,
    pub follow_up: Option<Probe>,
    pub answer: String,
    /// Where a spoken answer's transcript came from.
    pub transcript_ref: Option<String>,
    pub duration_s: Option<f64>,
    /// The sentences that carry each STAR part (the report cites them).
    pub evidence: Vec<EvidenceLine>,
    /// The evaluate library's full evaluation: in the turn log only, kept out of the
    /// interview document so every read and write of it stays small.
    #[serde(skip)]
    #[schema(ignore)]
    pub full_evaluation: Option<serde_json::Value>,
    pub summary: EvalSummary,
    pub judgement: Judgement,
    /// The turn's score: the evaluation blended with the judge.
    pub score: u32,
    pub decision: Decision,
    /// The interviewer's reply (acknowledgement and the next question).
    pub reply: String,
    /// Short coaching feedback on this answer.
    pub coaching: Vec<String>,
    pub calls: Vec<Call>,
    pub created_at: String,
}

/// Where a turn's time went, in milliseconds: LLM calls (wall time, concurrent calls
/// counted once), the evaluation's model inference, and the rest (store, orchestration,
/// serialisation): the agent's own overhead. The turn log keeps them per turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timings {
    pub total_ms: f64,
    pub llm_ms: f64,
    pub evaluation_ms: f64,
    /// Document-store reads and writes (included in the overhead).
    pub store_ms: f64,
    pub overhead_ms: f64,
}

/// A turn in progress: claimed before any LLM call so a concurrent one is refused at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Claim {
    pub idempotency_key: String,
    pub started_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompetencyScore {
    pub competency: String,
    pub score: u32,
    pub answers: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Point {
    pub text: String,
    /// The candidate's words it rests on.
    pub evidence: Option<String>,
    pub turn: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reframed {
    pub original: String,
    pub reframed: String,
    /// Placeholders the candidate should fill with real numbers (none were given).
    pub placeholders: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    pub overall: u32,
    pub competencies: Vec<CompetencyScore>,
    /// Each answer's score, in order.
    pub answers: Vec<AnswerScore>,
    pub strengths: Vec<Point>,
    pub improvements: Vec<Point>,
    pub stories: Vec<Story>,
    pub achievements: Vec<Reframed>,
    pub calls: Vec<Call>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnswerScore {
    pub turn: u32,
    pub competency: String,
    pub score: u32,
    pub structure: u32,
    pub relevance: u32,
    pub clarity: u32,
    pub impact: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Interview {
    pub id: String,
    pub uid: String,
    pub mode: Mode,
    pub persona: Option<String>,
    pub status: Status,
    pub profile: Profile,
    pub plan: Vec<PlannedQuestion>,
    /// The question waiting for an answer (none once finished).
    pub pending: Option<Pending>,
    pub turns: Vec<Turn>,
    pub stories: Vec<Story>,
    pub claim: Option<Claim>,
    /// Prompt versions this interview runs on, by agent (fixed at creation, so one
    /// interview never mixes versions).
    pub prompts: BTreeMap<String, u32>,
    /// The job text the agents are grounded in (trimmed), kept for the report.
    pub job_text: String,
    pub report: Option<Report>,
    pub created_at: String,
    pub updated_at: String,
    /// Calls made to build the interview (the Context agent).
    pub calls: Vec<Call>,
}

impl Interview {
    /// Follow-ups already asked on the question at `plan_index`.
    pub fn follow_ups_on(&self, plan_index: usize) -> u32 {
        self.turns.iter().filter(|t| t.plan_index == plan_index && t.follow_up.is_some()).count() as u32
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What each agent of a turn was given, logged with the turn so `optimize` can replay
/// the same input through the same code with another prompt (`replay.rs`). The
/// Evaluator's measured facts are the logged `summary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentInputs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluator: Option<JudgeLog>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<StoryLog>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator: Option<FollowUpLog>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthesis: Option<SynthesisLog>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeLog {
    pub question: String,
    pub answer: String,
    pub competency: String,
    pub requirements: Vec<String>,
    pub grounding: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoryLog {
    pub question: String,
    pub competency: String,
    pub plan_index: usize,
    pub answer: String,
    pub evidence: Vec<EvidenceLine>,
    pub turns: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUpLog {
    pub question: String,
    pub answer: String,
    pub probe: Probe,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthesisLog {
    pub persona: Option<String>,
    pub candidate_name: Option<String>,
    pub question: String,
    pub answer: String,
    pub action: Action,
}

/// Each agent's output for a turn, beside its input in the turn log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentOutputs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluator: Option<Judgement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<Story>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthesis: Option<String>,
}

/// A turn's inputs and outputs per agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    pub inputs: AgentInputs,
    pub outputs: AgentOutputs,
}
