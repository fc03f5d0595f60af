//! Scripted replies for each agent, served by [`ScriptedOpenAi`] over the real Chat
//! Completions protocol: the agent is found from the prompt's name line, and the reply is
//! built from what the request carries (the planned question ids, the answer, the
//! achievements), the way a model would. Used by the unit tests, the end-to-end tests and
//! the turn-overhead benchmark.

use catalyst_shared::llm::LanguageModel;
use catalyst_shared::testkit::openai::{Recorded, Reply, ScriptedOpenAi};
use serde_json::{Value, json};
use std::sync::Arc;

/// Which agent sent the request (`[catalyst prompt synthesis@v1]`).
pub fn agent_of(r: &Recorded) -> String {
    let s = r.system();
    s.strip_prefix("[catalyst prompt ").and_then(|rest| rest.split('@').next()).unwrap_or("").to_string()
}

/// The block of a user message under `label:`.
pub fn section(user: &str, label: &str) -> String {
    let head = format!("{label}:\n");
    let Some(start) = user.find(&head) else { return String::new() };
    let rest = &user[start + head.len()..];
    rest.split("\n\n").next().unwrap_or("").to_string()
}

/// A plausible, grounded reply for each agent.
pub fn reply(r: &Recorded) -> Reply {
    if r.system().starts_with("[catalyst judge]") {
        return Reply::Text(json!({"score": 7, "reason": "Meets most of the rubric."}).to_string());
    }
    let user = r.user();
    let v = match agent_of(r).as_str() {
        "context" => {
            let ids: Vec<String> = r
                .schema()
                .and_then(|s| s.pointer("/properties/questions/items/properties/id/enum"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let planned = section(&user, "PLANNED QUESTIONS");
            let questions: Vec<Value> = ids
                .iter()
                .map(|id| {
                    let line = planned.lines().find(|l| l.contains(&format!("id {id}:"))).unwrap_or("");
                    let text = line.split_once("] ").map(|(_, t)| t).unwrap_or("Tell me about your work.");
                    json!({"id": id, "text": format!("Given your background, {}", lower_first(text))})
                })
                .collect();
            json!({"summary": "A candidate whose resume matches much of the job, with gaps to probe.", "questions": questions})
        }
        "evaluator" => json!({"score": 70, "strengths": ["You named your own actions clearly."],
            "improvements": ["Say what changed because of your work, with a number."]}),
        "story" => {
            let answer = section(&user, "Candidate's answer");
            let sentences: Vec<&str> =
                answer.split_inclusive(['.', '!']).map(str::trim).filter(|s| !s.is_empty()).collect();
            let action = sentences.iter().find(|s| s.starts_with("I ")).copied().unwrap_or("");
            let result = if sentences.len() > 1 { sentences.last().copied().unwrap_or("") } else { "" };
            let metrics: Vec<String> = crate::agents::numbers_in(result).into_iter().map(|n| n.to_string()).collect();
            let title: String = answer.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
            json!({"title": if title.len() < 3 { "An answer".to_string() } else { title },
                "situation": sentences.first().copied().unwrap_or(""), "task": "",
                "action": action, "result": result, "metrics": metrics})
        }
        "orchestrator" => {
            let probe = section(&user, "Probe");
            let q = if probe.contains("no result") {
                "What was the outcome of that work, and how did you measure it?"
            } else if probe.contains("number") {
                "Can you put a number on that improvement?"
            } else if probe.contains("'we'") {
                "What did you personally do there?"
            } else {
                "Could you walk me through that in more detail?"
            };
            json!({"question": q})
        }
        "synthesis" => return Reply::Text("Thank you, that was a clear example. I appreciate the detail.".into()),
        "reframe" => {
            let list = section(&user, "Achievements, in order");
            let items: Vec<Value> = list
                .lines()
                .filter_map(|l| l.split_once(". ").map(|(_, t)| t))
                // An invented number, so the honesty check has something to catch.
                .map(|t| {
                    let t: String = t.trim_end_matches('.').chars().take(120).collect();
                    json!({"reframed": format!("Delivered: {t} (a 437% improvement)")})
                })
                .collect();
            json!({"items": items})
        }
        other => json!({"error": format!("unknown agent `{other}`")}),
    };
    Reply::Text(v.to_string())
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The scripted server and an LLM client pointed at it through `LLM_*` configuration.
pub async fn scripted_llm(
    script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
) -> (ScriptedOpenAi, Arc<dyn LanguageModel>) {
    let server = ScriptedOpenAi::start(script).await;
    let llm = server.client(1).await;
    (server, llm)
}

/// The turn-log entry of turn `n` of interview `id` (its key starts with the turn's time).
pub async fn logged(store: &catalyst_shared::store::SharedDocumentStore, uid: &str, id: &str, n: u32) -> Option<Value> {
    let suffix = format!("/{uid}/{id}/{n:05}");
    let mut after: Option<String> = None;
    loop {
        let page = store.query_prefix(crate::engine::TURNS, "", after.as_deref(), 500).await.ok()?;
        if let Some(d) = page.documents.iter().find(|d| d.key.ends_with(&suffix)) {
            return Some(d.value.clone());
        }
        after = Some(page.next?);
    }
}
