//! Story Analysis: the STAR story in the candidate's answers to one planned question,
//! for the candidate's story bank. Only what the candidate said: the numbers the model
//! reports are kept only when they appear in the answer.

use super::{clip, facts, json_call, numbers_in};
use crate::model::{Call, Story};
use crate::prompts::PromptVersion;
use catalyst_shared::Result;
use catalyst_shared::evaluation::Evaluation;
use catalyst_shared::llm::LanguageModel;
use serde_json::json;

pub struct StoryInput<'a> {
    pub question: &'a str,
    pub competency: &'a str,
    pub plan_index: usize,
    /// Everything the candidate said on this question, in order.
    pub answer: &'a str,
    pub evaluation: &'a Evaluation,
    pub turns: Vec<u32>,
}

pub async fn analyse(llm: &dyn LanguageModel, prompt: &PromptVersion, input: StoryInput<'_>) -> Result<(Story, Call)> {
    let part = |max: u32| json!({"type": "string", "maxLength": max});
    let schema = json!({
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 3, "maxLength": 80},
            "situation": part(300), "task": part(300), "action": part(400), "result": part(300),
            "metrics": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 5}
        },
        "required": ["title", "situation", "task", "action", "result", "metrics"],
        "additionalProperties": false
    });
    let evidence = input
        .evaluation
        .star
        .evidence
        .iter()
        .map(|e| format!("- {}: {}", e.component.name(), e.sentence))
        .collect::<Vec<_>>()
        .join("\n");
    let user = facts(&[
        ("Question", input.question.to_string()),
        ("Candidate's answer", clip(input.answer, 4_000)),
        ("Sentences that carry each STAR part (measured)", evidence),
        (
            "Output",
            "{\"title\", \"situation\", \"task\", \"action\", \"result\", \"metrics\": [numbers they gave]}".into(),
        ),
    ]);
    let (v, call) = json_call(llm, prompt, user, schema, 360).await?;
    let text = |k: &str, max: usize| clip(v[k].as_str().unwrap_or_default(), max);
    let said: Vec<String> = numbers_in(input.answer);
    // A metric is kept only if every number in it is one the candidate said.
    let metrics = v["metrics"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str())
                .map(|m| clip(m, 40))
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
        situation: text("situation", 300),
        task: text("task", 300),
        action: text("action", 400),
        result: text("result", 300),
        metrics,
        turns: input.turns,
    };
    Ok((story, call))
}
