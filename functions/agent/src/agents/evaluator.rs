//! The Evaluator: the evaluate library's deterministic scores (STAR, relevance, job fit,
//! fillers, pace) plus an LLM judge's view, blended with the metrics carrying most weight
//! so the score stays repeatable.

use super::{bullets, clip, facts, json_call};
use crate::model::{Call, EvalSummary, Judgement};
use crate::prompts::PromptVersion;
use catalyst_shared::Result;
use catalyst_shared::evaluation::{self, Evaluation, EvaluationRequest, Evaluator, Job, Timing};
use catalyst_shared::llm::LanguageModel;
use serde_json::json;
use std::sync::Arc;

/// Share of the judge in a turn's score; the rest is the evaluate library's overall.
pub const JUDGE_WEIGHT: f64 = 0.25;

pub async fn evaluate(
    evaluator: Arc<Evaluator>,
    question: &str,
    answer: &str,
    job: Option<Job>,
    timing: Option<Timing>,
) -> Result<Evaluation> {
    let req =
        EvaluationRequest { question: question.to_string(), answer: answer.to_string(), job, timing, rubric: None };
    evaluation::evaluate_blocking(evaluator, req).await
}

/// What the judge sees.
pub struct JudgeInput<'a> {
    pub question: &'a str,
    pub answer: &'a str,
    pub competency: &'a str,
    pub requirements: &'a [String],
    /// Job passages retrieved for this question.
    pub grounding: &'a [String],
    pub metrics: &'a EvalSummary,
}

pub async fn judge(
    llm: &dyn LanguageModel,
    prompt: &PromptVersion,
    input: JudgeInput<'_>,
) -> Result<(Judgement, Call)> {
    let JudgeInput { question, answer, competency, requirements, grounding, metrics } = input;
    let short = json!({"type": "string", "minLength": 3, "maxLength": 160});
    let schema = json!({
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 0, "maximum": 100},
            "strengths": {"type": "array", "items": short, "maxItems": 2},
            "improvements": {"type": "array", "items": short, "maxItems": 2}
        },
        "required": ["score", "strengths", "improvements"],
        "additionalProperties": false
    });
    let user = facts(&[
        ("Question", question.to_string()),
        ("Competency assessed", competency.replace('-', " ")),
        ("Job requirements", bullets(&requirements.iter().take(8).collect::<Vec<_>>())),
        ("From the job posting, on this topic", bullets(grounding)),
        ("Candidate's answer", clip(answer, 3_000)),
        (
            "Measured",
            format!(
                "STAR coverage {:.0}%, result stated: {}, numbers in results: {}, actions said with I/we: {}/{}, words: {}",
                metrics.coverage * 100.0,
                metrics.result >= 0.5,
                metrics.quantified_results,
                metrics.actions_by_me,
                metrics.actions_by_we,
                metrics.words
            ),
        ),
        ("Output", "{\"score\": 0-100, \"strengths\": [..], \"improvements\": [..]}".to_string()),
    ]);
    let (v, call) = json_call(llm, prompt, user, schema).await?;
    let list = |k: &str| -> Vec<String> {
        v[k].as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str()).map(|s| clip(s, 200)).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    };
    let score = v["score"].as_u64().unwrap_or(0).min(100) as u32;
    Ok((Judgement { score, strengths: list("strengths"), improvements: list("improvements") }, call))
}

/// The turn's score: mostly the measured evaluation, partly the judge.
pub fn blend(overall: u32, judge: u32) -> u32 {
    ((1.0 - JUDGE_WEIGHT) * overall as f64 + JUDGE_WEIGHT * judge as f64).round() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measured_score_carries_most_weight() {
        assert_eq!(blend(80, 80), 80);
        assert_eq!(blend(80, 0), 60);
        assert_eq!(blend(40, 100), 55);
    }

    #[tokio::test]
    async fn answers_are_scored_by_the_evaluate_library() {
        let ev = catalyst_shared::evaluation::testutil::evaluator();
        let e = evaluate(
            ev,
            "Tell me about a time you improved a process.",
            "Our deploys took two hours. I was asked to fix it. I rewrote the pipeline and added canary checks. \
             Deploy time fell from 2 hours to 15 minutes.",
            None,
            Some(Timing { duration_s: Some(20.0), segments: None }),
        )
        .await
        .unwrap();
        let s = EvalSummary::from_evaluation(&e);
        assert_eq!(s.words, 28);
        assert!(s.result >= 0.5 && s.result_quantified, "{s:?}");
        assert_eq!(e.metrics.words_per_minute, Some(84.0));
    }
}
