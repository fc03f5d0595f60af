//! The evaluator: one answer in, scores, STAR coverage, metrics and feedback out.
//! Free of HTTP so the `agent` function can call it directly.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::evaluation::embed::{Embedder, EmbedderConfig, cosine};
use crate::evaluation::metrics::{self, Findings, Metrics};
use crate::evaluation::skills::{self, Gazetteer};
use crate::evaluation::star::{self, Component, PROTOTYPES, Star};
use crate::evaluation::text::{self, Sentence};

/// Longest answer accepted, in characters (about 30 minutes of speech).
pub const MAX_ANSWER_CHARS: usize = 40_000;
pub const MAX_QUESTION_CHARS: usize = 2_000;
pub const MAX_JOB_CHARS: usize = 40_000;
pub const MAX_SKILLS: usize = 100;
pub const MAX_SEGMENTS: usize = 10_000;
/// Longest speaking time accepted: four hours.
pub const MAX_DURATION_S: f64 = 4.0 * 3600.0;
/// Job-description sentences compared with the answer (the rest add little).
const MAX_JOB_SENTENCES: usize = 60;

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluationRequest {
    /// The interview question.
    pub question: String,
    /// The answer text. May be empty when `timing.segments` carry the transcript.
    #[serde(default)]
    pub answer: String,
    #[serde(default)]
    pub job: Option<Job>,
    #[serde(default)]
    pub timing: Option<Timing>,
    /// Weights of the rubric criteria (any non-negative numbers; they are normalised).
    #[serde(default)]
    pub rubric: Option<Rubric>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Job {
    #[serde(default)]
    pub description: Option<String>,
    /// Required skills; when absent they are taken from the description.
    #[serde(default)]
    pub skills: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Speaking time in seconds.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Timed transcript segments (e.g. from `transcribe`).
    #[serde(default)]
    pub segments: Option<Vec<Segment>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    #[serde(default)]
    pub text: String,
}

/// Rubric weights. Unset criteria keep their default weight.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rubric {
    pub structure: Option<f64>,
    pub relevance: Option<f64>,
    pub job_fit: Option<f64>,
    pub clarity: Option<f64>,
    pub impact: Option<f64>,
}

