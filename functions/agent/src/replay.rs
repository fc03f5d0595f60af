//! Replays for the prompt optimizer: a logged turn's input run through the same agent
//! code with a candidate prompt, its output checked the way this agent's output must
//! hold (guardrails and measurable qualities) and graded by an LLM judge. `optimize`
//! publishes the requests and gathers the results (`shared::optimize`); the work runs
//! here, where the agents' code is, on as many instances as the queue spreads it to.

use crate::agents::{orchestrator, story, synthesis};
use crate::model::{AgentInputs, Decision, EvalSummary, Judgement, Story};
use catalyst_shared::llm::LanguageModel;
use catalyst_shared::optimize::{self, ReplayRequest, ReplayResult, Spend, grounded_share, refused};
use catalyst_shared::store::SharedDocumentStore;
use catalyst_shared::{Error, Result};
use serde_json::Value;

/// Handle one replay request; a request already answered (redelivered, duplicated, or a
/// resumed run publishing again) costs nothing and changes nothing.
pub async fn handle(llm: &dyn LanguageModel, store: &SharedDocumentStore, req: &ReplayRequest) -> Result<()> {
    if optimize::recorded(store, req).await? {
        tracing::debug!(key = %req.result_key(), "replay already recorded");
        return Ok(());
    }
    // The run's budget, shared by every instance: reserve this replay's estimate first.
    if !optimize::reserve(store, &req.run, req.estimate).await? {
        let mut result = ReplayResult::new(req);
        result.error = Some("budget_exhausted: the run's call or token budget is spent".into());
        optimize::record(store, &result.finish()).await?;
        return Ok(());
    }
    let result = match replay(llm, store, req).await {
        Ok(r) => r,
        Err(e) => {
            // What a failed attempt spent is not known; give the reservation back.
            optimize::settle(store, &req.run, req.estimate, Spend::default()).await?;
            return Err(e);
        }
    };
    optimize::settle(store, &req.run, req.estimate, result.spend).await?;
    if !optimize::record(store, &result).await? {
        tracing::debug!(key = %req.result_key(), "a concurrent delivery recorded this replay first");
    }
    Ok(())
}

