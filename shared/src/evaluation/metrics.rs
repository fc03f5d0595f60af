//! Deterministic delivery metrics: words, pace, fillers, hedges, repetition, numbers and
//! quantified results. Exact, rule-based and explainable: every count can be traced to
//! the words that produced it (see [`Occurrence`]).

use serde::Serialize;
use std::collections::BTreeMap;

use crate::evaluation::text::{Kind, Sentence, Token, tokenize};

/// A filler or hedge found in the answer, for feedback that quotes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Canonical form, e.g. `um`, `you know`, `like`.
    pub what: &'static str,
    /// Byte range in the answer.
    pub start: usize,
    pub end: usize,
}

/// Filler words with per-word counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Fillers {
    pub total: u32,
    /// Fillers per minute of speech, when the timing is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<f64>,
    /// Count of each filler that occurred, by canonical form.
    pub by_word: BTreeMap<String, u32>,
}

/// Words repeated back to back (`the the`) and content words leaned on too often.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Repetition {
    /// Immediate repeats of a word, as in false starts (`we we decided`).
    pub immediate: u32,
    /// Content words used at least 4 times and in at least 3% of the words.
    pub overused: Vec<WordCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WordCount {
    pub word: String,
    pub count: u32,
}

/// The measured delivery of an answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Metrics {
    pub words: u32,
    pub sentences: u32,
    /// Speaking time in seconds, from `timing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// Words per minute over `duration_s`, to one decimal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words_per_minute: Option<f64>,
    pub fillers: Fillers,
    /// Hedging phrases (`I think`, `maybe`, `probably`, ...).
    pub hedges: u32,
    pub hedge_phrases: BTreeMap<String, u32>,
    pub repetition: Repetition,
    /// Quantities mentioned: numbers, percentages, amounts, multipliers.
    pub numbers: u32,
    /// Sentences that state an outcome with a quantity (`cut latency by 40%`).
    pub quantified_results: u32,
}

/// What [`measure`] found besides the figures: where each filler and hedge is.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub fillers: Vec<Occurrence>,
    pub hedges: Vec<Occurrence>,
    /// Indices (into the sentence list) of the quantified-result sentences.
    pub quantified_sentences: Vec<usize>,
}

/// Measure `answer` (already split into `sentences`), with `duration_s` of speech if known.
pub fn measure(answer: &str, sentences: &[Sentence], duration_s: Option<f64>) -> (Metrics, Findings) {
    let tokens = tokenize(answer);
    let words = tokens.iter().filter(|t| t.is_word()).count() as u32;
    let fillers = find_fillers(&tokens);
    let hedges = find_hedges(&tokens);
    let minutes = duration_s.filter(|d| *d > 0.0).map(|d| d / 60.0);

    let mut by_word = BTreeMap::new();
    for f in &fillers {
        *by_word.entry(f.what.to_string()).or_insert(0u32) += 1;
    }
    let mut hedge_phrases = BTreeMap::new();
    for h in &hedges {
        *hedge_phrases.entry(h.what.to_string()).or_insert(0u32) += 1;
    }

    let mut numbers = 0u32;
    let mut quantified_sentences = Vec::new();
    for (i, s) in sentences.iter().enumerate() {
        let st = tokenize(&s.text);
        let q = st.iter().enumerate().filter(|(k, t)| t.is_word() && is_quantity(&st, *k)).count() as u32;
        numbers += q;
        if q > 0 && is_outcome(&st) {
            quantified_sentences.push(i);
        }
    }

    let metrics = Metrics {
        words,
        sentences: sentences.len() as u32,
        duration_s: duration_s.map(round1),
        words_per_minute: minutes.map(|m| round1(words as f64 / m)),
        fillers: Fillers {
            total: fillers.len() as u32,
            per_minute: minutes.map(|m| round1(fillers.len() as f64 / m)),
            by_word,
        },
        hedges: hedges.len() as u32,
        hedge_phrases,
        repetition: repetition(&tokens, &fillers),
        numbers,
        quantified_results: quantified_sentences.len() as u32,
    };
    (metrics, Findings { fillers, hedges, quantified_sentences })
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The token stream seen from one position: neighbouring words, and whether a pause
/// (punctuation) separates them.
struct Ctx<'a> {
    tokens: &'a [Token],
}

