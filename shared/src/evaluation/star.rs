//! STAR coverage: which sentences carry the Situation, the Task, the candidate's own
//! Actions and the Result.
//!
//! Each sentence is scored per component from two signals: its embedding against
//! prototype sentences of that component, and cue phrases (`my role was`, `as a
//! result`, `I` + a past-tense verb). Neither alone is reliable — embeddings confuse a
//! task with an action, cues miss paraphrase — together they agree with a human
//! marker on the development set (see `testdata/dev_set.json`).

use serde::Serialize;

use crate::evaluation::embed::cosine;
use crate::evaluation::text::{Kind, Token, tokenize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Situation,
    Task,
    Action,
    Result,
}

pub const COMPONENTS: [Component; 4] = [Component::Situation, Component::Task, Component::Action, Component::Result];

impl Component {
    pub fn name(self) -> &'static str {
        match self {
            Component::Situation => "situation",
            Component::Task => "task",
            Component::Action => "action",
            Component::Result => "result",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// Prototype sentences per component, embedded once at start-up.
pub const PROTOTYPES: [(Component, &[&str]); 4] = [
    (
        Component::Situation,
        &[
            "At my previous company our team was facing a serious problem.",
            "The context was a product launch with a very tight deadline.",
            "We had a major outage affecting customers last year.",
            "When I joined, the project was behind schedule and over budget.",
            "Our biggest client was unhappy and threatening to leave.",
        ],
    ),
    (
        Component::Task,
        &[
            "My responsibility was to fix the problem before the deadline.",
            "I was asked to lead the project and deliver it on time.",
            "My goal was to reduce the number of customer complaints.",
            "I was tasked with finding the root cause of the failures.",
            "I needed to convince the stakeholders to change the plan.",
        ],
    ),
    (
        Component::Action,
        &[
            "I analyzed the data and identified the root cause.",
            "I built a prototype and tested it with users.",
            "I organized a meeting with both teams and proposed a compromise.",
            "I wrote a detailed plan and split the work into milestones.",
            "I automated the deployment process and added monitoring.",
        ],
    ),
    (
        Component::Result,
        &[
            "As a result, we reduced costs by thirty percent.",
            "The project shipped on time and customer satisfaction improved.",
            "In the end the client renewed the contract.",
            "This cut the processing time from two days to four hours.",
            "I learned to communicate earlier, and the team adopted the process.",
        ],
    ),
];

const SITUATION_CUES: &[&str] = &[
    "at my previous",
    "at my last",
    "in my previous",
    "in my last",
    "when i was",
    "when i joined",
    "the situation",
    "the context",
    "the problem was",
    "the challenge was",
    "there was a",
    "we were facing",
    "we had a",
    "our team was",
    "the company was",
    "back in",
    "a few years ago",
    "last year",
    "years ago",
    "was struggling",
    "were struggling",
    "was behind",
    "were behind",
    "at the time",
    "i was working",
    "i worked at",
    "while i was",
    "when our",
    "when we",
    "nobody owned",
    "was struggling",
    "last quarter",
    "last spring",
    "last summer",
    "in my first",
];
/// How a scene-setting sentence tends to open (`At a logistics startup, ...`,
/// `During my first month, ...`); counted only early in the answer.
const SITUATION_OPENERS: &[&str] = &[
    "at ",
    "in ",
    "during ",
    "when ",
    "while ",
    "last ",
    "halfway",
    "two ",
    "three ",
    "a few ",
    "before ",
    "early ",
    "earlier ",
    "back ",
    "my first ",
    "on my ",
    "a while ago",
];
const TASK_CUES: &[&str] = &[
    "my role",
    "my responsibility",
    "i was responsible",
    "i was asked",
    "i was tasked",
    "i was given",
    "my goal",
    "the goal was",
    "our goal was",
    "i needed to",
    "i had to",
    "my job was",
    "my task",
    "the task was",
    "i was charged",
    "i was assigned",
    "i owned",
    "i was in charge",
    "the objective",
    "my objective",
    "i wanted to",
    "i was supposed to",
    "i was expected to",
    "asked me to",
    "wanted me to",
    "needed me to",
    "i volunteered",
    "i set myself",
    "so i decided to",
    "i decided to fix",
    "i took on",
    "i was the only",
    "as the only",
    "i had to",
];
const RESULT_CUES: &[&str] = &[
    "as a result",
    "resulted in",
    "the result",
    "in the end",
    "ultimately",
    "the outcome",
    "which meant",
    "led to",
    "we achieved",
    "i achieved",
    "this reduced",
    "this cut",
    "this increased",
    "this improved",
    "this saved",
    "went from",
    "we ended up",
    "by the end",
    "finally",
    "eventually",
    "since then",
    "we shipped",
    "we delivered",
    "we launched",
    "was adopted",
    "i learned",
    "what i learned",
    "the feedback was",
    "got promoted",
    "renewed",
    "adopted",
    "approved",
    "fell",
    "rose",
    "dropped",
    "doubled",
    "was back",
    "became",
    "is still used",
    "still use",
    "we won",
    "we finished",
    "we closed",
    "we raised",
    "we released",
    "we kept",
    "went ahead",
    "reached",
    "were promoted",
    "was promoted",
    "ran without",
];

/// Irregular past-tense verbs that mark an action (`I led`, `I wrote`).
const IRREGULAR_PAST: &[&str] = &[
    "built",
    "led",
    "wrote",
    "took",
    "made",
    "set",
    "ran",
    "met",
    "sent",
    "brought",
    "began",
    "chose",
    "drove",
    "found",
    "gave",
    "got",
    "held",
    "kept",
    "spoke",
    "taught",
    "told",
    "won",
    "put",
    "split",
    "cut",
    "rewrote",
    "rebuilt",
    "sat",
    "went",
    "did",
    "paired",
    "broke",
    "drew",
    "fought",
    "sought",
    "stood",
    "understood",
    "undertook",
    "oversaw",
    "shut",
    "spun",
    "dug",
    "ate",
    "flew",
    "grew",
    "knew",
    "saw",
    "thought",
    "felt",
    "left",
    "lost",
    "paid",
    "read",
    "said",
    "sold",
    "shot",
    "taught",
];
/// Past-tense forms ending in `-ed` that describe states, not actions.
const NON_ACTION_ED: &[&str] = &["used", "needed", "wanted", "tried", "seemed", "liked", "loved", "hated", "owned"];
const ACTION_PRESENT: &[&str] = &["decide", "build", "lead", "write", "analyze", "analyse", "create", "propose"];

/// Who acts in a sentence: the candidate (`I`), the team (`we`), or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Me,
    We,
    None,
}

/// `I`/`we` followed (within two words, e.g. `I then quickly wrote`) by a past-tense verb.
pub fn actor(tokens: &[Token]) -> Actor {
    let words: Vec<&str> = tokens.iter().filter(|t| t.kind == Kind::Word).map(|t| t.norm.as_str()).collect();
    let mut found = Actor::None;
    for (i, w) in words.iter().enumerate() {
        let who = match *w {
            "i" => Actor::Me,
            "we" => Actor::We,
            _ => continue,
        };
        for v in words.iter().skip(i + 1).take(3) {
            let is_past =
                (v.len() > 3 && v.ends_with("ed") && !NON_ACTION_ED.contains(v)) || IRREGULAR_PAST.contains(v);
            if is_past || ACTION_PRESENT.contains(v) {
                if who == Actor::Me {
                    return Actor::Me;
                }
                found = Actor::We;
                break;
            }
            // `I was`, `we had`: a state, not an action.
            if matches!(*v, "was" | "were" | "had" | "am" | "is" | "are" | "have") {
                break;
            }
        }
    }
    found
}

fn has_cue(lower: &str, cues: &[&str]) -> bool {
    cues.iter().any(|c| {
        lower.match_indices(c).any(|(at, _)| {
            let before_ok = at == 0 || !lower[..at].ends_with(|ch: char| ch.is_alphanumeric());
            let after = &lower[at + c.len()..];
            before_ok && !after.starts_with(|ch: char| ch.is_alphanumeric())
        })
    })
}

/// One sentence's scores per component, 0 to 1.
#[derive(Debug, Clone)]
pub struct SentenceStar {
    pub scores: [f32; 4],
    pub actor: Actor,
}

/// Map a cosine similarity onto 0..1: MiniLM puts unrelated sentences near 0.1 and
/// paraphrases above 0.6.
fn scale_similarity(s: f32) -> f32 {
    ((s - 0.12) / 0.45).clamp(0.0, 1.0)
}

/// Score every sentence. `embeddings[i]` belongs to `sentences[i]`; `prototypes[c]`
/// are the embedded prototype sentences of component `c`; `quantified[i]` says whether
/// sentence `i` states a quantified outcome.
pub fn score_sentences(
    sentences: &[String],
    embeddings: &[Vec<f32>],
    prototypes: &[Vec<Vec<f32>>; 4],
    quantified: &[bool],
) -> Vec<SentenceStar> {
    let n = sentences.len();
    sentences
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let lower = crate::evaluation::text::normalize(s);
            let tokens = tokenize(s);
            let who = actor(&tokens);
            let mut scores = [0f32; 4];
            for c in COMPONENTS {
                let sim = prototypes[c.index()].iter().map(|p| cosine(&embeddings[i], p)).fold(f32::MIN, f32::max);
                let early = n <= 2 || (i as f32) < 0.4 * n as f32;
                let cue = match c {
                    Component::Situation => {
                        has_cue(&lower, SITUATION_CUES)
                            || (early
                                && SITUATION_OPENERS.iter().any(|o| lower.starts_with(o))
                                && !has_cue(&lower, RESULT_CUES))
                    }
                    Component::Task => has_cue(&lower, TASK_CUES),
                    Component::Action => who != Actor::None,
                    Component::Result => has_cue(&lower, RESULT_CUES) || quantified[i],
                };
                let mut v = 0.55 * scale_similarity(sim) + if cue { 0.45 } else { 0.0 };
                // Where a component usually sits: the setting early, the outcome late.
                let pos = if n > 1 { i as f32 / (n - 1) as f32 } else { 0.5 };
                match c {
                    Component::Situation if pos <= 0.34 => v += 0.08,
                    Component::Result if pos >= 0.66 => v += 0.08,
                    Component::Result if quantified[i] => v += 0.15,
                    _ => {}
                }
                scores[c.index()] = v.min(1.0);
            }
            SentenceStar { scores, actor: who }
        })
        .collect()
}

