//! Sections to JSON Resume (jsonresume.org schema): basics, work, education, skills,
//! projects, certificates, languages.
//!
//! Entries (jobs, degrees) are found the way a reader finds them: a short run of
//! header lines that carries a date range, followed by bullets or prose. Which header
//! piece is the company and which the position is decided by vocabulary (job-title
//! words, company suffixes, institution and degree words in several languages), with
//! the common "position first" order as the tie-breaker.

use crate::dates::{self, DateRange};
use crate::sections::{Section, SectionKind};
use crate::skills::Gazetteer;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resume {
    pub basics: Basics,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub work: Vec<Work>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub education: Vec<Education>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<Skill>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<Project>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<Certificate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<Language>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Basics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<Profile>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Profile {
    pub network: String,
    pub username: String,
    pub url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Work {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// Absent with a start date: the position is current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub highlights: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Education {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Skill {
    pub name: String,
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub highlights: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Certificate {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Language {
    pub language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fluency: Option<String>,
}

// ---------------------------------------------------------------------------------
// Vocabulary

/// Stems of job titles; matched as substrings of lowercase words so German compounds
/// ("Softwareentwicklerin") match too.
const TITLE_STEMS: &[&str] = &[
    "engineer",
    "developer",
    "programmer",
    "entwickler",
    "leider",
    "projectmanager",
    "ingenieur",
    "ingénieur",
    "ingeniero",
    "ingeniera",
    "engenheir",
    "manager",
    "leiter",
    "analyst",
    "analista",
    "consultant",
    "berater",
    "consultor",
    "designer",
    "architect",
    "architekt",
    "scientist",
    "intern",
    "praktikant",
    "werkstudent",
    "stagiaire",
    "becari",
    "estagiári",
    "stagiair",
    "director",
    "directeur",
    "directrice",
    "diretor",
    "diretora",
    "head of",
    "lead",
    "specialist",
    "spezialist",
    "spécialiste",
    "especialista",
    "officer",
    "administrator",
    "administrateur",
    "technician",
    "techniker",
    "teacher",
    "lehrer",
    "professor",
    "nurse",
    "accountant",
    "coordinator",
    "koordinator",
    "coordinador",
    "coordenador",
    "assistant",
    "assistent",
    "associate",
    "representative",
    "founder",
    "gründer",
    "fondateur",
    "fundador",
    "cto",
    "ceo",
    "cfo",
    "coo",
    "vp ",
    "vice president",
    "president",
    "chef de projet",
    "responsable",
    "développeu",
    "developpeu",
    "desarrollador",
    "desarrolladora",
    "desenvolvedor",
    "programador",
    "programmeur",
    "ontwikkelaar",
    "medewerker",
    "adviseur",
    "product owner",
    "scrum master",
    "researcher",
    "forscher",
    "chercheu",
    "investigador",
    "pesquisador",
    "onderzoeker",
    "devops",
    "full stack",
    "fullstack",
    "full-stack",
    "backend",
    "back-end",
    "frontend",
    "front-end",
    "junior",
    "senior",
    "staff ",
    "principal",
    "gerente",
    "jefe",
    "supervisor",
    "trainee",
    "apprentice",
    "auszubildende",
    "sachbearbeiter",
    "referent",
    "editor",
    "writer",
    "recruiter",
    "product",
    "marketing",
    "sales",
    "support",
    "tester",
    "qa ",
    "sre",
    "geschäftsführer",
    "owner",
    "partner",
    "freelance",
    "freiberuf",
    "auxiliar",
    "técnico",
    "tecnico",
    "beheerder",
    "teamlead",
    "team lead",
    "tech lead",
    "lecturer",
    "dozent",
    "tutor",
    "doctor",
    "arzt",
    "pharmacist",
    "chemist",
    "operator",
    "clerk",
    "agent",
    "executive",
    "controller",
    "economist",
    "lawyer",
    "anwalt",
    "avocat",
    "abogad",
];

const COMPANY_SUFFIXES: &[&str] = &[
    "gmbh",
    "ag",
    "se",
    "kg",
    "ohg",
    "ug",
    "e.v.",
    "inc",
    "inc.",
    "llc",
    "llp",
    "ltd",
    "ltd.",
    "limited",
    "plc",
    "corp",
    "corp.",
    "corporation",
    "co.",
    "company",
    "group",
    "gruppe",
    "groupe",
    "grupo",
    "s.a.",
    "sa",
    "s.a.s.",
    "sas",
    "sarl",
    "s.l.",
    "sl",
    "s.r.l.",
    "srl",
    "spa",
    "s.p.a.",
    "b.v.",
    "bv",
    "n.v.",
    "nv",
    "ltda",
    "ltda.",
    "pty",
    "lda",
    "lda.",
    "oy",
    "ab",
    "a/s",
    "asa",
    "kk",
    "technologies",
    "technology",
    "tech",
    "labs",
    "lab",
    "systems",
    "solutions",
    "consulting",
    "bank",
    "banco",
    "banque",
    "software",
    "studio",
    "studios",
    "agency",
    "agentur",
    "partners",
    "holding",
    "holdings",
    "ventures",
    "digital",
    "media",
    "services",
    "networks",
    "germany",
    "deutschland",
    "france",
    "brasil",
    "españa",
    "nederland",
    "international",
    "global",
    "health",
    "hospital",
    "klinikum",
    "foundation",
    "stiftung",
    "airlines",
    "motors",
    "energy",
    "telecom",
    "pharma",
];

const INSTITUTION_WORDS: &[&str] = &[
    "university",
    "universität",
    "universitat",
    "université",
    "universite",
    "universidad",
    "universidade",
    "universiteit",
    "università",
    "universita",
    "college",
    "school",
    "schule",
    "hochschule",
    "fachhochschule",
    "institute",
    "institut",
    "instituto",
    "istituto",
    "école",
    "ecole",
    "escola",
    "escuela",
    "academy",
    "akademie",
    "academia",
    "polytechnic",
    "politecnico",
    "politécnica",
    "politecnica",
    "polytechnique",
    "eth",
    "epfl",
    "iit",
    "lycée",
    "lycee",
    "gymnasium",
    "hogeschool",
    "conservatory",
    "faculdade",
    "facultad",
    "faculté",
    "faculty",
    "insa",
    "hec",
    "essec",
    "sorbonne",
    "tu",
    "rwth",
    "kit",
    "mit",
    "ucl",
    "lse",
    "usp",
    "unicamp",
    "ufrj",
    "ufmg",
    "uva",
    "tu delft",
    "seminar",
    "bootcamp",
    "campus",
    "uni",
    "centro universitário",
];

const DEGREE_WORDS: &[&str] = &[
    "bachelor",
    "master",
    "b.sc.",
    "b.sc",
    "m.sc.",
    "m.sc",
    "bsc",
    "msc",
    "b.a.",
    "m.a.",
    "ba",
    "ma",
    "mba",
    "phd",
    "ph.d.",
    "ph.d",
    "doctorate",
    "doctorat",
    "doctor",
    "dr.",
    "diplom",
    "diploma",
    "diplôme",
    "diplome",
    "licence",
    "licenciatura",
    "licenciado",
    "licenciada",
    "grado",
    "máster",
    "mestrado",
    "mestre",
    "bacharelado",
    "bacharel",
    "doutorado",
    "doctorado",
    "ingénieur",
    "abitur",
    "baccalauréat",
    "baccalaureat",
    "bac",
    "a-levels",
    "a levels",
    "gcse",
    "hbo",
    "wo",
    "associate",
    "b.tech",
    "m.tech",
    "btech",
    "mtech",
    "b.e.",
    "m.e.",
    "b.eng",
    "m.eng",
    "beng",
    "meng",
    "laurea",
    "staatsexamen",
    "magister",
    "tecnólogo",
    "tecnologo",
    "técnico",
    "tecnico",
    "mba",
    "llb",
    "llm",
    "ll.b.",
    "ll.m.",
    "bs",
    "ms",
    "b.s.",
    "m.s.",
    "associate's",
    "bachelor's",
    "master's",
    "postgraduate",
    "undergraduate",
    "senior secondary",
    "higher secondary",
    "high school",
    // German vocational and school qualifications.
    "fachwirt",
    "kaufmann",
    "kauffrau",
    "fachoberschulreife",
    "fachhochschulreife",
    "mittlere reife",
    "realschulabschluss",
    "hauptschulabschluss",
    "fachabitur",
    "meister",
    "techniker",
    // Abbreviations common in India, the US and the UK.
    "bba",
    "bca",
    "mca",
    "bcom",
    "mcom",
    "b.com",
    "m.com",
    "bfa",
    "mfa",
    "m.d.",
    "j.d.",
    "bscs",
    "mscs",
    "bsee",
    "msee",
    "pharmd",
    "b.arch",
    "m.arch",
    "m.phil",
    "mphil",
    "dphil",
    "d.phil",
    "b.ed",
    "m.ed",
    "ed.d.",
    "pgdm",
    "b.pharm",
    "m.pharm",
    "mbbs",
    "a.a.",
    "aas",
    "bachelors",
    "masters",
    "class x",
    "class xii",
    "class 10",
    "class 12",
    "ssc",
    "hsc",
    // Indian school-leaving levels, written as the class passed ("10th from X School").
    "10th",
    "12th",
    "sslc",
    "hslc",
    "pós-graduação",
    "pos-graduacao",
    "especialização",
    "doctoraat",
    "propedeuse",
    "mbo",
    "fachinformatiker",
    "ausbildung",
    "certificate",
    "hnd",
    "dut",
    "bts",
    "cfc",
    "matura",
    "maturité",
];

const NAME_PARTICLES: &[&str] = &[
    "von", "van", "de", "da", "das", "do", "dos", "der", "den", "del", "della", "la", "le", "du", "di", "bin", "al",
    "y", "e", "ten", "ter", "zu",
];

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}").expect("email")
});
static PROFILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:https?://)?(?:www\.|[a-z]{2}\.)?(linkedin\.com/in|github\.com|gitlab\.com|xing\.com/profile|twitter\.com|x\.com|stackoverflow\.com/users|behance\.net|dribbble\.com|medium\.com)/([A-Za-z0-9_\-.%]+(?:/[A-Za-z0-9_\-.%]+)?)")
        .expect("profile")
});
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:https?://[^\s<>()|,]+|www\.[^\s<>()|,]+|[a-z0-9][a-z0-9\-]*(?:\.[a-z0-9\-]+)*\.(?:dev|io|me|com|net|org|de|fr|nl|es|pt|br|uk|app|page|site|tech|eu|ch|at|be|it|ca|in|info)(?:/[^\s<>()|,]*)?)")
        .expect("url")
});
static PHONE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?:\+|\b00|\()?\d[\d\s().\-/]{5,22}\d").expect("phone"));
static SCORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:c?gpa|grade|final grade|note|abschlussnote|nota|média|media|mention|cijfer|score|percentage)\s*[:=]?\s*([0-9][0-9.,]*(?:\s*/\s*[0-9.,]+)?%?|[a-zà-ü ]{3,25})|(summa cum laude|magna cum laude|cum laude|first class honours|first-class honours|upper second|with distinction|with honou?rs|mit auszeichnung|avec mention [a-zé ]+|très bien|bien)")
        .expect("score")
});

// ---------------------------------------------------------------------------------
// Line helpers

const BULLETS: &[char] = &['•', '●', '▪', '■', '◦', '○', '·', '-', '*', '–', '►', '✓', '➢', '❖', '◆', '→', '>', '+'];

fn is_bullet(line: &str) -> bool {
    let t = line.trim_start();
    let mut chars = t.chars();
    match chars.next() {
        Some(c) if BULLETS.contains(&c) => {
            matches!(c, '•' | '●' | '▪' | '■' | '◦' | '○' | '►' | '✓' | '➢' | '❖' | '◆') || chars.next() == Some(' ')
        }
        _ => false,
    }
}

fn strip_bullet(line: &str) -> String {
    let t = line.trim();
    if is_bullet(t) { t.trim_start_matches(BULLETS).trim().to_string() } else { t.to_string() }
}

fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

fn has_title_word(s: &str) -> usize {
    let l = format!("{} ", s.to_lowercase());
    let toks = tokens_lower(s);
    // Short stems are abbreviations ("COO", "CTO", "SRE"): whole words only, or "Cooper"
    // would be a chief operating officer.
    TITLE_STEMS
        .iter()
        .filter(|w| {
            let stem = w.trim();
            if stem.len() <= 3 {
                toks.iter().any(|t| t.trim_matches(|c: char| !c.is_alphanumeric()) == stem)
            } else {
                l.contains(*w)
            }
        })
        .count()
}

