//! Dates as resumes write them, in several languages, normalised to ISO `YYYY-MM` or
//! `YYYY`; "Present" and its translations are an open end.

use regex::Regex;
use std::sync::LazyLock;

/// Month names and abbreviations: English, German, French, Spanish, Portuguese, Dutch, Italian.
const MONTHS: &[(&str, u8)] = &[
    ("january", 1),
    ("jan", 1),
    ("januar", 1),
    ("jänner", 1),
    ("janvier", 1),
    ("janv", 1),
    ("enero", 1),
    ("ene", 1),
    ("janeiro", 1),
    ("januari", 1),
    ("gennaio", 1),
    ("gen", 1),
    ("february", 2),
    ("feb", 2),
    ("februar", 2),
    ("février", 2),
    ("fevrier", 2),
    ("févr", 2),
    ("fevr", 2),
    ("fév", 2),
    ("febrero", 2),
    ("fevereiro", 2),
    ("fev", 2),
    ("februari", 2),
    ("febbraio", 2),
    ("march", 3),
    ("mar", 3),
    ("märz", 3),
    ("maerz", 3),
    ("mär", 3),
    ("mars", 3),
    ("marzo", 3),
    ("março", 3),
    ("marco", 3),
    ("maart", 3),
    ("mrt", 3),
    ("april", 4),
    ("apr", 4),
    ("avril", 4),
    ("avr", 4),
    ("abril", 4),
    ("abr", 4),
    ("aprile", 4),
    ("may", 5),
    ("mai", 5),
    ("mayo", 5),
    ("may", 5),
    ("maio", 5),
    ("mei", 5),
    ("maggio", 5),
    ("mag", 5),
    ("june", 6),
    ("jun", 6),
    ("juni", 6),
    ("juin", 6),
    ("junio", 6),
    ("junho", 6),
    ("giugno", 6),
    ("giu", 6),
    ("july", 7),
    ("jul", 7),
    ("juli", 7),
    ("juillet", 7),
    ("juil", 7),
    ("julio", 7),
    ("julho", 7),
    ("luglio", 7),
    ("lug", 7),
    ("august", 8),
    ("aug", 8),
    ("août", 8),
    ("aout", 8),
    ("agosto", 8),
    ("ago", 8),
    ("augustus", 8),
    ("september", 9),
    ("sept", 9),
    ("sep", 9),
    ("septembre", 9),
    ("septiembre", 9),
    ("setembro", 9),
    ("set", 9),
    ("settembre", 9),
    ("october", 10),
    ("oct", 10),
    ("oktober", 10),
    ("okt", 10),
    ("octobre", 10),
    ("octubre", 10),
    ("outubro", 10),
    ("out", 10),
    ("ottobre", 10),
    ("ott", 10),
    ("november", 11),
    ("nov", 11),
    ("novembre", 11),
    ("noviembre", 11),
    ("novembro", 11),
    ("december", 12),
    ("dec", 12),
    ("dezember", 12),
    ("dez", 12),
    ("décembre", 12),
    ("decembre", 12),
    ("déc", 12),
    ("diciembre", 12),
    ("dic", 12),
    ("dezembro", 12),
    ("dicembre", 12),
];

/// Words for "until now".
const PRESENT: &[&str] = &[
    "present",
    "till date",
    "till now",
    "until now",
    "until today",
    "current",
    "currently",
    "now",
    "today",
    "ongoing",
    "date",
    "heute",
    "aktuell",
    "derzeit",
    "jetzt",
    "laufend",
    "aujourd'hui",
    "aujourd’hui",
    "présent",
    "actuel",
    "actuellement",
    "en cours",
    "actualidad",
    "presente",
    "actual",
    "hoy",
    "la fecha",
    "atual",
    "atualmente",
    "o momento",
    "hoje",
    "heden",
    "nu",
    "huidig",
    "oggi",
    "in corso",
    "attuale",
];

/// Whether `word` (lowercase) says "until now" on its own: "Current", "heute".
pub fn is_present_word(word: &str) -> bool {
    PRESENT.contains(&word)
}

