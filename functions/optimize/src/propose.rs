//! Candidate prompts for one agent: an LLM rewrite that sees earlier versions with their
//! scores and the turns the current one did worst on (OPRO), an LLM mutation of the
//! current prompt by one named operator (the PromptBreeder-style mutation), and the
//! current prompt with few-shot examples from the best-rated turns (DSPy's bootstrap).

use catalyst_shared::Result;
use catalyst_shared::llm::{LanguageModel, Message, Request, complete_json};
use catalyst_shared::optimize::{Spend, clip_chars as clip};
use serde_json::json;

/// One logged turn as the evaluation set holds it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Item {
    /// Turn-log key.
    pub key: String,
    pub question: String,
    pub answer: String,
    /// What the agent wrote on that turn (text or JSON).
    pub output: String,
    /// The turn's evaluator score (0-100).
    pub score: Option<f64>,
    /// The candidate's rating (1-5), when they gave one.
    pub rating: Option<f64>,
    /// Tokens the agent's call took on that turn.
    pub tokens: Option<u64>,
    /// The candidate's name where the turn log has it, for scrubbing examples.
    #[serde(default)]
    pub names: Vec<String>,
}

impl Item {
    /// How good the turn was: the candidate's rating where there is one (scaled to 0-100),
    /// else the evaluator's score.
    pub fn quality(&self) -> f64 {
        self.rating.map(|r| r * 20.0 - 10.0).or(self.score).unwrap_or(0.0)
    }
}

/// A prompt version with the score it earned, for the OPRO trajectory.
#[derive(Debug, Clone)]
pub struct Scored {
    pub label: String,
    pub system: String,
    pub score: Option<f64>,
}

/// What a good output of each agent does: what the judge grades and what rewrites aim at.
pub fn rubric(agent: &str) -> &'static str {
    match agent {
        "synthesis" => {
            "A warm, professional spoken reply of one or two sentences that refers to something specific the \
candidate said; it does not grade the answer, asks no question and has no markup."
        }
        "story" => {
            "The STAR story the candidate told: situation, task, the candidate's own actions and the result, only \
from what they said; a part they did not say stays empty; numbers exactly as they said them."
        }
        "orchestrator" => {
            "One short follow-up question in the interviewer's voice that probes exactly the named gap and refers \
to what the candidate said; no feedback and no answer."
        }
        "evaluator" => {
            "A fair 0-100 score of the answer for this job, consistent with the measured facts, with at most two \
strengths and two improvements that each cite what the candidate actually said."
        }
        _ => "Does the agent's job well, grounded only in its input, in the output format it was asked for.",
    }
}

/// Agents whose output is JSON: a rewrite must keep saying so.
pub fn replies_in_json(agent: &str) -> bool {
    matches!(agent, "story" | "orchestrator" | "evaluator" | "context" | "reframe")
}

const MUTATIONS: &[&str] = &[
    "Make the instructions more specific about what a strong output contains.",
    "Shorten the instructions; keep every rule and the output format.",
    "Add one rule that prevents the most common weakness visible in the examples.",
    "Rewrite the instructions in a direct, imperative style, one rule per sentence.",
];

fn schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {"instructions": {"type": "string", "minLength": 80, "maxLength": 2500}},
        "required": ["instructions"],
        "additionalProperties": false
    })
}