fn tokens_lower(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn company_score(s: &str) -> usize {
    let toks = tokens_lower(s);
    let mut n = toks.iter().filter(|t| COMPANY_SUFFIXES.contains(&t.as_str())).count();
    // "Smith & Partners" is a firm, "AI & CGI Lead" a job.
    if (s.contains('&') || s.contains(" & Co")) && has_title_word(s) == 0 {
        n += 1;
    }
    n
}

fn institution_score(s: &str) -> usize {
    let l = s.to_lowercase();
    let toks = tokens_lower(s);
    INSTITUTION_WORDS
        .iter()
        .filter(|w| if w.len() <= 4 { toks.iter().any(|t| t == *w) } else { l.contains(*w) })
        .count()
}

fn degree_score(s: &str) -> usize {
    let l = s.to_lowercase();
    let toks = tokens_lower(s);
    DEGREE_WORDS
        .iter()
        .filter(|w| {
            if w.len() <= 4 || w.contains('.') {
                // "B.Tech." and "B.Tech", "MCA," and "MCA": the same degree.
                let w = w.trim_end_matches('.');
                toks.iter().any(|t| t.trim_end_matches(['.', ',', ';', ':']) == w)
            } else {
                l.contains(*w)
            }
        })
        .count()
}

// ---------------------------------------------------------------------------------
// Entries: header lines with dates, then body lines

#[derive(Debug, Default)]
struct Entry {
    header: Vec<String>,
    dates: Option<DateRange>,
    body: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum LineKind {
    Blank,
    Bullet,
    Long,
    Short { dated: bool },
}

/// Whether a line carries an entry's dates: a range anywhere, or a single date on a
/// short line or closing a structured one ("M.A. in Economics, University of Leeds,
/// 2016"), where a date inside a sentence is just a date.
fn has_entry_date(t: &str) -> bool {
    // "I intend to complete the Ph.D. in March, 2001.": a sentence about oneself, not a header.
    let first = t.split_whitespace().next().unwrap_or("");
    if matches!(first, "I" | "I'm" | "I’m" | "Ich" | "Je" | "Yo" | "Eu" | "Ik" | "Io") || t.starts_with("J'") {
        return false;
    }
    dates::find_range(t).is_some_and(|r| {
        let closing = || {
            t[r.span.1..].trim_matches(|c: char| c.is_whitespace() || c == ')' || c == '.').is_empty()
                && t[..r.span.0].trim_end().ends_with([',', '(', '|', '–', '—', '-', '·'])
        };
        // "2016<tab>M.Sc. Physics, Uni Leeds": a date in a label column left of its entry.
        let label = t[..r.span.0].trim().is_empty() && t[r.span.1..].starts_with('\t');
        // "Ph.D. Applied Mathematics (2017) - University of Vermont": a year in brackets.
        let bracketed = t[..r.span.0].trim_end().ends_with('(')
            && t[r.span.1..].trim_start().starts_with(')')
            && word_count(t) <= 12;
        dates::is_range(&r) || word_count(t) <= 6 || closing() || label || bracketed
    })
}

/// A line that opens with its dates and goes on with the entry: "2016 – 2018  Master, Uni X".
fn label_first(line: &str) -> bool {
    dates::find_range(line).is_some_and(|r| {
        line[..r.span.0].trim().is_empty() && word_count(line[r.span.1..].trim_start_matches([',', ':', '|'])) >= 2
    })
}

/// A line opening with a link ("<https://…> Fairwarden High School", as the HTML reader keeps
/// link targets) starts a new item: it never continues the bullet above.
fn opens_with_link(line: &str) -> bool {
    line.starts_with("<http")
}

/// A label over a list inside an entry ("Courses", "Highlights:"): part of the body.
fn is_sub_label(t: &str) -> bool {
    let key = t.trim().trim_end_matches(':').to_lowercase();
    matches!(
        key.as_str(),
        "courses"
            | "coursework"
            | "relevant courses"
            | "relevant coursework"
            | "highlights"
            | "key achievements"
            | "responsibilities"
    )
}

/// A line that opens with a grade ("CGPA: 8.96/10", "Score: 94% | Completed: 2022").
fn opens_with_score(t: &str) -> bool {
    SCORE.find(t).is_some_and(|m| m.start() == 0)
}

fn classify(lines: &[String]) -> Vec<LineKind> {
    let mut kinds: Vec<LineKind> = Vec::with_capacity(lines.len());
    let dated_line = |t: &str| !is_bullet(t) && has_entry_date(t) && word_count(t) <= 20;
    for (i, l) in lines.iter().enumerate() {
        // A line followed by a date line is an entry header, never a wrapped bullet.
        let next_dated = lines.get(i + 1).is_some_and(|n| dated_line(n.trim()));
        let t = l.trim();
        let kind = if t.is_empty() {
            LineKind::Blank
        } else if is_bullet(t) || is_sub_label(t) {
            LineKind::Bullet
        } else {
            let dated = has_entry_date(t);
            let wc = word_count(t);
            let last = t.split_whitespace().last().unwrap_or("").to_lowercase();
            let separated = [" | ", " — ", " – ", " · "].iter().any(|sep| t.contains(sep));
            // "Google Inc. · Internal tools and services.": a name and its tagline, not prose.
            let sentence =
                wc >= 4 && t.ends_with('.') && !COMPANY_SUFFIXES.contains(&last.as_str()) && !(separated && wc <= 12);
            // "Institution — Degree, year, GPA" is long but structured, not prose.
            let structured = separated && !t.ends_with('.') && wc <= 25;
            let long = (wc > 12 && !structured) || sentence;
            if dated && word_count(t) <= 20 {
                LineKind::Short { dated: true }
            } else if long {
                LineKind::Long
            } else {
                // A wrapped bullet: follows a bullet line directly, and either starts in
                // lowercase or the bullet before did not end a sentence.
                let prev = (i > 0).then(|| (&kinds[i - 1], lines[i - 1].trim()));
                let names_entry = opens_with_link(t);
                match prev {
                    Some((LineKind::Bullet, p))
                        if !next_dated
                            && !names_entry
                            && (t.starts_with(char::is_lowercase) || !p.ends_with(['.', '!', '?'])) =>
                    {
                        LineKind::Bullet
                    }
                    Some((LineKind::Long, p))
                        if !next_dated && (t.starts_with(char::is_lowercase) || !p.ends_with(['.', '!', '?', ':'])) =>
                    {
                        LineKind::Long
                    }
                    _ => LineKind::Short { dated: false },
                }
            }
        };
        kinds.push(kind);
    }
    kinds
}

fn entries(text: &str) -> Vec<Entry> {
    let lines = dangling_lines_joined(text);
    let kinds = classify(&lines);
    // Runs of consecutive short lines.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if matches!(kinds[i], LineKind::Short { .. }) {
            let s = i;
            while i < lines.len() && matches!(kinds[i], LineKind::Short { .. }) {
                i += 1;
            }
            runs.push((s, i));
        } else {
            i += 1;
        }
    }
    let dated = |r: &(usize, usize)| (r.0..r.1).any(|k| kinds[k] == LineKind::Short { dated: true });
    let any_dates = runs.iter().any(dated);
    // Split runs holding several dated lines into one run per entry.
    let mut split_runs: Vec<(usize, usize)> = Vec::new();
    for r in runs {
        let mut dated_lines: Vec<usize> = (r.0..r.1).filter(|k| kinds[*k] == LineKind::Short { dated: true }).collect();
        // "CGPA: 8.96/10 | Completed: April 2026" under a dated header is a detail of that
        // entry, not the next one; alone, its date is the entry's.
        if dated_lines.iter().any(|k| !opens_with_score(&lines[*k])) {
            dated_lines.retain(|k| !opens_with_score(&lines[*k]));
        }
        if dated_lines.len() <= 1 {
            split_runs.push(r);
            continue;
        }
        let date_first = dated_lines[0] == r.0;
        let mut start = r.0;
        for (n, d) in dated_lines.iter().enumerate() {
            if date_first {
                if n > 0 {
                    split_runs.push((start, *d));
                    start = *d;
                }
            } else if n + 1 < dated_lines.len() {
                split_runs.push((start, d + 1));
                start = d + 1;
            }
        }
        split_runs.push((start, r.1));
    }
    // A header written above its dates ("Principal Developer, Veridian\n2011 – 2013") is a
    // line or two; a plain line opening the run ("Agile PM C C++ R OpenGL Boost MySQL
    // JIRA", the keywords of the job before) belongs to the entry above when it is long and
    // names nothing, or when the line below it is a whole "Title, Company".
    for r in &mut split_runs {
        let date_last = kinds[r.1 - 1] == LineKind::Short { dated: true };
        while date_last && r.1 - r.0 >= 2 {
            let l = &lines[r.0];
            let plain = !l.contains([',', '|', '—', '–', '·', '@', '\t']) && !l.contains(" - ");
            let names_something = has_title_word(l) + degree_score(l) + institution_score(l) + company_score(l) > 0;
            // Right above the dates sits a whole "Title, Company" already, or the dated line
            // is one ("Principal Developer, Veridian Dynamics<tab>2011-07 — 2013-08").
            let whole = |t: &str| t.contains(", ") || [" | ", " — ", " – ", " @ "].iter().any(|sep| t.contains(sep));
            let dated_rest = without_dates(&lines[r.1 - 1]).map(|(rest, _)| rest).unwrap_or_default();
            let dated_is_whole =
                word_count(&dated_rest) >= 2 && whole(&dated_rest) && !opens_with_score(&lines[r.1 - 1]);
            let whole_header_below = r.1 - r.0 == 3 && lines[r.1 - 2].contains(", ") || dated_is_whole;
            // Under a whole dated header, a line of four words or more above it is the job
            // before's (its bullets lost their markers: "Managed a 5-person development team").
            let detail_above =
                dated_is_whole && word_count(l) >= 4 && degree_score(l) + institution_score(l) + company_score(l) == 0;
            let long_enough = r.1 - r.0 >= 3;
            if plain && (long_enough && !names_something && (word_count(l) > 6 || whole_header_below) || detail_above) {
                r.0 += 1;
            } else {
                break;
            }
        }
    }
    // Which runs start entries.
    let mut starts: Vec<bool> = split_runs.iter().map(|r| !any_dates || dated(r)).collect();
    // A dateless run right before a dated one (only blanks between) is that entry's header.
    let mut merged: Vec<(usize, usize)> = Vec::new();
    let mut merged_starts: Vec<bool> = Vec::new();
    let mut k = 0;
    while k < split_runs.len() {
        let r = split_runs[k];
        if !starts[k] && k + 1 < split_runs.len() && starts[k + 1] {
            let gap_blank = (r.1..split_runs[k + 1].0).all(|x| kinds[x] == LineKind::Blank);
            let next_date_first = kinds[split_runs[k + 1].0] == LineKind::Short { dated: true };
            // "07/1997  Ph.D. student at the University of G-Town": a date column with the
            // entry beside it is a whole header; the short line above ends the last entry.
            let next_complete = label_first(&lines[split_runs[k + 1].0]);
            if gap_blank && next_date_first && !next_complete && split_runs[k + 1].0 - r.1 <= 1 && r.1 - r.0 <= 3 {
                merged.push((r.0, split_runs[k + 1].1));
                merged_starts.push(true);
                starts[k + 1] = false;
                k += 2;
                continue;
            }
        }
        merged.push(r);
        merged_starts.push(starts[k]);
        k += 1;
    }
    let mut out: Vec<Entry> = Vec::new();
    let mut cursor = 0usize;
    let mut pending_body: Vec<String> = Vec::new();
    for (r, is_start) in merged.iter().zip(merged_starts) {
        // Lines between the previous run and this one are body of the previous entry.
        for l in &lines[cursor..r.0] {
            if !l.is_empty() {
                pending_body.push(l.clone());
            }
        }
        cursor = r.1;
        if is_start {
            match out.last_mut() {
                Some(last) => last.body.append(&mut pending_body),
                // Lines before the first dated entry: a job or degree written without
                // dates ("Oregon Health & Science University" / "PhD Candidate: ..."),
                // when they open with a short line that is no lead-in ("Selected work:").
                None => {
                    if let Some(first) = pending_body.first()
                        && !is_bullet(first)
                        && !first.ends_with(':')
                        && word_count(first) <= 8
                        && !is_table_header(first)
                    {
                        let header = pending_body.remove(0);
                        out.push(Entry { header: vec![header], dates: None, body: std::mem::take(&mut pending_body) });
                    }
                }
            }
            pending_body.clear();
            let mut e = Entry::default();
            for l in &lines[r.0..r.1] {
                if e.dates.is_none()
                    && let Some((rest, d)) = without_dates(l)
                {
                    e.dates = Some(d);
                    if !rest.is_empty() {
                        e.header.push(rest);
                    }
                    continue;
                }
                e.header.push(l.clone());
            }
            out.push(e);
        } else {
            pending_body.extend(lines[r.0..r.1].iter().cloned());
        }
    }
    for l in &lines[cursor..] {
        if !l.is_empty() {
            pending_body.push(l.clone());
        }
    }
    if let Some(last) = out.last_mut() {
        last.body.append(&mut pending_body);
    }
    // No header-like line at all: each line that is not a bullet is an entry.
    if out.is_empty() {
        for (l, k) in lines.iter().zip(&kinds) {
            if *k == LineKind::Long && word_count(l) <= 30 {
                out.push(entry_of_line(l));
            } else if let Some(last) = out.last_mut()
                && !l.is_empty()
            {
                last.body.push(l.clone());
            }
        }
    }
    // A date alone on its line with the details in one long line after it (table
    // layouts): that line is the header.
    for e in &mut out {
        if e.header.is_empty() && e.body.first().is_some_and(|l| !is_bullet(l)) {
            let first = e.body.remove(0);
            e.header.push(first);
        }
    }
    out
}

/// Lines, with a line that stops on a joining word ("… AGH University of" / "Science and
/// Technology, Kraków") joined to the next: a name wrapped in a narrow column.
fn dangling_lines_joined(text: &str) -> Vec<String> {
    const DANGLING: &[&str] = &[
        "of", "and", "for", "in", "at", "&", "the", "de", "des", "du", "la", "für", "und", "der", "et", "y", "e", "da",
        "do", "van", "voor",
    ];
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        match out.last_mut() {
            Some(prev)
                if !t.is_empty()
                    && !is_bullet(t)
                    && (3..=12).contains(&prev.split_whitespace().count())
                    && prev
                        .split_whitespace()
                        .last()
                        .is_some_and(|w| DANGLING.contains(&w.to_lowercase().as_str())) =>
            {
                prev.push(' ');
                prev.push_str(t);
            }
            _ => out.push(t.to_string()),
        }
    }
    out
}

/// Of two readings of a section, the one with more complete entries; on a tie the one with
/// fewer incomplete ones, else the first.
fn fuller<T>(first: Vec<T>, second: Vec<T>, complete: impl Fn(&T) -> bool) -> Vec<T> {
    let count = |v: &[T]| v.iter().filter(|x| complete(x)).count();
    let (a, b) = (count(&first), count(&second));
    // On a tie, the reading with fewer half entries (less noise) wins.
    if b > a || b == a && b > 0 && second.len() < first.len() { second } else { first }
}

/// A line without its dates, and the dates, when it has some.
fn without_dates(l: &str) -> Option<(String, DateRange)> {
    let d = dates::find_range(l)?;
    Some((clean_piece(&format!("{} {}", &l[..d.span.0], &l[d.span.1..])), d))
}

/// One line that is a whole entry: its dates, and the rest as the header.
fn entry_of_line(l: &str) -> Entry {
    let mut e = Entry::default();
    match without_dates(l) {
        Some((rest, d)) => {
            e.dates = Some(d);
            e.header.push(rest);
        }
        None => e.header.push(l.to_string()),
    }
    e
}

/// Trim separators and filler left around a piece after removing dates.
fn clean_piece(s: &str) -> String {
    // "Geekbocks, LLC <http://www.geekbocks.com>": a link target the extractor kept.
    let unlinked = LINK_TARGET.replace_all(s, "");
    let s = unlinked.as_ref();
    // "University Name: Stanford University", "Degree: Master of Science": a form's label.
    let s = match s.split_once(':') {
        Some((label, value)) if is_field_label(label) && !value.trim().is_empty() => value,
        _ => s,
    };
    // "MassMutual (Current)": the open end of a job with no dates.
    let s = match s.trim_end().rsplit_once('(') {
        Some((head, tail)) if dates::is_present_word(&tail.trim_end_matches(')').trim().to_lowercase()) => head,
        _ => s,
    };
    // "Lycée Saint-Louis (75)": a French département number, or any bare number in brackets.
    let s = match s.trim_end().strip_suffix(')').and_then(|r| r.rsplit_once('(')) {
        Some((head, n)) if !n.is_empty() && n.len() <= 3 && n.chars().all(|c| c.is_ascii_digit()) => head,
        _ => s,
    };
    let seps: &[char] = &['|', '•', '·', ',', '–', '—', '-', ':', ';', '(', ')', '[', ']', '/', ' ', '*', '_'];
    let t = s.trim_matches(seps).trim();
    // "(2019 – 2021)" leaves "()" pairs, and empty separators between spaces.
    let t = t.replace("()", "").replace("  ", " ");
    let t = t.trim_matches(seps).trim();
    // Trimming took the closing bracket of "Self-Employed (Software Development)" too.
    let t = if t.matches('(').count() > t.matches(')').count() && s.trim_end().ends_with(')') {
        format!("{t})")
    } else {
        t.to_string()
    };
    let t = t.as_str();
    let lower = t.to_lowercase();
    for w in ["since", "seit", "depuis", "desde", "sinds", "from", "von"] {
        if lower == w {
            return String::new();
        }
    }
    // "Stanford University (expected)" once the date inside the brackets is gone.
    if let Some((head, tail)) = t.rsplit_once('(')
        && !tail.trim_end().trim_end_matches(')').contains(')')
        && [
            "",
            "expected",
            "anticipated",
            "exp.",
            "est.",
            "voraussichtlich",
            "prévu",
            "prevista",
            "previsto",
            "verwacht",
        ]
        .contains(&tail.trim().trim_end_matches(')').trim().to_lowercase().as_str())
        && !head.trim().is_empty()
    {
        return clean_piece(head);
    }
    // "(6 months)", "(2 mois)": how long, not who or what.
    if DURATION.is_match(&lower) {
        return String::new();
    }
    // A sentence's full stop ("at the University of Bonn."), not an abbreviation's
    // ("Acme Inc.", "B.Sc.", "Dr."): the last word is long and has no other dot.
    if let Some(stem) = t.strip_suffix('.')
        && stem.split_whitespace().last().is_some_and(|w| w.chars().count() > 3 && !w.contains('.'))
        && !COMPANY_SUFFIXES.contains(&stem.split_whitespace().last().unwrap_or("").to_lowercase().as_str())
    {
        return stem.to_string();
    }
    t.to_string()
}

/// Pieces of header lines: split on strong separators; comma pieces after the first are
/// "secondary" (usually a location).
#[derive(Debug, Clone)]
struct Piece {
    text: String,
    secondary: bool,
}

fn pieces(header: &[String]) -> (Vec<Piece>, Option<(String, String)>) {
    let mut out = Vec::new();
    let mut at_pair = None;
    for line in header {
        let line = line.trim_start_matches('#').trim();
        // "Tech Stack: Python, LLMs, Java": the job's skills, no part of its name.
        if line
            .split_once([':', '：'])
            .is_some_and(|(head, _)| crate::sections::heading_kind(head) == Some(SectionKind::Skills))
        {
            continue;
        }
        let line = line.replace("**", "").replace("__", "");
        for part in split_strong(&line) {
            let part = clean_piece(&part);
            if part.is_empty() {
                continue;
            }
            // "Engineer at Acme", "Entwicklerin bei Otto", "Ingénieur chez X", "Desarrollador en Y".
            // A comma says the line is "position, company" already ("Stagiaire en
            // analyse, BNP Paribas"), where " en " is no separator.
            if at_pair.is_none() && !part.contains(',') {
                let mut found = false;
                for sep in [" at ", " @ ", " bei ", " chez ", " en ", " em ", " bij ", " presso ", " für "] {
                    if let Some((a, b)) = part.split_once(sep)
                        && has_title_word(a) > 0
                        && !b.trim().is_empty()
                    {
                        at_pair = Some((clean_piece(a), employer_of_prose(&clean_piece(b))));
                        found = true;
                        break;
                    }
                }
                if found {
                    continue;
                }
            }
            let comma: Vec<&str> = split_commas(&part);
            for (i, c) in comma.iter().enumerate() {
                let c = clean_piece(c);
                if !c.is_empty() {
                    out.push(Piece { text: c, secondary: i > 0 });
                }
            }
        }
    }
    (out, at_pair)
}