fn month_alt() -> String {
    let mut names: Vec<&str> = MONTHS.iter().map(|(n, _)| *n).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.chars().count()));
    names.dedup();
    names.join("|")
}

fn present_alt() -> String {
    let mut p: Vec<String> = PRESENT.iter().map(|w| regex::escape(w)).collect();
    p.sort_by_key(|n| std::cmp::Reverse(n.len()));
    p.join("|")
}

/// One date: "04/2020", "2020-04", "04.2020", "Apr 2020", "avril 2020", "enero de 2020",
/// "jan/2020", "2020".
static DATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r"(?:(?:{m})\.?(?:\s+de|\s*/|\s*-|\s*\.)?\s*(?:19|20)\d\d|(?:{m})\.?\s*['’]\d\d\b|(?:0?[1-9]|1[0-2])\s*[/.\-]\s*(?:19|20)\d\d|(?:19|20)\d\d(?:\s*[/\-]\s*|\.)(?:0[1-9]|1[0-2])\b|(?:(?:spring|summer|fall|autumn|winter)\s+)?(?:19|20)\d\d)",
        m = month_alt()
    )
});

static RANGE: LazyLock<Regex> = LazyLock::new(|| {
    let d = &*DATE;
    let p = present_alt();
    Regex::new(&format!(
        r"(?i)(?:\b(?:since|seit|depuis|desde|sinds|dal|from|von|de|van)\s+)?\b(?P<start>{d})(?:\s*(?:-{{1,3}}|–|—|‒|to|bis|à|au|a|al|hasta|até|ate|tot|t/m|→|>)\s*(?:(?:bis\s+)?(?P<end>{d})|(?P<present>{p})\b))?"
    ))
    .expect("date regex")
});

static SINCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(?:since|seit|depuis|desde|sinds|dal)\s*$").expect("since regex"));

/// A date range found in a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRange {
    pub start: Option<String>,
    /// `None` with `open` = until now; `None` without = a single date (e.g. a graduation).
    pub end: Option<String>,
    pub open: bool,
    /// Byte span of the whole match in the line.
    pub span: (usize, usize),
}

impl DateRange {
    /// The start, and the end unless the range is open: JSON Resume's `startDate`/`endDate`.
    pub fn start_end(&self) -> (Option<String>, Option<String>) {
        (self.start.clone(), if self.open { None } else { self.end.clone() })
    }
}

/// Normalise one date match to `YYYY-MM` or `YYYY`.
pub fn normalize(s: &str) -> Option<String> {
    static YEAR: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?:19|20)\d\d").expect("year"));
    static NUM_MONTH: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:(?P<m1>0?[1-9]|1[0-2])\s*[/.\-]\s*(?P<y1>(?:19|20)\d\d)|(?P<y2>(?:19|20)\d\d)(?:\s*[/\-]\s*|\.)(?P<m2>0[1-9]|1[0-2]))$")
            .expect("numeric month")
    });
    let t = s.trim();
    if let Some(c) = NUM_MONTH.captures(t) {
        let (m, y) = match (c.name("m1"), c.name("y1"), c.name("y2"), c.name("m2")) {
            (Some(m), Some(y), _, _) | (_, _, Some(y), Some(m)) => (m.as_str(), y.as_str()),
            _ => return None,
        };
        return Some(format!("{}-{:02}", y, m.parse::<u8>().ok()?));
    }
    // "Jan '19": a year written with two digits after an apostrophe; resumes span this
    // century and the end of the last.
    static SHORT_YEAR: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"['’](\d\d)\b").expect("short year"));
    let year = match YEAR.find(t) {
        Some(y) => y.as_str().to_string(),
        None => {
            let yy: u32 = SHORT_YEAR.captures(t)?.get(1)?.as_str().parse().ok()?;
            (if yy <= 40 { 2000 + yy } else { 1900 + yy }).to_string()
        }
    };
    let lower = t.to_lowercase();
    let word: String = lower.chars().take_while(|c| c.is_alphabetic()).collect();
    if !word.is_empty()
        && let Some((_, m)) = MONTHS.iter().find(|(n, _)| *n == word)
    {
        return Some(format!("{year}-{m:02}"));
    }
    Some(year)
}

