//! The Orchestrator: after each answer, follow up, move to the next planned question, or
//! wrap up. The decision is a policy over the evaluation (repeatable and testable); the
//! model only phrases the follow-up question, grounded in what the candidate said.

use super::{clip, facts, json_call};
use crate::bank::Kind;
use crate::model::{Action, Call, Decision, EvalSummary, Probe};
use crate::prompts::PromptVersion;
use catalyst_shared::Result;
use catalyst_shared::llm::LanguageModel;
use serde_json::json;

/// Follow-ups per planned question: enough to coach, few enough to keep the interview moving.
pub const MAX_FOLLOW_UPS: u32 = 2;
/// A STAR component counts as present from this score: the evaluate library's threshold.
const PRESENT: f64 = catalyst_shared::evaluation::star::PRESENT as f64;
/// Below this many words an answer cannot be judged.
const MIN_WORDS: u32 = 25;
/// Relevance (0-100) below which the answer is off the question.
const MIN_RELEVANCE: u32 = 35;

/// What the policy sees.
#[derive(Debug, Clone)]
pub struct Situation<'a> {
    pub kind: Kind,
    /// Evaluation of everything the candidate said on this planned question so far.
    pub evaluation: &'a EvalSummary,
    /// Probes already asked on this question.
    pub asked: &'a [Probe],
    /// Planned questions not yet asked.
    pub remaining: usize,
}

/// The policy. Follow-ups go to what most weakens the answer first: nothing to judge,
/// no outcome, no personal actions, no number, no setting.
pub fn decide(s: &Situation) -> Decision {
    let e = s.evaluation;
    if (s.asked.len() as u32) < MAX_FOLLOW_UPS {
        let mut wanted: Vec<(Probe, String)> = Vec::new();
        if e.words < MIN_WORDS || e.relevance < MIN_RELEVANCE {
            wanted.push((Probe::Depth, format!("{} words, relevance {}", e.words, e.relevance)));
        }
        if s.kind == Kind::Behavioral {
            if e.result < PRESENT {
                wanted.push((Probe::Result, format!("result {:.2} < {PRESENT}", e.result)));
            }
            if e.actions_by_we > 0 && e.actions_by_me == 0 {
                wanted.push((Probe::Ownership, format!("{} action sentences say `we`, none `I`", e.actions_by_we)));
            }
            if e.result >= PRESENT && !e.result_quantified && e.quantified_results == 0 {
                wanted.push((Probe::Quantify, "the result has no number".into()));
            }
            if e.situation < PRESENT && e.task < PRESENT {
                wanted.push((Probe::Context, format!("situation {:.2}, task {:.2} < {PRESENT}", e.situation, e.task)));
            }
        } else if e.words >= MIN_WORDS && e.quantified_results == 0 && e.result < PRESENT && e.action < PRESENT {
            // A technical answer with neither concrete steps nor an outcome: ask how.
            wanted.push((Probe::Depth, "no concrete steps or outcome".into()));
        }
        if let Some((probe, why)) = wanted.into_iter().find(|(p, _)| !s.asked.contains(p)) {
            return Decision { action: Action::FollowUp, probe: Some(probe), reason: why };
        }
    }
    let reason = if (s.asked.len() as u32) >= MAX_FOLLOW_UPS {
        format!("{MAX_FOLLOW_UPS} follow-ups asked")
    } else {
        format!("answer complete enough (overall {}, STAR coverage {:.2})", e.overall, e.coverage)
    };
    if s.remaining > 0 {
        Decision { action: Action::Next, probe: None, reason }
    } else {
        Decision { action: Action::WrapUp, probe: None, reason: format!("{reason}; plan done") }
    }
}