/// What the agent produced: the output as text (what the judge reads), the input as
/// the judge should see it, and the measured checks.
struct Produced {
    output: String,
    input: String,
    spend: Spend,
    metrics: Vec<(&'static str, f64)>,
    violations: Vec<&'static str>,
}

/// Replay `req`. Errors are transient ones (the LLM or the store unreachable) for the
/// queue to retry; anything about the input or the variant is in the result.
pub async fn replay(llm: &dyn LanguageModel, store: &SharedDocumentStore, req: &ReplayRequest) -> Result<ReplayResult> {
    let mut result = ReplayResult::new(req);
    let Some(doc) = store.get(optimize::TURNS, &req.item).await? else {
        result.error = Some(format!("no turn log entry `{}`", req.item));
        return Ok(result.finish());
    };
    let produced = match produce(llm, req, &doc.value).await {
        Ok(p) => p,
        Err(e) if e.code() == "llm_invalid_output" => {
            // The variant made the model break its output contract: a guardrail, not a retry.
            result.violations.push("invalid_output".into());
            result.spend = Spend { calls: 2, ..Spend::default() };
            return Ok(result.finish());
        }
        Err(e) if e.code() == "not_replayable" => {
            result.error = Some(e.message().to_string());
            return Ok(result.finish());
        }
        Err(e) => return Err(e),
    };
    result.spend = produced.spend;
    result.output = produced.output.clone();
    result.metrics = produced.metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    result.violations = produced.violations.iter().map(|v| v.to_string()).collect();
    if refused(&produced.output) {
        result.violations.push("refusal".into());
    }
    if result.violations.is_empty() {
        // A judge that fails leaves this input out of the comparison (an error result)
        // rather than failing the message: a retry would pay for the agent's call again.
        match optimize::judge(llm, &req.rubric, &produced.input, &produced.output).await {
            Ok((grade, spend)) => {
                result.judge = Some(grade);
                result.spend.add(spend);
            }
            Err(e) => {
                result.spend.calls += 1;
                result.error = Some(format!("the judge failed: {}", e.message()));
            }
        }
    }
    Ok(result.finish())
}

fn not_replayable(what: &str) -> Error {
    Error::bad_request(format!("the turn log entry has no {what}")).with_code("not_replayable")
}

fn field<T: serde::de::DeserializeOwned>(log: &Value, key: &str) -> Result<T> {
    serde_json::from_value(log.get(key).cloned().unwrap_or(Value::Null)).map_err(|_| not_replayable(key))
}

fn spend_of(call: &crate::model::Call) -> Spend {
    Spend { calls: 1, input_tokens: call.input_tokens as u64, output_tokens: call.output_tokens as u64 }
}

/// A share that reaches 1 at `full` (a reply need not be all quotation to be specific).
fn scaled(share: f64, full: f64) -> f64 {
    (share / full).min(1.0)
}

async fn produce(llm: &dyn LanguageModel, req: &ReplayRequest, log: &Value) -> Result<Produced> {
    let inputs: AgentInputs = field(log, "inputs")?;
    let prompt = req.prompt();
    match req.agent.as_str() {
        crate::prompts::SYNTHESIS => {
            let i = inputs.synthesis.ok_or_else(|| not_replayable("synthesis input"))?;
            let decision = Decision { action: i.action, probe: None, reason: String::new() };
            let input = synthesis::SynthesisInput {
                persona: i.persona.as_deref(),
                question: &i.question,
                answer: &i.answer,
                decision: &decision,
                candidate_name: i.candidate_name.as_deref(),
            };
            let facts = synthesis::facts_for(&input);
            let (raw, call) = crate::agents::text_call(llm, &prompt, facts.clone(), synthesis::MAX_TOKENS).await?;
            let ack = synthesis::clean_acknowledgement(&raw);
            let raw_len = raw.trim().chars().count().max(1) as f64;
            let mut violations = Vec::new();
            if ack.is_empty() {
                violations.push("empty");
            }
            // Past twice the spoken length the clean-up allows, the prompt makes the model
            // ramble (tokens and latency on every turn), whatever survives the cut.
            if raw.trim().chars().count() > 600 {
                violations.push("too_long");
            }
            Ok(Produced {
                metrics: vec![
                    ("specific", scaled(grounded_share(&ack, &i.answer), 0.3)),
                    // What the clean-up had to cut (questions, markup, a third sentence).
                    ("kept", (ack.chars().count() as f64 / raw_len).min(1.0)),
                ],
                output: ack,
                input: facts,
                spend: spend_of(&call),
                violations,
            })
        }
        crate::prompts::STORY => {
            let i = inputs.story.ok_or_else(|| not_replayable("story input"))?;
            let (s, call) = story::analyse(
                llm,
                &prompt,
                story::StoryInput {
                    question: &i.question,
                    competency: &i.competency,
                    plan_index: i.plan_index,
                    answer: &i.answer,
                    evidence: &i.evidence,
                    turns: i.turns.clone(),
                },
            )
            .await?;
            let parts = [("situation", &s.situation), ("task", &s.task), ("action", &s.action), ("result", &s.result)];
            // A part the measured evidence found should be in the story, and one it did not
            // find should not be made up.
            let agree = parts
                .iter()
                .filter(|(name, text)| {
                    let found = i.evidence.iter().any(|e| e.component == *name);
                    let told = !text.trim().is_empty();
                    found == told
                })
                .count() as f64
                / parts.len() as f64;
            let invented = story_text(&s).matches("[X]").count() as f64;
            let mut violations = Vec::new();
            if s.title.trim().is_empty() {
                violations.push("empty");
            }
            Ok(Produced {
                metrics: vec![("coverage_agreement", agree), ("honest_numbers", 1.0 / (1.0 + invented))],
                output: serde_json::to_string(&s).unwrap_or_default(),
                input: format!("Question: {}\nAnswer: {}", i.question, i.answer),
                spend: spend_of(&call),
                violations,
            })
        }
        crate::prompts::ORCHESTRATOR => {
            let i = inputs.orchestrator.ok_or_else(|| not_replayable("follow-up input"))?;
            let (q, call) = orchestrator::phrase_follow_up(llm, &prompt, &i.question, &i.answer, i.probe).await?;
            let mut violations = Vec::new();
            if q.trim_end_matches('?').trim().is_empty() {
                violations.push("empty");
            }
            Ok(Produced {
                metrics: vec![
                    ("one_question", if q.matches('?').count() == 1 { 1.0 } else { 0.0 }),
                    ("specific", scaled(grounded_share(&q, &i.answer), 0.3)),
                ],
                input: format!(
                    "Question: {}\nAnswer: {}\nWhat the follow-up must probe: {}",
                    i.question,
                    i.answer,
                    i.probe.describe()
                ),
                output: q,
                spend: spend_of(&call),
                violations,
            })
        }
        crate::prompts::EVALUATOR => {
            let i = inputs.evaluator.ok_or_else(|| not_replayable("evaluator input"))?;
            let summary: EvalSummary = field(log, "summary")?;
            let (j, call): (Judgement, _) = crate::agents::evaluator::judge(
                llm,
                &prompt,
                crate::agents::evaluator::JudgeInput {
                    question: &i.question,
                    answer: &i.answer,
                    competency: &i.competency,
                    requirements: &i.requirements,
                    grounding: &i.grounding,
                    metrics: &summary,
                },
            )
            .await?;
            // The measured score of the same answer: a judge far from it is not judging
            // the answer. (A candidate's rating says how helpful the turn was, not how
            // good their answer was, so it is no reference here.)
            let reference = summary.overall as f64;
            Ok(Produced {
                metrics: vec![("agreement", 1.0 - (j.score as f64 - reference).abs() / 100.0)],
                output: serde_json::to_string(&j).unwrap_or_default(),
                input: format!("Question: {}\nAnswer: {}", i.question, i.answer),
                spend: spend_of(&call),
                violations: Vec::new(),
            })
        }
        other => {
            Err(Error::bad_request(format!("agent `{other}` has no replay from the turn log"))
                .with_code("not_replayable"))
        }
    }
}

fn story_text(s: &Story) -> String {
    [&s.title, &s.situation, &s.task, &s.action, &s.result].iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" ")
}
