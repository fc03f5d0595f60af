//! The skills gazetteer (PyPI `skill-extractor`'s `skills.json`, the same list `parse`
//! uses): finds skill names in a job description and in an answer.
//!
//! Many skills are also everyday words (`go`, `react`, `excel`, `aim`). Those match only
//! where the text marks them as names: capitalised mid-sentence (`we used React`) or in
//! capitals (`AWS`), never `we had to go live`.

use crate::{Error, Result};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::evaluation::text::{Kind, tokenize};

/// One skill: its canonical (gazetteer) name and its word sequence.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    words: Vec<String>,
    /// An everyday word too: match only when written as a name.
    ambiguous: bool,
}

pub struct Gazetteer {
    by_first: HashMap<String, Vec<Entry>>,
    len: usize,
}

impl Gazetteer {
    /// Load `skills.json` (a JSON array of lowercase skill names). `is_common_word` says
    /// whether a single word is everyday English (the evaluator passes the embedding
    /// tokenizer's whole-word vocabulary).
    pub fn load(path: &Path, is_common_word: impl Fn(&str) -> bool) -> Result<Gazetteer> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::unavailable(format!(
                "skills gazetteer not readable at {}: {e}. Run `catalyst models fetch` or set SKILLS_GAZETTEER",
                path.display()
            ))
            .with_code("model_missing")
        })?;
        let names: Vec<String> = serde_json::from_slice(&bytes).map_err(|e| {
            Error::unavailable(format!("skills gazetteer at {} is not a JSON list of names: {e}", path.display()))
                .with_code("model_invalid")
        })?;
        Ok(Self::from_names(names, is_common_word))
    }

    pub fn from_names(names: impl IntoIterator<Item = String>, is_common_word: impl Fn(&str) -> bool) -> Gazetteer {
        let mut by_first: HashMap<String, Vec<Entry>> = HashMap::new();
        let mut len = 0;
        for name in names {
            let name = name.trim().to_lowercase();
            let words = skill_words(&name);
            if words.is_empty() {
                continue;
            }
            let single = words.len() == 1;
            let w0 = &words[0];
            let alpha = w0.chars().all(|c| c.is_ascii_alphabetic());
            // Short acronyms (`aim`, `art`) and everyday words need name-like writing.
            let ambiguous = single && alpha && (w0.len() <= 3 || (w0.len() <= 6 && is_common_word(w0)));
            by_first.entry(words[0].clone()).or_default().push(Entry { name, words, ambiguous });
            len += 1;
        }
        // Longest first, so `machine learning` wins over `machine`.
        for v in by_first.values_mut() {
            v.sort_by(|a, b| b.words.len().cmp(&a.words.len()).then_with(|| a.name.cmp(&b.name)));
        }
        Gazetteer { by_first, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The skills named in `text`, each once, in order of first mention, written as the
    /// text first writes them (`AWS`, `Kubernetes`).
    pub fn find(&self, text: &str) -> Vec<String> {
        let words = text_words(text);
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let mut matched = 0;
            if let Some(cands) = self.by_first.get(&words[i].norm) {
                for e in cands {
                    let n = e.words.len();
                    if i + n <= words.len()
                        && e.words.iter().zip(&words[i..i + n]).all(|(a, b)| *a == b.norm)
                        && words[i..i + n].windows(2).all(|p| p[1].adjacent)
                        && (!e.ambiguous || words[i].name_like)
                    {
                        let surface = text[words[i].start..words[i + n - 1].end].to_string();
                        if !out.iter().any(|o| o.eq_ignore_ascii_case(&surface)) {
                            out.push(surface);
                        }
                        matched = n;
                        break;
                    }
                }
            }
            i += matched.max(1);
        }
        out
    }
}

/// The words of a skill name as text tokens compare them (`.NET` keeps its dot).
fn skill_words(name: &str) -> Vec<String> {
    text_words(name).into_iter().map(|w| w.norm).collect()
}

struct Word {
    norm: String,
    /// Byte range in the text (the dot of `.NET` included).
    start: usize,
    end: usize,
    /// No punctuation between this word and the previous one.
    adjacent: bool,
    /// Written as a name: all capitals (`AWS`), or capitalised and not first in its sentence.
    name_like: bool,
}

