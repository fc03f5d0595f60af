//! Words and sentences of an answer.
//!
//! Written here rather than taken from a crate: what counts as a word and where a
//! sentence ends decide the figures candidates see (word count, pace, fillers), so the
//! rules must be few, visible and tested against fixed transcripts — general-purpose
//! segmenters (Unicode UAX #29, NLP sentence splitters) count `$1.2M` as several words
//! or split after `e.g.`, and pull in far more than this needs.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Contains at least one letter or digit: counts as a word.
    Word,
    /// Punctuation: a pause or a boundary, used by the context rules.
    Punct,
}

/// A word or punctuation mark, with its place in the source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    /// Lowercased, curly apostrophes made straight; for punctuation the mark itself.
    pub norm: String,
    /// Byte range in the source text.
    pub start: usize,
    pub end: usize,
}

impl Token {
    pub fn is_word(&self) -> bool {
        self.kind == Kind::Word
    }
}

/// Characters that may open a word token without being punctuation (currency).
fn is_word_prefix(c: char) -> bool {
    matches!(c, '$' | '€' | '£' | '¥' | '#')
}

/// Characters that may close a word token without being punctuation (`35%`, `C++`, `C#`).
fn is_word_suffix(c: char) -> bool {
    matches!(c, '%' | '+' | '#')
}

/// Characters that break a whitespace chunk in two: dashes and ellipses used as pauses
/// (`it—um—was`, `so...we`).
fn is_break(c: char) -> bool {
    matches!(c, '—' | '–' | '…')
}

/// Split `text` into word and punctuation tokens.
///
/// A word is a whitespace-separated chunk (also split at dashes/ellipses used as pauses)
/// with leading and trailing punctuation peeled off, containing a letter or digit:
/// `don't`, `well-known`, `$1.2M`, `35%`, `CI/CD`, `e.g` are one word each.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chunk_start: Option<usize> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let double = |iter: &mut std::iter::Peekable<std::str::CharIndices>| {
            // `--` and `...` are pauses too.
            matches!(iter.peek(), Some((_, n)) if *n == c)
        };
        let breaks = is_break(c) || ((c == '-' || c == '.') && double(&mut iter));
        if c.is_whitespace() || breaks {
            if let Some(s) = chunk_start.take() {
                push_chunk(text, s, i, &mut out);
            }
            if breaks {
                let mut end = i + c.len_utf8();
                if c == '-' || c == '.' {
                    while let Some((j, n)) = iter.peek().copied() {
                        if n != c {
                            break;
                        }
                        end = j + n.len_utf8();
                        iter.next();
                    }
                }
                let norm = match c {
                    '.' | '…' => "…",
                    _ => "—",
                };
                out.push(Token { kind: Kind::Punct, norm: norm.into(), start: i, end });
            }
        } else if chunk_start.is_none() {
            chunk_start = Some(i);
        }
    }
    if let Some(s) = chunk_start {
        push_chunk(text, s, text.len(), &mut out);
    }
    out
}

fn push_chunk(text: &str, start: usize, end: usize, out: &mut Vec<Token>) {
    let chunk = &text[start..end];
    if !chunk.chars().any(char::is_alphanumeric) {
        for (i, c) in chunk.char_indices() {
            out.push(punct(start + i, c));
        }
        return;
    }
    // Peel punctuation off both ends; keep currency before and `%`/`+`/`#` after.
    let first = chunk.char_indices().find(|(_, c)| c.is_alphanumeric() || is_word_prefix(*c)).map(|(i, _)| i);
    let first = first.unwrap_or(0);
    let last_alnum = chunk.char_indices().rev().find(|(_, c)| c.is_alphanumeric()).map(|(i, c)| i + c.len_utf8());
    let mut last = last_alnum.unwrap_or(chunk.len());
    for c in chunk[last..].chars() {
        if is_word_suffix(c) {
            last += c.len_utf8();
        } else {
            break;
        }
    }
    for (i, c) in chunk[..first].char_indices() {
        out.push(punct(start + i, c));
    }
    let word = &chunk[first..last];
    out.push(Token { kind: Kind::Word, norm: normalize(word), start: start + first, end: start + last });
    for (i, c) in chunk[last..].char_indices() {
        out.push(punct(start + last + i, c));
    }
}

fn punct(at: usize, c: char) -> Token {
    let norm = match c {
        '’' | '‘' => "'".to_string(),
        '“' | '”' => "\"".to_string(),
        other => other.to_string(),
    };
    Token { kind: Kind::Punct, norm, start: at, end: at + c.len_utf8() }
}

/// Lowercase with straight apostrophes, so `Don’t` and `don't` compare equal.
pub fn normalize(word: &str) -> String {
    word.chars().map(|c| if c == '’' || c == '‘' { '\'' } else { c }).collect::<String>().to_lowercase()
}

/// Number of words in `text` (see [`tokenize`]).
pub fn word_count(text: &str) -> usize {
    tokenize(text).iter().filter(|t| t.is_word()).count()
}

