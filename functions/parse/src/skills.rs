//! Skills matched against the `skill-extractor` gazetteer (about 32,000 skills, MIT),
//! loaded once at cold start, with one Aho-Corasick automaton and word boundaries.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use catalyst_shared::models::ModelSpec;
use catalyst_shared::{Error, Result};
use std::path::Path;

pub const SPEC: ModelSpec = ModelSpec { name: "skills", var: "SKILLS_GAZETTEER", files: &["skills.json"] };

/// Entries that are also everyday words in resumes' prose; outside a skills section
/// they say nothing about the candidate.
const AMBIGUOUS: &[&str] = &[
    "go",
    "r",
    "c",
    "d",
    "e",
    "less",
    "make",
    "swift",
    "rust",
    "spring",
    "express",
    "access",
    "word",
    "excel",
    "lead",
    "leadership",
    "communication",
    "teamwork",
    "management",
    "english",
    "design",
    "research",
    "sales",
    "marketing",
    "writing",
    "planning",
    "testing",
    "support",
    "analysis",
    "operations",
    "training",
    "development",
];

pub struct Gazetteer {
    matcher: AhoCorasick,
    /// Canonical (lowercase) form of each pattern.
    names: Vec<String>,
}

impl std::fmt::Debug for Gazetteer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gazetteer({} skills)", self.names.len())
    }
}

/// A skill found in text: the gazetteer's canonical form and the text as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillMatch {
    pub canonical: String,
    pub surface: String,
    pub start: usize,
}

impl Gazetteer {
    /// Load `skills.json` (a JSON array of strings) from a model directory.
    pub fn load(dir: &Path) -> Result<Gazetteer> {
        let path = dir.join("skills.json");
        let bytes = std::fs::read(&path).map_err(|e| {
            Error::unavailable(format!("cannot read the skills gazetteer {}: {e}; set {}", path.display(), SPEC.var))
                .with_code("model_missing")
        })?;
        let list: Vec<String> = serde_json::from_slice(&bytes).map_err(|e| {
            Error::unavailable(format!("{} is not a JSON list of skills: {e}", path.display()))
                .with_code("model_invalid")
        })?;
        Gazetteer::new(list)
    }

    pub fn new(list: Vec<String>) -> Result<Gazetteer> {
        let mut names: Vec<String> =
            list.into_iter().map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty() && s.len() <= 80).collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Err(Error::unavailable("the skills gazetteer is empty").with_code("model_invalid"));
        }
        let matcher = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&names)
            .map_err(|e| Error::internal("building the skills automaton").with_source(e))?;
        Ok(Gazetteer { matcher, names })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Skills in `text`, in order, once each. `strict` (prose outside a skills section)
    /// drops one-letter skills and words that are ambiguous in running text.
    pub fn find(&self, text: &str, strict: bool) -> Vec<SkillMatch> {
        // The automaton folds ASCII case only; matching the original text keeps byte
        // offsets exact. Gazetteer entries are lowercase, so capitalised non-ASCII
        // letters ("Ö") do not match; the skills that matter are ASCII.
        let hay = text;
        let mut out: Vec<SkillMatch> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for m in self.matcher.find_iter(hay) {
            let (s, e) = (m.start(), m.end());
            if !boundary_before(text, s) || !boundary_after(text, e) {
                continue;
            }
            let canonical = &self.names[m.pattern().as_usize()];
            if strict && (canonical.chars().count() < 2 || AMBIGUOUS.contains(&canonical.as_str())) {
                continue;
            }
            // In prose, a single all-lowercase word is nearly always the ordinary word
            // ("was", "basic", "construction"); people write the skill's own casing
            // (SQL, Python) or a term of several words ("machine learning").
            let surface = &text[s..e];
            if strict && surface.chars().all(|c| c.is_alphabetic() && c.is_lowercase()) {
                continue;
            }
            if seen.insert(canonical.clone()) {
                out.push(SkillMatch { canonical: canonical.clone(), surface: text[s..e].to_string(), start: s });
            }
        }
        out
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn boundary_before(text: &str, at: usize) -> bool {
    let prev = text[..at].chars().next_back();
    let first = text[at..].chars().next();
    match (prev, first) {
        (None, _) => true,
        // ".net" after a letter is part of a domain, not the skill.
        (Some(p), Some(f)) => !(is_word(p) && (is_word(f) || f == '.')) && !(p == '.' && is_word(f)),
        _ => true,
    }
}

fn boundary_after(text: &str, at: usize) -> bool {
    let last = text[..at].chars().next_back();
    let next = text[at..].chars().next();
    match (last, next) {
        (_, None) => true,
        (Some(l), Some(n)) => {
            if is_word(l) && is_word(n) {
                return false;
            }
            // "C" followed by "++"/"#" is a different skill; "node.js" is not "node".
            if is_word(l) && (n == '+' || n == '#') {
                return false;
            }
            if n == '.' {
                return !text[at + 1..].chars().next().is_some_and(is_word);
            }
            true
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g() -> Gazetteer {
        Gazetteer::new(
            ["python", "java", "javascript", "c", "c++", "c#", "spring", "spring boot", "node.js", "go", ".net", "sql"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn longest_match_with_word_boundaries() {
        let found: Vec<String> = g()
            .find("Java, JavaScript, Spring Boot, C++, C#, C, Node.js, .NET, MySQLx", false)
            .into_iter()
            .map(|m| m.surface)
            .collect();
        assert_eq!(found, ["Java", "JavaScript", "Spring Boot", "C++", "C#", "C", "Node.js", ".NET"]);
    }

    #[test]
    fn strict_mode_drops_ambiguous_words() {
        let found: Vec<String> =
            g().find("I like to go to Python meetups in C.", true).into_iter().map(|m| m.canonical).collect();
        assert_eq!(found, ["python"]);
        let found: Vec<String> = g()
            .find("Our sql was slow; I moved it to SQL views and spring boot jobs.", true)
            .into_iter()
            .map(|m| m.surface)
            .collect();
        assert_eq!(found, ["SQL", "spring boot"]);
    }
}