impl<'a> Ctx<'a> {
    fn word(&self, i: usize) -> Option<&'a str> {
        self.tokens.get(i).filter(|t| t.kind == Kind::Word).map(|t| t.norm.as_str())
    }
    /// The word right before token `i`, if no punctuation comes between.
    fn prev(&self, i: usize) -> Option<&'a str> {
        i.checked_sub(1).and_then(|p| self.word(p))
    }
    /// The word `n` words before token `i`, skipping nothing (any punctuation stops it).
    fn prev_n(&self, i: usize, n: usize) -> Option<&'a str> {
        i.checked_sub(n).and_then(|p| (p..i).all(|k| self.tokens[k].kind == Kind::Word).then(|| self.word(p)).flatten())
    }
    /// The word right after token `i`, if no punctuation comes between.
    fn next(&self, i: usize) -> Option<&'a str> {
        self.word(i + 1)
    }
    /// Punctuation (a pause or boundary) or the start of the text right before `i`.
    fn pause_before(&self, i: usize) -> bool {
        i == 0 || self.tokens[i - 1].kind == Kind::Punct
    }
    /// Punctuation or the end of the text right after `i`.
    fn pause_after(&self, i: usize) -> bool {
        self.tokens.get(i + 1).is_none_or(|t| t.kind == Kind::Punct)
    }
    /// Whether token `i` is the word `w`.
    fn is(&self, i: usize, w: &str) -> bool {
        self.word(i) == Some(w)
    }
}

/// Hesitation sounds, with spellings folded to one form (`ummm` -> `um`).
fn hesitation(word: &str) -> Option<&'static str> {
    let squeezed: String = {
        let mut s = String::new();
        for c in word.chars() {
            if !s.ends_with(c) || !matches!(c, 'm' | 'h' | 'r') {
                s.push(c);
            }
        }
        s
    };
    match squeezed.as_str() {
        "um" | "uhm" | "hum" => Some("um"),
        "uh" => Some("uh"),
        "er" | "erm" => Some("er"),
        "hm" => Some("hmm"),
        _ => None,
    }
}

/// Words after which `like` is a verb (`I like`, `would like`, `don't like`).
const LIKE_VERB_BEFORE: &[&str] = &[
    "i",
    "you",
    "we",
    "they",
    "he",
    "she",
    "to",
    "would",
    "i'd",
    "we'd",
    "you'd",
    "they'd",
    "he'd",
    "she'd",
    "do",
    "does",
    "did",
    "don't",
    "doesn't",
    "didn't",
    "not",
    "really",
    "also",
    "still",
    "will",
    "won't",
    "might",
    "may",
    "could",
    "should",
    "who",
    "people",
    "users",
    "customers",
    "clients",
    "folks",
    "everyone",
    "everybody",
    "nobody",
    "anyone",
    "genuinely",
    "truly",
    "always",
    "never",
    "i'll",
    "we'll",
    "they'll",
    "wouldn't",
];

/// Words after which `like` compares or exemplifies (`looks like`, `things like`).
const LIKE_COMPARE_BEFORE: &[&str] = &[
    "look",
    "looks",
    "looked",
    "looking",
    "seem",
    "seems",
    "seemed",
    "sound",
    "sounds",
    "sounded",
    "feel",
    "feels",
    "felt",
    "feeling",
    "act",
    "acts",
    "acted",
    "acting",
    "something",
    "nothing",
    "anything",
    "everything",
    "more",
    "less",
    "much",
    "just",
    "exactly",
    "things",
    "stuff",
    "tools",
    "languages",
    "companies",
    "areas",
    "cases",
    "metrics",
    "projects",
    "problems",
    "teams",
    "frameworks",
    "systems",
    "someone",
    "somebody",
    "treat",
    "treated",
    "behave",
    "behaved",
    "what's",
    "what",
    "unlike",
    "dress",
    "dressed",
];