/// A sentence carries a component when its score reaches this.
pub const PRESENT: f32 = 0.5;

/// The answer's STAR coverage.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Star {
    /// How clearly each component is there, 0 to 1.
    pub situation: f64,
    pub task: f64,
    pub action: f64,
    pub result: f64,
    /// Share of the four components present (score >= 0.5), 0 to 1.
    pub coverage: f64,
    /// Action sentences where the candidate is the actor (`I`) and where the team is (`we`).
    pub actions_by_me: u32,
    pub actions_by_we: u32,
    /// Whether a result sentence gives a number.
    pub result_quantified: bool,
    /// The sentence that best carries each component present.
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Evidence {
    pub component: Component,
    pub sentence: String,
    /// Index of the sentence in the answer.
    pub index: usize,
}

fn round2(x: f32) -> f64 {
    ((x as f64) * 100.0).round() / 100.0
}

/// Combine per-sentence scores into coverage and evidence. Each sentence counts as
/// evidence for its strongest component only, so one sentence cannot fill all four.
pub fn summarise(sentences: &[String], scored: &[SentenceStar], quantified: &[bool]) -> Star {
    let mut best = [(0f32, None::<usize>); 4];
    let mut by_me = 0;
    let mut by_we = 0;
    let mut result_quantified = false;
    for (i, s) in scored.iter().enumerate() {
        let (top, _) =
            s.scores.iter().enumerate().fold((0usize, f32::MIN), |acc, (k, v)| if *v > acc.1 { (k, *v) } else { acc });
        for c in COMPONENTS {
            let k = c.index();
            // A sentence lends a component at most 80% of its score unless it is its top component.
            let v = if k == top { s.scores[k] } else { s.scores[k] * 0.8 };
            if v > best[k].0 {
                best[k] = (v, Some(i));
            }
        }
        if top == Component::Action.index() && s.scores[top] >= PRESENT {
            match s.actor {
                Actor::Me => by_me += 1,
                Actor::We => by_we += 1,
                Actor::None => {}
            }
        }
        if top == Component::Result.index() && s.scores[top] >= PRESENT && quantified[i] {
            result_quantified = true;
        }
    }
    // Actions the team took, with none of the candidate's own, count for less.
    if by_me == 0 && by_we > 0 {
        best[Component::Action.index()].0 *= 0.75;
    }
    let evidence = COMPONENTS
        .iter()
        .filter_map(|c| {
            let (v, i) = best[c.index()];
            i.filter(|_| v >= PRESENT).map(|i| Evidence { component: *c, sentence: sentences[i].clone(), index: i })
        })
        .collect::<Vec<_>>();
    let present = best.iter().filter(|(v, _)| *v >= PRESENT).count();
    Star {
        situation: round2(best[0].0),
        task: round2(best[1].0),
        action: round2(best[2].0),
        result: round2(best[3].0),
        coverage: present as f64 / 4.0,
        actions_by_me: by_me,
        actions_by_we: by_we,
        result_quantified,
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(s: &str) -> Actor {
        actor(&tokenize(s))
    }

    #[test]
    fn the_actor_is_found() {
        assert_eq!(who("I rewrote the scheduler."), Actor::Me);
        assert_eq!(who("Then I quickly built a prototype."), Actor::Me);
        assert_eq!(who("We migrated the database."), Actor::We);
        assert_eq!(who("We agreed, and then I wrote the plan."), Actor::Me);
        assert_eq!(who("I was the team lead."), Actor::None);
        assert_eq!(who("We had no tests."), Actor::None);
        assert_eq!(who("I needed more time."), Actor::None);
        assert_eq!(who("The team shipped it."), Actor::None);
    }

    #[test]
    fn cues_match_whole_words() {
        assert!(has_cue("as a result, churn fell", RESULT_CUES));
        assert!(!has_cue("my roles were unclear", &["my role"]));
        assert!(has_cue("my role was to lead", TASK_CUES));
    }
}