/// The first date range in `line`, if any.
pub fn find_range(line: &str) -> Option<DateRange> {
    for c in RANGE.captures_iter(line) {
        let whole = c.get(0)?;
        let start_m = c.name("start")?;
        // A bare 4-digit number inside a longer number (a phone, a postcode) is no date.
        let before = line[..start_m.start()].chars().next_back();
        let after = line[whole.end()..].chars().next();
        if before.is_some_and(|ch| ch.is_ascii_digit()) || after.is_some_and(|ch| ch.is_ascii_digit()) {
            continue;
        }
        let start = normalize(start_m.as_str());
        let end = c.name("end").and_then(|e| normalize(e.as_str()));
        let mut open = c.name("present").is_some();
        if !open
            && end.is_none()
            && (SINCE.is_match(&line[..start_m.start()]) || whole.as_str().to_lowercase().starts_with(['s', 'd']))
        {
            // "since 2020" / "seit 2020" / "depuis 2020"
            let prefix = whole.as_str().to_lowercase();
            open = ["since", "seit", "depuis", "desde", "sinds", "dal"].iter().any(|w| prefix.starts_with(w));
        }
        return Some(DateRange { start, end, open, span: (whole.start(), whole.end()) });
    }
    None
}

/// True when the line holds a date range with both ends (or an open end): the mark of
/// a job or study entry, as opposed to a single year in prose.
pub fn is_range(r: &DateRange) -> bool {
    r.end.is_some() || r.open
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(line: &str) -> (Option<String>, Option<String>, bool) {
        let d = find_range(line).unwrap_or_else(|| panic!("no date in {line:?}"));
        (d.start, d.end, d.open)
    }

    #[test]
    fn formats_and_languages() {
        let s = |x: &str| Some(x.to_string());
        assert_eq!(r("04/2020 – heute"), (s("2020-04"), None, true));
        assert_eq!(r("Jan '19 - Mar '21"), (s("2019-01"), s("2021-03"), false));
        assert_eq!(r("Fall 2019 – Spring 2021"), (s("2019"), s("2021"), false));
        assert_eq!(r("2019.01 - 2021.03"), (s("2019-01"), s("2021-03"), false));
        // Markdown and LaTeX write the en dash as two hyphens.
        assert_eq!(r("Dec 2013 -- Dec 2014"), (s("2013-12"), s("2014-12"), false));
        assert_eq!(r("Jan 2019 - Present"), (s("2019-01"), None, true));
        assert_eq!(r("March 2016 to Dec. 2018"), (s("2016-03"), s("2018-12"), false));
        assert_eq!(r("janv. 2018 - aujourd'hui"), (s("2018-01"), None, true));
        assert_eq!(r("septembre 2014 – juin 2017"), (s("2014-09"), s("2017-06"), false));
        assert_eq!(r("enero de 2020 - actualidad"), (s("2020-01"), None, true));
        assert_eq!(r("mar/2019 – atual"), (s("2019-03"), None, true));
        assert_eq!(r("2015 – 2019"), (s("2015"), s("2019"), false));
        assert_eq!(r("2019-03 to 2021-11"), (s("2019-03"), s("2021-11"), false));
        assert_eq!(r("sinds 2021"), (s("2021"), None, true));
        assert_eq!(r("seit 03.2022"), (s("2022-03"), None, true));
        assert_eq!(r("Okt. 2015 bis Sept. 2017"), (s("2015-10"), s("2017-09"), false));
        assert_eq!(r("september 2020 - heden"), (s("2020-09"), None, true));
        assert_eq!(r("Graduated 2012"), (s("2012"), None, false));
    }

    #[test]
    fn numbers_that_are_not_dates() {
        assert!(find_range("+49 151 2345 6789").is_none());
        assert!(find_range("20095 Hamburg").is_none());
    }
}