/// Words after `like` that make it a comparison or example (`like a`, `like our`).
const LIKE_COMPARE_AFTER: &[&str] = &[
    "a", "an", "the", "this", "that", "these", "those", "my", "our", "your", "his", "her", "their", "its", "it", "him",
    "them", "me", "us", "when", "how", "what", "before", "new", "crazy",
];

/// Subject pronouns: `like I said` uses `like` as `as`.
const SUBJECTS: &[&str] = &["i", "we", "you", "he", "she", "they"];

/// Words before `kind of`/`sort of` that make it a noun (`what kind of`, `the right sort of`).
const KIND_NOUN_BEFORE: &[&str] = &[
    "a",
    "an",
    "the",
    "this",
    "that",
    "these",
    "those",
    "what",
    "which",
    "any",
    "some",
    "every",
    "each",
    "no",
    "one",
    "same",
    "different",
    "another",
    "other",
    "right",
    "wrong",
    "only",
    "first",
    "new",
    "whatever",
    "particular",
    "certain",
    "my",
    "our",
    "your",
    "their",
    "his",
    "her",
    "its",
    "specific",
    "exact",
];

/// Words before `you know` that make it a real question or clause (`do you know`, `as you know`).
const YOU_KNOW_VERB_BEFORE: &[&str] = &[
    "do",
    "did",
    "don't",
    "didn't",
    "if",
    "as",
    "would",
    "will",
    "to",
    "may",
    "might",
    "should",
    "could",
    "that",
    "what",
    "all",
    "everything",
    "whether",
    "how",
    "people",
    "because",
    "unless",
    "whom",
    "who",
    "once",
    "can",
];

/// Words after `you know` that are its object, making it a verb (`you know the answer`).
const YOU_KNOW_OBJECT_AFTER: &[&str] = &[
    "how",
    "what",
    "who",
    "that",
    "the",
    "a",
    "an",
    "it",
    "him",
    "her",
    "them",
    "this",
    "about",
    "when",
    "where",
    "why",
    "whether",
    "if",
    "me",
    "my",
    "your",
    "our",
    "their",
    "his",
    "each",
    "exactly",
    "more",
    "best",
    "better",
    "everyone",
    "everything",
    "anything",
    "nothing",
    "something",
    "someone",
    "much",
    "enough",
];

/// Words before `I mean` that make it a verb (`what I mean`, `if I mean it`).
const I_MEAN_VERB_BEFORE: &[&str] = &["what", "that", "which", "if", "did", "do", "when", "whether"];

/// Words after `I mean` showing it introduces a restatement rather than taking an object.
const I_MEAN_RESTART_AFTER: &[&str] = &[
    "i",
    "we",
    "you",
    "they",
    "he",
    "she",
    "it's",
    "that's",
    "there's",
    "i'm",
    "we're",
    "they're",
    "so",
    "and",
    "but",
    "yeah",
    "yes",
    "no",
    "honestly",
    "really",
    "like",
    "basically",
    "well",
    "look",
    "obviously",
    "literally",
];

