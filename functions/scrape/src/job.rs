//! schema.org `JobPosting`: from JSON-LD (including `@graph`, arrays and nesting), from
//! microdata, and, without structured data, from the page's headings and bullets.

use scraper::{ElementRef, Html, Selector};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::LazyLock;

use crate::text::{fragment_blocks, squash};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    /// Where the fields came from: `json_ld`, `microdata` or `heuristic`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Organization>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<bool>,
    /// schema.org values such as `FULL_TIME`, `CONTRACTOR`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub employment_type: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_posted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_through: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salary: Option<Salary>,
    /// The description as plain text, paragraphs separated by blank lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responsibilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub qualifications: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experience: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub education: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Organization {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// A one-line rendering, e.g. `Berlin, BE, DE`.
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Salary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// `HOUR`, `DAY`, `WEEK`, `MONTH` or `YEAR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("static selector")
}

static LD_JSON: LazyLock<Selector> = LazyLock::new(|| sel(r#"script[type="application/ld+json" i]"#));
static ITEMSCOPE: LazyLock<Selector> = LazyLock::new(|| sel("[itemscope][itemtype]"));

/// The page's job posting, if it has one.
pub fn extract(doc: &Html) -> Option<Job> {
    if let Some(v) = json_ld_posting(doc) {
        return Some(from_schema(&v, "json_ld"));
    }
    if let Some(v) = microdata_posting(doc) {
        return Some(from_schema(&v, "microdata"));
    }
    heuristic(doc)
}

// ---------- JSON-LD ----------

fn json_ld_posting(doc: &Html) -> Option<Value> {
    for script in doc.select(&LD_JSON) {
        let raw: String = script.text().collect();
        let Some(v) = parse_lenient(&raw) else { continue };
        if let Some(found) = find_posting(&v, 0) {
            return Some(found.clone());
        }
    }
    None
}

/// Real pages wrap JSON-LD in HTML comments or CDATA, and end it with stray semicolons.
fn parse_lenient(raw: &str) -> Option<Value> {
    let mut s = raw.trim();
    for (open, close) in [("<!--", "-->"), ("<![CDATA[", "]]>"), ("//<![CDATA[", "//]]>")] {
        if let Some(rest) = s.strip_prefix(open) {
            s = rest.trim();
            if let Some(rest) = s.strip_suffix(close) {
                s = rest.trim();
            }
        }
    }
    let s = s.trim_end_matches(';').trim();
    serde_json::from_str(s).ok().or_else(|| {
        // Raw control characters (newlines inside strings) and trailing commas are the
        // most common defects of hand-written JSON-LD.
        let cleaned: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        serde_json::from_str(&cleaned).ok().or_else(|| serde_json::from_str(&strip_trailing_commas(&cleaned)).ok())
    })
}

/// Remove commas directly before `}` or `]`, outside strings.
fn strip_trailing_commas(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let (mut in_str, mut escaped) = (false, false);
    for (i, &c) in chars.iter().enumerate() {
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_str = true;
        }
        if c == ',' && chars[i + 1..].iter().find(|n| !n.is_whitespace()).is_some_and(|n| *n == '}' || *n == ']') {
            continue;
        }
        out.push(c);
    }
    out
}

fn is_type(v: &Value, ty: &str) -> bool {
    let matches = |s: &str| s.rsplit(['/', ':']).next().is_some_and(|t| t.eq_ignore_ascii_case(ty));
    match v.get("@type") {
        Some(Value::String(s)) => matches(s),
        Some(Value::Array(a)) => a.iter().any(|t| t.as_str().is_some_and(matches)),
        _ => false,
    }
}

fn find_posting(v: &Value, depth: usize) -> Option<&Value> {
    if depth > 12 {
        return None;
    }
    match v {
        Value::Array(items) => items.iter().find_map(|i| find_posting(i, depth + 1)),
        Value::Object(map) => {
            if is_type(v, "JobPosting") {
                return Some(v);
            }
            map.values().find_map(|i| find_posting(i, depth + 1))
        }
        _ => None,
    }
}

// ---------- microdata ----------

fn microdata_posting(doc: &Html) -> Option<Value> {
    let root = doc.select(&ITEMSCOPE).find(|e| {
        e.value().attr("itemtype").is_some_and(|t| t.split_whitespace().any(|t| t.ends_with("/JobPosting")))
    })?;
    Some(microdata_item(root, 0))
}

/// A microdata item as JSON-LD-shaped JSON: `@type` plus its properties.
fn microdata_item(scope: ElementRef<'_>, depth: usize) -> Value {
    let mut map = Map::new();
    if let Some(t) = scope.value().attr("itemtype") {
        map.insert("@type".into(), Value::String(t.rsplit('/').next().unwrap_or(t).to_string()));
    }
    collect_props(scope, &mut map, depth);
    Value::Object(map)
}

fn collect_props(el: ElementRef<'_>, map: &mut Map<String, Value>, depth: usize) {
    for child in el.children().filter_map(ElementRef::wrap) {
        let v = child.value();
        if let Some(props) = v.attr("itemprop") {
            let value = if v.attr("itemscope").is_some() {
                if depth < 8 { microdata_item(child, depth + 1) } else { Value::Null }
            } else {
                Value::String(prop_value(child))
            };
            for p in props.split_whitespace() {
                match map.get_mut(p) {
                    Some(Value::Array(a)) => a.push(value.clone()),
                    Some(existing) => *existing = Value::Array(vec![existing.clone(), value.clone()]),
                    None => {
                        map.insert(p.to_string(), value.clone());
                    }
                }
            }
        }
        // A nested item's properties belong to it, not to us.
        if v.attr("itemscope").is_none() {
            collect_props(child, map, depth);
        }
    }
}

fn prop_value(el: ElementRef<'_>) -> String {
    let v = el.value();
    let attr = match v.name() {
        "meta" => v.attr("content"),
        "a" | "link" | "area" => v.attr("href"),
        "img" | "audio" | "video" | "source" => v.attr("src"),
        "time" => v.attr("datetime"),
        "data" | "meter" => v.attr("value"),
        _ => v.attr("content"),
    };
    match attr {
        Some(a) => a.trim().to_string(),
        // Keep inner HTML for rich properties (description, responsibilities) so their
        // structure survives into the list/paragraph split.
        None if el.children().any(|c| c.value().is_element()) => el.inner_html(),
        None => squash(&el.text().collect::<String>()),
    }
}

// ---------- mapping schema.org to Job ----------

fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(a) => a.iter().find_map(str_of),
        Value::Object(o) => o.get("name").or_else(|| o.get("@value")).and_then(str_of),
        _ => None,
    }
}

