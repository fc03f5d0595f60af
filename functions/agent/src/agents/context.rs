//! The Context agent: the candidate's profile against the job (skills matched and
//! missing, seniority, role family, the resume's outcomes), the competency plan with its
//! questions retrieved from the bank, job passages retrieved for each question, and the
//! questions adapted to this candidate and job by the model.

use super::{bullets, clip, facts, json_call};
use crate::bank::{Kind, QuestionBank};
use crate::index::VectorIndex;
use crate::model::{Call, Mode, PlannedQuestion, Profile};
use crate::prompts::PromptVersion;
use catalyst_shared::evaluation::Evaluator;
use catalyst_shared::llm::LanguageModel;
use catalyst_shared::{Error, Result};
use serde_json::{Value, json};
use std::collections::HashSet;

/// The job as the agents use it, from a scrape result or plain text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFacts {
    pub title: Option<String>,
    pub company: Option<String>,
    /// The posting's main text.
    pub text: String,
    /// Requirement and responsibility lines.
    pub requirements: Vec<String>,
    pub skills: Vec<String>,
}

fn str_of(v: &Value) -> Option<String> {
    v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(str_of).collect()).unwrap_or_default()
}

impl JobFacts {
    /// From a `scrape` result (`{title, text, metadata, job: {...}}`).
    pub fn from_scrape(v: &Value) -> Result<JobFacts> {
        if !v.is_object() {
            return Err(Error::bad_request("`job` must be a scrape result object").with_code("invalid_job"));
        }
        let job = &v["job"];
        let mut requirements = strings(&job["qualifications"]);
        requirements.extend(strings(&job["responsibilities"]));
        requirements.extend(strings(&job["experience"]));
        let text = str_of(&job["description"]).or_else(|| str_of(&v["text"])).unwrap_or_default();
        let facts = JobFacts {
            title: str_of(&job["title"]).or_else(|| str_of(&v["title"])),
            company: str_of(&job["organization"]["name"]).or_else(|| str_of(&v["metadata"]["site_name"])),
            text,
            requirements,
            skills: strings(&job["skills"]),
        };
        if facts.text.trim().is_empty() && facts.requirements.is_empty() {
            return Err(Error::bad_request("the job has no text to ground the interview in").with_code("invalid_job"));
        }
        Ok(facts)
    }

    /// From pasted text: the first short line is taken as the title, bullet lines as requirements.
    pub fn from_text(text: &str) -> Result<JobFacts> {
        let text = text.trim();
        if text.chars().count() < 20 {
            return Err(Error::bad_request("`job_text` is too short to ground an interview").with_code("invalid_job"));
        }
        let title = text.lines().map(str::trim).find(|l| !l.is_empty()).filter(|l| l.len() <= 100).map(str::to_string);
        let requirements = text
            .lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix(['-', '*', '•']).map(str::trim))
            .filter(|l| l.len() >= 8)
            .map(str::to_string)
            .collect();
        Ok(JobFacts { title, company: None, text: text.to_string(), requirements, skills: Vec::new() })
    }

    /// The text that stands for the job in retrieval.
    pub fn query_text(&self) -> String {
        let mut q = self.title.clone().unwrap_or_default();
        for r in self.requirements.iter().take(10) {
            q.push_str(". ");
            q.push_str(r);
        }
        if !self.skills.is_empty() {
            q.push_str(". ");
            q.push_str(&self.skills.join(", "));
        }
        if q.len() < 40 {
            q.push_str(". ");
            q.push_str(&clip(&self.text, 1_000));
        }
        q
    }
}

/// The resume's facts (a JSON Resume object; a `parse` result's `resume` is accepted too).
pub fn resume_of(v: &Value) -> Result<&Value> {
    let r = if v.get("resume").is_some_and(Value::is_object) { &v["resume"] } else { v };
    if !r.is_object() {
        return Err(Error::bad_request("`resume` must be a JSON Resume object").with_code("invalid_resume"));
    }
    Ok(r)
}