/// Find the filler words, each with the context rules that tell a filler from the same
/// word doing real work: `like` the verb (`I like Rust`) and the comparison (`looks
/// like`, `like a charm`) are not fillers; `kind of` after a determiner (`what kind of`)
/// is a noun; `you know` and `I mean` with an object are verbs.
pub fn find_fillers(tokens: &[Token]) -> Vec<Occurrence> {
    let ctx = Ctx { tokens };
    let mut out = Vec::new();
    let mut i = 0usize;
    while i < tokens.len() {
        let t = &tokens[i];
        if t.kind != Kind::Word {
            i += 1;
            continue;
        }
        let w = t.norm.as_str();
        let found: Option<(&'static str, usize)> = if let Some(h) = hesitation(w) {
            Some((h, 1))
        } else if w == "basically" {
            Some(("basically", 1))
        } else if w == "like" {
            like_is_filler(&ctx, i).then_some(("like", 1))
        } else if (w == "kind" || w == "sort") && ctx.is(i + 1, "of") {
            let noun = ctx.prev(i).is_some_and(|p| KIND_NOUN_BEFORE.contains(&p))
                || ctx.prev_n(i, 2).is_some_and(|p| KIND_NOUN_BEFORE.contains(&p) && p != "that" && p != "one");
            (!noun).then_some((if w == "kind" { "kind of" } else { "sort of" }, 2))
        } else if w == "you" && ctx.is(i + 1, "know") {
            you_know_is_filler(&ctx, i).then_some(("you know", 2))
        } else if w == "i" && ctx.is(i + 1, "mean") {
            i_mean_is_filler(&ctx, i).then_some(("I mean", 2))
        } else {
            None
        };
        match found {
            Some((what, len)) => {
                out.push(Occurrence { what, start: t.start, end: tokens[i + len - 1].end });
                i += len;
            }
            None => i += 1,
        }
    }
    out
}

fn is_filler_word(ctx: &Ctx, i: usize) -> bool {
    ctx.word(i).is_some_and(|w| hesitation(w).is_some() || w == "basically")
        || (ctx.is(i, "you") && ctx.is(i + 1, "know"))
        || (ctx.is(i, "kind") || ctx.is(i, "sort")) && ctx.is(i + 1, "of")
}

fn like_is_filler(ctx: &Ctx, i: usize) -> bool {
    // Set off by a pause before it (`it was, like, huge`): a filler.
    if ctx.pause_before(i) && i > 0 && ctx.tokens[i - 1].norm != "\"" {
        // Sentence-initial `Like I said` is the conjunction `as`.
        if let (Some(n1), Some(_)) = (ctx.next(i), ctx.word(i + 2))
            && SUBJECTS.contains(&n1)
            && !ctx.pause_after(i)
            && matches!(ctx.word(i + 2), Some("said" | "mentioned" | "say" | "discussed" | "did" | "do" | "was"))
        {
            return false;
        }
        return true;
    }
    let prev = ctx.prev(i);
    let next = ctx.next(i).unwrap_or_default();
    // Before a past-tense verb (`we like fixed it`) `like` cannot be the verb itself.
    let past_tense_next = next.len() > 4 && next.ends_with("ed") && !next.ends_with("eed");
    if prev.is_some_and(|p| LIKE_VERB_BEFORE.contains(&p) || p.ends_with("'d")) && !past_tense_next {
        return false;
    }
    if prev.is_some_and(|p| LIKE_COMPARE_BEFORE.contains(&p)) {
        return false;
    }
    // Followed by a pause (`and like, we...`) or another filler: a filler.
    if ctx.pause_after(i) || is_filler_word(ctx, i + 1) {
        return true;
    }
    // An approximate quantity (`like 3 weeks`, `like twenty people`): a filler.
    if next.starts_with(|c: char| c.is_ascii_digit() || c == '$') || SPELLED_NUMBERS.contains(&next) {
        return true;
    }
    if LIKE_COMPARE_AFTER.contains(&next) {
        return false;
    }
    // `like I said`, `like we discussed`: the conjunction `as`.
    if SUBJECTS.contains(&next)
        && matches!(ctx.word(i + 2), Some("said" | "mentioned" | "say" | "discussed" | "did" | "do" | "was"))
    {
        return false;
    }
    true
}