fn field<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| v.get(*k).filter(|x| !x.is_null()))
}

fn as_list(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => vec![other],
    }
}

/// Undo HTML escaping (often applied twice by job boards) and return HTML or text.
fn unescape(s: &str) -> String {
    let mut cur = s.to_string();
    for _ in 0..2 {
        if !cur.contains('&') {
            break;
        }
        let frag = Html::parse_fragment(&format!("<textarea>{cur}</textarea>"));
        // A textarea's content is raw text: the parser decodes entities but builds no tags.
        cur = frag.root_element().text().collect();
    }
    cur
}

/// A rich text value (HTML or plain) as paragraphs.
fn rich_blocks(s: &str) -> Vec<String> {
    let html = unescape(s);
    if html.contains('<') {
        fragment_blocks(&html)
    } else {
        html.split("\n\n").map(squash).filter(|b| !b.is_empty()).collect()
    }
}

/// A rich text value as list items: `<li>`s, lines, or bullet-separated parts.
fn items(v: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    for x in as_list(v) {
        match x {
            Value::Object(o) => {
                // EducationalOccupationalCredential / OccupationalExperienceRequirements.
                if let Some(s) =
                    ["credentialCategory", "description", "name"].iter().find_map(|k| o.get(*k).and_then(str_of))
                {
                    out.extend(split_items(&s));
                } else if let Some(m) = o.get("monthsOfExperience").and_then(num) {
                    out.push(format!("{m} months of experience"));
                }
            }
            other => {
                if let Some(s) = str_of(other) {
                    out.extend(split_items(&s));
                }
            }
        }
    }
    out
}