/// Default weights: structure and relevance lead, as interviewers weigh them.
pub const DEFAULT_WEIGHTS: [(&str, f64); 5] =
    [("structure", 0.25), ("relevance", 0.25), ("job_fit", 0.15), ("clarity", 0.15), ("impact", 0.2)];

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Scores {
    pub structure: u32,
    pub relevance: u32,
    /// Absent when no job was given.
    pub job_fit: Option<u32>,
    pub clarity: u32,
    pub impact: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SkillsReport {
    /// Skills the job asks for.
    pub required: Vec<String>,
    /// Required skills the answer shows.
    pub shown: Vec<String>,
    /// Required skills the answer does not mention.
    pub missed: Vec<String>,
    /// Every gazetteer skill named in the answer.
    pub mentioned: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ModelInfo {
    pub embedding: String,
    pub runtime: String,
    /// Version of the scoring rules; changes when the same answer would score differently.
    pub scoring: String,
    /// The rubric weights used, normalised to sum to 1.
    pub weights: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Evaluation {
    /// Weighted rubric score, 0 to 100.
    pub overall: u32,
    pub scores: Scores,
    pub star: Star,
    pub metrics: Metrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skills: Option<SkillsReport>,
    /// Short, specific, actionable sentences that cite the answer.
    pub feedback: Vec<String>,
    pub model: ModelInfo,
}

pub const SCORING_VERSION: &str = "evaluate-1";

/// Files the evaluator loads, found by [`crate::evaluation::resolve_config`] at start-up.
#[derive(Debug, Clone)]
pub struct EvaluatorConfig {
    pub embedder: EmbedderConfig,
    pub skills: PathBuf,
}

/// Loaded once at cold start; evaluations are then pure functions of the request.
pub struct Evaluator {
    embedder: Embedder,
    gazetteer: Gazetteer,
    prototypes: [Vec<Vec<f32>>; 4],
    runtime: String,
}

impl Evaluator {
    pub fn load(config: &EvaluatorConfig) -> Result<Evaluator> {
        // The gazetteer loads while ONNX Runtime builds its session (most of a cold start).
        let (embedder, gazetteer) = std::thread::scope(|s| {
            let gazetteer = s.spawn(|| {
                let vocab = crate::evaluation::embed::vocabulary(&config.embedder.model_dir.join("tokenizer.json"))?;
                Gazetteer::load(&config.skills, |w| vocab.contains(w))
            });
            let embedder = Embedder::load(&config.embedder);
            let gazetteer = gazetteer.join().map_err(|_| Error::internal("loading the skills gazetteer panicked"))?;
            Ok::<_, Error>((embedder?, gazetteer?))
        })?;
        // All prototypes in one run.
        let all: Vec<&str> = PROTOTYPES.iter().flat_map(|(_, s)| s.iter().copied()).collect();
        let mut vectors = embedder.embed(&all)?.into_iter();
        let mut prototypes: [Vec<Vec<f32>>; 4] = Default::default();
        for (c, sentences) in PROTOTYPES {
            prototypes[c as usize] = vectors.by_ref().take(sentences.len()).collect();
        }
        Ok(Evaluator { embedder, gazetteer, prototypes, runtime: format!("onnxruntime (ort {})", ort_version()) })
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// The skills gazetteer (the agent's Context agent matches resumes and jobs with it).
    pub fn gazetteer(&self) -> &Gazetteer {
        &self.gazetteer
    }

    /// Evaluate one answer. Bad input is a `BadRequest` with a stable code.
    pub fn evaluate(&self, req: &EvaluationRequest) -> Result<Evaluation> {
        let input = validate(req)?;
        let answer = input.answer.as_str();
        let sentences = text::sentences(answer);
        let (metrics, findings) = metrics::measure(answer, &sentences, input.duration_s);
        let sentence_texts: Vec<String> = sentences.iter().map(|s| s.text.clone()).collect();

        // One embedding pass for everything this answer needs.
        let job_sentences: Vec<String> = input
            .job_description
            .as_deref()
            .map(|d| text::sentences(d).into_iter().map(|s| s.text).take(MAX_JOB_SENTENCES).collect())
            .unwrap_or_default();
        let mut batch: Vec<&str> = vec![req.question.trim(), answer];
        batch.extend(sentence_texts.iter().map(String::as_str));
        batch.extend(job_sentences.iter().map(String::as_str));
        let vectors = self.embedder.embed(&batch)?;
        let (question_v, answer_v) = (&vectors[0], &vectors[1]);
        let sentence_v = &vectors[2..2 + sentence_texts.len()];
        let job_v = &vectors[2 + sentence_texts.len()..];

        let quantified: Vec<bool> = (0..sentences.len()).map(|i| findings.quantified_sentences.contains(&i)).collect();
        let scored = star::score_sentences(&sentence_texts, sentence_v, &self.prototypes, &quantified);
        let star = star::summarise(&sentence_texts, &scored, &quantified);

        // Relevance: the whole answer and its best sentences against the question.
        let mut sims: Vec<f32> = sentence_v.iter().map(|v| cosine(v, question_v)).collect();
        sims.sort_by(|a, b| b.total_cmp(a));
        let top: f32 = sims.iter().take(3).sum::<f32>() / sims.len().clamp(1, 3) as f32;
        let relevance_raw = 0.6 * cosine(answer_v, question_v) + 0.4 * top;
        // Saturates late: echoing the question's words is not answering it.
        let relevance = scale(relevance_raw, 0.05, 0.6);

        let skills_report = input.job.then(|| self.skills_report(&input, answer));
        let job_fit = input.job.then(|| {
            let semantic = if job_v.is_empty() {
                None
            } else {
                // How close the answer's best sentences come to anything the job asks for.
                let mut best: Vec<f32> =
                    sentence_v.iter().map(|s| job_v.iter().map(|j| cosine(s, j)).fold(f32::MIN, f32::max)).collect();
                best.sort_by(|a, b| b.total_cmp(a));
                let n = best.len().clamp(1, 3);
                let whole = job_v.iter().map(|j| cosine(answer_v, j)).fold(f32::MIN, f32::max);
                Some(scale(0.5 * whole + 0.5 * best.iter().take(n).sum::<f32>() / n as f32, 0.05, 0.5))
            };
            let coverage = skills_report
                .as_ref()
                .filter(|r| !r.required.is_empty())
                // Showing three of the required skills in one answer is a full mark.
                .map(|r| (r.shown.len() as f64 / r.required.len().min(3) as f64).min(1.0));
            match (semantic, coverage) {
                (Some(s), Some(c)) => 0.5 * s + 0.5 * c,
                (Some(s), None) => s,
                (None, Some(c)) => c,
                (None, None) => 0.0,
            }
        });

        // A result told without any measure is only three quarters of one.
        let result_told = star.result * if star.result_quantified { 1.0 } else { 0.75 };
        let structure = 0.2 * star.situation + 0.2 * star.task + 0.35 * star.action + 0.25 * result_told;
        let clarity = clarity(&metrics);
        let ownership = if star.actions_by_me + star.actions_by_we == 0 {
            0.0
        } else {
            star.actions_by_me as f64 / (star.actions_by_me + star.actions_by_we) as f64
        };
        let quantified_share = (metrics.quantified_results.min(2) as f64) / 2.0;
        // Concrete detail: numbers and names (capitalised words inside a sentence) per 100 words.
        let concrete = (metrics.numbers + proper_nouns(&sentence_texts)) as f64 / metrics.words.max(1) as f64 * 100.0;
        let specificity = (concrete / 6.0).min(1.0);
        let impact = 0.3 * result_told + 0.3 * quantified_share + 0.2 * ownership + 0.2 * specificity;

        let pct = |x: f64| (x.clamp(0.0, 1.0) * 100.0).round() as u32;
        let scores = Scores {
            structure: pct(structure),
            relevance: pct(relevance),
            job_fit: job_fit.map(pct),
            clarity: pct(clarity),
            impact: pct(impact),
        };
        let weights = input.weights;
        let mut total = 0.0;
        let mut wsum = 0.0;
        for (name, w) in &weights {
            let s = match name.as_str() {
                "structure" => Some(scores.structure),
                "relevance" => Some(scores.relevance),
                "job_fit" => scores.job_fit,
                "clarity" => Some(scores.clarity),
                "impact" => Some(scores.impact),
                _ => None,
            };
            if let Some(s) = s {
                total += w * s as f64;
                wsum += w;
            }
        }
        let overall = if wsum > 0.0 { (total / wsum).round() as u32 } else { 0 };
        let used: BTreeMap<String, f64> = weights
            .iter()
            .filter(|(n, _)| n != "job_fit" || scores.job_fit.is_some())
            .map(|(n, w)| (n.clone(), if wsum > 0.0 { (w / wsum * 1000.0).round() / 1000.0 } else { 0.0 }))
            .collect();

        let feedback = feedback(&FeedbackInput {
            answer,
            question: req.question.trim(),
            sentences: &sentences,
            sentence_sims: &sentence_v.iter().map(|v| cosine(v, question_v)).collect::<Vec<_>>(),
            star: &star,
            scored: &scored,
            metrics: &metrics,
            findings: &findings,
            scores: &scores,
            skills: skills_report.as_ref(),
        });

        Ok(Evaluation {
            overall,
            scores,
            star,
            metrics,
            skills: skills_report,
            feedback,
            model: ModelInfo {
                embedding: "sentence-transformers/all-MiniLM-L6-v2 (ONNX)".into(),
                runtime: self.runtime.clone(),
                scoring: SCORING_VERSION.into(),
                weights: used,
            },
        })
    }

    fn skills_report(&self, input: &Validated, answer: &str) -> SkillsReport {
        let required: Vec<String> = match &input.job_skills {
            Some(s) if !s.is_empty() => s.clone(),
            _ => input.job_description.as_deref().map(|d| self.gazetteer.find(d)).unwrap_or_default(),
        };
        let mentioned = self.gazetteer.find(answer);
        let (shown, missed) = skills::shown_in(&required, &mentioned, answer);
        SkillsReport { required, shown, missed, mentioned }
    }
}

/// Capitalised words that do not start a sentence and are not `I`: names of products,
/// tools, companies, places.
fn proper_nouns(sentences: &[String]) -> u32 {
    let mut n = 0;
    for s in sentences {
        let tokens = text::tokenize(s);
        let mut first = true;
        for t in &tokens {
            if t.kind != text::Kind::Word {
                if matches!(t.norm.as_str(), ":" | ";") {
                    first = true;
                }
                continue;
            }
            let raw = &s[t.start..t.end];
            if !first && raw != "I" && !raw.starts_with("I'") && raw.chars().next().is_some_and(char::is_uppercase) {
                n += 1;
            }
            first = false;
        }
    }
    n
}

fn ort_version() -> &'static str {
    "2.0.0-rc.13"
}

/// Map `x` from [lo, hi] onto [0, 1].
fn scale(x: f32, lo: f32, hi: f32) -> f64 {
    (((x - lo) / (hi - lo)) as f64).clamp(0.0, 1.0)
}

/// Clarity from delivery: fillers, hedges, repetition, pace, length and sentence length.
fn clarity(m: &Metrics) -> f64 {
    let words = m.words.max(1) as f64;
    let mut score = 1.0;
    score -= (m.fillers.total as f64 / words * 100.0) * 0.04;
    score -= (m.hedges as f64 / words * 100.0) * 0.03;
    score -= (m.repetition.immediate as f64 * 0.02).min(0.15);
    score -= (m.repetition.overused.len() as f64 * 0.04).min(0.12);
    if let Some(wpm) = m.words_per_minute {
        // 120-170 words per minute is easy to follow.
        let off = if wpm < 120.0 {
            120.0 - wpm
        } else if wpm > 170.0 {
            wpm - 170.0
        } else {
            0.0
        };
        score -= (off / 200.0).min(0.3);
    }
    if m.words < 60 {
        score -= (60 - m.words) as f64 * 0.008;
    } else if m.words > 400 {
        score -= ((m.words - 400) as f64 * 0.001).min(0.25);
    }
    let per_sentence = words / m.sentences.max(1) as f64;
    if per_sentence > 32.0 {
        score -= ((per_sentence - 32.0) * 0.01).min(0.15);
    }
    score.clamp(0.0, 1.0)
}

struct Validated {
    answer: String,
    duration_s: Option<f64>,
    job: bool,
    job_description: Option<String>,
    job_skills: Option<Vec<String>>,
    weights: Vec<(String, f64)>,
}

fn bad(code: &'static str, msg: impl Into<String>) -> Error {
    Error::bad_request(msg.into()).with_code(code)
}

fn validate(req: &EvaluationRequest) -> Result<Validated> {
    if req.question.trim().is_empty() {
        return Err(bad("missing_question", "`question` must not be empty"));
    }
    if req.question.chars().count() > MAX_QUESTION_CHARS {
        return Err(bad("question_too_long", format!("`question` is longer than {MAX_QUESTION_CHARS} characters")));
    }
    let timing = req.timing.clone().unwrap_or_default();
    let segments = timing.segments.unwrap_or_default();
    if segments.len() > MAX_SEGMENTS {
        return Err(bad("invalid_timing", format!("more than {MAX_SEGMENTS} segments")));
    }
    for (i, s) in segments.iter().enumerate() {
        if !(s.start.is_finite() && s.end.is_finite()) || s.start < 0.0 || s.end < s.start {
            return Err(bad(
                "invalid_timing",
                format!("segment {i}: `start` and `end` must be finite seconds with 0 <= start <= end"),
            ));
        }
        if s.end > MAX_DURATION_S {
            return Err(bad("invalid_timing", format!("segment {i} ends after {MAX_DURATION_S} s")));
        }
    }
    let answer = if req.answer.trim().is_empty() {
        segments.iter().map(|s| s.text.trim()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(" ")
    } else {
        req.answer.clone()
    };
    if answer.trim().is_empty() {
        return Err(bad("missing_answer", "`answer` is empty and no `timing.segments` carry text"));
    }
    if answer.chars().count() > MAX_ANSWER_CHARS {
        return Err(bad("answer_too_long", format!("the answer is longer than {MAX_ANSWER_CHARS} characters")));
    }
    if text::word_count(&answer) == 0 {
        return Err(bad("missing_answer", "the answer has no words"));
    }
    let duration_s = match timing.duration_s {
        Some(d) if !d.is_finite() || d <= 0.0 || d > MAX_DURATION_S => {
            return Err(bad(
                "invalid_timing",
                format!("`timing.duration_s` must be a number of seconds above 0 and at most {MAX_DURATION_S}"),
            ));
        }
        Some(d) => Some(d),
        // From the segments: first start to last end, pauses included, as a listener hears it.
        None if !segments.is_empty() => {
            let start = segments.iter().map(|s| s.start).fold(f64::INFINITY, f64::min);
            let end = segments.iter().map(|s| s.end).fold(0.0, f64::max);
            (end > start).then_some(end - start)
        }
        None => None,
    };
    let (job, job_description, job_skills) = match &req.job {
        None => (false, None, None),
        Some(j) => {
            let description = j.description.as_deref().map(str::trim).filter(|d| !d.is_empty()).map(str::to_string);
            if description.as_ref().is_some_and(|d| d.chars().count() > MAX_JOB_CHARS) {
                return Err(bad(
                    "job_too_long",
                    format!("`job.description` is longer than {MAX_JOB_CHARS} characters"),
                ));
            }
            let skills = match &j.skills {
                Some(s) if s.len() > MAX_SKILLS => {
                    return Err(bad("invalid_skills", format!("more than {MAX_SKILLS} skills")));
                }
                Some(s) => {
                    let mut out: Vec<String> = Vec::new();
                    for sk in s {
                        let t = sk.trim();
                        if t.is_empty() || t.chars().count() > 100 {
                            return Err(bad("invalid_skills", "each skill is 1 to 100 characters"));
                        }
                        if !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
                            out.push(t.to_string());
                        }
                    }
                    Some(out)
                }
                None => None,
            };
            let any = description.is_some() || skills.as_ref().is_some_and(|s| !s.is_empty());
            (any, description, skills)
        }
    };
    let rubric = req.rubric.unwrap_or_default();
    let mut weights = Vec::new();
    for (name, default) in DEFAULT_WEIGHTS {
        let w = match name {
            "structure" => rubric.structure,
            "relevance" => rubric.relevance,
            "job_fit" => rubric.job_fit,
            "clarity" => rubric.clarity,
            _ => rubric.impact,
        };
        let w = w.unwrap_or(default);
        if !w.is_finite() || !(0.0..=1000.0).contains(&w) {
            return Err(bad("invalid_rubric", format!("rubric weight `{name}` must be a number from 0 to 1000")));
        }
        weights.push((name.to_string(), w));
    }
    let usable: f64 = weights.iter().filter(|(n, _)| job || n != "job_fit").map(|(_, w)| w).sum();
    if usable <= 0.0 {
        return Err(bad("invalid_rubric", "rubric weights must not all be zero"));
    }
    Ok(Validated { answer, duration_s, job, job_description, job_skills, weights })
}

/// Quote a piece of the answer, cut at a word boundary.
pub fn quote(s: &str, max_chars: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max_chars {
        return format!("“{s}”");
    }
    let cut: String = s.chars().take(max_chars).collect();
    let cut = cut.rfind(' ').map(|i| &cut[..i]).unwrap_or(&cut);
    format!("“{}…”", cut.trim_end_matches([',', ';', ':', ' ']))
}

/// The phrase around a filler, a few words either side, for quoting.
fn context(answer: &str, start: usize, end: usize) -> String {
    let before = &answer[..start];
    let mut b = start;
    let mut count = 0;
    for (i, c) in before.char_indices().rev() {
        if c == '.' || c == '?' || c == '!' {
            break;
        }
        if c.is_whitespace() {
            count += 1;
            if count > 3 {
                break;
            }
        }
        b = i;
    }
    let after = &answer[end..];
    let mut e = end;
    let mut count = 0;
    for (i, c) in after.char_indices() {
        if c.is_whitespace() {
            count += 1;
            if count > 3 {
                break;
            }
        }
        e = end + i + c.len_utf8();
        if c == '.' || c == '?' || c == '!' {
            break;
        }
    }
    quote(&answer[b..e], 80)
}

struct FeedbackInput<'a> {
    answer: &'a str,
    question: &'a str,
    sentences: &'a [Sentence],
    sentence_sims: &'a [f32],
    star: &'a Star,
    scored: &'a [star::SentenceStar],
    metrics: &'a Metrics,
    findings: &'a Findings,
    scores: &'a Scores,
    skills: Option<&'a SkillsReport>,
}

/// A few short, specific sentences, most important first: one strength, then what to fix.
fn feedback(f: &FeedbackInput) -> Vec<String> {
    let mut out: Vec<(u32, String)> = Vec::new();
    let star = f.star;
    let evidence = |c: Component| star.evidence.iter().find(|e| e.component == c);

    // Strength first, so the candidate knows what to keep.
    if let Some(e) = evidence(Component::Result).filter(|_| star.result_quantified) {
        out.push((
            100,
            format!("Strong close: you quantified the result ({}). Keep doing that.", quote(&e.sentence, 90)),
        ));
    } else if star.coverage >= 1.0 {
        out.push((100, "Clear structure: the answer covers situation, task, action and result in order.".into()));
    } else if let Some(e) = evidence(Component::Action).filter(|_| star.actions_by_me > 0) {
        out.push((95, format!("Good: you say what you did yourself ({}).", quote(&e.sentence, 90))));
    }

    // Missing STAR parts, pointing at where they would go.
    let last = f.sentences.last().map(|s| s.text.as_str()).unwrap_or("");
    if star.result < star::PRESENT as f64 {
        let after = evidence(Component::Action).map(|e| e.sentence.as_str()).unwrap_or(last);
        out.push((90, format!(
            "The answer never states the result. After {}, say what changed because of it, ideally with a number (time saved, % improvement, money).",
            quote(after, 70)
        )));
    } else if !star.result_quantified
        && let Some(e) = evidence(Component::Result)
    {
        out.push((70, format!(
                "Put a number on the outcome: {} would land harder with a measure such as a percentage, a time saved or a count.",
                quote(&e.sentence, 80)
            )));
    }
    if star.action < star::PRESENT as f64 {
        out.push((88, "Say what you did, step by step, in sentences that start with “I” (“I analysed…”, “I proposed…”); the answer does not yet show your actions.".into()));
    } else if star.actions_by_me == 0 && star.actions_by_we > 0 {
        let we = f
            .scored
            .iter()
            .enumerate()
            .find(|(_, s)| s.actor == star::Actor::We)
            .map(|(i, _)| f.sentences[i].text.as_str())
            .unwrap_or("");
        out.push((
            85,
            format!("The actions are all “we” ({}). Say which part you did yourself: “I …”.", quote(we, 70)),
        ));
    }
    if star.situation < star::PRESENT as f64 && star.task < star::PRESENT as f64 {
        out.push((75, "Open with one or two sentences of context: where you were, what was at stake, and what you were responsible for.".into()));
    } else if star.task < star::PRESENT as f64 {
        out.push((60, "Name your own goal or responsibility before the actions (“My job was to…”), so the listener knows what success meant.".into()));
    }

    // Relevance.
    if f.scores.relevance < 45 {
        let best = f
            .sentence_sims
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| f.sentences[i].text.as_str())
            .unwrap_or("");
        out.push((92, format!(
            "The answer drifts from the question ({}); its closest sentence is {}. Open with a sentence that answers the question directly.",
            quote(f.question, 60),
            quote(best, 70)
        )));
    }

    // Job fit.
    if let Some(s) = f.skills
        && !s.required.is_empty()
    {
        if !s.missed.is_empty() && s.shown.len() < s.required.len().min(3) {
            let names: Vec<&str> = s.missed.iter().take(3).map(String::as_str).collect();
            out.push((65, format!(
                "The job asks for {}, which the answer does not mention; if this story involved any of them, name it.",
                join_and(&names)
            )));
        }
        if !s.shown.is_empty() {
            let names: Vec<&str> = s.shown.iter().take(3).map(String::as_str).collect();
            out.push((40, format!("Good fit: you showed {}, which the job asks for.", join_and(&names))));
        }
    }

    // Delivery.
    let m = f.metrics;
    let filler_rate = m.fillers.total as f64 / m.words.max(1) as f64 * 100.0;
    if m.fillers.total >= 3 && filler_rate >= 2.0 {
        let mut by: Vec<(&String, &u32)> = m.fillers.by_word.iter().collect();
        by.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let parts: Vec<String> = by.iter().take(3).map(|(w, n)| format!("“{w}” ×{n}")).collect();
        let example = f.findings.fillers.first().map(|o| context(f.answer, o.start, o.end)).unwrap_or_default();
        let rate = m.fillers.per_minute.map(|p| format!(", {p} a minute")).unwrap_or_default();
        out.push((
            80 + (filler_rate as u32).min(15),
            format!(
                "You used {} filler words{rate} ({}), e.g. {example}. Pause silently instead.",
                m.fillers.total,
                parts.join(", ")
            ),
        ));
    }
    if m.hedges >= 2 {
        let examples: Vec<String> =
            f.findings.hedges.iter().take(2).map(|o| format!("“{}”", &f.answer[o.start..o.end])).collect();
        out.push((
            55,
            format!(
                "Hedges such as {} ({} in all) weaken your claims; state what you did and what happened.",
                examples.join(" and "),
                m.hedges
            ),
        ));
    }
    if let Some(wpm) = m.words_per_minute {
        if wpm > 180.0 {
            out.push((
                72,
                format!("At {wpm} words per minute you spoke fast; aim for 130-160 and let key numbers land."),
            ));
        } else if wpm < 100.0 {
            out.push((
                62,
                format!("At {wpm} words per minute the pace was slow; aim for 130-160 by preparing the story's beats."),
            ));
        }
    }
    if m.words < 50 {
        out.push((86, format!("At {} words the answer is too short to show your part; aim for 150-300 words with context, your actions and the result.", m.words)));
    } else if m.words > 450 {
        out.push((
            58,
            format!(
                "At {} words the answer is long; keep to about 2 minutes (250-350 words) by cutting background.",
                m.words
            ),
        ));
    }
    if let Some(w) = m.repetition.overused.first() {
        out.push((35, format!("You repeat “{}” {} times; vary the wording or be more specific.", w.word, w.count)));
    }

    out.sort_by_key(|(priority, _)| std::cmp::Reverse(*priority));
    out.into_iter().take(5).map(|(_, s)| s).collect()
}

fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(answer: &str) -> EvaluationRequest {
        EvaluationRequest { question: "Tell me about a time.".into(), answer: answer.into(), ..Default::default() }
    }

    #[test]
    fn bad_input_gets_stable_codes() {
        let code = |r: &EvaluationRequest| validate(r).err().map(|e| e.code().to_string()).unwrap_or_default();
        assert_eq!(
            code(&EvaluationRequest { question: " ".into(), answer: "x".into(), ..Default::default() }),
            "missing_question"
        );
        assert_eq!(code(&req("")), "missing_answer");
        assert_eq!(code(&req(" ... ")), "missing_answer");
        assert_eq!(code(&req(&"word ".repeat(9000))), "answer_too_long");
        let mut r = req("fine answer");
        r.timing = Some(Timing { duration_s: Some(-3.0), segments: None });
        assert_eq!(code(&r), "invalid_timing");
        r.timing = Some(Timing { duration_s: Some(f64::NAN), segments: None });
        assert_eq!(code(&r), "invalid_timing");
        r.timing =
            Some(Timing { duration_s: None, segments: Some(vec![Segment { start: 5.0, end: 2.0, text: "x".into() }]) });
        assert_eq!(code(&r), "invalid_timing");
        r.timing = None;
        r.rubric = Some(Rubric { structure: Some(-1.0), ..Default::default() });
        assert_eq!(code(&r), "invalid_rubric");
        r.rubric = Some(Rubric {
            structure: Some(0.0),
            relevance: Some(0.0),
            job_fit: Some(1.0),
            clarity: Some(0.0),
            impact: Some(0.0),
        });
        // Only job fit weighted, and no job given: nothing left to score.
        assert_eq!(code(&r), "invalid_rubric");
        r.rubric = None;
        r.job = Some(Job { description: None, skills: Some(vec!["".into()]) });
        assert_eq!(code(&r), "invalid_skills");
    }

    #[test]
    fn timing_comes_from_duration_or_segments() {
        let mut r = req("");
        r.timing = Some(Timing {
            duration_s: None,
            segments: Some(vec![
                Segment { start: 1.5, end: 10.0, text: "I led the".into() },
                Segment { start: 10.0, end: 31.5, text: " migration.".into() },
            ]),
        });
        let v = validate(&r).unwrap();
        assert_eq!(v.answer, "I led the migration.");
        assert_eq!(v.duration_s, Some(30.0));
        r.timing.as_mut().unwrap().duration_s = Some(45.0);
        assert_eq!(validate(&r).unwrap().duration_s, Some(45.0));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<EvaluationRequest>(r#"{"question":"q","answer":"a","rubrik":{}}"#).unwrap_err();
        assert!(e.to_string().contains("rubrik"));
        let e = serde_json::from_str::<EvaluationRequest>(r#"{"question":"q","answer":"a","rubric":{"style":1}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("style"));
    }

    #[test]
    fn odd_answers_evaluate_without_panicking() {
        let ev = crate::evaluation::testutil::evaluator();
        let long_word = "a".repeat(5000);
        for answer in [
            "42",
            "😀 🚀 — great job «quoted» 👍",
            "مرحبا، لقد قمت بتحسين الأداء بنسبة 30٪.",
            "I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I I",
            "\n\n- \n- x\n\n1. y",
            "Dr. J. Smith, e.g. Ph.D., etc. etc.",
            "um uh er um like like like you know I mean kind of sort of basically",
            long_word.as_str(),
            "$$$ 100% 3x 1,000,000 2019 Q3",
        ] {
            let mut r = req(answer);
            r.timing = Some(Timing { duration_s: Some(1.0), segments: None });
            r.job = Some(Job { description: Some(answer.to_string()), skills: None });
            let e = ev.evaluate(&r).unwrap_or_else(|e| panic!("{answer:?}: {e}"));
            assert!(e.overall <= 100 && e.feedback.len() <= 5, "{answer:?}");
        }
        // Nothing but symbols has no words: a clear refusal.
        assert_eq!(ev.evaluate(&req("😀 🚀 — … «»")).unwrap_err().code(), "missing_answer");
    }

    #[test]
    fn quotes_are_cut_at_words() {
        assert_eq!(quote("short one", 20), "“short one”");
        assert_eq!(quote("this is a rather long sentence, really", 20), "“this is a rather…”");
        assert_eq!(join_and(&["a", "b", "c"]), "a, b and c");
    }
}