fn you_know_is_filler(ctx: &Ctx, i: usize) -> bool {
    if ctx.prev(i).is_some_and(|p| YOU_KNOW_VERB_BEFORE.contains(&p)) {
        return false;
    }
    // `you know,` / `..., you know.` / `you know um`: a filler.
    if ctx.pause_after(i + 1) || is_filler_word(ctx, i + 2) || ctx.is(i + 2, "like") {
        return true;
    }
    let next = ctx.next(i + 1).unwrap_or_default();
    if YOU_KNOW_OBJECT_AFTER.contains(&next) {
        return false;
    }
    // A new clause right after (`you know we had to...`) after a pause is a filler;
    // without a pause before it reads as `you know (that) we...`.
    ctx.pause_before(i) && (SUBJECTS.contains(&next) || matches!(next, "so" | "and" | "but" | "it's" | "there's"))
}

fn i_mean_is_filler(ctx: &Ctx, i: usize) -> bool {
    if ctx.prev(i).is_some_and(|p| I_MEAN_VERB_BEFORE.contains(&p)) {
        return false;
    }
    if ctx.pause_after(i + 1) || is_filler_word(ctx, i + 2) {
        return true;
    }
    let next = ctx.next(i + 1).unwrap_or_default();
    ctx.pause_before(i) && I_MEAN_RESTART_AFTER.contains(&next)
}

/// Hedging phrases, longest first so `I'm not sure` is not also counted as `not sure`.
const HEDGES: &[&str] = &[
    "i'm not really sure",
    "i'm not sure",
    "to some extent",
    "more or less",
    "i would say",
    "i feel like",
    "i'd say",
    "i think",
    "i guess",
    "i suppose",
    "i believe",
    "not sure",
    "might have",
    "maybe",
    "perhaps",
    "probably",
    "possibly",
    "hopefully",
    "somewhat",
    "i hope",
];

/// Find hedging phrases (word sequences without punctuation between them). `I think`
/// is not a hedge when it takes `about`/`of` (`I think about users`).
pub fn find_hedges(tokens: &[Token]) -> Vec<Occurrence> {
    let ctx = Ctx { tokens };
    let mut out = Vec::new();
    let mut i = 0usize;
    'outer: while i < tokens.len() {
        if tokens[i].kind != Kind::Word {
            i += 1;
            continue;
        }
        for h in HEDGES {
            let parts: Vec<&str> = h.split(' ').collect();
            if parts.iter().enumerate().all(|(k, p)| ctx.is(i + k, p)) {
                let after = ctx.next(i + parts.len() - 1);
                if *h == "i think" && matches!(after, Some("about" | "of" | "through")) {
                    continue;
                }
                out.push(Occurrence { what: h, start: tokens[i].start, end: tokens[i + parts.len() - 1].end });
                i += parts.len();
                continue 'outer;
            }
        }
        i += 1;
    }
    out
}

/// Function words, never "overused" content.
const STOPWORDS: &[&str] = &[
    "the", "a", "an", "and", "or", "but", "so", "to", "of", "in", "on", "at", "for", "with", "by", "from", "as", "is",
    "was", "were", "are", "be", "been", "being", "it", "its", "it's", "this", "that", "these", "those", "i", "we",
    "you", "he", "she", "they", "me", "us", "him", "her", "them", "my", "our", "your", "their", "his", "had", "has",
    "have", "do", "did", "does", "not", "no", "yes", "if", "then", "than", "there", "what", "which", "who", "when",
    "where", "how", "why", "all", "any", "some", "can", "could", "would", "should", "will", "just", "also", "very",
    "really", "about", "into", "out", "up", "down", "over", "after", "before", "because", "while", "i'm", "we're",
    "they're", "i've", "we've", "don't", "didn't", "was", "one", "more", "most", "other", "each", "our", "get", "got",
    "like", "know", "mean", "kind", "sort", "um", "uh", "er", "thing", "things", "lot", "well", "now", "time", "way",
    "only",
];