/// A sentence of the answer, with its byte range in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// Abbreviations after which a period never ends a sentence (titles, `e.g.`).
const NEVER_END: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "e.g", "i.e", "eg", "ie", "cf", "approx", "fig", "no",
    "nos", "vol", "dept", "est", "gen", "capt", "lt", "col", "sgt", "rev", "mt", "ft", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "ph.d", "m.s", "b.s", "b.a", "m.a", "m.b.a", "u.k",
    "approx",
];

/// Abbreviations that end a sentence only when a capitalised word follows
/// (`... at Acme Inc. We shipped ...`).
const MAY_END: &[&str] = &["etc", "inc", "ltd", "co", "corp", "llc", "a.m", "p.m", "u.s", "u.s.a", "jr", "sr"];

/// Sentences longer than this many words with no punctuation (speech-to-text without
/// punctuation) are cut at connectives, so evidence can point at one idea.
const MAX_RUN_ON_WORDS: usize = 40;

/// Split `text` into sentences: at `.`, `!`, `?` and `…` followed by whitespace (not
/// inside `3.5` or `example.com`), not after abbreviations or initials, at blank lines
/// and bullet lines; run-on text without punctuation is cut at connectives.
pub fn sentences(text: &str) -> Vec<Sentence> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut k = 0usize;
    while k < chars.len() {
        let (i, c) = chars[k];
        if c == '\n' {
            // A blank line, or a line that starts a bullet, ends the sentence.
            let mut j = k + 1;
            while j < chars.len() && chars[j].1 != '\n' && chars[j].1.is_whitespace() {
                j += 1;
            }
            let blank = j < chars.len() && chars[j].1 == '\n';
            let bullet = j < chars.len() && matches!(chars[j].1, '-' | '*' | '•')
                || starts_numbered(&text[chars[j.min(chars.len() - 1)].0..]);
            if blank || bullet {
                push_sentence(text, start, i, &mut out);
                start = i + 1;
            }
            k += 1;
            continue;
        }
        if !matches!(c, '.' | '!' | '?' | '…') {
            k += 1;
            continue;
        }
        // The whole run of terminators and closing quotes/brackets.
        let mut j = k;
        while j < chars.len() && matches!(chars[j].1, '.' | '!' | '?' | '…' | '"' | '\'' | '”' | '’' | ')' | ']')
        {
            j += 1;
        }
        let end = if j < chars.len() { chars[j].0 } else { text.len() };
        let at_end = j >= chars.len();
        let followed_by_space = !at_end && chars[j].1.is_whitespace();
        if !at_end && !followed_by_space {
            k = j;
            continue;
        }
        let next = chars[j..].iter().map(|(_, c)| *c).find(|c| !c.is_whitespace());
        let boundary = match next {
            None => true,
            Some(n) => {
                let upper_next = n.is_uppercase() || n.is_ascii_digit() || matches!(n, '"' | '“' | '\'' | '‘' | '(');
                if c == '.' && chars[k..j].iter().all(|(_, c)| *c == '.') && j - k == 1 {
                    let word = word_before(text, i);
                    let lw = normalize(word.trim_end_matches('.'));
                    if NEVER_END.contains(&lw.as_str()) {
                        false
                    } else if MAY_END.contains(&lw.as_str()) {
                        n.is_uppercase()
                    } else if word.chars().count() == 1 && word.chars().all(|c| c.is_uppercase()) {
                        // An initial, as in `J. Smith`.
                        false
                    } else {
                        upper_next
                    }
                } else {
                    // `!`, `?`, `…` and `...`: a boundary unless the sentence clearly goes on.
                    !n.is_lowercase() || c != '.' && c != '…'
                }
            }
        };
        if boundary {
            push_sentence(text, start, end, &mut out);
            start = end;
        }
        k = j;
    }
    push_sentence(text, start, text.len(), &mut out);
    out.into_iter().flat_map(split_run_on).collect()
}

fn starts_numbered(s: &str) -> bool {
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && digits < 3 && s[digits..].starts_with(['.', ')']) && s[digits + 1..].starts_with(' ')
}

/// The whitespace-delimited chunk that ends at byte `at` (inclusive of the period).
fn word_before(text: &str, at: usize) -> &str {
    let head = &text[..at];
    let begin = head.rfind(|c: char| c.is_whitespace() || c == '(' || c == '"').map(|p| p + 1).unwrap_or(0);
    &text[begin..at]
}

fn push_sentence(text: &str, start: usize, end: usize, out: &mut Vec<Sentence>) {
    let raw = &text[start..end];
    let lead = raw.len() - raw.trim_start().len();
    let trimmed = raw.trim();
    // Bullet markers are layout, not content.
    let body = trimmed.trim_start_matches(['-', '*', '•']).trim_start();
    let skip = trimmed.len() - body.len();
    if body.chars().any(char::is_alphanumeric) {
        let s = start + lead + skip;
        out.push(Sentence { text: body.to_string(), start: s, end: s + body.len() });
    }
}