fn split_items(s: &str) -> Vec<String> {
    let html = unescape(s);
    let blocks = if html.contains('<') { fragment_blocks(&html) } else { html.lines().map(str::to_string).collect() };
    blocks
        .iter()
        .flat_map(|b| b.split('\n'))
        .map(|l| squash(l.trim_start_matches(['-', '*', '•', '·', '–']).trim()))
        .filter(|l| !l.is_empty())
        .collect()
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let cleaned: String = s.chars().filter(|c| c.is_ascii_digit() || *c == '.').collect();
            cleaned.parse().ok()
        }
        _ => None,
    }
}

fn organization(v: &Value) -> Option<Organization> {
    let first = as_list(Some(v)).into_iter().next()?;
    match first {
        Value::String(s) => {
            Some(Organization { name: squash(s), url: None, logo: None }).filter(|o| !o.name.is_empty())
        }
        Value::Object(_) => Some(Organization {
            name: field(first, &["name", "legalName"]).and_then(str_of)?,
            url: field(first, &["sameAs", "url"]).and_then(str_of),
            logo: field(first, &["logo"]).and_then(|l| match l {
                Value::Object(_) => field(l, &["url", "contentUrl"]).and_then(str_of),
                other => str_of(other),
            }),
        }),
        _ => None,
    }
}

fn location(v: &Value) -> Option<Location> {
    let addr = match v {
        Value::Object(_) if is_type(v, "Place") || v.get("address").is_some() => v.get("address").unwrap_or(v),
        other => other,
    };
    let mut loc = Location::default();
    match addr {
        Value::String(s) => loc.text = squash(&unescape(s)),
        Value::Object(_) => {
            let g = |k: &str| addr.get(k).and_then(str_of);
            loc.street = g("streetAddress");
            loc.locality = g("addressLocality");
            loc.region = g("addressRegion");
            loc.postal_code = g("postalCode");
            loc.country = g("addressCountry");
            let parts: Vec<&str> =
                [&loc.locality, &loc.region, &loc.country].iter().filter_map(|p| p.as_deref()).collect();
            loc.text = parts.join(", ");
            if loc.text.is_empty() {
                loc.text = v.get("name").and_then(str_of).unwrap_or_default();
            }
        }
        _ => return None,
    }
    (!loc.text.is_empty()).then_some(loc)
}

fn salary(v: &Value) -> Option<Salary> {
    let amount = as_list(Some(v)).into_iter().next()?;
    let mut s = Salary::default();
    let value = match amount {
        Value::Object(_) => {
            s.currency = amount.get("currency").and_then(str_of).map(|c| c.to_ascii_uppercase());
            amount.get("value").unwrap_or(amount)
        }
        other => other,
    };
    match value {
        Value::Object(_) => {
            s.min = value.get("minValue").and_then(num);
            s.max = value.get("maxValue").and_then(num);
            if let Some(exact) = value.get("value").and_then(num) {
                s.min = s.min.or(Some(exact));
                s.max = s.max.or(Some(exact));
            }
            s.unit = value.get("unitText").and_then(str_of).map(|u| u.to_ascii_uppercase());
            if s.currency.is_none() {
                s.currency = value.get("currency").and_then(str_of).map(|c| c.to_ascii_uppercase());
            }
        }
        other => {
            let n = num(other);
            s.min = n;
            s.max = n;
        }
    }
    if s.unit.is_none() {
        s.unit = amount.get("unitText").and_then(str_of).map(|u| u.to_ascii_uppercase());
    }
    (s.min.is_some() || s.max.is_some()).then_some(s)
}