/// The model writes the follow-up question for `probe`.
pub async fn phrase_follow_up(
    llm: &dyn LanguageModel,
    prompt: &PromptVersion,
    question: &str,
    answer: &str,
    probe: Probe,
) -> Result<(String, Call)> {
    let schema = json!({
        "type": "object",
        "properties": {"question": {"type": "string", "minLength": 10, "maxLength": 240}},
        "required": ["question"],
        "additionalProperties": false
    });
    let user = facts(&[
        ("Interview question", question.to_string()),
        ("Candidate's answer", clip(answer, 2_000)),
        ("Probe", probe.describe().to_string()),
        ("Output", "{\"question\": \"<your one follow-up question>\"}".to_string()),
    ]);
    let (value, call) = json_call(llm, prompt, user, schema).await?;
    let mut q = clip(value["question"].as_str().unwrap_or_default(), 240);
    // The reply is spoken as a question; a model that forgot the mark still asked one.
    if !q.ends_with('?') {
        q = format!("{}?", q.trim_end_matches(['.', '!', '…']));
    }
    Ok((q, call))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A strong, complete behavioral answer as the evaluate library scores it.
    fn strong() -> EvalSummary {
        EvalSummary {
            overall: 82,
            structure: 88,
            relevance: 75,
            job_fit: Some(70),
            clarity: 80,
            impact: 85,
            situation: 0.8,
            task: 0.7,
            action: 0.9,
            result: 0.85,
            coverage: 1.0,
            actions_by_me: 3,
            actions_by_we: 1,
            result_quantified: true,
            words: 160,
            quantified_results: 2,
            words_per_minute: Some(140.0),
            fillers: 1,
            fillers_per_minute: Some(0.5),
            hedges: 0,
            feedback: vec![],
        }
    }

    fn decide_on(e: &EvalSummary, asked: &[Probe], remaining: usize) -> Decision {
        decide(&Situation { kind: Kind::Behavioral, evaluation: e, asked, remaining })
    }

    #[test]
    fn a_strong_complete_answer_moves_on() {
        let d = decide_on(&strong(), &[], 3);
        assert_eq!((d.action, d.probe), (Action::Next, None));
        let d = decide_on(&strong(), &[], 0);
        assert_eq!(d.action, Action::WrapUp);
    }

    #[test]
    fn a_missing_result_gets_a_follow_up_about_the_result() {
        let e = EvalSummary { result: 0.2, result_quantified: false, quantified_results: 0, ..strong() };
        let d = decide_on(&e, &[], 3);
        assert_eq!((d.action, d.probe), (Action::FollowUp, Some(Probe::Result)));
        // Asked already: the next weakness, or on.
        let d = decide_on(&e, &[Probe::Result], 3);
        assert_eq!(d.action, Action::Next);
    }

    #[test]
    fn vague_we_and_unquantified_results_are_probed_in_order() {
        let e = EvalSummary {
            actions_by_me: 0,
            actions_by_we: 3,
            result_quantified: false,
            quantified_results: 0,
            ..strong()
        };
        assert_eq!(decide_on(&e, &[], 2).probe, Some(Probe::Ownership));
        assert_eq!(decide_on(&e, &[Probe::Ownership], 2).probe, Some(Probe::Quantify));
        // At most MAX_FOLLOW_UPS per question, whatever is still missing.
        let d = decide_on(&e, &[Probe::Ownership, Probe::Quantify], 2);
        assert_eq!((d.action, d.probe), (Action::Next, None));
        assert!(d.reason.contains("follow-ups asked"));
    }

    #[test]
    fn short_or_off_topic_answers_are_asked_for_depth() {
        let e = EvalSummary { words: 9, ..strong() };
        assert_eq!(decide_on(&e, &[], 1).probe, Some(Probe::Depth));
        let e = EvalSummary { relevance: 12, ..strong() };
        assert_eq!(decide_on(&e, &[], 1).probe, Some(Probe::Depth));
    }

    #[test]
    fn technical_answers_are_not_asked_for_star_parts() {
        let e = EvalSummary { result: 0.1, situation: 0.0, task: 0.0, result_quantified: false, ..strong() };
        let d = decide(&Situation { kind: Kind::Technical, evaluation: &e, asked: &[], remaining: 1 });
        assert_eq!(d.action, Action::Next, "{d:?}");
        let e = EvalSummary { result: 0.1, action: 0.2, quantified_results: 0, ..e };
        let d = decide(&Situation { kind: Kind::Technical, evaluation: &e, asked: &[], remaining: 1 });
        assert_eq!(d.probe, Some(Probe::Depth));
    }
}