fn resume_text(r: &Value) -> String {
    let mut out = Vec::new();
    for k in ["label", "summary"] {
        out.extend(str_of(&r["basics"][k]));
    }
    for w in r["work"].as_array().into_iter().flatten() {
        out.extend(str_of(&w["position"]));
        out.extend(str_of(&w["summary"]));
        out.extend(strings(&w["highlights"]));
    }
    for p in r["projects"].as_array().into_iter().flatten() {
        out.extend(str_of(&p["description"]));
        out.extend(strings(&p["highlights"]));
    }
    for s in r["skills"].as_array().into_iter().flatten() {
        out.extend(str_of(&s["name"]));
        out.extend(strings(&s["keywords"]));
    }
    out.join(". ")
}

/// Years between the earliest start and the latest end (or now) of the work entries.
fn years_of_experience(r: &Value) -> Option<f64> {
    let year = |v: &Value| -> Option<f64> {
        let s = v.as_str()?;
        let y: f64 = s.get(..4)?.parse().ok()?;
        let m: f64 = s.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1.0);
        Some(y + (m - 1.0) / 12.0)
    };
    let now = {
        use chrono::Datelike;
        let d = chrono::Utc::now();
        d.year() as f64 + (d.month0() as f64) / 12.0
    };
    let mut first: Option<f64> = None;
    let mut last: Option<f64> = None;
    for w in r["work"].as_array().into_iter().flatten() {
        if let Some(s) = year(&w["startDate"]) {
            first = Some(first.map_or(s, |f| f.min(s)));
            let e = year(&w["endDate"]).unwrap_or(now);
            last = Some(last.map_or(e, |l| l.max(e)));
        }
    }
    Some(((last? - first?).max(0.0) * 10.0).round() / 10.0)
}

fn contains_word(haystack: &str, needles: &[&str]) -> bool {
    let h = format!(" {} ", haystack.to_lowercase().replace(|c: char| !c.is_alphanumeric() && c != '-', " "));
    needles.iter().any(|n| h.contains(&format!(" {n} ")))
}

pub fn seniority(job_title: Option<&str>, years: Option<f64>) -> String {
    let t = job_title.unwrap_or("");
    let s = if contains_word(t, &["intern", "junior", "jr", "graduate", "entry", "trainee", "apprentice"]) {
        "junior"
    } else if contains_word(t, &["staff", "principal", "distinguished", "architect", "director", "head", "vp"]) {
        "staff"
    } else if contains_word(t, &["senior", "sr", "lead"]) {
        "senior"
    } else {
        match years {
            Some(y) if y < 2.0 => "junior",
            Some(y) if y < 5.0 => "mid",
            Some(y) if y < 10.0 => "senior",
            Some(_) => "staff",
            None => "mid",
        }
    };
    s.to_string()
}

pub fn role_family(job_title: Option<&str>, skills: &[String]) -> String {
    let t = job_title.unwrap_or("");
    let table: &[(&[&str], &str)] = &[
        (&["manager", "director", "head", "vp"], "management"),
        (&["product"], "product"),
        (&["designer", "ux", "design"], "design"),
        (&["security", "appsec", "infosec", "pentester"], "security"),
        (&["sre", "devops", "reliability", "platform", "infrastructure", "cloud"], "devops-sre"),
        (&["ml", "machine", "ai", "scientist", "research"], "ml"),
        (&["data", "analytics", "analyst", "bi"], "data"),
        (&["frontend", "front-end", "ui", "web", "ios", "android", "mobile"], "frontend"),
        (&["backend", "back-end", "api"], "backend"),
        (&["qa", "test", "quality", "sdet"], "qa"),
    ];
    for (words, family) in table {
        if contains_word(t, words) {
            return family.to_string();
        }
    }
    let s = skills.join(" ");
    if contains_word(&s, &["react", "css", "typescript", "vue", "angular"]) {
        return "frontend".into();
    }
    "software-engineering".into()
}