fn split_strong(line: &str) -> Vec<String> {
    let mut parts = vec![line.to_string()];
    for sep in [" | ", "|", " • ", " · ", " — ", " – ", " - ", "\t", "  "] {
        parts = parts.iter().flat_map(|p| p.split(sep).map(str::to_string).collect::<Vec<_>>()).collect();
    }
    parts.into_iter().flat_map(|p| split_sentences(&p)).collect()
}

/// "Groupe ESIEE. Reconnaissance de phonèmes": a full stop between a name and what follows,
/// as old and French CVs write an entry. Abbreviations ("Inc. Berlin", "B.Sc. Physics",
/// "Dr. Berg") are not sentence ends: the word before the stop must be longer than three
/// letters, hold no other dot, and not be a legal form.
fn split_sentences(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    for (at, _) in s.match_indices(". ") {
        let before = s[start..at].split_whitespace().last().unwrap_or("");
        let after = s[at + 2..].chars().next();
        if before.chars().count() > 3
            && !before.contains('.')
            && !COMPANY_SUFFIXES.contains(&before.to_lowercase().as_str())
            && after.is_some_and(char::is_uppercase)
        {
            out.push(s[start..at].to_string());
            start = at + 2;
        }
    }
    out.push(s[start..].to_string());
    out
}

/// Split on commas, but not before a company suffix ("Acme, Inc.") or inside parentheses.
fn split_commas(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth <= 0 => {
                let next = s[i + 1..].trim_start().to_lowercase();
                let suffix = COMPANY_SUFFIXES
                    .iter()
                    .take(20)
                    .any(|w| next == *w || next.starts_with(&format!("{w} ")) || next.starts_with(&format!("{w}.")));
                if !suffix {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn work_entry(e: &Entry) -> Work {
    let (mut ps, at_pair) = pieces(&e.header);
    let mut w = Work::default();
    if let Some(d) = &e.dates {
        (w.start_date, w.end_date) = d.start_end();
    }
    let mut used = vec![false; ps.len()];
    if let Some((p, c)) = at_pair {
        w.position = Some(p);
        w.name = Some(c);
    } else {
        let best = |score: &dyn Fn(&str) -> usize, used: &[bool], only_primary: bool| {
            ps.iter()
                .enumerate()
                .filter(|(i, p)| !used[*i] && (!only_primary || !p.secondary))
                .map(|(i, p)| (score(&p.text), i))
                .filter(|(s, _)| *s > 0)
                .max_by_key(|(s, i)| (*s, std::cmp::Reverse(*i)))
                .map(|(_, i)| i)
        };
        let pos = best(&|t: &str| has_title_word(t), &used, true)
            .or_else(|| best(&|t: &str| has_title_word(t), &used, false));
        if let Some(i) = pos {
            used[i] = true;
        }
        let comp = best(&company_score, &used, false);
        if let Some(i) = comp {
            used[i] = true;
        }
        let first_free = |used: &[bool], primary: bool| {
            ps.iter().enumerate().find(|(i, p)| !used[*i] && (!primary || !p.secondary)).map(|(i, _)| i)
        };
        let (pos, comp) = match (pos, comp) {
            (Some(p), Some(c)) => (Some(p), Some(c)),
            (Some(p), None) => {
                // "Software Engineer, Apple – Cupertino, CA": the comma after the title names
                // the employer; the part after the dash is the place.
                let after_comma = ps
                    .get(p + 1)
                    .is_some_and(|n| n.secondary && !used[p + 1] && has_title_word(&n.text) == 0)
                    .then_some(p + 1);
                let c = after_comma.or_else(|| first_free(&used, true)).or_else(|| first_free(&used, false));
                if let Some(c) = c {
                    used[c] = true;
                }
                (Some(p), c)
            }
            (None, Some(c)) => {
                let p = first_free(&used, true);
                if let Some(p) = p {
                    used[p] = true;
                }
                (p, Some(c))
            }
            (None, None) => {
                let p = first_free(&used, true);
                if let Some(p) = p {
                    used[p] = true;
                }
                // "Groupe ESIEE. Reconnaissance de phonèmes": a name, a full stop, then what
                // was done there; no job title is written.
                if let Some(p) = p
                    && let Some(next) = ps.get(p + 1)
                    && e.header.iter().any(|h| h.contains(&format!("{}. {}", ps[p].text, next.text)))
                {
                    used[p + 1] = true;
                    w.name = Some(ps[p].text.clone());
                    return finish_work(w, &ps, &used, e);
                }
                let c = first_free(&used, true).or_else(|| first_free(&used, false));
                if let Some(c) = c {
                    used[c] = true;
                }
                (p, c)
            }
        };
        // "Founder & Bioinformatics Developer: Built an elastic platform for ...": the
        // title, then what was done.
        if let Some(i) = pos
            && let Some((title, rest)) = ps[i].text.split_once(": ")
            && has_title_word(title) > 0
            && word_count(rest) >= 3
        {
            ps[i].text = title.trim().to_string();
        }
        // "Multimedia Production, AI & CGI Lead · Kestrel Labs": a comma inside the title,
        // whose second half names a role too.
        w.position = pos.map(|i| match ps.get(i + 1) {
            Some(next) if next.secondary && !used[i + 1] && has_title_word(&next.text) > 0 => {
                used[i + 1] = true;
                format!("{}, {}", ps[i].text, next.text)
            }
            _ => ps[i].text.clone(),
        });
        w.name = comp.map(|i| ps[i].text.clone());
    }
    finish_work(w, &ps, &used, e)
}

/// The place (pieces left over, or a place stuck to the name) and the body of a job whose
/// name and position are decided.
fn finish_work(mut w: Work, ps: &[Piece], used: &[bool], e: &Entry) -> Work {
    let mut rest: Vec<String> = ps
        .iter()
        .enumerate()
        .filter(|(i, p)| !used.get(*i).copied().unwrap_or(true) && word_count(&p.text) <= 4)
        .map(|(_, p)| p.text.clone())
        .collect();
    if let Some((name, place)) = w.name.as_deref().and_then(split_trailing_place) {
        w.name = Some(name);
        rest.insert(0, place);
    }
    if !rest.is_empty() {
        w.location = Some(rest.join(", "));
    }
    let (highlights, summary) = body(&e.body);
    w.highlights = highlights;
    w.summary = summary;
    w
}

/// The employer in "Intern at the Office for Regional Statistics": without the article a
/// written-out entry adds. A place after it ("... in Leeds") stays: without a gazetteer
/// of places it cannot be told from the name ("Center for Research in Education").
fn employer_of_prose(s: &str) -> String {
    ["the ", "The "].iter().find_map(|a| s.strip_prefix(a)).unwrap_or(s).to_string()
}

/// The section's non-empty lines with wrapped bullets joined back into one line each;
/// with `period_ends`, a bullet ending in a full stop takes no continuation.
/// Whether `line` continues the bullet `last`: no blank between, no bullet of its own, and
/// (with `period_ends`) the bullet not closed by a full stop.
fn wraps(last: &str, line: &str, after_blank: bool, period_ends: bool) -> bool {
    let closed = period_ends && last.ends_with('.');
    let names_entry = opens_with_link(line);
    is_bullet(last) && !is_bullet(line) && !after_blank && !closed && !names_entry && !is_sub_label(line)
}

fn bullets_unwrapped(text: &str, period_ends: bool) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    // A blank line ends a bullet: what follows it is no wrap.
    let mut after_blank = false;
    for l in text.lines().map(str::trim) {
        if l.is_empty() {
            after_blank = true;
            continue;
        }
        match lines.last_mut() {
            Some(last) if wraps(last, l, after_blank, period_ends) => {
                last.push(' ');
                last.push_str(l);
            }
            _ => lines.push(l.to_string()),
        }
        after_blank = false;
    }
    lines
}

/// Education written as one bullet per qualification, wrapped lines joined.
fn bulleted_education(text: &str) -> Vec<Education> {
    let lines = bullets_unwrapped(text, false);
    // One qualification per line, bulleted or not ("B.S. Computer Science, Western
    // Governors University"): each line names both a degree and a school.
    let complete = |l: &str| degree_score(l) > 0 && institution_score(l) > 0;
    let per_line = lines.iter().filter(|l| !l.trim().is_empty()).all(|l| is_bullet(l) || complete(l));
    let mut out = Vec::new();
    // "First American University, Springfield" over "■ Ph.D. in …" and "■ M.S. in …": a school
    // line heads the degree bullets under it.
    let mut school: Option<String> = None;
    for l in &lines {
        let qualification = is_bullet(l) || per_line && complete(l);
        if !qualification {
            if institution_score(l) > 0 && degree_score(l) == 0 {
                school = split_commas(&without_dates(l).map_or(l.clone(), |(rest, _)| rest))
                    .first()
                    .map(|s| clean_piece(s))
                    .filter(|s| !s.is_empty());
            }
            continue;
        }
        // "● Thesis: …", "● GPA: 3.7": details of the degree above, no qualification.
        if degree_score(l) + institution_score(l) == 0 {
            continue;
        }
        let mut e = education_entry(&entry_of_line(&strip_bullet(l)));
        if e.institution.is_none() && e.study_type.is_some() {
            e.institution = school.clone();
        }
        if e.institution.is_some() || e.study_type.is_some() {
            out.push(e);
        }
    }
    out
}

/// One bullet per job ("* Software Engineer @ Microsoft (May 2022 - Aug 2025)"): a bullet
/// that carries an entry's dates is the job, the bullets under it without dates its
/// highlights.
fn bulleted_jobs(text: &str) -> Vec<Work> {
    let mut out: Vec<Work> = Vec::new();
    for line in bullets_unwrapped(text, false) {
        let item = strip_bullet(&line);
        if is_bullet(&line) && has_entry_date(&item) && word_count(&item) <= 20 {
            let w = work_entry(&entry_of_line(&item));
            if w.name.is_some() || w.position.is_some() {
                out.push(w);
                continue;
            }
        }
        if let Some(w) = out.last_mut() {
            w.highlights.push(item);
        }
    }
    out
}

/// The fields of the classic Europass form, whose labels sit in a column left of each value
/// ("Occupation or position held<tab>Data Engineer"); a long label wraps onto the lines
/// below ("Name and type of organisation<tab>Politecnico di Milano" / "providing education
/// and" / "training"). Matched by the start of the label, in English and in the national
/// forms' wording where it is common.
const EUROPASS_FIELDS: &[(&str, &str)] = &[
    ("dates", "dates"),
    ("occupation or position held", "position"),
    ("name and address of employer", "employer"),
    ("title of qualification awarded", "qualification"),
    ("name and type of organisation", "school"),
    ("name and type of organization", "school"),
    ("date", "dates"),
    ("lavoro o posizione ricoperti", "position"),
    ("nome e indirizzo del datore di lavoro", "employer"),
    ("qualifica conseguita", "qualification"),
    ("nome e tipo d'istituto di istruzione", "school"),
    ("puesto o cargo ocupados", "position"),
    ("nombre y dirección de la empresa", "employer"),
    ("cualificación obtenida", "qualification"),
    ("nombre y tipo del centro", "school"),
    ("função ou cargo ocupado", "position"),
    ("nome e endereço do empregador", "employer"),
    ("designação da qualificação atribuída", "qualification"),
    ("nome e tipo da organização", "school"),
    ("datum", "dates"),
    ("beruf oder funktion", "position"),
    ("name und adresse des arbeitgebers", "employer"),
    ("bezeichnung der erworbenen qualifikation", "qualification"),
    ("name und art der bildungs", "school"),
];

/// The records of a classic Europass section: each "Dates" opens one; values by field.
fn europass_records(text: &str) -> Vec<Vec<(&'static str, String)>> {
    let mut records: Vec<Vec<(&'static str, String)>> = Vec::new();
    let mut labelled = 0;
    for line in text.lines() {
        let t = line.trim();
        let lower = t.to_lowercase();
        let Some((field, label_len)) = EUROPASS_FIELDS.iter().find_map(|(label, field)| {
            lower
                .starts_with(label)
                .then(|| (*field, t.char_indices().nth(label.chars().count()).map_or(t.len(), |(i, _)| i)))
        }) else {
            continue;
        };
        let value = t[label_len..].trim_start_matches(|c: char| c.is_alphabetic() || c == '/' || c == '\'');
        // The label's own wrapped remainder ("…of employer") ends at the column gap.
        let value = value.split_once('\t').map_or(value, |(_, v)| v).trim().to_string();
        labelled += 1;
        if field == "dates" || records.is_empty() {
            records.push(Vec::new());
        }
        if let Some(r) = records.last_mut()
            && !value.is_empty()
        {
            r.push((field, value));
        }
    }
    if labelled < 3 { Vec::new() } else { records }
}

fn europass_jobs(text: &str) -> Vec<Work> {
    europass_records(text)
        .into_iter()
        .filter_map(|r| {
            let get = |f: &str| r.iter().find(|(k, _)| *k == f).map(|(_, v)| v.clone());
            let mut w = Work {
                position: get("position").map(|p| clean_piece(&p)).filter(|p| !p.is_empty()),
                name: get("employer")
                    .and_then(|e| split_commas(&e).first().map(|n| clean_piece(n)))
                    .filter(|n| !n.is_empty()),
                ..Work::default()
            };
            if let Some(d) = get("dates").and_then(|d| dates::find_range(&d)) {
                (w.start_date, w.end_date) = d.start_end();
            }
            (w.name.is_some() || w.position.is_some()).then_some(w)
        })
        .collect()
}

fn europass_education(text: &str) -> Vec<Education> {
    europass_records(text)
        .into_iter()
        .filter_map(|r| {
            let get = |f: &str| r.iter().find(|(k, _)| *k == f).map(|(_, v)| v.clone());
            let mut e = Education::default();
            if let Some(q) = get("qualification") {
                let (st, area) = split_degree(&clean_piece(&q));
                e.study_type = Some(st);
                e.area = area;
            }
            e.institution =
                get("school").and_then(|s| split_commas(&s).first().map(|n| clean_piece(n))).filter(|n| !n.is_empty());
            if let Some(d) = get("dates").and_then(|d| dates::find_range(&d)) {
                (e.start_date, e.end_date) = d.start_end();
            }
            (e.institution.is_some() || e.study_type.is_some()).then_some(e)
        })
        .collect()
}

/// "Worked for Acme Ltd, Pune, from Mar 2016 to Nov 2018 in the designation of Associate."
/// `<https://…>`, as the HTML and Markdown readers keep link targets.
static LINK_TARGET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s*<(?:https?://|mailto:|www\.)[^>\s]*>\s*").expect("link target regex"));

/// The header row of a table of entries: "Degree<tab>Institution<tab>Tenure<tab>Notes".
fn is_table_header(line: &str) -> bool {
    // Besides the fields a form names, a table's columns hold these.
    const COLUMNS: &[&str] = &[
        "tenure",
        "notes",
        "duration",
        "year",
        "years",
        "dates",
        "date",
        "period",
        "location",
        "grade",
        "score",
        "cgpa",
        "gpa",
        "percentage",
        "board",
        "course",
    ];
    let cells: Vec<String> =
        line.split(['\t', '|']).map(|c| c.trim().to_lowercase()).filter(|c| !c.is_empty()).collect();
    // Of the form's fields, "Name" and "Designation" are not taken for table columns.
    let column = |c: &str| COLUMNS.contains(&c) || FIELDS.contains(&c) && !matches!(c, "name" | "designation");
    cells.len() >= 2 && cells.iter().all(|c| column(c))
}

/// A label of a form-like resume ("University Name", "Education Degree", "Company").
fn is_field_label(label: &str) -> bool {
    let l = label.trim().to_lowercase();
    word_count(&l) <= 3 && l.split_whitespace().any(|t| FIELDS.contains(&t))
}

/// The fields a form-like resume labels: "University Name", "Company", "Degree".
const FIELDS: &[&str] = &[
    "name",
    "degree",
    "university",
    "institution",
    "school",
    "college",
    "company",
    "employer",
    "organisation",
    "organization",
    "position",
    "title",
    "role",
    "designation",
    "qualification",
];

/// A name given in a sentence, in the languages the headings cover.
static MY_NAME_IS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i:\b(?:my name is|my name's|ich heiße|ich heisse|mein name ist|je m'appelle|je m’appelle|je suis|me llamo|mi nombre es|meu nome é|meu nome e|mijn naam is|mi chiamo|il mio nome è))\s+(\p{Lu}[\p{L}'’-]+(?:\s+\p{Lu}[\p{L}'’.-]*){1,3})",
    )
    .expect("name sentence regex")
});

