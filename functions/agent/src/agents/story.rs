//! Story Analysis: the STAR story in the candidate's answers to one planned question,
//! for the candidate's story bank. Only what the candidate said: the numbers the model
//! reports are kept only when they appear in the answer.

use super::{clip, facts, json_call, numbers_in};
use crate::model::{Call, EvidenceLine, Story};
use crate::prompts::PromptVersion;
use catalyst_shared::Result;
use catalyst_shared::llm::LanguageModel;
use serde_json::json;

pub struct StoryInput<'a> {
    pub question: &'a str,
    pub competency: &'a str,
    pub plan_index: usize,
    /// Everything the candidate said on this question, in order.
    pub answer: &'a str,
    /// The sentences the evaluate library found for each STAR part.
    pub evidence: &'a [EvidenceLine],
    pub turns: Vec<u32>,
}

pub async fn analyse(llm: &dyn LanguageModel, prompt: &PromptVersion, input: StoryInput<'_>) -> Result<(Story, Call)> {
    let part = |max: u32| json!({"type": "string", "maxLength": max});
    let schema = json!({
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 3, "maxLength": 80},
            "situation": part(200), "task": part(200), "action": part(300), "result": part(200),
            "metrics": {"type": "array", "items": {"type": "string", "maxLength": 30}, "maxItems": 4}
        },
        "required": ["title", "situation", "task", "action", "result", "metrics"],
        "additionalProperties": false
    });
    let evidence =
        input.evidence.iter().map(|e| format!("- {}: {}", e.component, e.sentence)).collect::<Vec<_>>().join("\n");
    let user = facts(&[
        ("Question", input.question.to_string()),
        ("Candidate's answer", clip(input.answer, 4_000)),
        ("Sentences that carry each STAR part (measured)", evidence),
        (
            "Output",
            "{\"title\", \"situation\", \"task\", \"action\", \"result\", \"metrics\": [numbers they gave]}".into(),
        ),
    ]);
    let (v, call) = json_call(llm, prompt, user, schema).await?;
    let said: Vec<String> = numbers_in(input.answer);
    // The story is the candidate's: a number they did not say becomes `[X]`.
    let text =
        |k: &str, max: usize| super::reframe::scrub_numbers(&clip(v[k].as_str().unwrap_or_default(), max), &said);
    // A metric is kept only if every number in it is one the candidate said.
    let metrics = v["metrics"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str())
                .map(|m| clip(m, 30))
                .filter(|m| {
                    let n = numbers_in(m);
                    !n.is_empty() && n.iter().all(|x| said.contains(x))
                })
                .collect()
        })
        .unwrap_or_default();
    let story = Story {
        plan_index: input.plan_index,
        competency: input.competency.to_string(),
        title: text("title", 80),
        situation: text("situation", 200),
        task: text("task", 200),
        action: text("action", 300),
        result: text("result", 200),
        metrics,
        turns: input.turns,
    };
    Ok((story, call))
}
