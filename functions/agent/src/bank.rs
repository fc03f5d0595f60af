//! The question bank: questions the team wrote, tagged by kind, competency, seniority and
//! role family (`data/question_bank.toml`, compiled into the binary), and its embedding
//! index, kept in blob storage and loaded at cold start.

use crate::index::VectorIndex;
use catalyst_shared::blob::{PutOptions, SharedBlobStore};
use catalyst_shared::evaluation::Evaluator;
use catalyst_shared::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The bank as written by the team.
pub const BANK_TOML: &str = include_str!("../data/question_bank.toml");

pub const BEHAVIORAL_COMPETENCIES: &[&str] = &[
    "leadership",
    "ownership",
    "collaboration",
    "conflict-resolution",
    "communication",
    "problem-solving",
    "adaptability",
    "customer-focus",
    "delivery",
    "learning",
    "influence",
    "mentoring",
    "prioritization",
    "decision-making",
    "stakeholder-management",
];

pub const TECHNICAL_COMPETENCIES: &[&str] = &[
    "system-design",
    "coding",
    "debugging",
    "testing",
    "data-modeling",
    "cloud-infrastructure",
    "security",
    "performance",
    "machine-learning",
    "data-engineering",
    "frontend",
    "api-design",
    "reliability",
    "architecture",
];

pub const SENIORITIES: &[&str] = &["junior", "mid", "senior", "staff"];

pub const ROLE_FAMILIES: &[&str] = &[
    "software-engineering",
    "frontend",
    "backend",
    "data",
    "ml",
    "devops-sre",
    "security",
    "product",
    "design",
    "management",
    "qa",
    "any",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Behavioral,
    Technical,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BankQuestion {
    pub id: String,
    pub kind: Kind,
    pub competency: String,
    pub seniority: Vec<String>,
    pub roles: Vec<String>,
    #[serde(default)]
    pub skills: Vec<String>,
    pub text: String,
}

impl BankQuestion {
    /// What is embedded: the question with its competency, so retrieval by competency
    /// description and job text lands on the right questions.
    pub fn embedding_text(&self) -> String {
        format!("{} ({}) {}", self.text, self.competency.replace('-', " "), self.skills.join(", "))
    }

    pub fn fits_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == "any" || r == role)
    }
}

#[derive(Debug, Deserialize)]
struct BankFile {
    question: Vec<BankQuestion>,
}

/// Parse and check a bank: unique ids, known tags, sensible text.
pub fn parse(toml_text: &str) -> Result<Vec<BankQuestion>> {
    let file: BankFile = toml::from_str(toml_text)
        .map_err(|e| Error::internal(format!("question bank does not parse: {e}")).with_code("invalid_bank"))?;
    let bad = |msg: String| Error::internal(msg).with_code("invalid_bank");
    let mut seen = std::collections::HashSet::new();
    for q in &file.question {
        if !seen.insert(q.id.as_str()) {
            return Err(bad(format!("question id `{}` appears twice", q.id)));
        }
        let competencies = match q.kind {
            Kind::Behavioral => BEHAVIORAL_COMPETENCIES,
            Kind::Technical => TECHNICAL_COMPETENCIES,
        };
        if !competencies.contains(&q.competency.as_str()) {
            return Err(bad(format!("question `{}`: unknown competency `{}`", q.id, q.competency)));
        }
        if q.seniority.is_empty() || q.seniority.iter().any(|s| !SENIORITIES.contains(&s.as_str())) {
            return Err(bad(format!("question `{}`: seniority must be from {SENIORITIES:?}", q.id)));
        }
        if q.roles.is_empty() || q.roles.iter().any(|r| !ROLE_FAMILIES.contains(&r.as_str())) {
            return Err(bad(format!("question `{}`: roles must be from {ROLE_FAMILIES:?}", q.id)));
        }
        let len = q.text.trim().chars().count();
        if !(15..=400).contains(&len) {
            return Err(bad(format!("question `{}`: text must be 15-400 characters", q.id)));
        }
    }
    Ok(file.question)
}

/// The bank with its embeddings, ready for retrieval.
pub struct QuestionBank {
    pub questions: Vec<BankQuestion>,
    pub index: VectorIndex,
    /// Blob key the index was loaded from or written to.
    pub index_key: String,
}

/// Where the index of this bank, embedded by this model, lives: a new bank or model
/// gets a new key, so a stale index is never used.
pub fn index_key(toml_text: &str, model_fingerprint: &str) -> String {
    let mut h = Sha256::new();
    h.update(toml_text.as_bytes());
    h.update([0]);
    h.update(model_fingerprint.as_bytes());
    format!("indexes/question-bank/{}.idx", &hex::encode(h.finalize())[..32])
}