/// A bare duration: "6 months", "2 mois", "1 an", "3 Jahre".
static DURATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\d+(?:[.,]\d)?\s*(?:months?|mos?|years?|yrs?|weeks?|mois|ans?|années?|semaines?|monate?|jahre?|wochen|meses|años|anos|semanas|maanden|jaar|weken|mesi|anni|settimane)$",
    )
    .expect("duration regex")
});

static WORKED_FOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:currently\s+|presently\s+)?(?:i\s+)?(?:am\s+|have\s+)?(?:been\s+)?(?:working|worked|employed|serving|served)\s+(?:for|with|at|in)\s+(?P<org>.+?)\s*,?\s+(?P<rest>(?:from|since|between)\s+.+)$",
    )
    .expect("worked-for regex")
});

/// "Worked as a Data Analyst at Acme from 2016 to 2018."
static WORKED_AS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:currently\s+|presently\s+)?(?:i\s+)?(?:am\s+|have\s+)?(?:been\s+)?(?:working|worked|employed|serving|served)\s+as\s+(?:an?\s+)?(?P<title>.+?)\s+(?:at|with|for|in)\s+(?P<org>.+?)\s*,?\s+(?P<rest>(?:from|since|between)\s+.+)$",
    )
    .expect("worked-as regex")
});

/// Jobs written as sentences, one per (bulleted) line, as many resumes from India and
/// elsewhere do: "Worked for Acme Ltd, from Mar 2016 to Nov 2018 in the designation of
/// Associate." Lines that are not such a sentence are highlights of the job before.
fn written_out_jobs(text: &str) -> Vec<Work> {
    let mut out: Vec<Work> = Vec::new();
    // A sentence ends a bullet: the lines after it are details, not its wrap.
    for line in bullets_unwrapped(text, true) {
        let sentence = strip_bullet(&line);
        let sentence = sentence.trim().trim_end_matches('.').trim();
        let (title, org, rest) = if let Some(c) = WORKED_AS.captures(sentence) {
            (Some(c["title"].to_string()), c["org"].to_string(), c["rest"].to_string())
        } else if let Some(c) = WORKED_FOR.captures(sentence) {
            (None, c["org"].to_string(), c["rest"].to_string())
        } else {
            if let Some(w) = out.last_mut() {
                w.highlights.push(sentence.to_string());
            }
            continue;
        };
        let Some(d) = dates::find_range(&rest) else {
            continue;
        };
        let after = rest[d.span.1..].trim();
        let title = title.or_else(|| {
            let lower = after.to_lowercase();
            let t = [
                "in the designation of",
                "in the designation",
                "designation of",
                "designation",
                "in the role of",
                "as an",
                "as a",
                "as",
            ]
            .iter()
            .find_map(|p| lower.starts_with(p).then(|| &after[p.len()..]))?;
            let t = t.trim_matches(|c: char| c.is_whitespace() || matches!(c, '–' | '-' | ':' | ','));
            (!t.is_empty()).then(|| t.to_string())
        });
        let mut w = Work::default();
        // "Sparity Soft Solutions, Hyderabad": the employer, then its place.
        let mut parts = split_commas(&org).into_iter().map(clean_piece).filter(|p| !p.is_empty());
        w.name = parts.next();
        let place: Vec<String> = parts.collect();
        if !place.is_empty() {
            w.location = Some(place.join(", "));
        }
        w.position = title;
        (w.start_date, w.end_date) = d.start_end();
        out.push(w);
    }
    out
}

/// Legal forms that end a company's name: what follows one on the same piece is a place
/// that lost its separator in the text layer ("Fintech GmbH Berlin", the city
/// right-aligned in the PDF).
const LEGAL_FORMS: &[&str] = &[
    "gmbh", "ag", "se", "kg", "inc", "inc.", "llc", "llp", "ltd", "ltd.", "limited", "plc", "corp.", "s.a.", "sa",
    "s.a.s.", "sas", "sarl", "s.l.", "s.r.l.", "srl", "spa", "s.p.a.", "b.v.", "bv", "n.v.", "nv", "ltda", "ltda.",
    "pty", "lda", "oy", "ab", "a/s", "asa",
];

/// Words that stand for a work arrangement where a place would be.
const WORK_MODES: &[&str] =
    &["remote", "hybrid", "on-site", "onsite", "télétravail", "remoto", "híbrido", "homeoffice"];

/// An employer with a place stuck to its end: "DataLoop Labs Remote" or "Fintech GmbH
/// Berlin" as (employer, place). Without a legal form or a work-arrangement word there is
/// no telling a place from the name ("Bank of Ireland"), so the name is left whole.
fn split_trailing_place(name: &str) -> Option<(String, String)> {
    let words: Vec<&str> = name.split_whitespace().collect();
    if words.len() < 2 {
        return None;
    }
    let last = words[words.len() - 1].trim_matches(['(', ')']).to_lowercase();
    if WORK_MODES.contains(&last.as_str()) {
        let place = words[words.len() - 1].trim_matches(['(', ')']);
        return Some((words[..words.len() - 1].join(" "), place.to_string()));
    }
    // The last legal form that is neither the first nor the last word, followed by
    // one to three capitalised words.
    let at = (1..words.len() - 1).rev().find(|&i| LEGAL_FORMS.contains(&words[i].to_lowercase().as_str()))?;
    let place = &words[at + 1..];
    let place_like = place.len() <= 3
        && place.iter().all(|w| {
            w.chars().next().is_some_and(char::is_uppercase)
                && w.chars().all(|c| c.is_alphabetic() || c == '-' || c == '.')
        })
        && !LEGAL_FORMS.contains(&place[0].to_lowercase().as_str());
    place_like.then(|| (words[..=at].join(" "), place.join(" ")))
}

fn body(lines: &[String]) -> (Vec<String>, Option<String>) {
    let mut highlights: Vec<String> = Vec::new();
    let mut prose: Vec<String> = Vec::new();
    let mut last_bullet = false;
    for l in lines {
        if is_bullet(l) {
            highlights.push(strip_bullet(l));
            last_bullet = true;
        } else if last_bullet && let Some(h) = highlights.last_mut() {
            // Continuation of a wrapped bullet.
            h.push(' ');
            h.push_str(l.trim());
        } else {
            prose.push(l.trim().to_string());
        }
    }
    let summary = (!prose.is_empty()).then(|| prose.join(" "));
    (highlights, summary)
}

fn education_entry(e: &Entry) -> Education {
    let (ps, _) = pieces(&e.header);
    // "M.A. in Economics at the University of Leeds": degree and institution in one
    // piece, joined by a preposition.
    let ps: Vec<Piece> = ps
        .into_iter()
        .flat_map(|p| {
            let lower = p.text.to_ascii_lowercase();
            // " in " also joins a degree to its field ("B.Tech in Computer Science"): the
            // last one is the one before the school.
            let split = [
                " at the ", " at ", " from ", " in ", " an der ", " à l'", " à la ", " à ", " en la ", " na ",
                " aan de ",
            ]
            .iter()
            .find_map(|sep| {
                let at = if *sep == " in " { lower.rfind(sep)? } else { lower.find(sep)? };
                let (a, b) = (&p.text[..at], &p.text[at + sep.len()..]);
                (institution_score(b) > 0 && degree_score(a) > 0).then(|| (a.trim().to_string(), b.trim().to_string()))
            });
            match split {
                Some((a, b)) => {
                    vec![Piece { text: a, secondary: p.secondary }, Piece { text: b, secondary: p.secondary }]
                }
                None => vec![p],
            }
        })
        .collect();
    let mut ed = Education::default();
    if let Some(d) = &e.dates {
        if dates::is_range(d) {
            (ed.start_date, ed.end_date) = d.start_end();
        } else {
            ed.end_date = d.start.clone();
        }
    }
    let mut used = vec![false; ps.len()];
    let inst = ps
        .iter()
        .enumerate()
        // A word alone ("University”", the end of a wrapped thesis title) names no school.
        .filter(|(_, p)| word_count(&p.text) >= 2)
        .map(|(i, p)| (institution_score(&p.text).saturating_sub(degree_score(&p.text)), i))
        .filter(|(s, _)| *s > 0)
        .max_by_key(|(s, i)| (*s, std::cmp::Reverse(*i)))
        .map(|(_, i)| i);
    if let Some(i) = inst {
        used[i] = true;
    }
    let degree = ps
        .iter()
        .enumerate()
        .filter(|(i, _)| !used[*i])
        .map(|(i, p)| (degree_score(&p.text), i))
        .filter(|(s, _)| *s > 0)
        .max_by_key(|(s, i)| (*s, std::cmp::Reverse(*i)))
        .map(|(_, i)| i);
    if let Some(i) = degree {
        used[i] = true;
        // "12th from, Chaitanya Junior College": the preposition stays with the degree piece.
        let text = ps[i].text.strip_suffix(" from").unwrap_or(&ps[i].text);
        // "Secondary School Certificate GPA of (9.3)": the grade is no part of the degree.
        let text = match SCORE.find(text) {
            Some(m) if m.start() > 0 => text[..m.start()].trim(),
            _ => text,
        };
        let (st, area) = split_degree(text);
        ed.study_type = Some(st);
        ed.area = area;
        // "Master of Science, Informatik": the area follows as a comma piece.
        if ed.area.is_none()
            && let Some(next) = ps.get(i + 1)
            && next.secondary
            && !used[i + 1]
            && institution_score(&next.text) == 0
            && SCORE.find(&next.text).is_none()
        {
            ed.area = Some(next.text.clone());
            used[i + 1] = true;
        }
    }
    let inst = inst.or_else(|| {
        let i = ps
            .iter()
            .enumerate()
            .find(|(i, p)| !used[*i] && !p.secondary && SCORE.find(&p.text).is_none())
            .map(|(i, _)| i);
        if let Some(i) = i {
            used[i] = true;
        }
        i
    });
    // "University College of Engineering, Osmania University": a college and the university
    // it belongs to, written as one name.
    // "Cascade Institute of Design   2019" then "Bachelor of Media Arts (BMA). Major in
    // Motion.": the degree opens the first line under the header.
    if ed.study_type.is_none()
        && let Some(first) = e.body.first().filter(|l| !is_bullet(l))
    {
        let clause = first.split(['(', ';']).next().unwrap_or("");
        let clause = clause.split(". ").next().unwrap_or("").trim().trim_end_matches('.');
        if degree_score(clause) > 0 && word_count(clause) <= 8 {
            let (st, area) = split_degree(clause);
            ed.study_type = Some(st);
            ed.area = ed.area.take().or(area);
        }
    }
    ed.institution = inst.map(|i| match ps.get(i + 1) {
        Some(next)
            if next.secondary
                && !used[i + 1]
                && institution_score(&next.text) > 0
                && degree_score(&next.text) == 0
                && SCORE.find(&next.text).is_none() =>
        {
            format!("{}, {}", ps[i].text, next.text)
        }
        _ => ps[i].text.clone(),
    });
    let all: String = e.header.iter().chain(e.body.iter()).cloned().collect::<Vec<_>>().join("\n");
    if let Some(c) = SCORE.captures(&all) {
        let s = c.get(1).or(c.get(2)).map(|m| m.as_str().trim().to_string()).filter(|s| !s.is_empty());
        ed.score = s;
    }
    ed
}

/// "Master of Science in Computer Science" → ("Master of Science", "Computer Science");
/// "MSc Data Science" → ("MSc", "Data Science"); "Licenciatura en Informática" →
/// ("Licenciatura", "Informática").
fn split_degree(s: &str) -> (String, Option<String>) {
    let s = s.trim();
    // "BSc (Hons) Economics": the honours mark is part of the degree.
    for hons in [" (Hons)", " (Honours)", " (Hons.)", " (Hon.)"] {
        if let Some(at) = s.find(hons) {
            let (degree, rest) = s.split_at(at + hons.len());
            let rest = rest.trim().trim_start_matches(['–', '-', ',', ':']).trim();
            let rest = rest.strip_prefix("in ").unwrap_or(rest).trim();
            return (degree.trim().to_string(), (!rest.is_empty()).then(|| rest.to_string()));
        }
    }
    // Separators match in any case ("B.E. IN COMPUTER ENGINEERING"); ASCII lowercasing
    // keeps byte offsets.
    let lower = s.to_ascii_lowercase();
    for sep in [" in ", " en ", " em ", " im ", " in der ", " – ", " - ", ": ", " ("] {
        if let Some(at) = lower.find(sep) {
            let (a, b) = (&s[..at], &s[at + sep.len()..]);
            let b = b.trim_end_matches(')').trim();
            if degree_score(a) > 0 && !b.is_empty() {
                return (a.trim().to_string(), Some(b.to_string()));
            }
        }
    }
    let words: Vec<&str> = s.split_whitespace().collect();
    if words.len() >= 2 {
        let first = words[0].to_lowercase();
        // "Master Informatiekunde", "MSc Data Science", "Licence Mathématiques": the
        // degree word, then the field.
        let first_is_degree =
            DEGREE_WORDS.iter().any(|d| d.trim_end_matches('.') == first.trim_end_matches([',', '.']));
        let of_pattern = words.get(1).is_some_and(|w| {
            let w = w.to_lowercase();
            ["of", "de", "der", "in", "en", "em", "degree"].contains(&w.as_str())
                || w.starts_with("d'")
                || w.starts_with("d’")
        });
        if first_is_degree && !of_pattern {
            return (words[0].to_string(), Some(words[1..].join(" ")));
        }
    }
    (s.to_string(), None)
}

// ---------------------------------------------------------------------------------
// Basics

fn find_email(text: &str) -> Option<String> {
    EMAIL.find(text).map(|m| m.as_str().trim_end_matches('.').to_string())
}

fn find_profiles(text: &str) -> Vec<Profile> {
    let mut out: Vec<Profile> = Vec::new();
    for c in PROFILE.captures_iter(text) {
        let host = c[1].to_lowercase();
        let user = c[2].trim_end_matches(['/', '.']).to_string();
        let network = match host.as_str() {
            h if h.starts_with("linkedin") => "LinkedIn",
            h if h.starts_with("github") => "GitHub",
            h if h.starts_with("gitlab") => "GitLab",
            h if h.starts_with("xing") => "XING",
            h if h.starts_with("twitter") || h.starts_with("x.com") => "X",
            h if h.starts_with("stackoverflow") => "Stack Overflow",
            h if h.starts_with("behance") => "Behance",
            h if h.starts_with("dribbble") => "Dribbble",
            _ => "Medium",
        };
        // Repository links (github.com/user/repo) name the user first.
        let username = user.split('/').next().unwrap_or(&user).to_string();
        if username.is_empty() || out.iter().any(|p| p.network == network) {
            continue;
        }
        let url =
            format!("https://{}/{}", host, if network == "Stack Overflow" { user.clone() } else { username.clone() });
        out.push(Profile { network: network.to_string(), username, url });
    }
    out
}

fn find_url(text: &str, email: Option<&str>) -> Option<String> {
    for m in URL.find_iter(text) {
        let u = m.as_str().trim_end_matches(['.', ')', ';']);
        let lower = u.to_lowercase();
        let before = text[..m.start()].chars().next_back();
        if before == Some('@') || before == Some('.') || email.is_some_and(|e| e.to_lowercase().contains(&lower)) {
            continue;
        }
        if PROFILE.is_match(u) || lower.contains("linkedin.") || lower.contains("github.") {
            continue;
        }
        // Bare "Node.js"-like tokens are skills, not sites.
        if !lower.starts_with("http") && !lower.starts_with("www.") && !lower.contains('/') {
            let tld = lower.rsplit('.').next().unwrap_or("");
            if ["js", "net"].contains(&tld) || u.chars().next().is_some_and(|c| c.is_uppercase()) {
                continue;
            }
        }
        return Some(if lower.starts_with("http") { u.to_string() } else { format!("https://{u}") });
    }
    None
}

