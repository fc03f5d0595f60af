//! Achievement Reframing: the candidate's achievements (from their stories and resume)
//! rewritten as strong resume bullets. Honest by construction: a number the candidate did
//! not give is replaced by a placeholder, whatever the model wrote.

use super::{bullets, clip, facts, json_call, numbers_in};
use crate::model::{Call, Reframed};
use crate::prompts::PromptVersion;
use catalyst_shared::Result;
use catalyst_shared::llm::LanguageModel;
use serde_json::json;

/// At most this many achievements per report.
pub const MAX_ITEMS: usize = 4;

/// One achievement, and the candidate's own words about it: only numbers in `source`
/// may appear in the rewrite (`text` may itself be a model's summary of a story).
#[derive(Debug, Clone)]
pub struct Achievement {
    pub text: String,
    pub source: String,
}

pub async fn reframe(
    llm: &dyn LanguageModel,
    prompt: &PromptVersion,
    achievements: &[Achievement],
) -> Result<(Vec<Reframed>, Option<Call>)> {
    let items: Vec<&Achievement> = achievements.iter().take(MAX_ITEMS).collect();
    if items.is_empty() {
        return Ok((Vec::new(), None));
    }
    let schema = json!({
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "minItems": items.len(), "maxItems": items.len(),
                "items": {
                    "type": "object",
                    "properties": {"reframed": {"type": "string", "minLength": 10, "maxLength": 180}},
                    "required": ["reframed"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["items"],
        "additionalProperties": false
    });
    let numbered: Vec<String> =
        items.iter().enumerate().map(|(i, a)| format!("{}. {}", i + 1, clip(&a.text, 400))).collect();
    let user = facts(&[
        ("Achievements, in order", numbered.join("\n")),
        (
            "Rules",
            bullets(&[
                "one item per achievement, same order",
                "only numbers that appear in the achievement; otherwise a [placeholder]",
            ]),
        ),
        ("Output", "{\"items\": [{\"reframed\": \"...\"}, ...]}".to_string()),
    ]);
    let (v, call) = json_call(llm, prompt, user, schema).await?;
    let out = items
        .iter()
        .zip(v["items"].as_array().into_iter().flatten())
        .map(|(a, item)| honest(&a.text, &a.source, item["reframed"].as_str().unwrap_or_default()))
        .collect();
    Ok((out, Some(call)))
}

/// `text` with every number that is not in `allowed` replaced by `[X]`.
pub fn scrub_numbers(text: &str, allowed: &[String]) -> String {
    super::number_pattern()
        .replace_all(text, |c: &regex::Captures| {
            let n = c[0].replace(',', "");
            if allowed.contains(&n) { c[0].to_string() } else { "[X]".to_string() }
        })
        .into_owned()
}

/// Replace every number the candidate did not give (in `source`) with `[X]`, and list
/// the placeholders left for the candidate to fill. A bullet without any number gets one
/// placeholder for the outcome, so the candidate is prompted to quantify it.
pub fn honest(original: &str, source: &str, reframed: &str) -> Reframed {
    let allowed = numbers_in(source);
    let mut text = scrub_numbers(&clip(reframed, 180), &allowed);
    if text.trim().is_empty() {
        text = scrub_numbers(&clip(original, 180), &allowed);
    }
    let mut placeholders = placeholders_in(&text);
    if placeholders.is_empty() && numbers_in(&text).is_empty() {
        text = format!("{}, improving [metric] by [X%]", text.trim_end_matches(['.', ' ']));
        placeholders = placeholders_in(&text);
    }
    Reframed { original: original.to_string(), reframed: text, placeholders }
}

fn placeholders_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']') else { break };
        let p = &rest[open..open + close + 1];
        if p.len() <= 32 && !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
        rest = &rest[open + close + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_numbers_become_placeholders() {
        let said = "Rewrote the deploy pipeline; deploys went from 2 hours to 15 minutes";
        let r = honest(said, said, "Cut deploy time from 2 hours to 15 minutes (87% faster) for 40 engineers");
        assert_eq!(r.reframed, "Cut deploy time from 2 hours to 15 minutes ([X]% faster) for [X] engineers");
        assert_eq!(r.placeholders, vec!["[X]"]);
    }

    #[test]
    fn numbers_from_the_candidates_answer_are_allowed() {
        let r = honest(
            "Led the migration",
            "we moved 1,200 services in 6 weeks",
            "Led migration of 1,200 services in 6 weeks",
        );
        assert_eq!(r.reframed, "Led migration of 1,200 services in 6 weeks");
        assert!(r.placeholders.is_empty());
    }

    #[test]
    fn unquantified_bullets_ask_for_a_number() {
        let r = honest("Mentored juniors", "", "Mentored two junior engineers to independence.");
        assert_eq!(r.reframed, "Mentored two junior engineers to independence, improving [metric] by [X%]");
        assert_eq!(r.placeholders, vec!["[metric]", "[X%]"]);
        let r = honest("Improved onboarding", "", "Improved onboarding time by [X%]");
        assert_eq!(r.placeholders, vec!["[X%]"]);
        // An empty model answer keeps the candidate's own words.
        assert!(honest("Shipped search", "", "").reframed.starts_with("Shipped search"));
    }
}