impl QuestionBank {
    /// Load the index from blob storage, or embed the bank and store the index (the first
    /// cold start after a bank or model change; `catalyst` can also build it ahead).
    pub async fn load_or_build(
        toml_text: &str,
        blob: &SharedBlobStore,
        evaluator: &std::sync::Arc<Evaluator>,
        model_fingerprint: &str,
    ) -> Result<QuestionBank> {
        let questions = parse(toml_text)?;
        let key = index_key(toml_text, model_fingerprint);
        match blob.get(&key).await {
            Ok(obj) => {
                let index = VectorIndex::from_bytes(&obj.data)?;
                if index.len() == questions.len() {
                    tracing::info!(key = %key, questions = questions.len(), "question bank index loaded");
                    return Ok(QuestionBank { questions, index, index_key: key });
                }
                tracing::warn!(key = %key, "question bank index does not match the bank; rebuilding");
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let started = std::time::Instant::now();
        let texts: Vec<String> = questions.iter().map(BankQuestion::embedding_text).collect();
        let ev = evaluator.clone();
        let vectors = tokio::task::spawn_blocking(move || ev.embedder().embed(&texts))
            .await
            .map_err(|e| Error::internal("embedding task failed").with_source(e))??;
        let index = VectorIndex::build(vectors)?;
        // Another instance may be writing the same index: the same bytes, so whoever wins is right.
        match blob
            .put(
                &key,
                index.to_bytes().into(),
                PutOptions { content_type: Some("application/octet-stream".into()), if_absent: true },
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Conflict => {}
            // Read-only storage still serves: the index is in memory.
            Err(e) => tracing::warn!(key = %key, error = %e, "could not store the question bank index"),
        }
        tracing::info!(key = %key, questions = questions.len(), elapsed_ms = started.elapsed().as_millis() as u64,
            "question bank embedded");
        Ok(QuestionBank { questions, index, index_key: key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_bank_is_large_varied_and_well_tagged() {
        let bank = parse(BANK_TOML).unwrap();
        assert!(bank.len() >= 300, "{} questions", bank.len());
        let behavioral = bank.iter().filter(|q| q.kind == Kind::Behavioral).count();
        let technical = bank.len() - behavioral;
        assert!(behavioral >= 120 && technical >= 120, "{behavioral} behavioral, {technical} technical");
        let mut per_competency: HashMap<&str, usize> = HashMap::new();
        for q in &bank {
            *per_competency.entry(q.competency.as_str()).or_default() += 1;
        }
        for c in BEHAVIORAL_COMPETENCIES.iter().chain(TECHNICAL_COMPETENCIES) {
            assert!(per_competency.get(c).copied().unwrap_or(0) >= 5, "too few questions for {c}");
        }
        for level in SENIORITIES {
            let n = bank.iter().filter(|q| q.seniority.iter().any(|s| s == level)).count();
            assert!(n >= 30, "{n} questions for {level}");
        }
        for role in ROLE_FAMILIES.iter().filter(|r| **r != "any") {
            let n = bank.iter().filter(|q| q.roles.iter().any(|r| r == role)).count();
            assert!(n >= 10, "{n} questions name role family {role}");
        }
        // No two questions say the same thing in the same words.
        let mut texts = std::collections::HashSet::new();
        for q in &bank {
            assert!(texts.insert(q.text.to_lowercase()), "duplicate text: {}", q.text);
        }
    }

    #[test]
    fn bad_banks_are_refused_with_the_reason() {
        let q = |id: &str, competency: &str| {
            format!(
                "[[question]]\nid = \"{id}\"\nkind = \"behavioral\"\ncompetency = \"{competency}\"\nseniority = [\"mid\"]\nroles = [\"any\"]\ntext = \"Tell me about a time you led a project.\"\n"
            )
        };
        assert_eq!(parse(&q("a", "leadership")).unwrap().len(), 1);
        let twice = format!("{}{}", q("a", "leadership"), q("a", "ownership"));
        assert!(parse(&twice).unwrap_err().message().contains("appears twice"));
        assert!(parse(&q("a", "juggling")).unwrap_err().message().contains("unknown competency"));
        assert!(parse("not toml [").unwrap_err().message().contains("does not parse"));
    }

    #[test]
    fn index_keys_follow_bank_and_model() {
        let a = index_key("bank", "minilm:1");
        assert!(a.starts_with("indexes/question-bank/") && a.ends_with(".idx"));
        assert_ne!(a, index_key("bank2", "minilm:1"));
        assert_ne!(a, index_key("bank", "minilm:2"));
        assert_eq!(a, index_key("bank", "minilm:1"));
    }
}