const PHONE_WORDS: &[&str] = &[
    "tel",
    "phone",
    "mobile",
    "mobil",
    "handy",
    "cell",
    "tél",
    "téléphone",
    "portable",
    "teléfono",
    "telefone",
    "celular",
    "telefoon",
    "mob",
    "☎",
    "📞",
    "fon",
];

fn find_phone(text: &str) -> Option<String> {
    let mut fallback = None;
    for line in text.lines() {
        let lower = line.to_lowercase();
        let keyword = PHONE_WORDS.iter().any(|w| lower.contains(w));
        for m in PHONE.find_iter(line) {
            let cand = m.as_str().trim();
            let digits = cand.chars().filter(|c| c.is_ascii_digit()).count();
            if !(7..=15).contains(&digits) {
                continue;
            }
            // Date ranges ("2016 - 2020", "10/2014 – 08/2016") are not phone numbers.
            if dates::find_range(cand).is_some_and(|r| dates::is_range(&r)) && !cand.starts_with('+') {
                continue;
            }
            let groups: Vec<&str> = cand.split(|c: char| !c.is_ascii_digit()).filter(|g| !g.is_empty()).collect();
            let yearish =
                groups.iter().filter(|g| g.len() == 4 && (g.starts_with("19") || g.starts_with("20"))).count();
            let intl = cand.starts_with('+') || cand.starts_with("00") || cand.starts_with('(');
            if intl || keyword {
                return Some(cand.to_string());
            }
            if yearish == 0 && fallback.is_none() && groups.len() >= 2 {
                fallback = Some(cand.to_string());
            }
        }
    }
    fallback
}

/// "Name: Ana Lima", "Full name<tab>Ana Lima", "Nom : Ana Lima": the value of a name field.
fn without_name_label(line: &str) -> &str {
    for label in ["full name", "name", "nom", "nombre", "nome", "vorname und name", "naam"] {
        if let Some(head) = line.get(..label.len())
            && head.eq_ignore_ascii_case(label)
        {
            let rest = &line[label.len()..];
            let value = rest.trim_start_matches([' ', '\t']).trim_start_matches([':', '：']).trim();
            let separated = rest.starts_with([':', '：', '\t']) || rest.trim_start().starts_with([':', '：']);
            // "Name Sheikh Huzaif": a key-value table whose gap the text layer lost.
            let spaced = head.starts_with(char::is_uppercase) && rest.starts_with(' ') && looks_like_name(value);
            if (separated || spaced) && !value.is_empty() {
                return value;
            }
        }
    }
    line
}

/// The text before a line's first column gap.
fn first_cell(line: &str) -> &str {
    line.split('\t').next().unwrap_or(line).trim()
}

fn looks_like_name(line: &str) -> bool {
    let t = line.trim();
    if t.is_empty() || t.chars().count() > 50 || t.contains('@') || t.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    let lower = t.to_lowercase();
    for bad in
        ["curriculum", "vitae", "lebenslauf", "resume", "résumé", "cv", "http", "www.", "page", "seite", "página"]
    {
        if lower.split(|c: char| !c.is_alphanumeric() && c != '.').any(|w| w == bad) || lower.contains("http") {
            return false;
        }
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    if words.is_empty() || words.len() > 5 {
        return false;
    }
    // "Python, LLMs, Java": a list, not a name ("Doe, Jane" has one comma).
    if t.matches(',').count() > 1 {
        return false;
    }
    // "CSE Sophomore", "Data Science Enthusiast": who the person is, not what they are called;
    // a template's placeholders and labels neither.
    if words.iter().any(|w| {
        matches!(
            w.to_lowercase().trim_matches(|c: char| !c.is_alphabetic()),
            "sophomore"
                | "freshman"
                | "student"
                | "undergraduate"
                | "graduate"
                | "enthusiast"
                | "aspiring"
                | "fresher"
                // Template placeholders and field labels ("Your Location", "Quick Guide").
                | "your"
                | "location"
                | "address"
                | "phone"
                | "mobile"
                | "email"
                | "website"
                | "contact"
                | "guide"
                | "welcome"
        )
    }) {
        return false;
    }
    if crate::sections::heading_kind(t).is_some()
        || has_title_word(t) > 0
        || company_score(t) > 0
        || institution_score(t) > 0
    {
        return false;
    }
    words.iter().all(|w| {
        let w = w.trim_matches(|c: char| c == ',' || c == '.');
        if NAME_PARTICLES.contains(&w.to_lowercase().as_str()) {
            return true;
        }
        w.chars().next().is_some_and(|c| c.is_uppercase())
            && w.chars().all(|c| c.is_alphabetic() || c == '-' || c == '\'' || c == '’' || c == '.')
    })
}

/// The line without a section label in front of the name ("PERSONAL INFORMATION Katie
/// Smith" in a Europass label column, "Contact: Ana Lima"); the line itself when it has
/// none. A line that is only a heading is no name.
fn without_heading_label(line: &str) -> Option<&str> {
    if crate::sections::heading_kind(line).is_some() {
        return None;
    }
    // Byte offsets where each word starts.
    let starts: Vec<usize> = line
        .char_indices()
        .filter(|&(i, c)| !c.is_whitespace() && line[..i].chars().next_back().is_none_or(char::is_whitespace))
        .map(|(i, _)| i)
        .collect();
    for k in (1..=3.min(starts.len().saturating_sub(1))).rev() {
        let start = starts[k];
        let label = line[..start].trim().trim_end_matches(':');
        if crate::sections::heading_kind(label).is_some() {
            return Some(line[start..].trim());
        }
    }
    Some(line)
}

fn title_case(s: &str) -> String {
    if s.chars().any(|c| c.is_lowercase()) {
        return s.to_string();
    }
    s.split(' ')
        .map(|w| {
            let mut out = String::new();
            let mut up = true;
            for c in w.chars() {
                if up {
                    out.extend(c.to_uppercase());
                } else {
                    out.extend(c.to_lowercase());
                }
                up = c == '-' || c == '\'';
            }
            out
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The candidate's name: a name-shaped line near the top, preferring one whose words
/// appear in the e-mail address; a name broken over two lines is joined.
fn find_name(lines: &[&str], email: Option<&str>) -> Option<(String, usize)> {
    let local = email.map(|e| e.split('@').next().unwrap_or("").to_lowercase()).unwrap_or_default();
    let fold = |s: &str| -> String {
        s.to_lowercase()
            .chars()
            .map(|c| match c {
                'ä' | 'á' | 'à' | 'â' | 'ã' => 'a',
                'ö' | 'ó' | 'ò' | 'ô' | 'õ' => 'o',
                'ü' | 'ú' | 'ù' | 'û' => 'u',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'í' | 'ì' | 'î' | 'ï' => 'i',
                'ç' => 'c',
                'ñ' => 'n',
                'ß' => 's',
                c => c,
            })
            .collect()
    };
    let mut candidates: Vec<(String, usize, usize)> = Vec::new(); // (name, line index, score)
    for (i, l) in lines.iter().enumerate().take(20) {
        let l = l.trim().trim_start_matches('#').trim();
        let l = without_name_label(l);
        // "ASHOK KUMAR : ashok@example.com : +91 ...": the name leads a contact line
        // whose icons the text layer lost.
        let l = if l.contains('@') || l.chars().filter(char::is_ascii_digit).count() >= 7 {
            [" | ", " : ", " · ", " • ", "\t", " — ", " – ", " ✉", " ☎"]
                .iter()
                .filter_map(|sep| l.split_once(sep).map(|(a, _)| a.trim()))
                .min_by_key(|a| a.len())
                .unwrap_or(l)
        } else {
            // "Séraphin<tab>Place de la mairie": the name in the left column of the header.
            first_cell(l)
        };
        // "Sonu Kr Sahani - Coder & Gamer": the name, then a tagline.
        let l = if looks_like_name(l) {
            l
        } else {
            [" - ", " – ", " — ", " | ", " · ", " • "]
                .iter()
                .find_map(|sep| l.split_once(sep).map(|(a, _)| a.trim()).filter(|a| looks_like_name(a)))
                .unwrap_or(l)
        };
        let Some(l) = without_heading_label(l).filter(|l| looks_like_name(l)) else {
            continue;
        };
        let mut name = l.to_string();
        // "Katharina" / "Weiß" on two lines (large type in a narrow column).
        // A line of digits (a phone beside the name) may sit between the two.
        let mut next = None;
        for n in lines.iter().skip(i + 1).take(2).map(|n| first_cell(n.trim())) {
            if looks_like_name(n) {
                next = Some(n);
                break;
            }
            if n.chars().filter(char::is_ascii_digit).count() < 5 {
                break;
            }
        }
        if word_count(l) == 1
            && let Some(next) = next
            && looks_like_name(next)
            && word_count(next) == 1
        {
            name = format!("{} {}", l, next);
        }
        if word_count(&name) < 2 {
            continue;
        }
        let words =
            name.split_whitespace().filter(|w| w.len() > 1).map(|w| fold(w.trim_matches('.'))).collect::<Vec<_>>();
        let in_email = words
            .iter()
            .filter(|w| local.contains(w.as_str()) || local.contains(&w.chars().take(3).collect::<String>()))
            .count();
        let score = in_email * 10 + 20usize.saturating_sub(i);
        // "Dr. Alice Wonderland": the name without its honorific.
        let name = ["Dr. ", "Prof. ", "Prof. Dr. ", "Mr. ", "Mrs. ", "Ms. ", "Mx. ", "Dipl.-Ing. "]
            .iter()
            .rev()
            .find_map(|h| name.strip_prefix(h))
            .filter(|rest| word_count(rest) >= 2)
            .map(str::to_string)
            .unwrap_or(name);
        candidates.push((title_case(&name), i, score));
    }
    candidates.into_iter().max_by_key(|c| c.2).map(|(n, i, _)| (n, i))
}

const COUNTRIES: &[(&str, &str)] = &[
    ("germany", "DE"),
    ("deutschland", "DE"),
    ("france", "FR"),
    ("spain", "ES"),
    ("españa", "ES"),
    ("brazil", "BR"),
    ("brasil", "BR"),
    ("portugal", "PT"),
    ("netherlands", "NL"),
    ("the netherlands", "NL"),
    ("nederland", "NL"),
    ("united kingdom", "GB"),
    ("uk", "GB"),
    ("england", "GB"),
    ("scotland", "GB"),
    ("usa", "US"),
    ("united states", "US"),
    ("us", "US"),
    ("india", "IN"),
    ("italy", "IT"),
    ("italia", "IT"),
    ("austria", "AT"),
    ("österreich", "AT"),
    ("switzerland", "CH"),
    ("schweiz", "CH"),
    ("suisse", "CH"),
    ("belgium", "BE"),
    ("belgique", "BE"),
    ("belgië", "BE"),
    ("mexico", "MX"),
    ("méxico", "MX"),
    ("argentina", "AR"),
    ("colombia", "CO"),
    ("chile", "CL"),
    ("canada", "CA"),
    ("ireland", "IE"),
    ("poland", "PL"),
    ("polska", "PL"),
    ("sweden", "SE"),
    ("denmark", "DK"),
    ("norway", "NO"),
    ("australia", "AU"),
    ("japan", "JP"),
    ("china", "CN"),
    ("singapore", "SG"),
    ("nigeria", "NG"),
    ("kenya", "KE"),
    ("south africa", "ZA"),
    ("egypt", "EG"),
    ("turkey", "TR"),
    ("türkiye", "TR"),
    ("ukraine", "UA"),
    ("romania", "RO"),
];

static POSTAL_CITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?P<pc>\d{4,5}(?:-\d{3})?|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|\d{4} ?[A-Z]{2})\s+)?(?P<city>\p{Lu}[\p{L}.'\- ]{1,30}?)(?:\s*,\s*(?P<region>\p{Lu}[\p{L}.'\- ]{1,30}))?$").expect("location")
});

fn find_location(lines: &[&str], skip: &[usize]) -> Option<Location> {
    for (i, raw) in lines.iter().enumerate().take(25) {
        if skip.contains(&i) {
            continue;
        }
        for part in split_strong(raw) {
            let p = part.trim().trim_start_matches(['📍', '⌂']).trim();
            let p = p
                .strip_prefix("Location:")
                .or_else(|| p.strip_prefix("Wohnort:"))
                .or_else(|| p.strip_prefix("Adresse:"))
                .or_else(|| p.strip_prefix("Address:"))
                .unwrap_or(p)
                .trim();
            if p.is_empty() || p.contains('@') || crate::sections::heading_kind(p).is_some() || has_title_word(p) > 0 {
                continue;
            }
            let Some(c) = POSTAL_CITY.captures(p) else { continue };
            let region = c.name("region").map(|m| m.as_str().trim().to_string());
            let city = c["city"].trim().to_string();
            let country =
                |s: &str| COUNTRIES.iter().find(|(n, _)| *n == s.to_lowercase()).map(|(_, cc)| cc.to_string());
            let cc = region.as_deref().and_then(country).or_else(|| country(&city));
            // Accept "City, Country", "City, ST", "12345 City", or a bare known country.
            let region_is_state =
                region.as_deref().is_some_and(|r| r.len() == 2 && r.chars().all(|c| c.is_ascii_uppercase()));
            if cc.is_none() && c.name("pc").is_none() && !region_is_state {
                continue;
            }
            if word_count(&city) > 3 {
                continue;
            }
            let is_country_only = country(&city).is_some() && region.is_none();
            return Some(Location {
                city: (!is_country_only).then_some(city),
                postal_code: c.name("pc").map(|m| m.as_str().to_string()),
                country_code: cc,
                region: region.filter(|r| country(r).is_none()),
                address: None,
            });
        }
    }
    None
}

// ---------------------------------------------------------------------------------
// Skills, languages, certificates, projects

fn skills(sections: &[Section], gazetteer: &Gazetteer) -> Vec<Skill> {
    let mut groups: Vec<Skill> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let listed: Vec<&Section> = sections.iter().filter(|s| s.kind == SectionKind::Skills).collect();
    let mut add = |group: &str, text: &str, strict: bool, groups: &mut Vec<Skill>| {
        let matches = if strict {
            gazetteer.find(text, true).into_iter().map(|m| (m.canonical, m.surface)).collect()
        } else {
            listed_items(text, gazetteer)
        };
        let found: Vec<String> =
            matches.into_iter().filter(|(canonical, _)| seen.insert(canonical.clone())).map(|(_, s)| s).collect();
        if found.is_empty() {
            return;
        }
        match groups.iter_mut().find(|g| g.name == group) {
            Some(g) => g.keywords.extend(found),
            None => groups.push(Skill { name: group.to_string(), keywords: found }),
        }
    };
    for s in &listed {
        let mut block = EuropassRow::List;
        for line in s.text.lines() {
            let line = strip_bullet(line);
            // A Europass label opens a block that runs to the next label.
            if let Some(row) = europass_row(&line) {
                block = row;
            }
            match block {
                EuropassRow::List => {}
                EuropassRow::NoSkills => continue,
                EuropassRow::Prose(label) => {
                    let text = match line.get(..label.len()).filter(|p| p.eq_ignore_ascii_case(label)) {
                        Some(_) => &line[label.len()..],
                        None => line.as_str(),
                    };
                    add(&s.title, text, true, &mut groups);
                    continue;
                }
            }
            // "Languages: Python, Go" / "Cloud – AWS, GCP": a category and its items.
            // A table row "Big Data Tools<tab>Hadoop, Spark" names its category in the first cell.
            let by_cell = line
                .split_once('\t')
                .filter(|(g, rest)| word_count(g) <= 5 && !g.contains(',') && !rest.trim().is_empty());
            let (group, items) = match by_cell.or_else(|| line.split_once([':', '：'])) {
                Some((g, rest)) if word_count(g) <= 5 && !rest.trim().is_empty() => {
                    (g.trim().to_string(), rest.to_string())
                }
                // "Tools Kubernetes, PostgreSQL, Kafka": a label column whose gap was lost.
                _ => match line.split_once(' ') {
                    Some((g, rest)) if SKILL_CATEGORIES.contains(&g.to_lowercase().as_str()) && rest.contains(',') => {
                        (g.to_string(), rest.to_string())
                    }
                    _ => (s.title.clone(), line.clone()),
                },
            };
            // A sentence in a skills section ("team work: I have coached my university's
            // team for two years") is prose, not a list: only the skills it names, strictly.
            // A list may hold a long item among short ones; a sentence is mostly long.
            let split = split_items(&items);
            let long = split.iter().filter(|item| word_count(item) > 6).count();
            let prose = long > 0 && (split.len() < 3 || long * 2 > split.len());
            add(&group, &items, prose, &mut groups);
        }
    }
    if listed.is_empty() {
        // No skills section: skills named in the experience and projects, strictly.
        let text: String = sections
            .iter()
            .filter(|s| matches!(s.kind, SectionKind::Work | SectionKind::Projects | SectionKind::Summary))
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        add("Skills", &text, true, &mut groups);
    }
    groups
}