/// The profile: everything here is measured from the resume and the job, no model.
pub fn profile(resume: &Value, job: &JobFacts, evaluator: &Evaluator) -> Profile {
    let gaz = evaluator.gazetteer();
    let text = resume_text(resume);
    let mut resume_skills: Vec<String> = Vec::new();
    for s in resume["skills"].as_array().into_iter().flatten() {
        resume_skills.extend(strings(&s["keywords"]));
        resume_skills.extend(str_of(&s["name"]));
    }
    resume_skills.extend(gaz.find(&text));
    dedupe(&mut resume_skills);

    let mut required = job.skills.clone();
    required.extend(gaz.find(&format!("{}\n{}", job.requirements.join("\n"), job.text)));
    dedupe(&mut required);
    required.truncate(25);
    let have: HashSet<String> = resume_skills.iter().map(|s| s.to_lowercase()).collect();
    let lower_text = text.to_lowercase();
    let (matched, gaps): (Vec<String>, Vec<String>) = required
        .iter()
        .cloned()
        .partition(|s| have.contains(&s.to_lowercase()) || lower_text.contains(&s.to_lowercase()));

    let mut highlights: Vec<String> = Vec::new();
    for w in resume["work"].as_array().into_iter().flatten() {
        highlights.extend(strings(&w["highlights"]));
    }
    for p in resume["projects"].as_array().into_iter().flatten() {
        highlights.extend(strings(&p["highlights"]));
    }
    // Outcomes with numbers first: they are what interviewers ask about.
    highlights.sort_by_key(|h| !h.chars().any(|c| c.is_ascii_digit()));
    highlights.truncate(8);

    let years = years_of_experience(resume);
    let headline = str_of(&resume["basics"]["label"])
        .or_else(|| resume["work"].as_array().and_then(|w| w.first()).and_then(|w| str_of(&w["position"])));
    Profile {
        name: str_of(&resume["basics"]["name"]),
        headline,
        years_experience: years,
        seniority: seniority(job.title.as_deref(), years),
        role_family: role_family(job.title.as_deref(), &required),
        job_title: job.title.clone(),
        company: job.company.clone(),
        required_skills: required,
        resume_skills,
        matched_skills: matched,
        gaps,
        highlights,
        summary: String::new(),
    }
}

fn dedupe(v: &mut Vec<String>) {
    let mut seen = HashSet::new();
    v.retain(|s| !s.trim().is_empty() && seen.insert(s.to_lowercase()));
}

/// Job passages of about 500 characters (whole sentences), for grounding.
pub fn chunks(job: &JobFacts) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let text = format!("{}\n{}", job.text, job.requirements.join("\n"));
    for piece in text.split(['\n', '.']).map(str::trim).filter(|p| p.len() > 3) {
        if cur.len() + piece.len() > 500 && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push_str(". ");
        }
        cur.push_str(piece);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.truncate(60);
    out
}

/// Which kinds the plan alternates between.
fn kinds(mode: Mode, n: usize) -> Vec<Kind> {
    (0..n)
        .map(|i| match mode {
            Mode::Behavioral => Kind::Behavioral,
            Mode::Technical => Kind::Technical,
            Mode::Mixed if i % 2 == 0 => Kind::Behavioral,
            Mode::Mixed => Kind::Technical,
        })
        .collect()
}