fn repetition(tokens: &[Token], fillers: &[Occurrence]) -> Repetition {
    let in_filler = |t: &Token| fillers.iter().any(|f| t.start >= f.start && t.end <= f.end);
    let mut immediate = 0u32;
    for pair in tokens.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        // `had had` and `that that` are grammatical.
        if a.is_word() && b.is_word() && a.norm == b.norm && !matches!(a.norm.as_str(), "had" | "that") && !in_filler(a)
        {
            immediate += 1;
        }
    }
    let words: Vec<&Token> = tokens.iter().filter(|t| t.is_word()).collect();
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for w in &words {
        let n = w.norm.as_str();
        if n.chars().count() >= 3 && !STOPWORDS.contains(&n) && !n.chars().any(|c| c.is_ascii_digit()) {
            *counts.entry(n).or_insert(0) += 1;
        }
    }
    let total = words.len().max(1) as f64;
    let mut overused: Vec<WordCount> = counts
        .into_iter()
        .filter(|(_, c)| *c >= 4 && *c as f64 / total >= 0.03)
        .map(|(w, c)| WordCount { word: w.to_string(), count: c })
        .collect();
    overused.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.word.cmp(&b.word)));
    Repetition { immediate, overused }
}

const SPELLED_NUMBERS: &[&str] = &[
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "hundreds",
    "thousand",
    "thousands",
    "million",
    "millions",
    "billion",
    "dozen",
    "dozens",
    "half",
    "twice",
    "double",
    "doubled",
    "triple",
    "tripled",
    "tenfold",
    "percent",
];

/// Whether word token `k` states a quantity: digits (`40%`, `$1.2M`, `3x`, `10k`, but
/// not a bare year like `2019` or a name like `Q3`/`EC2`), or a spelled number. A
/// spelled number after another quantity word (`two hundred`) counts once.
fn is_quantity(tokens: &[Token], k: usize) -> bool {
    let w = tokens[k].norm.as_str();
    let first = w.chars().next().unwrap_or(' ');
    if first.is_ascii_digit()
        || (matches!(first, '$' | '€' | '£' | '¥') && w.chars().nth(1).is_some_and(|c| c.is_ascii_digit()))
    {
        let digits: String = w.chars().filter(char::is_ascii_digit).collect();
        let is_year = w.len() == 4 && digits.len() == 4 && (w.starts_with("19") || w.starts_with("20"));
        return !is_year;
    }
    if SPELLED_NUMBERS.contains(&w) {
        let prev_is_quantity = k > 0
            && tokens[k - 1].is_word()
            && (SPELLED_NUMBERS.contains(&tokens[k - 1].norm.as_str())
                || tokens[k - 1].norm.starts_with(|c: char| c.is_ascii_digit()));
        // `half` alone (`the first half`) is not a result; `cut it in half` is (see is_outcome).
        return !prev_is_quantity;
    }
    false
}

/// Stems of words that describe a change in an outcome.
const OUTCOME_STEMS: &[&str] = &[
    "increas",
    "reduc",
    "decreas",
    "cut",
    "grew",
    "grow",
    "improv",
    "sav",
    "boost",
    "rais",
    "lower",
    "drop",
    "shrank",
    "shrunk",
    "doubl",
    "tripl",
    "halv",
    "accelerat",
    "faster",
    "quicker",
    "fewer",
    "less",
    "gain",
    "generat",
    "won",
    "achiev",
    "exceed",
    "hit",
    "beat",
    "eliminat",
    "recover",
    "retain",
    "retention",
    "revenue",
    "churn",
    "conversion",
    "latency",
    "uptime",
    "downtime",
    "profit",
    "sales",
    "adoption",
    "satisfaction",
    "nps",
    "roi",
    "result",
    "outcome",
    "went",
    "from",
    "down",
    "up",
    "delivered",
    "shipped",
    "launched",
    "closed",
    "resolved",
    "signed",
    "onboarded",
    "scaled",
    "rais",
    "brought",
];