/// One-word labels of a skills category, for lines whose label column lost its gap.
const SKILL_CATEGORIES: &[&str] = &[
    "languages",
    "tools",
    "frameworks",
    "libraries",
    "databases",
    "cloud",
    "platforms",
    "technologies",
    "programming",
    "software",
    "os",
    "devops",
    "frontend",
    "backend",
    "testing",
    "methods",
    "other",
    "sprachen",
    "werkzeuge",
    "outils",
    "herramientas",
    "ferramentas",
];

/// How the lines of a Europass CV's "Personal skills" are read. Europass (the EU's CV
/// standard) files languages, their self-assessment grids and the driving licence under
/// personal skills, and writes communication, organisational and computer skills as
/// sentences. Each is a label left of its block.
#[derive(Clone, Copy)]
enum EuropassRow {
    /// Languages, levels, the grids, the licence: no skills in them.
    NoSkills,
    /// "Computer skills – competent with most Microsoft Office programmes": sentences after
    /// the label; only the skills they name, strictly.
    Prose(&'static str),
    /// Any other skills line.
    List,
}

/// The block a line opens, if it starts with a Europass label.
fn europass_row(line: &str) -> Option<EuropassRow> {
    const NO_SKILLS: &[&str] = &[
        "mother tongue",
        "other language",
        "levels:",
        "common european framework",
        "driving licence",
        "driving license",
        "self-assessment",
        "digital competences - self-assessment",
    ];
    const PROSE: &[&str] = &[
        "communication skills",
        "organisational / managerial skills",
        "organizational / managerial skills",
        "organisational skills",
        "organizational skills",
        "job-related skills",
        "computer skills",
        "digital competences",
        "digital competence",
        "other skills",
    ];
    let lower = line.trim().to_lowercase();
    if NO_SKILLS.iter().any(|l| lower.starts_with(l)) {
        return Some(EuropassRow::NoSkills);
    }
    // "French<tab>C1<tab>C2<tab>B2": a row of the language grid.
    let cells: Vec<&str> = lower.split('\t').map(str::trim).collect();
    let levels = cells.iter().filter(|c| matches!(**c, "a1" | "a2" | "b1" | "b2" | "c1" | "c2")).count();
    if levels >= 2 && levels * 2 >= cells.len() - 1 {
        return Some(EuropassRow::NoSkills);
    }
    PROSE.iter().find(|l| lower.starts_with(**l)).map(|l| EuropassRow::Prose(l))
}

/// Skills of one line of a skills section, as (canonical, surface). The line is a list
/// ("Python, Apache Flink; CI/CD for data"): an item the gazetteer recognises a skill in
/// is kept whole when it says more than that skill ("Apache Flink", where the gazetteer
/// knows "Apache" and "Flink" apart; "CI/CD for data"), so the candidate's own wording
/// survives. An item that is a known skill plus a version ("Angular 6/7") or a
/// parenthesised aside ("Flask (Python)") gives the skill alone; skills inside the aside
/// and items the gazetteer knows nothing in are found as before.
///
/// In a line that is plainly a list of skills (three items or more, one of them known), an
/// item the gazetteer does not know is kept as written too: the 32,000-skill list lacks
/// "Sqoop", "Hortonworks" and "storyboarding", and the candidate's own list is the better
/// witness.
fn listed_items(line: &str, gazetteer: &Gazetteer) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let items = split_items(line);
    let known = items.iter().filter(|i| !gazetteer.find(i, false).is_empty()).count();
    let list_of_skills = items.len() >= 3 && known >= 1;
    for item in items {
        let (head, aside) = match item.split_once('(') {
            Some((h, a)) => (h.trim(), Some(a)),
            None => (item.trim(), None),
        };
        let head = head.trim_end_matches(['.', ')']).trim();
        let found = gazetteer.find(head, false);
        let words = word_count(head);
        let rest_is_version = || {
            let mut rest = head.to_lowercase();
            for m in &found {
                rest = rest.replacen(&m.surface.to_lowercase(), " ", 1);
            }
            rest.split(|c: char| c.is_whitespace() || c == '/' || c == ',')
                .filter(|w| !w.is_empty())
                .all(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) || matches!(w, "v" | "x" | "+" | "-"))
        };
        let sentence_like = words > 4 || head.contains(['.', ':']) && !found.iter().any(|m| m.surface.contains('.'));
        // "Node.js Angular.js jQuery Bootstrap": keywords separated by spaces only, each a
        // skill of its own, when three or more known skills make up the item.
        let covered: usize = found.iter().map(|m| m.surface.chars().filter(|c| !c.is_whitespace()).count()).sum();
        let letters = head.chars().filter(|c| !c.is_whitespace()).count();
        let spaced_list = found.len() >= 3 && covered * 5 >= letters * 4;
        if !found.is_empty() && !sentence_like && !spaced_list && (found.len() > 1 || !rest_is_version()) {
            out.push((head.to_lowercase(), head.to_string()));
        } else if let Some(bare) = found.is_empty().then(|| without_version(head, gazetteer)).flatten() {
            out.push(bare);
        } else if found.is_empty()
            && list_of_skills
            && unknown_skill_item(head)
            // "Cloud (GCP, Azure)": a category naming the list in its brackets.
            && aside.is_none_or(|a| split_items(a).len() < 2)
        {
            out.push((head.to_lowercase(), head.to_string()));
        } else {
            out.extend(found.into_iter().map(|m| (m.canonical, m.surface)));
        }
        if let Some(aside) = aside {
            let aside = aside.trim_end_matches([')', '.']);
            if split_items(aside).len() >= 3 {
                out.extend(listed_items(aside, gazetteer));
            } else {
                out.extend(gazetteer.find(aside, false).into_iter().map(|m| (m.canonical, m.surface)));
            }
        }
    }
    out
}

/// "Angular7", "Python3": a known skill with its version glued on, as (canonical, surface).
fn without_version(item: &str, gazetteer: &Gazetteer) -> Option<(String, String)> {
    let bare = item.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if bare.len() == item.len() || bare.chars().count() < 2 {
        return None;
    }
    let found = gazetteer.find(bare, false);
    match found.as_slice() {
        [m] if m.surface.len() == bare.len() => Some((m.canonical.clone(), m.surface.clone())),
        _ => None,
    }
}

/// An item of a skills list that can stand as a skill though the gazetteer lacks it: a few
/// words, not a joining word or a bare number ("and more", "5.7").
fn unknown_skill_item(item: &str) -> bool {
    let words = word_count(item);
    let lower = item.to_lowercase();
    (1..=6).contains(&words)
        && item.chars().next().is_some_and(char::is_alphanumeric)
        && item.chars().any(char::is_alphabetic)
        && !["and ", "or ", "etc", "und ", "et ", "y ", "e "].iter().any(|w| lower.starts_with(w))
}

/// A list's items: split on commas, semicolons, bars, list dots and tabs, never inside
/// parentheses or brackets.
fn split_items(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut depth) = (0usize, 0i32);
    for (i, c) in line.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | ';' | '|' | '•' | '·' | '\t' if depth <= 0 => {
                out.push(&line[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&line[start..]);
    out.into_iter().map(str::trim).filter(|s| !s.is_empty()).collect()
}

fn languages(text: &str) -> Vec<Language> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = strip_bullet(line);
        for item in split_commas(&line).into_iter().flat_map(|p| p.split(['|', '•', '·', ';'])) {
            let item = item.trim();
            if item.is_empty() || word_count(item) > 8 {
                continue;
            }
            let (lang, fluency) = if let Some(i) = item.find('(') {
                (item[..i].trim(), Some(item[i + 1..].trim_end_matches(')').trim()))
            } else if let Some((a, b)) = item.split_once([':', '–', '—']).or_else(|| item.split_once(" - ")) {
                (a.trim(), Some(b.trim()))
            } else {
                let mut words = item.splitn(2, ' ');
                (words.next().unwrap_or("").trim(), words.next().map(str::trim))
            };
            if lang.is_empty() || !lang.chars().next().is_some_and(|c| c.is_alphabetic()) {
                continue;
            }
            out.push(Language {
                language: lang.trim_end_matches([':', '-', ',']).trim().to_string(),
                fluency: fluency.filter(|f| !f.is_empty()).map(|f| f.trim_start_matches(['-', '–']).trim().to_string()),
            });
        }
    }
    out
}

fn certificates(text: &str) -> Vec<Certificate> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = strip_bullet(line);
        if line.is_empty() {
            continue;
        }
        let mut name = line.clone();
        let mut date = None;
        if let Some(d) = dates::find_range(&line) {
            date = d.end.clone().or(d.start.clone());
            name = clean_piece(&format!("{} {}", &line[..d.span.0], &line[d.span.1..]));
        }
        let mut issuer = None;
        for sep in [" | ", " — ", " · ", ", "] {
            if let Some((a, b)) = name.split_once(sep)
                && word_count(b) <= 5
            {
                issuer = Some(clean_piece(b));
                name = clean_piece(a);
                break;
            }
        }
        if name.is_empty() {
            continue;
        }
        out.push(Certificate { name, date, issuer: issuer.filter(|s| !s.is_empty()) });
    }
    out
}