/// The plan: for each slot, the best-matching bank question (retrieved by the job's
/// embedding, filtered to the kind, seniority and role family) of a competency not yet
/// covered; a technical slot probes a skill gap first when the bank has a question on it.
pub fn plan(
    bank: &QuestionBank,
    evaluator: &Evaluator,
    profile: &Profile,
    job: &JobFacts,
    mode: Mode,
    n: usize,
) -> Result<Vec<PlannedQuestion>> {
    let job_chunks = chunks(job);
    let mut texts = vec![job.query_text()];
    texts.extend(job_chunks.iter().cloned());
    let vectors = evaluator.embedder().embed(&texts)?;
    let query = &vectors[0];
    let chunk_index = VectorIndex::build(vectors[1..].to_vec())?;

    let fits = |i: usize, kind: Kind| {
        let q = &bank.questions[i];
        q.kind == kind && q.seniority.contains(&profile.seniority) && q.fits_role(&profile.role_family)
    };
    let mut used_competencies: HashSet<String> = HashSet::new();
    let mut used: HashSet<usize> = HashSet::new();
    let mut gaps_left: Vec<String> = profile.gaps.iter().map(|g| g.to_lowercase()).collect();
    let mut planned = Vec::with_capacity(n);
    for kind in kinds(mode, n) {
        let mut pick: Option<(usize, String)> = None;
        if kind == Kind::Technical && !gaps_left.is_empty() {
            let gap_hit =
                bank.index.search(query, 200, |i| fits(i, kind) && !used.contains(&i)).into_iter().find(|h| {
                    let q = &bank.questions[h.item];
                    q.skills.iter().any(|s| gaps_left.contains(&s.to_lowercase()))
                });
            if let Some(h) = gap_hit {
                let q = &bank.questions[h.item];
                let skill =
                    q.skills.iter().find(|s| gaps_left.contains(&s.to_lowercase())).cloned().unwrap_or_default();
                gaps_left.retain(|g| *g != skill.to_lowercase());
                pick = Some((h.item, format!("probes `{skill}`, which the job asks for and the resume does not show")));
            }
        }
        if pick.is_none() {
            // Widen the filters step by step rather than fail on an unusual job.
            let strict = |i: usize| fits(i, kind) && !used.contains(&i);
            let any_level = |i: usize| bank.questions[i].kind == kind && !used.contains(&i);
            for (filter, note) in [(&strict as &dyn Fn(usize) -> bool, ""), (&any_level, " (any level or role)")] {
                let hits = bank.index.search(query, 60, filter);
                let fresh = hits.iter().find(|h| !used_competencies.contains(&bank.questions[h.item].competency));
                if let Some(h) = fresh.or(hits.first()) {
                    let c = &bank.questions[h.item].competency;
                    pick = Some((h.item, format!("{} competency `{c}` matches the job{note}", kind_name(kind))));
                    break;
                }
            }
        }
        let Some((i, reason)) = pick else { break };
        used.insert(i);
        let q = &bank.questions[i];
        used_competencies.insert(q.competency.clone());
        let qv = bank.index.row(i);
        let grounding = chunk_index.exact(qv, 2, |_| true).into_iter().map(|h| job_chunks[h.item].clone()).collect();
        planned.push(PlannedQuestion {
            bank_id: q.id.clone(),
            kind: q.kind,
            competency: q.competency.clone(),
            text: q.text.clone(),
            bank_text: q.text.clone(),
            reason,
            grounding,
        });
    }
    if planned.is_empty() {
        return Err(Error::internal("the question bank has no question for this interview").with_code("empty_plan"));
    }
    Ok(planned)
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Behavioral => "behavioral",
        Kind::Technical => "technical",
    }
}