fn text_words(text: &str) -> Vec<Word> {
    let tokens = tokenize(text);
    let mut out = Vec::new();
    let mut sentence_start = true;
    let mut prev_word = false;
    for t in &tokens {
        if t.kind == Kind::Punct {
            if matches!(t.norm.as_str(), "." | "!" | "?" | "…" | ":" | "\n") {
                sentence_start = true;
            }
            prev_word = false;
            continue;
        }
        let raw = &text[t.start..t.end];
        // `.NET`, `.js`: a dot glued to the front of a word is part of the name.
        let dotted = t.start > 0
            && text[..t.start].ends_with('.')
            && (t.start == 1 || text[..t.start - 1].ends_with(char::is_whitespace));
        let norm = if dotted { format!(".{}", t.norm) } else { t.norm.clone() };
        let letters: Vec<char> = raw.chars().filter(|c| c.is_alphabetic()).collect();
        let all_caps = letters.len() >= 2 && letters.iter().all(|c| c.is_uppercase());
        let capitalised = letters.first().is_some_and(|c| c.is_uppercase());
        let name_like = all_caps || (capitalised && !sentence_start) || dotted;
        let start = if dotted { t.start - 1 } else { t.start };
        out.push(Word { norm, start, end: t.end, adjacent: prev_word, name_like });
        sentence_start = false;
        prev_word = true;
    }
    out
}

/// Required skills against those an answer shows: each required skill matched by name
/// (case-insensitive, whole words).
pub fn shown_in(required: &[String], answer_skills: &[String], answer: &str) -> (Vec<String>, Vec<String>) {
    let answer_norm: Vec<String> = text_words(answer).into_iter().map(|w| w.norm).collect();
    let mut shown = BTreeSet::new();
    let mut missed = Vec::new();
    for r in required {
        let words = skill_words(r);
        let present = answer_skills.iter().any(|s| s.eq_ignore_ascii_case(r))
            || (!words.is_empty() && answer_norm.windows(words.len()).any(|w| w == words.as_slice()));
        if present {
            shown.insert(r.clone());
        } else {
            missed.push(r.clone());
        }
    }
    (required.iter().filter(|r| shown.contains(*r)).cloned().collect(), missed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaz() -> Gazetteer {
        let names = [
            "go",
            "react",
            "aws",
            "python",
            "machine learning",
            "machine",
            ".net",
            "c++",
            "node.js",
            "leadership",
            "aim",
            "kubernetes",
        ];
        let common = ["go", "react", "python", "machine", "leadership", "aim"];
        Gazetteer::from_names(names.iter().map(|s| s.to_string()), |w| common.contains(&w))
    }

    #[test]
    fn everyday_words_match_only_as_names() {
        let g = gaz();
        assert_eq!(g.find("We had to go live; I aim to react fast."), Vec::<String>::new());
        assert_eq!(g.find("I wrote it in Go and React on AWS."), vec!["Go", "React", "AWS"]);
        assert_eq!(g.find("React is what I know."), Vec::<String>::new());
        assert_eq!(
            g.find("Strong leadership and machine learning, with Python and kubernetes."),
            vec!["leadership", "machine learning", "Python", "kubernetes"]
        );
        assert_eq!(g.find("We ported it from .NET to C++ and Node.js."), vec![".NET", "C++", "Node.js"]);
        // A comma breaks `machine learning`; `machine` (longer than the everyday-word
        // cut-off) then matches alone.
        assert_eq!(g.find("machine, learning"), vec!["machine"]);
    }

    #[test]
    fn required_skills_are_split_into_shown_and_missed() {
        let req = vec!["Kubernetes".to_string(), "Terraform".to_string(), "CI/CD".to_string()];
        let (shown, missed) = shown_in(&req, &[], "I moved our CI/CD to GitHub Actions and ran it on kubernetes.");
        assert_eq!(shown, vec!["Kubernetes", "CI/CD"]);
        assert_eq!(missed, vec!["Terraform"]);
    }
}
