//! Synthesis: the interviewer's spoken reply (a short acknowledgement written by the
//! model, then the next question exactly as planned) and the coaching feedback, which is
//! chosen from the evaluation so it always rests on what was measured.

use super::{clip, facts, text_call};
use crate::model::{Action, Call, Decision, EvalSummary, Judgement};
use crate::prompts::PromptVersion;
use catalyst_shared::Result;
use catalyst_shared::llm::LanguageModel;

/// What Synthesis produces for a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthesisOutput {
    pub acknowledgement: String,
    /// Acknowledgement, then the next question or the closing.
    pub reply: String,
    pub coaching: Vec<String>,
}

/// The whole synthesis in one call (the streaming path in `engine` sends the same
/// acknowledgement as it is generated and finishes with [`finish`]).
pub async fn synthesize(
    llm: &dyn LanguageModel,
    prompt: &PromptVersion,
    input: &SynthesisInput<'_>,
    next: Option<&str>,
    summary: &EvalSummary,
    judgement: &Judgement,
) -> Result<(SynthesisOutput, Call)> {
    let (text, call) = text_call(llm, prompt, facts_for(input), MAX_TOKENS).await?;
    Ok((finish(&text, next, input.decision.action, summary, judgement), call))
}

pub fn finish(
    generated: &str,
    next: Option<&str>,
    action: Action,
    summary: &EvalSummary,
    judgement: &Judgement,
) -> SynthesisOutput {
    let acknowledgement = clean_acknowledgement(generated);
    SynthesisOutput {
        reply: reply(&acknowledgement, next, action),
        acknowledgement,
        coaching: coaching(summary, judgement),
    }
}

/// What the model is told.
pub struct SynthesisInput<'a> {
    pub persona: Option<&'a str>,
    pub question: &'a str,
    pub answer: &'a str,
    pub decision: &'a Decision,
    pub candidate_name: Option<&'a str>,
}

pub fn facts_for(input: &SynthesisInput) -> String {
    let next = match input.decision.action {
        Action::FollowUp => "a follow-up question on the same topic",
        Action::Next => "the next interview question",
        Action::WrapUp => "nothing: the interview is over; thank the candidate",
    };
    facts(&[
        ("Interviewer persona", input.persona.unwrap_or("").to_string()),
        ("Candidate's name", input.candidate_name.unwrap_or("").to_string()),
        ("Your last question", input.question.to_string()),
        ("Candidate's answer", clip(input.answer, 2_500)),
        ("What comes after your reply", next.to_string()),
    ])
}

pub const MAX_TOKENS: u32 = 90;

/// The acknowledgement as it may be spoken: no questions (the next one follows), no
/// markup, short. What a model adds beyond that is cut.
pub fn clean_acknowledgement(text: &str) -> String {
    let text = text.trim().trim_matches('"').replace(['*', '#', '`'], "");
    let mut kept = Vec::new();
    for sentence in split_sentences(&text) {
        if sentence.ends_with('?') {
            continue;
        }
        kept.push(sentence);
        if kept.len() == 2 {
            break;
        }
    }
    clip(&kept.join(" "), 300)
}

fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if matches!(c, '.' | '!' | '?') {
            let s = cur.trim().to_string();
            if !s.is_empty() {
                out.push(s);
            }
            cur.clear();
        }
    }
    let rest = cur.trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// The whole reply: acknowledgement, then the question (or the closing).
pub fn reply(acknowledgement: &str, next: Option<&str>, action: Action) -> String {
    let closing = "That's the end of our interview. Thank you — your report is ready whenever you are.";
    let tail = match (action, next) {
        (Action::WrapUp, _) | (_, None) => closing,
        (_, Some(q)) => q,
    };
    if acknowledgement.is_empty() { tail.to_string() } else { format!("{acknowledgement}\n\n{tail}") }
}

/// Coaching: the measured feedback first, then the judge's improvements; two at most,
/// no repeats.
pub fn coaching(summary: &EvalSummary, judgement: &Judgement) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in summary.feedback.iter().chain(&judgement.improvements) {
        let f = f.trim();
        if f.is_empty() || out.iter().any(|o| o.eq_ignore_ascii_case(f)) {
            continue;
        }
        out.push(f.to_string());
        if out.len() == 2 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_never_ask_and_stay_short() {
        assert_eq!(
            clean_acknowledgement("**Great** example of ownership. What did you learn? It clearly mattered. More."),
            "Great example of ownership. It clearly mattered."
        );
        assert_eq!(
            clean_acknowledgement("  \"Thanks for walking me through that\"  "),
            "Thanks for walking me through that"
        );
        assert_eq!(clean_acknowledgement("Why?"), "");
    }

    #[test]
    fn the_reply_ends_with_the_question_or_the_closing() {
        assert_eq!(reply("Thanks.", Some("Q?"), Action::Next), "Thanks.\n\nQ?");
        assert_eq!(reply("", Some("Q?"), Action::FollowUp), "Q?");
        assert!(reply("Thanks.", None, Action::WrapUp).ends_with("whenever you are."));
    }
}
