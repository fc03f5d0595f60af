//! Structured output: ask for JSON against a schema, check it, repair what is commonly
//! wrong (code fences, prose before or after the value), retry once telling the model
//! what was wrong, and otherwise fail with a typed error.

use serde_json::Value;

use super::{Completion, LanguageModel, Message, Request, schema};
use crate::error::{Error, Result};

/// The JSON value in a model's reply: the whole reply, or the reply without a Markdown
/// code fence, or the first complete object/array in it (models like to add a sentence).
pub fn extract_json(text: &str) -> Option<Value> {
    let t = text.trim().trim_start_matches('\u{feff}');
    if let Ok(v) = serde_json::from_str(t) {
        return Some(v);
    }
    let unfenced = strip_fence(t);
    if let Ok(v) = serde_json::from_str(unfenced) {
        return Some(v);
    }
    // The first balanced object or array, wherever it starts.
    let bytes = unfenced.as_bytes();
    let mut start = 0;
    while let Some(off) = unfenced[start..].find(['{', '[']) {
        let s = start + off;
        if let Some(end) = balanced_end(&bytes[s..])
            && let Ok(v) = serde_json::from_str(&unfenced[s..s + end])
        {
            return Some(v);
        }
        start = s + 1;
    }
    None
}

fn strip_fence(t: &str) -> &str {
    let Some(open) = t.find("```") else { return t };
    let after = &t[open + 3..];
    // Skip the info string (`json`, `JSON`...) up to the end of the line.
    let body = match after.find('\n') {
        Some(nl) => &after[nl + 1..],
        None => after,
    };
    match body.find("```") {
        Some(close) => body[..close].trim(),
        None => body.trim(),
    }
}

/// Length of the bracketed value at the start of `b`, respecting strings and escapes.
fn balanced_end(b: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for (i, &c) in b.iter().enumerate() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// What is wrong with a reply, or its value.
fn check(text: &str, schema_value: &Value) -> std::result::Result<Value, String> {
    let value = extract_json(text).ok_or_else(|| "the reply is not JSON".to_string())?;
    schema::validate(schema_value, &value)
        .map_err(|errs| format!("the JSON does not match the schema: {}", errs.join("; ")))?;
    Ok(value)
}

/// Complete `request` (which must carry a schema) and return the validated JSON value
/// with the completion that produced it. One retry, with the problem explained; then an
/// `Unprocessable` error with code `llm_invalid_output`. Token usage of both attempts is
/// summed in the returned completion.
pub async fn complete_json(model: &dyn LanguageModel, request: &Request) -> Result<(Value, Completion)> {
    let Some(js) = &request.schema else {
        return Err(Error::bad_request("structured output needs a schema").with_code("llm_bad_request"));
    };
    let first = model.complete(request).await?;
    let problem = match check(&first.text, &js.schema) {
        Ok(v) => return Ok((v, first)),
        Err(p) => p,
    };
    tracing::info!(provider = first.provider, problem = %problem, "structured output invalid; retrying once");
    let mut retry = request.clone();
    retry.messages.push(Message::assistant(first.text.clone()));
    retry.messages.push(Message::user(format!(
        "That reply cannot be used: {problem}. Reply again with only the JSON value, valid against the schema, and nothing else."
    )));
    let mut second = model.complete(&retry).await?;
    second.usage.input_tokens += first.usage.input_tokens;
    second.usage.output_tokens += first.usage.output_tokens;
    match check(&second.text, &js.schema) {
        Ok(v) => Ok((v, second)),
        Err(p) => {
            Err(Error::unprocessable(format!("the model did not produce valid structured output after a retry: {p}"))
                .with_code("llm_invalid_output"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repairs_fences_and_surrounding_prose() {
        assert_eq!(extract_json(r#"{"a":1}"#), Some(json!({"a": 1})));
        assert_eq!(extract_json("```json\n{\"a\": [1, 2]}\n```"), Some(json!({"a": [1, 2]})));
        assert_eq!(extract_json("Sure! Here it is:\n{\"a\": \"}\"} Hope that helps."), Some(json!({"a": "}"})));
        assert_eq!(extract_json("[1, 2] and more"), Some(json!([1, 2])));
        assert_eq!(extract_json("no json {here"), None);
        assert_eq!(extract_json(""), None);
    }

    #[test]
    fn check_reports_schema_problems() {
        let schema = json!({"type": "object", "required": ["a"]});
        assert!(check("{\"a\": 1}", &schema).is_ok());
        assert!(check("{\"b\": 1}", &schema).unwrap_err().contains("missing required property `a`"));
        assert_eq!(check("nope", &schema).unwrap_err(), "the reply is not JSON");
    }
}
