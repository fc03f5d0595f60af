//! The development set (`testdata/dev_set.json`): strong and weak answers to common
//! interview questions, with the words, pace, fillers and STAR components a careful
//! human marks. Word counts and pace there were computed independently of this crate.

use serde::Deserialize;
use std::collections::BTreeMap;

use crate::evaluation::evaluator::{EvaluationRequest, Job, Timing};
use crate::evaluation::star::COMPONENTS;

#[derive(Deserialize)]
struct DevSet {
    pairs: Vec<Pair>,
}

#[derive(Deserialize)]
struct Pair {
    id: String,
    question: String,
    #[serde(default)]
    job: Option<Job>,
    strong: Marked,
    weak: Marked,
}

#[derive(Deserialize)]
struct Marked {
    answer: String,
    duration_s: f64,
    words: u32,
    words_per_minute: f64,
    fillers_total: u32,
    fillers: BTreeMap<String, u32>,
    star: Vec<String>,
}

fn load() -> DevSet {
    serde_json::from_str(include_str!("../../testdata/evaluation/dev_set.json")).expect("dev set parses")
}

fn request(p: &Pair, m: &Marked) -> EvaluationRequest {
    EvaluationRequest {
        question: p.question.clone(),
        answer: m.answer.clone(),
        job: p.job.clone(),
        timing: Some(Timing { duration_s: Some(m.duration_s), segments: None }),
        rubric: None,
    }
}

#[test]
fn the_set_is_big_enough() {
    let set = load();
    assert!(set.pairs.len() * 2 >= 60, "{} answers", set.pairs.len() * 2);
}

#[test]
fn words_pace_and_fillers_are_exact() {
    let ev = crate::evaluation::testutil::evaluator();
    for p in load().pairs {
        for (which, m) in [("strong", &p.strong), ("weak", &p.weak)] {
            let e = ev.evaluate(&request(&p, m)).unwrap();
            let at = format!("{} ({which})", p.id);
            assert_eq!(e.metrics.words, m.words, "{at}: words");
            assert_eq!(e.metrics.words_per_minute, Some(m.words_per_minute), "{at}: words per minute");
            assert_eq!(e.metrics.fillers.by_word, m.fillers, "{at}: fillers");
            assert_eq!(e.metrics.fillers.total, m.fillers_total, "{at}: filler total");
        }
    }
}

#[test]
fn strong_answers_outscore_weak_ones() {
    let ev = crate::evaluation::testutil::evaluator();
    let set = load();
    let mut wins = 0;
    let mut star_agree = 0;
    let mut star_total = 0;
    let mut report = String::new();
    for p in &set.pairs {
        let s = ev.evaluate(&request(p, &p.strong)).unwrap();
        let w = ev.evaluate(&request(p, &p.weak)).unwrap();
        if s.overall > w.overall {
            wins += 1;
        }
        report.push_str(&format!("{:<22} strong {:>3} weak {:>3}\n", p.id, s.overall, w.overall));
        for (e, m) in [(&s, &p.strong), (&w, &p.weak)] {
            let got = [e.star.situation, e.star.task, e.star.action, e.star.result];
            for c in COMPONENTS {
                let present = got[c as usize] >= crate::evaluation::star::PRESENT as f64;
                star_total += 1;
                if present == m.star.iter().any(|x| x == c.name()) {
                    star_agree += 1;
                } else {
                    report.push_str(&format!(
                        "  {}: {} marked {}, scored {:.2}\n",
                        p.id,
                        c.name(),
                        !present,
                        got[c as usize]
                    ));
                }
            }
        }
    }
    let share = wins as f64 / set.pairs.len() as f64;
    eprintln!(
        "dev set: strong > weak in {wins}/{} pairs; STAR marks agree {star_agree}/{star_total}\n{report}",
        set.pairs.len()
    );
    assert!(share >= 0.9, "strong beat weak in {wins}/{} pairs\n{report}", set.pairs.len());
    let agreement = star_agree as f64 / star_total as f64;
    assert!(agreement >= 0.85, "STAR components agree with the marks in {star_agree}/{star_total}\n{report}");
}
