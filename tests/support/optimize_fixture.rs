//! A synthetic prompt-optimization task where one instruction is known to be better
//! (`tests/e2e/optimize.rs` and the `catalyst optimize` test): a Chat Completions model
//! whose answers depend on the prompt, and turn-log entries as the agent writes them.

use catalyst_agent::engine::turn_log_key;
use catalyst_agent::model::{Action, AgentInputs, AgentOutputs, SynthesisLog};
use catalyst_agent::testing::section;
use catalyst_shared::optimize::{TURNS, grounded_share};
use catalyst_shared::store::{Precondition, SharedDocumentStore};
use catalyst_shared::testkit::openai::{Recorded, Reply};
use serde_json::json;

pub const BETTER: &str = "You are the interviewer in a mock interview, warm and professional. Reply to the candidate's \
last answer in one or two sentences that name one concrete detail of what they did, without grading it and without \
asking any question. Plain text only.";

pub const PLAIN: &str = "You are the interviewer in a mock interview. Reply warmly in one or two sentences, without any \
question and without grading the answer. Plain text only.";

pub const WORKS: &[&str] = &[
    "cut checkout latency from 900 ms to 200 ms by caching the pricing service",
    "migrated billing to the new ledger without downtime over six weekends",
    "rewrote the flaky deployment scripts so releases stopped failing on Fridays",
    "mentored two junior engineers until both shipped features on their own",
    "negotiated the data contract with the payments team after a month of outages",
    "replaced nightly batch exports with streaming, so reports were fresh within minutes",
    "built the on-call runbook that halved our time to recover from incidents",
    "profiled the search indexer and removed the lock that serialised all writes",
    "split the monolith's user module into a service with its own database",
    "automated the compliance evidence collection that took auditors two weeks",
    "designed the retry policy that stopped duplicate charges during network partitions",
    "led the incident review that found the misconfigured load balancer",
];

/// The model, as the test defines it (see the module comment).
pub fn model(r: &Recorded) -> Reply {
    let system = r.system();
    let user = r.user();
    let text = if system.starts_with("[catalyst optimizer opro]") {
        json!({"instructions": BETTER}).to_string()
    } else if system.starts_with("[catalyst optimizer mutate]") {
        json!({"instructions": PLAIN}).to_string()
    } else if system.starts_with("[catalyst judge]") {
        let input = user.split("\n\nOUTPUT:\n").next().unwrap_or("");
        let output = user.split("\n\nOUTPUT:\n").nth(1).unwrap_or("");
        let score = if grounded_share(output, input) >= 0.4 { 9 } else { 5 };
        json!({"score": score, "reason": "graded on specificity"}).to_string()
    } else if system.starts_with("[catalyst prompt synthesis@") {
        let answer = section(&user, "Candidate's answer");
        if system.contains("one concrete detail") {
            let did: Vec<&str> = answer.trim_start_matches("I ").split_whitespace().take(7).collect();
            format!("You {} — that is a clear outcome.", did.join(" "))
        } else if system.contains("ONE WORD") {
            "I'm sorry, but I cannot help with that.".into()
        } else {
            "Thank you for sharing that.".into()
        }
    } else {
        return Reply::Status(400);
    };
    Reply::Text(text)
}

/// Twelve turns as the agent logs them, `hours_ago` before now.
pub async fn log_turns(store: &SharedDocumentStore, hours_ago: i64, interview: &str) {
    for (n, work) in WORKS.iter().enumerate() {
        let at = chrono::Utc::now() - chrono::Duration::hours(hours_ago) + chrono::Duration::seconds(n as i64);
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let answer = format!("I {work}. It mattered because the team depended on it.");
        let question = "Tell me about a time you improved a system.".to_string();
        let inputs = AgentInputs {
            synthesis: Some(SynthesisLog {
                persona: None,
                candidate_name: Some("Ada".into()),
                question: question.clone(),
                answer: answer.clone(),
                action: Action::Next,
            }),
            ..Default::default()
        };
        let outputs = AgentOutputs { synthesis: Some("Thank you for sharing that.".into()), ..Default::default() };
        let entry = json!({
            "uid": "u1", "interview_id": interview, "turn": n + 1, "question": question, "answer": answer,
            "score": 60 + n, "inputs": inputs, "outputs": outputs, "prompts": {"synthesis": 1},
            "calls": [{"agent": "synthesis", "input_tokens": 180, "output_tokens": 20}], "created_at": at,
        });
        let key = turn_log_key(&at, "u1", interview, n as u32 + 1);
        store.put(TURNS, &key, entry, Precondition::Absent, None).await.unwrap();
    }
}