/// Words that start a new idea in unpunctuated speech.
const CONNECTIVES: &[&str] = &["so", "but", "then", "and", "because", "which", "after", "when", "once"];

/// Cut a run-on sentence (no punctuation, many words) before connectives, keeping pieces
/// of at least 12 words, and hard-cut at [`MAX_RUN_ON_WORDS`].
fn split_run_on(s: Sentence) -> Vec<Sentence> {
    let tokens = tokenize(&s.text);
    let words: Vec<&Token> = tokens.iter().filter(|t| t.is_word()).collect();
    if words.len() <= MAX_RUN_ON_WORDS {
        return vec![s];
    }
    let mut cuts = Vec::new();
    let mut since = 0usize;
    for w in &words {
        if since >= 12 && (CONNECTIVES.contains(&w.norm.as_str()) || since >= MAX_RUN_ON_WORDS) {
            cuts.push(w.start);
            since = 0;
        }
        since += 1;
    }
    let mut out = Vec::new();
    let mut prev = 0usize;
    for cut in cuts.into_iter().chain(std::iter::once(s.text.len())) {
        let piece = &s.text[prev..cut];
        let lead = piece.len() - piece.trim_start().len();
        let body = piece.trim();
        if !body.is_empty() {
            let st = s.start + prev + lead;
            out.push(Sentence { text: body.to_string(), start: st, end: st + body.len() });
        }
        prev = cut;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text).into_iter().filter(|t| t.is_word()).map(|t| t.norm).collect()
    }

    fn split(text: &str) -> Vec<String> {
        sentences(text).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn words_keep_numbers_currency_and_contractions_whole() {
        assert_eq!(
            words("We cut costs by 35% — saving $1.2M, didn’t we? (CI/CD, e.g. well-known C++ tools.)"),
            vec![
                "we",
                "cut",
                "costs",
                "by",
                "35%",
                "saving",
                "$1.2m",
                "didn't",
                "we",
                "ci/cd",
                "e.g",
                "well-known",
                "c++",
                "tools"
            ]
        );
        assert_eq!(word_count("it—um—was... fine--really"), 5);
        assert_eq!(word_count("  ,,, — ... "), 0);
        assert_eq!(word_count(""), 0);
        assert_eq!(word_count("Um, so, uh... I led it."), 6);
    }

    #[test]
    fn token_offsets_point_into_the_text() {
        let text = "Well, “quoted” $5!";
        for t in tokenize(text) {
            assert!(text.is_char_boundary(t.start) && text.is_char_boundary(t.end));
            assert!(!text[t.start..t.end].trim().is_empty());
        }
    }

    #[test]
    fn sentences_respect_abbreviations_decimals_and_initials() {
        assert_eq!(
            split(
                "I met Dr. Smith at 9 a.m. on Monday. Latency fell from 3.5 s to 1.2 s, i.e. by 66%. We used e.g. Redis."
            ),
            vec![
                "I met Dr. Smith at 9 a.m. on Monday.",
                "Latency fell from 3.5 s to 1.2 s, i.e. by 66%.",
                "We used e.g. Redis."
            ]
        );
        assert_eq!(
            split("I worked at Acme Inc. We shipped v2.0 on time. J. R. Smith approved it!"),
            vec!["I worked at Acme Inc.", "We shipped v2.0 on time.", "J. R. Smith approved it!"]
        );
        assert_eq!(
            split("Did it work? Yes... mostly. Visit example.com for more."),
            vec!["Did it work?", "Yes... mostly.", "Visit example.com for more."]
        );
        assert_eq!(split("He said \"stop.\" Then we left."), vec!["He said \"stop.\"", "Then we left."]);
    }

    #[test]
    fn sentences_break_at_blank_lines_and_bullets() {
        assert_eq!(
            split("Situation: a broken build\n\nWhat I did:\n- rewrote the pipeline\n- added caching\n1. measured"),
            vec!["Situation: a broken build", "What I did:", "rewrote the pipeline", "added caching", "1. measured"]
        );
        assert_eq!(split("one line\ncontinues here"), vec!["one line\ncontinues here"]);
    }

    #[test]
    fn run_on_speech_is_cut_at_connectives() {
        let text = "so we had this outage on the payments service that took down checkout for about two hours on a friday \
                    and I was the on call engineer so I pulled the logs and found a bad config push from the deploy tool \
                    then I rolled it back and wrote a postmortem with three fixes";
        let s = sentences(text);
        assert!(s.len() >= 3, "{s:?}");
        for piece in &s {
            assert!(word_count(&piece.text) <= MAX_RUN_ON_WORDS);
            assert_eq!(&text[piece.start..piece.end], piece.text);
        }
        assert_eq!(s.iter().map(|p| word_count(&p.text)).sum::<usize>(), word_count(text));
    }

    #[test]
    fn sentence_offsets_match_the_source() {
        let text = "  First one.  Second one?\n\n- third  ";
        for s in sentences(text) {
            assert_eq!(&text[s.start..s.end], s.text);
        }
        assert!(sentences("   ").is_empty());
        assert!(sentences("...").is_empty());
    }
}