/// Candidates' words on their way into a prompt lose what identifies them: e-mail
/// addresses, links, phone numbers and their name. (A prompt is shared by every
/// interview and kept in the registry; the turn log is not.)
pub fn scrub(text: &str, names: &[String]) -> String {
    static PATTERNS: std::sync::OnceLock<[(regex::Regex, &'static str); 3]> = std::sync::OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        // Valid by construction.
        let re = |p: &str| regex::Regex::new(p).expect("scrub pattern compiles");
        [
            (re(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
            (re(r#"(?i)\b(?:https?://|www\.)[^\s)\]>,;"']+"#), "[link]"),
            (re(r"\+?\d[\d ().-]{7,}\d"), "[phone]"),
        ]
    });
    let mut out = text.to_string();
    for (re, with) in patterns {
        out = re.replace_all(&out, *with).into_owned();
    }
    for part in names.iter().flat_map(|n| n.split_whitespace()).filter(|p| p.chars().count() >= 2) {
        out = out.replace(part, "[name]");
    }
    out
}

fn example_block(items: &[&Item]) -> String {
    items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            format!(
                "Example {}\nQuestion: {}\nCandidate's answer: {}\nOutput: {}",
                i + 1,
                clip(&scrub(&it.question, &it.names), 200),
                clip(&scrub(&it.answer, &it.names), 300),
                clip(&scrub(&it.output, &it.names), 300)
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A rewrite as it may be used: no name line the model echoed, the output format kept.
pub fn tidy(agent: &str, text: &str) -> String {
    let mut t = text.trim().to_string();
    if t.starts_with("[catalyst prompt") {
        t = t.split_once('\n').map(|(_, rest)| rest.trim().to_string()).unwrap_or_default();
    }
    if replies_in_json(agent) && !t.contains("JSON") {
        t.push_str(" Reply with JSON only.");
    }
    t
}

async fn ask(llm: &dyn LanguageModel, system: &str, user: String) -> Result<(String, Spend)> {
    let request = Request::new(vec![Message::user(user)])
        .system(system)
        .max_tokens(900)
        .temperature(0.8)
        .schema("instructions", schema());
    let (v, completion) = complete_json(llm, &request).await?;
    Ok((v["instructions"].as_str().unwrap_or_default().to_string(), Spend::of(completion.usage)))
}

/// OPRO: earlier versions with their scores (best last, as the paper orders them) and
/// the lowest-rated recent turns; the model writes a better version.
pub async fn opro(
    llm: &dyn LanguageModel,
    agent: &str,
    trajectory: &[Scored],
    worst: &[&Item],
) -> Result<(String, Spend)> {
    let mut versions: Vec<&Scored> = trajectory.iter().collect();
    versions.sort_by(|a, b| a.score.unwrap_or(-1.0).total_cmp(&b.score.unwrap_or(-1.0)));
    let history = versions
        .iter()
        .map(|s| {
            let score = s.score.map(|x| format!("score {x:.2}")).unwrap_or_else(|| "score not measured".into());
            format!("--- {} ({score})\n{}", s.label, s.system)
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    let user = format!(
        "AGENT: {agent}\n\nWHAT A GOOD OUTPUT DOES:\n{}\n\nEARLIER INSTRUCTIONS WITH THEIR SCORES (0-1, higher is better):\n{history}\n\n\
RECENT TURNS WITH THE LOWEST RATINGS OR SCORES (what the agent wrote):\n{}\n\n\
Write new instructions for this agent that would score higher than all of the above. Keep its job and its output format; \
do not include examples or facts about any candidate.",
        rubric(agent),
        example_block(worst)
    );
    let system = "[catalyst optimizer opro]\nYou improve the instructions (system prompt) of one agent of a mock-interview \
platform, learning from earlier instructions and their measured scores. Reply with JSON only.";
    let (text, spend) = ask(llm, system, user).await?;
    Ok((tidy(agent, &text), spend))
}

/// One mutation operator, picked by `pick` (the run and agent choose it, so a rerun of
/// the same run asks the same thing).
pub async fn mutate(llm: &dyn LanguageModel, agent: &str, current: &str, pick: u64) -> Result<(String, Spend)> {
    let operator = MUTATIONS[(pick % MUTATIONS.len() as u64) as usize];
    let user = format!(
        "AGENT: {agent}\n\nWHAT A GOOD OUTPUT DOES:\n{}\n\nCURRENT INSTRUCTIONS:\n{current}\n\nEDIT: {operator}",
        rubric(agent)
    );
    let system = "[catalyst optimizer mutate]\nYou edit the instructions (system prompt) of one agent of a \
mock-interview platform as asked, keeping its job and output format. Reply with JSON only.";
    let (text, spend) = ask(llm, system, user).await?;
    Ok((tidy(agent, &text), spend))
}

/// The current prompt with the best turns as worked examples (no LLM call).
pub fn bootstrap(current: &str, best: &[&Item]) -> Option<String> {
    if best.is_empty() {
        return None;
    }
    Some(format!(
        "{}\n\nExamples of strong work from earlier interviews (the input, then what you wrote):\n\n{}",
        current.trim(),
        example_block(best)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_keep_the_output_contract_and_lose_echoed_name_lines() {
        assert_eq!(tidy("story", "[catalyst prompt story@v2]\nExtract it."), "Extract it. Reply with JSON only.");
        assert_eq!(tidy("story", "Extract it. Reply in JSON."), "Extract it. Reply in JSON.");
        assert_eq!(tidy("synthesis", " Be warm. "), "Be warm.");
    }

    #[test]
    fn bootstrap_appends_examples_and_quality_prefers_ratings() {
        let it = |rating, score| Item {
            key: "k".into(),
            question: "Tell me about a conflict.".into(),
            answer: "I mediated.".into(),
            output: "Thanks.".into(),
            score,
            rating,
            tokens: None,
            names: vec!["Ada Okafor".into()],
        };
        assert_eq!(it(Some(5.0), Some(10.0)).quality(), 90.0);
        assert_eq!(it(None, Some(70.0)).quality(), 70.0);
        let a = it(None, Some(70.0));
        let p = bootstrap("Be warm.", &[&a]).unwrap();
        assert!(p.starts_with("Be warm.\n\nExamples of strong work"));
        assert!(p.contains(
            "Example 1\nQuestion: Tell me about a conflict.\nCandidate's answer: I mediated.\nOutput: Thanks."
        ));
        assert_eq!(bootstrap("Be warm.", &[]), None);
    }

    #[test]
    fn examples_lose_what_identifies_the_candidate() {
        let names = vec!["Ada Okafor".to_string()];
        let text = "I'm Ada Okafor (ada.okafor@example.com, +44 20 7946 0958, https://ada.dev/cv); \
                    Okafor's team cut p99 from 900 ms to 120 ms in 2023.";
        assert_eq!(
            scrub(text, &names),
            "I'm [name] [name] ([email], [phone], [link]); [name]'s team cut p99 from 900 ms to 120 ms in 2023."
        );
    }
}