fn from_schema(v: &Value, source: &str) -> Job {
    let mut job = Job { source: source.into(), ..Default::default() };
    job.title = field(v, &["title", "name"]).and_then(str_of).map(|t| squash(&unescape(&t)));
    job.organization = field(v, &["hiringOrganization"]).and_then(organization);
    job.locations = as_list(field(v, &["jobLocation"])).into_iter().filter_map(location).collect();
    let telecommute = as_list(field(v, &["jobLocationType"]))
        .into_iter()
        .filter_map(str_of)
        .any(|t| t.eq_ignore_ascii_case("TELECOMMUTE"));
    if telecommute {
        job.remote = Some(true);
    } else if !job.locations.is_empty() {
        job.remote = Some(false);
    }
    if telecommute && let Some(req) = field(v, &["applicantLocationRequirements"]) {
        for r in as_list(Some(req)) {
            if let Some(name) = str_of(r) {
                job.locations.push(Location {
                    country: Some(name.clone()),
                    text: format!("Remote ({name})"),
                    ..Default::default()
                });
            }
        }
    }
    job.employment_type = as_list(field(v, &["employmentType"]))
        .into_iter()
        .filter_map(str_of)
        .flat_map(|t| t.split(',').map(|p| p.trim().to_ascii_uppercase().replace([' ', '-'], "_")).collect::<Vec<_>>())
        .filter(|t| !t.is_empty())
        .fold(Vec::new(), |mut acc: Vec<String>, t| {
            if !acc.contains(&t) {
                acc.push(t);
            }
            acc
        });
    job.date_posted = field(v, &["datePosted"]).and_then(str_of);
    job.valid_through = field(v, &["validThrough"]).and_then(str_of);
    job.salary = field(v, &["baseSalary", "estimatedSalary"]).and_then(salary);
    let description = field(v, &["description"]).and_then(str_of).map(|d| rich_blocks(&d)).unwrap_or_default();
    job.responsibilities = items(field(v, &["responsibilities"]));
    job.qualifications = items(field(v, &["qualifications"]));
    job.skills = items(field(v, &["skills"]));
    job.experience = items(field(v, &["experienceRequirements"]));
    job.education = items(field(v, &["educationRequirements"]));
    // Most postings put everything into the description; take the bullets from there.
    if let Some(d) = field(v, &["description"]).and_then(str_of) {
        let html = unescape(&d);
        if html.contains('<') {
            let frag = Html::parse_fragment(&html);
            let sections = sections(&frag);
            merge(&mut job.responsibilities, sections.responsibilities);
            merge(&mut job.qualifications, sections.qualifications);
        }
    }
    if !description.is_empty() {
        job.description = Some(description.join("\n\n"));
    }
    job
}

/// Add the items of `more` that `into` lacks, keeping order.
fn merge(into: &mut Vec<String>, more: Vec<String>) {
    for m in more {
        if !into.contains(&m) {
            into.push(m);
        }
    }
}

// ---------- headings and bullets ----------

