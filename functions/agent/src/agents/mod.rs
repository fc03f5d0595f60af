//! The six agents. Each is a small unit: its prompt (from the registry), its input, a
//! typed output, and the checks that keep a model's answer honest and grounded. Where a
//! decision must be repeatable (the Orchestrator's policy, the Evaluator's metrics) it is
//! code; the model writes what needs language.

pub mod context;
pub mod evaluator;
pub mod orchestrator;
pub mod reframe;
pub mod story;
pub mod synthesis;

use crate::model::Call;
use crate::prompts::PromptVersion;
use catalyst_shared::Result;
use catalyst_shared::llm::{Completion, DeltaStream, LanguageModel, Message, Request, complete_json};
use serde_json::Value;

pub fn call_record(agent: &str, prompt: &PromptVersion, c: &Completion) -> Call {
    Call {
        agent: agent.to_string(),
        prompt_version: prompt.version,
        provider: c.provider.to_string(),
        model: c.model.clone(),
        input_tokens: c.usage.input_tokens,
        output_tokens: c.usage.output_tokens,
        latency_ms: c.latency.as_millis() as u64,
        cost_usd: c.cost_usd,
    }
}

/// An upper bound on the tokens a JSON value valid against `schema` can take, counting a
/// token per character of every string at its `maxLength` (small models do spend that
/// much when they ramble) plus the punctuation around it. A budget below this can cut a
/// valid answer short, which then fails validation.
pub fn token_budget(schema: &Value) -> u32 {
    let u = |k: &str| schema.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let props = schema.get("properties").and_then(Value::as_object);
            2 + props.map(|p| p.iter().map(|(k, v)| k.len() as u32 / 2 + 3 + token_budget(v)).sum()).unwrap_or(64)
        }
        Some("array") => {
            let items = schema.get("items").map(token_budget).unwrap_or(64);
            2 + schema.get("maxItems").and_then(Value::as_u64).unwrap_or(8) as u32 * (items + 1)
        }
        Some("string") => 2 + if u("maxLength") > 0 { u("maxLength") } else { 256 },
        _ if schema.get("enum").is_some() => schema["enum"]
            .as_array()
            .map(|a| a.iter().map(|v| v.to_string().len() as u32).max().unwrap_or(4))
            .unwrap_or(4),
        _ => 8,
    }
}

/// A structured call: the prompt as system, `facts` as the user message, the answer
/// validated against `schema` (one repair retry inside `complete_json`). The token
/// budget comes from the schema, so a valid answer always fits.
pub async fn json_call(
    llm: &dyn LanguageModel,
    prompt: &PromptVersion,
    facts: String,
    schema: Value,
) -> Result<(Value, Call)> {
    let max_tokens = token_budget(&schema);
    let request = Request::new(vec![Message::user(facts)])
        .system(prompt.rendered())
        .max_tokens(max_tokens)
        .schema(format!("{}_output", prompt.agent), schema);
    let (value, completion) = complete_json(llm, &request).await?;
    Ok((value, call_record(&prompt.agent, prompt, &completion)))
}

pub fn text_request(prompt: &PromptVersion, facts: String, max_tokens: u32) -> Request {
    Request::new(vec![Message::user(facts)]).system(prompt.rendered()).max_tokens(max_tokens).temperature(0.3)
}

pub async fn text_call(
    llm: &dyn LanguageModel,
    prompt: &PromptVersion,
    facts: String,
    max_tokens: u32,
) -> Result<(String, Call)> {
    let completion = llm.complete(&text_request(prompt, facts, max_tokens)).await?;
    let call = call_record(&prompt.agent, prompt, &completion);
    Ok((completion.text, call))
}

pub async fn text_stream(
    llm: &dyn LanguageModel,
    prompt: &PromptVersion,
    facts: String,
    max_tokens: u32,
) -> Result<DeltaStream> {
    llm.stream(&text_request(prompt, facts, max_tokens)).await
}

/// Cut `s` to at most `max` characters on a word boundary.
pub fn clip(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    match cut.rfind(char::is_whitespace) {
        Some(i) if i > max / 2 => format!("{}…", cut[..i].trim_end()),
        _ => format!("{cut}…"),
    }
}

/// A labelled block of facts for a user message; empty values are left out so the model
/// is never told "none" as if it were a fact.
pub fn facts(sections: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (label, value) in sections {
        let v = value.trim();
        if v.is_empty() {
            continue;
        }
        out.push_str(label);
        out.push_str(":\n");
        out.push_str(v);
        out.push_str("\n\n");
    }
    out.trim_end().to_string()
}

pub fn bullets<S: AsRef<str>>(items: &[S]) -> String {
    items.iter().map(|s| format!("- {}", s.as_ref().trim())).collect::<Vec<_>>().join("\n")
}

/// Numbers as written in `text` (`40%`, `2,000`, `3.5x`, `$1.2M`): the honesty checks
/// compare a model's numbers with the candidate's.
pub fn numbers_in(text: &str) -> Vec<String> {
    number_pattern().find_iter(text).map(|m| m.as_str().replace(',', "")).collect()
}

/// A number as people write it: digits, with `.` or `,` between groups.
pub fn number_pattern() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    // Valid by construction.
    RE.get_or_init(|| regex::Regex::new(r"\d+(?:[.,]\d+)*").expect("number pattern compiles"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(clip("one two three", 8), "one two…");
        assert_eq!(clip(" short ", 20), "short");
        assert_eq!(numbers_in("cut 40% of $1,200 in 3.5 weeks"), vec!["40", "1200", "3.5"]);
        assert_eq!(facts(&[("A", "x".into()), ("B", " ".into()), ("C", "y".into())]), "A:\nx\n\nC:\ny");
        assert_eq!(bullets(&["a", "b "]), "- a\n- b");
        let schema = serde_json::json!({"type": "object", "properties": {
            "q": {"type": "string", "maxLength": 100},
            "xs": {"type": "array", "maxItems": 2, "items": {"type": "string", "maxLength": 10}},
            "n": {"type": "integer"}, "e": {"enum": ["long-value"]}}});
        // 2 + (q: 0+3+102) + (xs: 1+3+(2+2*(12+1))) + (n: 0+3+8) + (e: 0+3+12)
        assert_eq!(token_budget(&schema), 2 + 105 + 32 + 11 + 15);
    }
}