/// Whether a sentence describes an outcome: an outcome word, or a percentage, amount or
/// multiplier (those only ever quantify results in an answer).
fn is_outcome(tokens: &[Token]) -> bool {
    tokens.iter().filter(|t| t.is_word()).any(|t| {
        let w = t.norm.as_str();
        OUTCOME_STEMS.iter().any(|s| w.starts_with(s))
            || w.ends_with('%')
            || w == "percent"
            || w.starts_with(['$', '€', '£'])
            || (w.ends_with('x') && w[..w.len() - 1].parse::<f64>().is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::text::sentences;

    fn fillers(text: &str) -> Vec<&'static str> {
        find_fillers(&tokenize(text)).into_iter().map(|o| o.what).collect()
    }

    fn hedges(text: &str) -> Vec<&'static str> {
        find_hedges(&tokenize(text)).into_iter().map(|o| o.what).collect()
    }

    #[test]
    fn hesitations_fold_spellings() {
        assert_eq!(
            fillers("Um, ummm, uh, uhhh, er, erm, hmm, uhm."),
            vec!["um", "um", "uh", "uh", "er", "er", "hmm", "um"]
        );
        assert!(fillers("The user, the umbrella, the error, her, sum.").is_empty());
    }

    #[test]
    fn like_as_verb_or_comparison_is_not_a_filler() {
        for text in [
            "I like working with data.",
            "We'd like to see more tests.",
            "I'd like to add something.",
            "I really like this team.",
            "Customers like the new checkout.",
            "It looks like a memory leak.",
            "It seemed like the right call.",
            "That sounds like a plan.",
            "We used tools like Terraform and Ansible.",
            "Something like that happens every quarter.",
            "It worked like a charm.",
            "We treated it like an incident.",
            "Like I said, the deadline was fixed.",
            "like I said the deadline was fixed",
            "I feel like we rushed it.",
            "I don't like flaky tests.",
            "Do you like it?",
            "She likes Go and liked Rust.",
        ] {
            assert_eq!(fillers(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn like_as_filler_is_counted() {
        assert_eq!(fillers("It was, like, really hard."), vec!["like"]);
        assert_eq!(fillers("And like, we had no tests."), vec!["like"]);
        assert_eq!(fillers("It took like 3 weeks."), vec!["like"]);
        assert_eq!(fillers("We had like twenty people on it."), vec!["like"]);
        assert_eq!(fillers("It was like really messy."), vec!["like"]);
        assert_eq!(fillers("So we like fixed it and like shipped it."), vec!["like", "like"]);
        assert_eq!(fillers("Like, nobody owned it."), vec!["like"]);
        assert_eq!(fillers("It was like um broken."), vec!["like", "um"]);
        assert_eq!(fillers("He was like..."), vec!["like"]);
    }

    #[test]
    fn like_edge_cases() {
        let cases: &[(&str, &[&str])] = &[
            ("I would like to lead.", &[]),
            ("They like short meetings.", &[]),
            ("It ran just like before.", &[]),
            ("We fixed bugs and stuff like that.", &[]),
            ("It's like a maze in there.", &[]),
            ("Like I mentioned, we were late.", &[]),
            ("It was more like three days.", &[]),
            ("Build it like this.", &[]),
            ("Costs fell by, like, 50%.", &["like"]),
            ("We were like, let's just ship it.", &["like"]),
            ("I was like \"no way\".", &["like"]),
            ("Like... I don't know.", &["like"]),
            ("It was like totally broken.", &["like"]),
            ("I LIKE it.", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(fillers(text), want.to_vec(), "{text}");
        }
    }

    #[test]
    fn kind_of_and_sort_of() {
        assert_eq!(fillers("It was kind of hard and we sort of gave up."), vec!["kind of", "sort of"]);
        assert!(fillers("What kind of database? That sort of problem. A different kind of team.").is_empty());
        assert!(fillers("The right sort of people. Any kind of help. Kinds of tests.").is_empty());
        assert_eq!(fillers("That was kind of a mess."), vec!["kind of"]);
    }

    #[test]
    fn you_know_and_i_mean() {
        assert_eq!(fillers("It was, you know, a big deal."), vec!["you know"]);
        assert_eq!(fillers("We shipped it, you know."), vec!["you know"]);
        assert_eq!(fillers("So, you know we had to move fast."), vec!["you know"]);
        assert_eq!(fillers("you know um the database"), vec!["you know", "um"]);
        assert!(fillers("Do you know the answer? As you know, it failed. If you know how, say so.").is_empty());
        assert!(fillers("You know the codebase better than me.").is_empty());
        assert!(fillers("I know you know what matters.").is_empty());
        assert_eq!(fillers("I mean, it worked."), vec!["I mean"]);
        assert_eq!(fillers("It broke. I mean we never tested it."), vec!["I mean"]);
        assert!(fillers("That is what I mean. I mean it. I meant well.").is_empty());
    }

    #[test]
    fn basically_is_always_a_filler() {
        assert_eq!(fillers("Basically we basically rewrote it."), vec!["basically", "basically"]);
    }

    #[test]
    fn a_fixed_transcript_is_counted_exactly() {
        let t = "Um, so basically I was, like, the lead on the migration. We had, you know, \
                 kind of a tight deadline, and uh I mean, it was hard. I like hard problems though, \
                 and it looks like we did well: we cut build time by 40%.";
        let s = sentences(t);
        let (m, f) = measure(t, &s, Some(30.0));
        assert_eq!(m.words, 45);
        assert_eq!(m.sentences, 3);
        assert_eq!(m.words_per_minute, Some(90.0));
        assert_eq!(m.fillers.total, 7);
        assert_eq!(m.fillers.per_minute, Some(14.0));
        let by: Vec<(&str, u32)> = m.fillers.by_word.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            by,
            vec![("I mean", 1), ("basically", 1), ("kind of", 1), ("like", 1), ("uh", 1), ("um", 1), ("you know", 1)]
        );
        assert_eq!(m.numbers, 1);
        assert_eq!(m.quantified_results, 1);
        assert_eq!(f.quantified_sentences, vec![2]);
        // Occurrences point at the words themselves.
        assert_eq!(&t[f.fillers[0].start..f.fillers[0].end], "Um");
        assert!(f.fillers.iter().any(|o| &t[o.start..o.end] == "you know"));
    }

    #[test]
    fn no_timing_means_no_rates() {
        let s = sentences("Hello there.");
        let (m, _) = measure("Hello there.", &s, None);
        assert_eq!((m.words, m.words_per_minute, m.fillers.per_minute), (2, None, None));
        let json = serde_json::to_value(&m).unwrap();
        assert!(json.get("words_per_minute").is_none() && json["fillers"].get("per_minute").is_none());
    }

    #[test]
    fn hedges_are_found_longest_first() {
        assert_eq!(
            hedges("I think it maybe worked. I'm not sure. Probably, I guess. I think about users a lot."),
            vec!["i think", "maybe", "i'm not sure", "probably", "i guess"]
        );
        assert!(hedges("We measured it and it worked.").is_empty());
    }

    #[test]
    fn repetition_counts_stutters_and_overuse() {
        let t = "We we decided to to ship. The the team had had enough. Deploy, deploy, deploy and deploy again.";
        let (m, _) = measure(t, &sentences(t), None);
        assert_eq!(m.repetition.immediate, 3);
        assert_eq!(m.repetition.overused, vec![WordCount { word: "deploy".into(), count: 4 }]);
        let (m, _) = measure("Um um, it was fine.", &sentences("Um um, it was fine."), None);
        assert_eq!(m.repetition.immediate, 0);
    }

    #[test]
    fn quantities_and_quantified_results() {
        let t = "In 2019 I joined a team of five. I worked on EC2 and Q3 planning. \
                 We reduced p95 latency from 800ms to 200ms. Revenue grew by $1.2M, two hundred new customers. \
                 It took 3 weeks. Costs dropped 3x.";
        let s = sentences(t);
        let (m, f) = measure(t, &s, None);
        // five, 800ms, 200ms, $1.2m, two (hundred folded), 3, 3x
        assert_eq!(m.numbers, 7);
        assert_eq!(f.quantified_sentences, vec![2, 3, 5]);
        assert_eq!(m.quantified_results, 3);
    }
}