fn projects(text: &str) -> Vec<Project> {
    let mut out: Vec<Project> = Vec::new();
    let lines: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    let kinds = classify(&lines);
    for (l, k) in lines.iter().zip(kinds) {
        match k {
            LineKind::Blank => {}
            LineKind::Short { .. } => {
                let mut p = Project::default();
                let mut head = l.replace("**", "");
                if let Some(d) = dates::find_range(&head) {
                    (p.start_date, p.end_date) = d.start_end();
                    head = format!("{} {}", &head[..d.span.0], &head[d.span.1..]);
                }
                p.url = find_url(&head, None);
                let parts = split_strong(&head);
                p.name = clean_piece(parts.first().map(String::as_str).unwrap_or(""));
                let rest: Vec<String> = parts[1..].iter().map(|s| clean_piece(s)).filter(|s| !s.is_empty()).collect();
                if !rest.is_empty() {
                    p.description = Some(rest.join(" – "));
                }
                if !p.name.is_empty() {
                    out.push(p);
                }
            }
            LineKind::Bullet => {
                if let Some(p) = out.last_mut() {
                    p.highlights.push(strip_bullet(l));
                }
            }
            LineKind::Long => {
                if let Some(p) = out.last_mut() {
                    let d = p.description.get_or_insert_with(String::new);
                    if !d.is_empty() {
                        d.push(' ');
                    }
                    d.push_str(l);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------

/// Build the JSON Resume from the text and its sections.
pub fn structure(text: &str, sections: &[Section], gazetteer: &Gazetteer) -> Resume {
    let mut r = Resume::default();
    let of = |k: SectionKind| sections.iter().filter(move |s| s.kind == k);
    let header: String =
        of(SectionKind::Header).chain(of(SectionKind::Contact)).map(|s| s.text.as_str()).collect::<Vec<_>>().join("\n");
    let top_lines: Vec<&str> =
        if header.trim().is_empty() { text.lines().take(20).collect() } else { header.lines().collect() };

    r.basics.email = find_email(&header).or_else(|| find_email(text));
    let name = find_name(&top_lines, r.basics.email.as_deref())
        .or_else(|| {
            let first: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(12).collect();
            find_name(&first, r.basics.email.as_deref()).map(|(n, _)| (n, usize::MAX))
        })
        .or_else(|| {
            // "My name is Fede Calendino, I'm an Argentinian living in the UK."
            let top: String = text.lines().take(20).collect::<Vec<_>>().join("\n");
            let c = MY_NAME_IS.captures(&top)?;
            let name = c.get(1)?.as_str();
            looks_like_name(name).then(|| (name.to_string(), usize::MAX))
        });
    let mut used_lines = Vec::new();
    if let Some((n, i)) = name {
        r.basics.name = Some(n.clone());
        if i != usize::MAX {
            used_lines.push(i);
            let consumed = if n.split_whitespace().count() == 2 && top_lines.get(i).is_some_and(|l| word_count(l) == 1)
            {
                2
            } else {
                1
            };
            if consumed == 2 {
                used_lines.push(i + 1);
            }
            // The label: the next short line that reads like a job title.
            for (j, l) in top_lines.iter().enumerate().skip(i + consumed).take(3) {
                let l = l.trim().trim_start_matches('#').trim();
                if l.is_empty()
                    || l.contains('@')
                    || l.chars().filter(|c| c.is_ascii_digit()).count() > 3
                    || word_count(l) > 10
                {
                    continue;
                }
                if has_title_word(l) > 0 {
                    r.basics.label = Some(split_strong(l).first().map(|s| clean_piece(s)).unwrap_or_default());
                    used_lines.push(j);
                    break;
                }
            }
        }
    }
    r.basics.phone = find_phone(&header).or_else(|| find_phone(text));
    r.basics.profiles = find_profiles(text);
    r.basics.url = find_url(&header, r.basics.email.as_deref());
    r.basics.location = find_location(&top_lines, &used_lines);
    let summary: Vec<String> =
        of(SectionKind::Summary).map(|s| s.text.lines().map(str::trim).collect::<Vec<_>>().join(" ")).collect();
    if !summary.is_empty() {
        r.basics.summary = Some(summary.join("\n"));
    }

    for s in of(SectionKind::Work) {
        let listed: Vec<Work> = entries(&s.text)
            .into_iter()
            .map(|e| work_entry(&e))
            .filter(|w| w.name.is_some() || w.position.is_some())
            .collect();
        let complete = |w: &Work| w.name.is_some() && w.position.is_some();
        let written = written_out_jobs(&s.text);
        let listed = fuller(listed, written, complete);
        let listed = fuller(listed, bulleted_jobs(&s.text), complete);
        // A classic Europass form says outright which value is what.
        let form = europass_jobs(&s.text);
        r.work.extend(if form.is_empty() { listed } else { form });
    }
    for s in of(SectionKind::Education) {
        let found: Vec<Education> = entries(&s.text)
            .iter()
            .map(education_entry)
            .filter(|e| e.institution.is_some() || e.study_type.is_some())
            .collect();
        // One bullet per qualification ("• MSc Physics, University of Leeds 2014 with
        // 72%"): the entry parser takes bullets for details under a header; whichever
        // reading gives more complete entries wins.
        let bulleted = bulleted_education(&s.text);
        let complete = |e: &Education| e.institution.is_some() && e.study_type.is_some();
        // When the degrees themselves are the bullets, the bullet reading is the one to trust
        // as long as it finds as much.
        let (bulleted_degrees, plain_degrees) = s
            .text
            .lines()
            .filter(|l| degree_score(l) > 0)
            .fold((0, 0), |(b, p), l| if is_bullet(l) { (b + 1, p) } else { (b, p + 1) });
        let found = if bulleted_degrees > plain_degrees
            && bulleted.iter().filter(|e| complete(e)).count() >= found.iter().filter(|e| complete(e)).count()
        {
            bulleted
        } else {
            fuller(found, bulleted, complete)
        };
        let form = europass_education(&s.text);
        r.education.extend(if form.is_empty() { found } else { form });
    }
    r.skills = skills(sections, gazetteer);
    for s in of(SectionKind::Languages) {
        r.languages.extend(languages(&s.text));
    }
    for s in of(SectionKind::Certificates) {
        r.certificates.extend(certificates(&s.text));
    }
    for s in of(SectionKind::Projects) {
        r.projects.extend(projects(&s.text));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sections::split;

    /// (degree, school) of each education entry.
    fn degrees(r: &Resume) -> Vec<(Option<&str>, Option<&str>)> {
        r.education.iter().map(|e| (e.study_type.as_deref(), e.institution.as_deref())).collect()
    }

    /// (employer, title) of each job.
    fn jobs(r: &Resume) -> Vec<(Option<&str>, Option<&str>)> {
        r.work.iter().map(|w| (w.name.as_deref(), w.position.as_deref())).collect()
    }

    fn gz() -> Gazetteer {
        Gazetteer::new(
            ["java", "kotlin", "spring boot", "postgresql", "kubernetes", "python", "sql", "excel", "angular"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn a_german_resume() {
        let text = "Katharina\nWeiß\nSenior Backend-Entwicklerin\nHamburg, Deutschland\nTel.: 0151 2345 6789\nkatharina.weiss@posteo.de\nlinkedin.com/in/katharina-weiss\n\nBerufserfahrung\nSenior Backend-Entwicklerin\nOtto Group, Hamburg\n04/2020 – heute\n• Migration auf Kafka;\nLatenz gesenkt.\n\nSoftwareentwicklerin\nHermes Germany GmbH, Hamburg\n09/2016 – 03/2020\n• Sendungsverfolgung\n\nAusbildung\nTechnische Universität München\nMaster of Science, Informatik\n10/2014 – 08/2016, Note: 1,3\n\nKenntnisse\nJava, Kotlin, Spring Boot, PostgreSQL\n\nSprachen\nDeutsch (Muttersprache)\nEnglisch (C1)";
        let r = structure(text, &split(text), &gz());
        assert_eq!(r.basics.name.as_deref(), Some("Katharina Weiß"));
        assert_eq!(r.basics.label.as_deref(), Some("Senior Backend-Entwicklerin"));
        assert_eq!(r.basics.email.as_deref(), Some("katharina.weiss@posteo.de"));
        assert_eq!(r.basics.phone.as_deref(), Some("0151 2345 6789"));
        assert_eq!(r.basics.profiles[0].network, "LinkedIn");
        assert_eq!(r.basics.profiles[0].username, "katharina-weiss");
        let loc = r.basics.location.as_ref().unwrap();
        assert_eq!((loc.city.as_deref(), loc.country_code.as_deref()), (Some("Hamburg"), Some("DE")));
        assert_eq!(r.work.len(), 2);
        assert_eq!(r.work[0].position.as_deref(), Some("Senior Backend-Entwicklerin"));
        assert_eq!(r.work[0].name.as_deref(), Some("Otto Group"));
        assert_eq!(r.work[0].location.as_deref(), Some("Hamburg"));
        assert_eq!(r.work[0].start_date.as_deref(), Some("2020-04"));
        assert_eq!(r.work[0].end_date, None);
        assert_eq!(r.work[0].highlights, ["Migration auf Kafka; Latenz gesenkt."]);
        assert_eq!(r.work[1].name.as_deref(), Some("Hermes Germany GmbH"));
        assert_eq!(r.work[1].end_date.as_deref(), Some("2020-03"));
        let e = &r.education[0];
        assert_eq!(e.institution.as_deref(), Some("Technische Universität München"));
        assert_eq!(e.study_type.as_deref(), Some("Master of Science"));
        assert_eq!(e.area.as_deref(), Some("Informatik"));
        assert_eq!(e.score.as_deref(), Some("1,3"));
        assert_eq!(r.skills[0].keywords, ["Java", "Kotlin", "Spring Boot", "PostgreSQL"]);
        assert_eq!(r.languages[0], Language { language: "Deutsch".into(), fluency: Some("Muttersprache".into()) });
    }

    #[test]
    fn single_line_entries_and_at_pairs() {
        let text = "JOHN SMITH\n+1 (415) 555-0134 | john.smith@gmail.com | San Francisco, CA\n\nEXPERIENCE\nSoftware Engineer at Stripe | Jan 2020 – Present\n- Built payments APIs in Python.\nData Analyst, Acme Corp, Inc. | 2017 - 2019\n\nEDUCATION\nB.Sc. in Computer Science, University of Toronto, 2017\n";
        let r = structure(text, &split(text), &gz());
        assert_eq!(r.basics.name.as_deref(), Some("John Smith"));
        assert_eq!(r.basics.phone.as_deref(), Some("+1 (415) 555-0134"));
        assert_eq!(r.basics.location.as_ref().and_then(|l| l.region.as_deref()), Some("CA"));
        assert_eq!(r.work[0].position.as_deref(), Some("Software Engineer"));
        assert_eq!(r.work[0].name.as_deref(), Some("Stripe"));
        assert_eq!(r.work[1].position.as_deref(), Some("Data Analyst"));
        assert_eq!(r.work[1].name.as_deref(), Some("Acme Corp, Inc."));
        assert_eq!(r.work[1].start_date.as_deref(), Some("2017"));
        assert_eq!(r.education[0].study_type.as_deref(), Some("B.Sc."));
        assert_eq!(r.education[0].area.as_deref(), Some("Computer Science"));
        assert_eq!(r.education[0].institution.as_deref(), Some("University of Toronto"));
        assert_eq!(r.education[0].end_date.as_deref(), Some("2017"));
        // No skills section: skills named in the experience, ambiguous words left out.
        assert_eq!(r.skills[0].keywords, ["Python"]);
    }

    #[test]
    fn labels_beside_the_name_and_tab_stops_between_employer_and_place() {
        // A Europass-style label column puts the section label on the name's line; a
        // word processor's right tab stop separates employer and place (normalize keeps
        // the tab).
        let text = crate::extract::normalize(
            "PERSONAL INFORMATION Aoife Byrne\nGalway, Ireland\naoife.byrne@example.ie\n\nPROFILE OVERVIEW\nData engineer.\n\nWORK EXPERIENCE\nTidewater Analytics Ltd\tGalway, Ireland\nData Engineer\tMar 2021 – Present\n• Built SQL pipelines.\nHarbour Logistics\t\tCork\nAnalyst\t2018 – 2021\n",
        );
        let r = structure(&text, &split(&text), &gz());
        assert_eq!(r.basics.name.as_deref(), Some("Aoife Byrne"));
        assert_eq!(r.basics.summary.as_deref(), Some("Data engineer."));
        assert_eq!(r.work.len(), 2, "{:?}", r.work);
        assert_eq!(r.work[0].name.as_deref(), Some("Tidewater Analytics Ltd"));
        assert_eq!(r.work[0].position.as_deref(), Some("Data Engineer"));
        assert_eq!(r.work[0].start_date.as_deref(), Some("2021-03"));
        assert_eq!(r.work[1].name.as_deref(), Some("Harbour Logistics"));
        assert_eq!(r.work[1].location.as_deref(), Some("Cork"));
        // A heading alone is never the name.
        let text = "Profile Overview\nJordan Okafor\njordan@example.com\n";
        let r = structure(text, &split(text), &gz());
        assert_eq!(r.basics.name.as_deref(), Some("Jordan Okafor"));
    }

    #[test]
    fn listed_skills_keep_the_candidates_wording() {
        let g = Gazetteer::new(
            ["apache", "flink", "ci/cd", "streaming", "angular", "flask", "python", "pandas", "numpy", "sql"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
        .unwrap();
        let surfaces = |line: &str| listed_items(line, &g).into_iter().map(|(_, s)| s).collect::<Vec<_>>();
        assert_eq!(
            surfaces("Apache Flink, CI/CD for data; Streaming/real-time pipelines | SQL"),
            ["Apache Flink", "CI/CD for data", "Streaming/real-time pipelines", "SQL"]
        );
        // Versions and asides give the skill alone; skills inside an aside still count.
        assert_eq!(
            surfaces("Angular 6/7, Flask (Python), Python (pandas, NumPy)"),
            ["Angular", "Flask", "Python", "Python", "pandas", "NumPy"]
        );
        // Nothing known in an item: nothing from it; a sentence is searched, not kept.
        assert_eq!(
            surfaces("Leadership, Built streaming jobs in Apache Flink for fraud."),
            ["streaming", "Apache", "Flink"]
        );
    }

    #[test]
    fn places_stuck_to_the_employer_come_off() {
        assert_eq!(
            split_trailing_place("Nordlicht Payments GmbH Hamburg"),
            Some(("Nordlicht Payments GmbH".into(), "Hamburg".into()))
        );
        assert_eq!(
            split_trailing_place("Quillfeather Labs Remote"),
            Some(("Quillfeather Labs".into(), "Remote".into()))
        );
        assert_eq!(split_trailing_place("Acme Pty Ltd Sydney"), Some(("Acme Pty Ltd".into(), "Sydney".into())));
        assert_eq!(split_trailing_place("Bank of Ireland"), None);
        assert_eq!(split_trailing_place("Siemens AG"), None);
        assert_eq!(split_trailing_place("Orbital SA de CV"), None);
        // Through the entry parser: the place joins the rest of the location.
        let text = "Lena Vogt\nlena@example.de\n\nBerufserfahrung\nNordlicht Payments GmbH Hamburg, Deutschland\nBackend Engineer 03/2021 – heute\n• Kafka\n";
        let r = structure(text, &split(text), &gz());
        assert_eq!(r.work[0].name.as_deref(), Some("Nordlicht Payments GmbH"));
        assert_eq!(r.work[0].location.as_deref(), Some("Hamburg, Deutschland"));
        assert_eq!(r.work[0].position.as_deref(), Some("Backend Engineer"));
    }

    #[test]
    fn degrees_in_capitals_and_prose_education_entries() {
        assert_eq!(split_degree("B.TECH IN CIVIL ENGINEERING"), ("B.TECH".into(), Some("CIVIL ENGINEERING".into())));
        let text = "Tomás Reyes\ntomas@example.org\n\nEducation\nM.A. in Development Economics at the University of Valparaíso, Chile, 2016\nB.Sc. in Statistics at Universidad de Chile, 2013\n";
        let r = structure(text, &split(text), &gz());
        assert_eq!(r.education.len(), 2, "{:?}", r.education);
        assert_eq!(r.education[0].study_type.as_deref(), Some("M.A."));
        assert_eq!(r.education[0].area.as_deref(), Some("Development Economics"));
        assert_eq!(r.education[0].institution.as_deref(), Some("University of Valparaíso"));
        assert_eq!(r.education[1].institution.as_deref(), Some("Universidad de Chile"));
        assert_eq!(r.education[1].end_date.as_deref(), Some("2013"));
    }

    #[test]
    fn employers_written_out_in_prose() {
        assert_eq!(employer_of_prose("the Office for Regional Statistics"), "Office for Regional Statistics");
        assert_eq!(employer_of_prose("Center for Research in Education"), "Center for Research in Education");
        let text = "Ines Baptista\nines@example.pt\n\nWork Experience\n03/2015–04/2015 Intern at the Office for Regional Statistics\n";
        let r = structure(text, &split(text), &gz());
        assert_eq!(r.work[0].position.as_deref(), Some("Intern"));
        assert_eq!(r.work[0].name.as_deref(), Some("Office for Regional Statistics"));
    }

    #[test]
    fn jobs_written_as_sentences() {
        let text = "Priya Raman\npriya.raman@example.in\n\nPROFESSIONAL EXPERIENCE\n\u{2022} Currently working with Tessellate Analytics, from Jan 2021 to till date in the designation of\nLead Data Engineer.\n\u{2022} Worked for Kaveri Systems Pvt Ltd, Chennai from Jun 2017 to Dec 2020 in the designation \u{2013} Software Engineer.\n\u{2022} Worked as a Trainee Analyst at Mandovi Bank from 2015 to 2017.\n\u{2022} Built batch pipelines in Spark.\n";
        let r = structure(text, &split(text), &gz());
        let got = jobs(&r);
        assert_eq!(
            got,
            [
                (Some("Tessellate Analytics"), Some("Lead Data Engineer")),
                (Some("Kaveri Systems Pvt Ltd"), Some("Software Engineer")),
                (Some("Mandovi Bank"), Some("Trainee Analyst")),
            ]
        );
        assert_eq!((r.work[0].start_date.as_deref(), r.work[0].end_date.as_deref()), (Some("2021-01"), None));
        assert_eq!(r.work[1].location.as_deref(), Some("Chennai"));
        assert_eq!(r.work[1].end_date.as_deref(), Some("2020-12"));
        assert_eq!(r.work[2].highlights, ["Built batch pipelines in Spark"]);
    }

    #[test]
    fn a_name_leading_the_contact_line() {
        let text = "MEERA NAIR : meera.nair@example.in :+919800012345\n\nOBJECTIVE\nData engineering.\n";
        let r = structure(text, &split(text), &gz());
        assert_eq!(r.basics.name.as_deref(), Some("Meera Nair"));
        assert_eq!(r.basics.email.as_deref(), Some("meera.nair@example.in"));
    }

    #[test]
    fn education_as_bullets() {
        let text = "Ravi Teja\nravi@example.in\n\nEducation\n\u{2022} Master of Technology, Jawaharlal Nehru Technological University\n2015 with 78%, Kakinada, India.\n\u{2022} Bachelor of Science (Physics), Andhra University 2012 with 71%\n";
        let r = structure(text, &split(text), &gz());
        let got: Vec<(Option<&str>, Option<&str>, Option<&str>)> = r
            .education
            .iter()
            .map(|e| (e.study_type.as_deref(), e.institution.as_deref(), e.end_date.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Some("Master of Technology"), Some("Jawaharlal Nehru Technological University"), Some("2015")),
                (Some("Bachelor of Science"), Some("Andhra University"), Some("2012")),
            ]
        );
    }

    #[test]
    fn a_degree_opening_the_line_under_the_school() {
        let text = "Noor Haddad\nnoor@example.com\n\n## Education\nRiverside School of Art\t2018\nBachelor of Fine Arts (BFA). Major in Illustration, minor in Print.\n";
        let r = structure(text, &split(text), &gz());
        let got = degrees(&r);
        assert_eq!(got, [(Some("Bachelor of Fine Arts"), Some("Riverside School of Art"))]);
    }

    #[test]
    fn an_ampersand_in_a_job_title_is_no_firm() {
        let text = "Noor Haddad\nnoor@example.com\n\nExperience\nStudio Manager, Art & Print Lead · Larkspur Media (2021 – 2023)\n- Led the studio\n";
        let r = structure(text, &split(text), &gz());
        let w = &r.work[0];
        assert_eq!(
            (w.name.as_deref(), w.position.as_deref()),
            (Some("Larkspur Media"), Some("Studio Manager, Art & Print Lead"))
        );
    }

    #[test]
    fn label_column_entries_keep_their_own_headers() {
        let text = "Lena Vogt\nlena@example.de\n\nEducation\n10/2012–09/2016 M.A. in History at the University of Kiel\nThesis: Hanseatic trade; supervisor: Prof.\nDr. K. Berg.\n\nSince 10/2016 Ph.D. student at the University of Bonn.\nI intend to submit the thesis in May, 2021.\n";
        let r = structure(text, &split(text), &gz());
        let got = degrees(&r);
        assert_eq!(got, [(Some("M.A."), Some("University of Kiel")), (Some("Ph.D."), Some("University of Bonn"))]);
    }

    #[test]
    fn a_single_year_in_a_label_column_dates_its_entry() {
        let text = "Lena Vogt\nlena@example.de\n\nEducation\n2016\tMaster of Arts in Medieval History, University of Kiel, with distinction\n2013\tBachelor of Arts in History and Latin, University of Hamburg, first class\n";
        let r = structure(text, &split(text), &gz());
        let got: Vec<(Option<&str>, Option<&str>, Option<&str>)> = r
            .education
            .iter()
            .map(|e| (e.study_type.as_deref(), e.institution.as_deref(), e.end_date.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Some("Master of Arts"), Some("University of Kiel"), Some("2016")),
                (Some("Bachelor of Arts"), Some("University of Hamburg"), Some("2013")),
            ]
        );
    }

    #[test]
    fn sentence_stops_split_pieces_and_durations_are_dropped() {
        assert_eq!(
            split_sentences("Groupe ESIEE. Reconnaissance de phonèmes"),
            ["Groupe ESIEE", "Reconnaissance de phonèmes"]
        );
        assert_eq!(split_sentences("Acme Inc. Berlin"), ["Acme Inc. Berlin"]);
        assert_eq!(split_sentences("B.Sc. Physics"), ["B.Sc. Physics"]);
        assert_eq!(clean_piece("Lycée Saint-Louis (75)"), "Lycée Saint-Louis");
        assert_eq!(clean_piece("(6 months)"), "");
        assert_eq!(clean_piece("(2 mois)"), "");
        assert_eq!(clean_piece("6 Monate Praktikum"), "6 Monate Praktikum");
    }

    #[test]
    fn a_name_then_a_full_stop_then_the_work() {
        let text = "Lena Vogt\nlena@example.de\n\nExperience\n1998\tInstitut Pasteur. Analyse de séquences par réseaux de neurones.\nÉcriture d'outils en C.\n";
        let r = structure(text, &split(text), &gz());
        let w = &r.work[0];
        assert_eq!((w.name.as_deref(), w.position.as_deref()), (Some("Institut Pasteur"), None));
    }

    #[test]
    fn a_skills_list_keeps_items_the_gazetteer_lacks() {
        let text = "Asha Rao\nasha@example.in\n\nSkills\nBig Data Tools\tPython, Sqoop, Hortonworks, SQL\nStack: Java Kotlin Spring Boot\nTools Jenkins, Excel, SQL\nHosting: Kubernetes (PostgreSQL, DigitalOcean, Linode), Cloud (SQL, Vultr, Hetzner), Angular7\nSoft skills: listening carefully to clients\n";
        let r = structure(text, &split(text), &gz());
        let groups: Vec<(&str, Vec<&str>)> =
            r.skills.iter().map(|g| (g.name.as_str(), g.keywords.iter().map(String::as_str).collect())).collect();
        assert_eq!(
            groups,
            [
                ("Big Data Tools", vec!["Python", "Sqoop", "Hortonworks", "SQL"]),
                ("Stack", vec!["Java", "Kotlin", "Spring Boot"]),
                ("Tools", vec!["Jenkins", "Excel"]),
                ("Hosting", vec!["Kubernetes", "PostgreSQL", "DigitalOcean", "Linode", "Vultr", "Hetzner", "Angular"]),
            ]
        );
    }

    #[test]
    fn europass_personal_skills() {
        let text = "Ana Lima\nana@example.eu\n\nPERSONAL SKILLS\nMother tongue Portuguese\nOther languages\tUNDERSTANDING\tSPEAKING\nSpanish\tC1\tC2\tB2\nCommunication skills – good communication skills gained as a tutor\n– presenting to clients\nComputer skills – competent with Kotlin and SQL\n– basic Python\nDriving licence B\n";
        let r = structure(text, &split(text), &gz());
        let skills: Vec<&str> = r.skills.iter().flat_map(|g| g.keywords.iter().map(String::as_str)).collect();
        assert_eq!(skills, ["Kotlin", "SQL", "Python"]);
    }

    #[test]
    fn a_name_field_or_a_name_with_a_tagline() {
        for text in [
            "Contact Information\nName\tTariq Bhat\nEmail\ttariq@example.in\n",
            "Tariq Bhat - Coder & Gamer\n====\nEmail: tariq@example.in\n",
            "Full name: Tariq Bhat\ntariq@example.in\n",
            "Contact\nName Tariq Bhat\nEmail tariq@example.in\n",
            "ML Enthusiast\nPython, Pandas, Java\nTariq Bhat\ntariq@example.in\n",
            "Dr. Tariq Bhat\nYour Location\nyouremail@example.com\n",
        ] {
            let norm = crate::extract::normalize(text);
            let r = structure(&norm, &split(&norm), &gz());
            assert_eq!(r.basics.name.as_deref(), Some("Tariq Bhat"), "{text}");
        }
    }

    #[test]
    fn a_name_in_a_sentence() {
        let text = "Hello!\n\nMy name is Tomás Ferreira, I'm a Portuguese engineer living in Lyon.\n\nExperience:\n* Engineer @ Acme (2019 - 2021)\n";
        let r = structure(text, &split(text), &gz());
        assert_eq!(r.basics.name.as_deref(), Some("Tomás Ferreira"));
    }

    #[test]
    fn one_bullet_per_job() {
        let text = "Tomás Ferreira\nt@example.pt\n\nExperience:\n* Backend Engineer @ Tidepool (Nov 2023 - present)\n* Software Engineer II @ Northwind Ltd. (May 2020 - Aug 2023)\n\n* Java Developer @ Globex (Jun 2016 - Feb 2018)\n";
        let r = structure(text, &split(text), &gz());
        let got = jobs(&r);
        assert_eq!(
            got,
            [
                (Some("Tidepool"), Some("Backend Engineer")),
                (Some("Northwind Ltd."), Some("Software Engineer II")),
                (Some("Globex"), Some("Java Developer")),
            ]
        );
    }

    #[test]
    fn pieces_lose_link_targets_form_labels_and_open_ends() {
        assert_eq!(clean_piece("Geekbocks, LLC <http://www.geekbocks.com>"), "Geekbocks, LLC");
        assert_eq!(clean_piece("<https://area52.io/x> Area 52"), "Area 52");
        assert_eq!(clean_piece("University Name: Stanford University"), "Stanford University");
        assert_eq!(clean_piece("Education Degree: Master of Science"), "Master of Science");
        assert_eq!(clean_piece("MassMutual (Current)"), "MassMutual");
        assert_eq!(clean_piece("Self-Employed (Software Development)"), "Self-Employed (Software Development)");
        assert_eq!(clean_piece("Stanford University (expected "), "Stanford University");
        assert_eq!(clean_piece("Thesis: Adverse selection"), "Thesis: Adverse selection");
    }

    #[test]
    fn degrees_written_in_a_school_and_school_classes() {
        let text = "Rhea Das\nrhea@example.in\n\nEducation\n  - B.Tech Computer Science in Indian Institute of Technology, Patna (2021 – 2025)\n  - High School in St. Xavier's School, Ranchi (2020)\n\nRhea Das\n";
        let r = structure(text, &split(text), &gz());
        let got = degrees(&r);
        assert_eq!(
            got,
            [
                (Some("B.Tech"), Some("Indian Institute of Technology")),
                (Some("High School"), Some("St. Xavier's School"))
            ]
        );
        let text = "Rhea Das\nrhea@example.in\n\nEducation\nClass XII — 91.2% (2020–2021)\nDelhi Public School, Noida, India\n\nClass X — 94% (2018–2019)\nDelhi Public School, Noida, India\n";
        let r = structure(text, &split(text), &gz());
        let got: Vec<Option<&str>> = r.education.iter().map(|e| e.study_type.as_deref()).collect();
        assert_eq!(got, [Some("Class XII"), Some("Class X")]);
    }

    #[test]
    fn a_year_in_brackets_dates_its_entry() {
        let text = "Ana Lima\nana@example.com\n\nEDUCATION\n\nPh.D. Applied Physics (2019) - University of Porto\n• Focus: Optics\n\nM.S. Applied Physics (2015) - University of Porto\nB.S. Physics (2013) - University of Coimbra\n";
        let r = structure(text, &split(text), &gz());
        let got: Vec<(Option<&str>, Option<&str>, Option<&str>)> = r
            .education
            .iter()
            .map(|e| (e.study_type.as_deref(), e.institution.as_deref(), e.end_date.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Some("Ph.D."), Some("University of Porto"), Some("2019")),
                (Some("M.S."), Some("University of Porto"), Some("2015")),
                (Some("B.S."), Some("University of Coimbra"), Some("2013")),
            ]
        );
    }

    #[test]
    fn keywords_above_the_next_header_stay_with_their_job() {
        let text = "Jo Park\njo@example.com\n\nEmployment\nLead Engineer, Northwind\n2019-03 — Present\n• Led the platform team\nRust Go Kafka Postgres Terraform Kubernetes Linux\nSenior Developer, Globex\n2015-01 — 2019-02\n• Built billing\nActive Directory Linux\nIntern, Initech\n2015-01 — 2019-02\n• Built billing\n";
        let r = structure(text, &split(text), &gz());
        let got = jobs(&r);
        assert_eq!(
            got,
            [
                (Some("Northwind"), Some("Lead Engineer")),
                (Some("Globex"), Some("Senior Developer")),
                (Some("Initech"), Some("Intern"))
            ]
        );
    }

    #[test]
    fn key_value_entries_and_framed_headings() {
        let text = "╭──────────────╮\n│ Priya Nair   │\n╰──────────────╯\nEmail: priya@example.in\n\n╭──── Experience ────╮\nCompany: Zentrix Labs\nRole: SDE Intern\nDuration: May 2023 - Jul 2023\n  • Built the billing service\n\n╭──── Education ────╮\nInstitution: National Institute of Technology, Trichy\nDegree: B.Tech in Computer Science\nYear: 2020 - 2024\n";
        let norm = crate::extract::normalize(text);
        let r = structure(&norm, &split(&norm), &gz());
        assert_eq!(r.basics.name.as_deref(), Some("Priya Nair"));
        let w = jobs(&r);
        assert_eq!(w, [(Some("Zentrix Labs"), Some("SDE Intern"))]);
        let e = degrees(&r);
        assert_eq!(e, [(Some("B.Tech"), Some("National Institute of Technology"))]);
    }

    #[test]
    fn json_resume_even_theme() {
        let text = "Jane A. Cooper\nFullstack Developer\njane@example.com\nWork\nSoftware Engineer III\n<https://example.com> Example Inc. · Internal tools and services.\nMar 2016 – Present\nSan Francisco, CA\nWork included the build system.\n• Wrote a build system\n";
        let r = structure(text, &split(text), &gz());
        assert_eq!(r.basics.name.as_deref(), Some("Jane A. Cooper"));
        let w = jobs(&r);
        assert_eq!(w, [(Some("Example Inc."), Some("Software Engineer III"))]);
    }

    #[test]
    fn a_grade_line_with_a_date_is_a_detail() {
        let text = "Meena R\nmeena@example.in\n\nEDUCATION\nBachelor of Engineering - Computer Science (2021–2025)\nPSG College of Technology, Coimbatore\nCGPA: 8.7/10 | Completed: April 2025\n\nHigher Secondary (Class XII)\nKendriya Vidyalaya\nScore: 94% | Completed: 2021\n";
        let r = structure(text, &split(text), &gz());
        let got = degrees(&r);
        assert_eq!(
            got,
            [
                (Some("Bachelor of Engineering"), Some("PSG College of Technology")),
                (Some("Higher Secondary"), Some("Kendriya Vidyalaya"))
            ]
        );
    }

    #[test]
    fn one_qualification_per_line_and_a_title_before_a_colon() {
        let text = "Kai Moreno\nkai@example.com\n\nEducation\n\tPhD. Bioengineering, Stanford University (expected 2027)\n\tB.S. Computer Science, Western Governors University\n\tB.A. Media Studies, Ramapo College\n\nExperience\n\tHelixa Labs\n\t\tFounder & Lead Developer: Built a platform for sequencing analysis (2021-2022).\n";
        let r = structure(text, &split(text), &gz());
        let got = degrees(&r);
        assert_eq!(
            got,
            [
                (Some("PhD."), Some("Stanford University")),
                (Some("B.S."), Some("Western Governors University")),
                (Some("B.A."), Some("Ramapo College"))
            ]
        );
        let w = jobs(&r);
        assert_eq!(w, [(Some("Helixa Labs"), Some("Founder & Lead Developer"))]);
    }

    #[test]
    fn a_tech_stack_line_belongs_to_its_job() {
        let text = "Ravi Menon\nravi@example.in\n\nEXPERIENCE:\nSoftware Engineer Intern\tZentrix Tech - Pune\nTech Stack: Python, Bash, SQL\tAug 2023 - Jun 2024\n• Built the metadata pipeline\n";
        let r = structure(text, &split(text), &gz());
        let w: Vec<(Option<&str>, Option<&str>, Option<&str>)> =
            r.work.iter().map(|w| (w.name.as_deref(), w.position.as_deref(), w.start_date.as_deref())).collect();
        assert_eq!(w, [(Some("Zentrix Tech"), Some("Software Engineer Intern"), Some("2023-08"))]);
    }

    #[test]
    fn a_first_job_without_dates_is_kept() {
        let text = "Kai Moreno\nkai@example.com\n\nExperience\n\tOregon Health & Science University\n\t\tBioengineering PhD Candidate: Building analysis packages for synaptic data.\n\n\tHelixa Labs\n\t\tFounder & Lead Developer: Built a platform for sequencing analysis (2021-2022).\n";
        let r = structure(text, &split(text), &gz());
        let w: Vec<Option<&str>> = r.work.iter().map(|w| w.name.as_deref()).collect();
        assert_eq!(w, [Some("Oregon Health & Science University"), Some("Helixa Labs")]);
    }

    #[test]
    fn classic_europass_form() {
        let text = "Giulia Rossi\ngiulia.rossi@example.it\n\nWork experience\nDates\tMarch 2019 – present\nOccupation or position held\tData Engineer\nMain activities and\tStreaming pipelines in Scala\nresponsibilities\nName and address of employer\tLombardia Energia S.p.A., Milano\n\nDates\tJune 2016 – February 2019\nOccupation or position held\tBusiness Analyst\nName and address of employer\tBanca Adriatica, Bologna\n\nEducation and training\nDates\t2014 – 2016\nTitle of qualification awarded\tMaster of Science in Data Science\nName and type of organisation\tPolitecnico di Milano\nproviding education and\ntraining\n";
        let r = structure(text, &split(text), &gz());
        let w = jobs(&r);
        assert_eq!(
            w,
            [
                (Some("Lombardia Energia S.p.A."), Some("Data Engineer")),
                (Some("Banca Adriatica"), Some("Business Analyst"))
            ]
        );
        let e = degrees(&r);
        assert_eq!(e, [(Some("Master of Science"), Some("Politecnico di Milano"))]);
    }

    #[test]
    fn a_name_wrapped_after_a_joining_word() {
        let text = "Ana Lima\nana@example.com\n\nEducation\n2014–2017\tMaster of Science in Physics, University of\nSão Paulo, Brazil\n";
        let r = structure(text, &split(text), &gz());
        let e = degrees(&r);
        assert_eq!(e, [(Some("Master of Science"), Some("University of São Paulo"))]);
    }

    #[test]
    fn title_comma_employer_dash_place() {
        let text = "Jo Park\njo@example.com\n\nExperience\nSoftware Engineer, Apple – Cupertino, CA\tJune 2005 – Aug 2007\n• Built things\n";
        let r = structure(text, &split(text), &gz());
        let w = jobs(&r);
        assert_eq!(w, [(Some("Apple"), Some("Software Engineer"))]);
    }

    #[test]
    fn a_school_heading_its_degree_bullets() {
        let text = "Jo Park\njo@example.com\n\nEducation\nFirst State University, Springfield, USA\n■ Ph.D. in Geophysics\tDec 2009 – Jul 2014\n● Thesis: lasers\n■ M.S. in Geophysics\tAug 2006 – Aug 2008\n\nRiver College, Dover, USA\n■ B.S. in Geography\tMay 2002 – May 2005\n";
        let r = structure(text, &split(text), &gz());
        let e = degrees(&r);
        assert_eq!(
            e,
            [
                (Some("Ph.D."), Some("First State University")),
                (Some("M.S."), Some("First State University")),
                (Some("B.S."), Some("River College"))
            ]
        );
    }

    #[test]
    fn an_honours_degree_keeps_its_mark() {
        assert_eq!(split_degree("BSc (Hons) Economics"), ("BSc (Hons)".to_string(), Some("Economics".to_string())));
        assert_eq!(split_degree("BA (Hons)"), ("BA (Hons)".to_string(), None));
    }

    #[test]
    fn school_levels_and_affiliated_colleges() {
        let text = "Lakshmi Rao\nlakshmi@example.in\n\nEducation\n\u{2022} B.Tech (Civil), Vasavi College of Engineering, Osmania University 2016 with 81%\n\u{2022} 12th from, Narayana Junior College 2012 with 90%\n\u{2022} 10th from St. Ann's High School 2010\n";
        let r = structure(text, &split(text), &gz());
        let got = degrees(&r);
        assert_eq!(
            got,
            [
                (Some("B.Tech"), Some("Vasavi College of Engineering, Osmania University")),
                (Some("12th"), Some("Narayana Junior College")),
                (Some("10th"), Some("St. Ann's High School")),
            ]
        );
    }
}