#[derive(Default)]
struct Sections {
    responsibilities: Vec<String>,
    qualifications: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Heading {
    Responsibilities,
    Qualifications,
    Other,
}

fn classify(heading: &str) -> Heading {
    let h = heading.to_lowercase();
    const RESP: &[&str] = &[
        "responsibilit",
        "what you'll do",
        "what you will do",
        "what you’ll do",
        "your role",
        "the role",
        "duties",
        "your mission",
        "day to day",
        "day-to-day",
        "in this role",
        "your impact",
        "you will",
    ];
    const QUAL: &[&str] = &[
        "qualification",
        "requirement",
        "what you bring",
        "what you'll bring",
        "what you’ll bring",
        "who you are",
        "must have",
        "nice to have",
        "skills",
        "about you",
        "you have",
        "we're looking for",
        "we are looking for",
        "experience",
        "profile",
    ];
    if RESP.iter().any(|k| h.contains(k)) {
        Heading::Responsibilities
    } else if QUAL.iter().any(|k| h.contains(k)) {
        Heading::Qualifications
    } else {
        Heading::Other
    }
}

static HEADINGS_AND_ITEMS: LazyLock<Selector> = LazyLock::new(|| sel("h1, h2, h3, h4, h5, h6, strong, b, p, li, dt"));

/// Bullets under their usual headings. A "heading" is an `h*`, a short bold line, or a
/// short paragraph ending in a colon; the list items after it belong to it until the
/// next heading.
fn sections(doc: &Html) -> Sections {
    let mut out = Sections::default();
    let mut current = Heading::Other;
    let mut items_here = 0;
    for el in doc.select(&HEADINGS_AND_ITEMS) {
        if in_chrome(el) {
            continue;
        }
        let name = el.value().name();
        let text = squash(&el.text().collect::<String>());
        if text.is_empty() {
            continue;
        }
        let heading_like = match name {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "dt" => true,
            "strong" | "b" => text.len() < 80 && !inside_li(el),
            "p" => text.len() < 80 && text.ends_with(':'),
            _ => false,
        };
        if heading_like {
            current = classify(&text);
            items_here = 0;
            continue;
        }
        // A paragraph after the bullets closes the section ("Send your resume to ...").
        if name == "p" && items_here > 0 && !inside_li(el) {
            current = Heading::Other;
            continue;
        }
        if name == "li" {
            items_here += 1;
            match current {
                Heading::Responsibilities => out.responsibilities.push(text),
                Heading::Qualifications => out.qualifications.push(text),
                Heading::Other => {}
            }
        }
    }
    out
}

/// Navigation, header, footer and sidebars hold link lists, never job bullets.
fn in_chrome(el: ElementRef<'_>) -> bool {
    el.ancestors()
        .filter_map(ElementRef::wrap)
        .any(|a| matches!(a.value().name(), "nav" | "footer" | "header" | "aside"))
}

fn inside_li(el: ElementRef<'_>) -> bool {
    el.ancestors().filter_map(ElementRef::wrap).any(|a| a.value().name() == "li")
}

static H1: LazyLock<Selector> = LazyLock::new(|| sel("h1"));
static OG_SITE: LazyLock<Selector> = LazyLock::new(|| sel(r#"meta[property="og:site_name"]"#));

/// Without structured data: the title, the organization from the site name, and the
/// bullets under responsibility and requirement headings. Only a page with such bullets
/// is taken for a job posting.
fn heuristic(doc: &Html) -> Option<Job> {
    let s = sections(doc);
    if s.responsibilities.is_empty() && s.qualifications.is_empty() {
        return None;
    }
    let title = doc.select(&H1).next().map(|h| squash(&h.text().collect::<String>())).filter(|t| !t.is_empty());
    let organization = doc
        .select(&OG_SITE)
        .next()
        .and_then(|m| m.value().attr("content"))
        .map(squash)
        .filter(|n| !n.is_empty())
        .map(|name| Organization { name, url: None, logo: None });
    Some(Job {
        source: "heuristic".into(),
        title,
        organization,
        responsibilities: s.responsibilities,
        qualifications: s.qualifications,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_json_ld() {
        assert!(parse_lenient("<!-- {\"@type\":\"JobPosting\"} -->").is_some());
        assert!(parse_lenient("{\"@type\":\"JobPosting\",\"title\":\"a\nb\"};").is_some());
        assert!(parse_lenient("not json").is_none());
        let v = parse_lenient(r#"{"@type":"JobPosting","title":"a, }","skills":["x",],}"#).unwrap();
        assert_eq!(v["title"], "a, }");
        assert_eq!(v["skills"], serde_json::json!(["x"]));
    }

    #[test]
    fn double_escaped_descriptions_become_text() {
        let blocks = rich_blocks(
            "&amp;lt;p&amp;gt;Build &amp;amp;amp; ship.&amp;lt;/p&amp;gt;&amp;lt;ul&amp;gt;&amp;lt;li&amp;gt;Rust&amp;lt;/li&amp;gt;&amp;lt;/ul&amp;gt;",
        );
        assert_eq!(blocks, vec!["Build & ship.", "Rust"]);
    }

    #[test]
    fn salary_shapes() {
        let s = salary(&serde_json::json!({"@type":"MonetaryAmount","currency":"eur","value":{"@type":"QuantitativeValue","minValue":"60,000","maxValue":80000,"unitText":"year"}})).unwrap();
        assert_eq!(
            (s.min, s.max, s.currency.as_deref(), s.unit.as_deref()),
            (Some(60000.0), Some(80000.0), Some("EUR"), Some("YEAR"))
        );
        let s = salary(&serde_json::json!({"currency":"USD","value":{"value":55,"unitText":"HOUR"}})).unwrap();
        assert_eq!((s.min, s.max), (Some(55.0), Some(55.0)));
        assert!(salary(&serde_json::json!({"currency":"USD"})).is_none());
    }
}