/// The model's part: the candidate summary and the questions adapted to resume and job.
/// A question the model dropped or garbled keeps the bank's wording.
pub async fn adapt(
    llm: &dyn LanguageModel,
    prompt: &PromptVersion,
    profile: &mut Profile,
    plan: &mut [PlannedQuestion],
    persona: Option<&str>,
) -> Result<Call> {
    let ids: Vec<String> = plan.iter().map(|q| q.bank_id.clone()).collect();
    let schema = json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string", "minLength": 10, "maxLength": 300},
            "questions": {
                "type": "array", "minItems": plan.len(), "maxItems": plan.len(),
                "items": {
                    "type": "object",
                    "properties": {"id": {"enum": ids}, "text": {"type": "string", "minLength": 15, "maxLength": 240}},
                    "required": ["id", "text"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["summary", "questions"],
        "additionalProperties": false
    });
    let candidate = facts(&[
        ("Name", profile.name.clone().unwrap_or_default()),
        ("Current title", profile.headline.clone().unwrap_or_default()),
        ("Years of experience", profile.years_experience.map(|y| y.to_string()).unwrap_or_default()),
        ("Skills", profile.resume_skills.iter().take(25).cloned().collect::<Vec<_>>().join(", ")),
        ("Achievements", bullets(&profile.highlights)),
    ]);
    let job = facts(&[
        ("Title", profile.job_title.clone().unwrap_or_default()),
        ("Company", profile.company.clone().unwrap_or_default()),
        ("Required skills", profile.required_skills.join(", ")),
        ("Required skills the resume does not show", profile.gaps.join(", ")),
    ]);
    let questions = plan
        .iter()
        .map(|q| format!("- id {}: [{}] {}", q.bank_id, q.competency, q.text))
        .collect::<Vec<_>>()
        .join("\n");
    let user = facts(&[
        ("CANDIDATE", candidate),
        ("JOB", job),
        ("Interviewer persona", persona.unwrap_or("").to_string()),
        ("PLANNED QUESTIONS", questions),
        ("Output", "{\"summary\": \"...\", \"questions\": [{\"id\": \"...\", \"text\": \"...\"}, ...]}".into()),
    ]);
    let (v, call) = json_call(llm, prompt, user, schema).await?;
    profile.summary = clip(v["summary"].as_str().unwrap_or_default(), 300);
    for item in v["questions"].as_array().into_iter().flatten() {
        let (Some(id), Some(text)) = (item["id"].as_str(), item["text"].as_str()) else { continue };
        let text = clip(text, 240);
        if let Some(q) = plan.iter_mut().find(|q| q.bank_id == id)
            && text.chars().count() >= 15
        {
            q.text = text;
        }
    }
    Ok(call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seniority_and_role_come_from_the_title_first() {
        assert_eq!(seniority(Some("Senior Backend Engineer"), Some(1.0)), "senior");
        assert_eq!(seniority(Some("Staff Engineer, Platform"), None), "staff");
        assert_eq!(seniority(Some("Software Engineer Intern"), Some(12.0)), "junior");
        assert_eq!(seniority(Some("Software Engineer"), Some(6.5)), "senior");
        assert_eq!(seniority(None, None), "mid");
        assert_eq!(role_family(Some("Senior Site Reliability Engineer"), &[]), "devops-sre");
        assert_eq!(role_family(Some("Engineering Manager, Payments"), &[]), "management");
        assert_eq!(role_family(Some("Software Engineer"), &["React".into()]), "frontend");
        assert_eq!(role_family(Some("Software Engineer"), &[]), "software-engineering");
        assert_eq!(role_family(Some("Data Engineer"), &[]), "data");
    }

    #[test]
    fn jobs_come_from_scrape_results_or_text() {
        let scraped = json!({"title": "Page", "text": "We build payments.", "metadata": {"site_name": "Acme"},
            "job": {"title": "Backend Engineer", "qualifications": ["5 years of Go"], "responsibilities": ["Own the ledger"],
                    "skills": ["Go", "PostgreSQL"], "description": "Join the payments team."}});
        let j = JobFacts::from_scrape(&scraped).unwrap();
        assert_eq!(j.title.as_deref(), Some("Backend Engineer"));
        assert_eq!(j.company.as_deref(), Some("Acme"));
        assert_eq!(j.requirements, vec!["5 years of Go", "Own the ledger"]);
        assert_eq!(j.text, "Join the payments team.");
        assert_eq!(JobFacts::from_scrape(&json!({"title": "x"})).unwrap_err().code(), "invalid_job");
        assert_eq!(JobFacts::from_scrape(&json!("text")).unwrap_err().code(), "invalid_job");

        let t = JobFacts::from_text("Data Engineer\nWe need someone.\n- Build Spark pipelines\n- Own Airflow DAGs\n")
            .unwrap();
        assert_eq!(t.title.as_deref(), Some("Data Engineer"));
        assert_eq!(t.requirements, vec!["Build Spark pipelines", "Own Airflow DAGs"]);
        assert_eq!(JobFacts::from_text("short").unwrap_err().code(), "invalid_job");
    }

    #[test]
    fn experience_spans_the_work_history() {
        let r = json!({"work": [{"startDate": "2015-03", "endDate": "2018-03"}, {"startDate": "2018-04", "endDate": "2021-03"}]});
        assert_eq!(years_of_experience(&r), Some(6.0));
        assert_eq!(years_of_experience(&json!({"work": []})), None);
        assert_eq!(resume_of(&json!({"resume": {"basics": {}}, "text": "x"})).unwrap(), &json!({"basics": {}}));
        assert_eq!(resume_of(&json!([1])).unwrap_err().code(), "invalid_resume");
    }

    #[test]
    fn job_chunks_keep_sentences_whole() {
        let job = JobFacts { text: "a".repeat(300) + ". " + &"b".repeat(300) + ". Short one.", ..Default::default() };
        let c = chunks(&job);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c[1].ends_with("Short one"));
    }
}
