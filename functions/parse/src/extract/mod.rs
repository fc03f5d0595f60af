//! From bytes to text: format detection and one extractor per format, all bounded by
//! [`Limits`] (size, pages, zip expansion, time) so hostile files fail fast and clearly.

use catalyst_shared::{Error, ErrorKind, Result};
use serde::Serialize;
use std::time::{Duration, Instant};

mod detect;
mod html;
mod office;
mod pdf;
mod rtf;
mod text;

pub use detect::detect;

/// The document formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Pdf,
    Docx,
    Odt,
    Rtf,
    Html,
    Markdown,
    Text,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Odt => "odt",
            Format::Rtf => "rtf",
            Format::Html => "html",
            Format::Markdown => "markdown",
            Format::Text => "text",
        }
    }
}

/// Something the caller should know about an otherwise successful parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Warning {
    /// Stable code, e.g. `no_text_layer`, `decoded_charset`, `text_truncated`.
    pub code: String,
    pub message: String,
}

impl Warning {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Warning { code: code.to_string(), message: message.into() }
    }
}

/// Bounds on the work one document may cause.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest input accepted (`PARSE_MAX_BYTES`, default 10 MiB).
    pub max_bytes: usize,
    /// Most PDF pages accepted (`PARSE_MAX_PAGES`, default 30): a resume is rarely over 5.
    pub max_pages: usize,
    /// Wall-clock budget per document (`PARSE_TIMEOUT_MS`, default 10 s).
    pub timeout: Duration,
    /// Zip containers (DOCX, ODT): most entries, total uncompressed bytes, and the
    /// largest uncompressed/compressed ratio of any entry.
    pub max_zip_entries: usize,
    pub max_unzipped_bytes: u64,
    pub max_zip_ratio: u64,
    /// Longest text kept; the rest is dropped with a `text_truncated` warning.
    pub max_text_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 10 * 1024 * 1024,
            max_pages: 30,
            timeout: Duration::from_secs(10),
            max_zip_entries: 1000,
            max_unzipped_bytes: 64 * 1024 * 1024,
            max_zip_ratio: 100,
            max_text_chars: 200_000,
        }
    }
}

impl Limits {
    /// Read overrides from the environment (through `lookup`); a bad value names its variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Limits> {
        let mut l = Limits::default();
        let num = |var: &str| -> Result<Option<u64>> {
            match lookup(var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v.parse::<u64>().ok().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                    Error::bad_request(format!("{var}: `{v}` is not a positive whole number"))
                        .with_code("invalid_config")
                }),
            }
        };
        if let Some(n) = num("PARSE_MAX_BYTES")? {
            l.max_bytes = n as usize;
        }
        if let Some(n) = num("PARSE_MAX_PAGES")? {
            l.max_pages = n as usize;
        }
        if let Some(n) = num("PARSE_TIMEOUT_MS")? {
            l.timeout = Duration::from_millis(n);
        }
        Ok(l)
    }
}

/// A point in time after which extraction gives up. Extractors check it in their loops,
/// so a pathological document stops its own thread instead of only its caller waiting.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(d: Duration) -> Self {
        Deadline(Instant::now() + d)
    }
    pub fn check(&self) -> Result<()> {
        if Instant::now() > self.0 { Err(timeout_error()) } else { Ok(()) }
    }
}

pub fn timeout_error() -> Error {
    // The same document would take as long next time: not retryable.
    Error::unprocessable("the document took too long to parse").with_code("parse_timeout")
}

/// Text extracted from a document, before any structuring.
#[derive(Debug, Clone)]
pub struct Extracted {
    pub format: Format,
    pub text: String,
    pub pages: Option<u32>,
    pub warnings: Vec<Warning>,
}

pub fn corrupt(format: Format, detail: impl std::fmt::Display) -> Error {
    Error::unprocessable(format!(
        "the {} file is damaged or not a valid {}: {detail}",
        format.as_str(),
        format.as_str()
    ))
    .with_code("corrupt_file")
}

/// Detect the format and extract the text. CPU-bound: call from a blocking thread.
pub fn extract(
    bytes: &[u8],
    declared_type: Option<&str>,
    name: Option<&str>,
    limits: &Limits,
    deadline: Deadline,
) -> Result<Extracted> {
    if bytes.len() > limits.max_bytes {
        return Err(too_large(bytes.len(), limits.max_bytes));
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::unprocessable("the file is empty").with_code("empty_file"));
    }
    let format = detect(bytes, declared_type, name)?;
    let mut warnings = Vec::new();
    let (raw, pages) = match format {
        Format::Pdf => {
            let (t, pages, w) = pdf::extract(bytes, limits, deadline)?;
            warnings.extend(w);
            (t, Some(pages))
        }
        Format::Docx => (office::extract_docx(bytes, limits, deadline)?, None),
        Format::Odt => (office::extract_odt(bytes, limits, deadline)?, None),
        Format::Rtf => (rtf::extract(bytes, deadline)?, None),
        Format::Html | Format::Markdown | Format::Text => {
            let (decoded, w) = text::decode(bytes);
            warnings.extend(w);
            let t = match format {
                Format::Html => html::extract(&decoded, deadline)?,
                Format::Markdown => text::markdown(&decoded, deadline)?,
                _ => decoded,
            };
            (t, None)
        }
    };
    let mut text = normalize(&raw);
    if text.chars().count() > limits.max_text_chars {
        let cut = text.char_indices().nth(limits.max_text_chars).map(|(i, _)| i).unwrap_or(text.len());
        text.truncate(cut);
        warnings.push(Warning::new(
            "text_truncated",
            format!("only the first {} characters were kept", limits.max_text_chars),
        ));
    }
    if text.trim().is_empty() {
        return Err(if format == Format::Pdf {
            no_text_layer()
        } else {
            Error::unprocessable("the document contains no text").with_code("no_text")
        });
    }
    Ok(Extracted { format, text, pages, warnings })
}

pub fn too_large(len: usize, max: usize) -> Error {
    Error::new(ErrorKind::PayloadTooLarge, format!("the file is {len} bytes; the limit is {max} bytes"))
        .with_code("file_too_large")
}

pub fn no_text_layer() -> Error {
    Error::unprocessable(
        "the PDF has no text layer (it looks scanned or made of images); export it from the original document or run OCR first",
    )
    .with_code("no_text_layer")
}

/// One text shape for every format: `\n` line ends, no control characters, typographic
/// ligatures split (PDF fonts use them), trailing spaces gone, at most one blank line.
pub fn normalize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut blank_run = 0usize;
    let mut pending_marker: Option<String> = None;
    for line in raw.split('\n') {
        let line = without_ascii_frame(line);
        let mut l = String::with_capacity(line.len());
        for c in line.chars() {
            match c {
                '\u{FB00}' => l.push_str("ff"),
                '\u{FB01}' => l.push_str("fi"),
                '\u{FB02}' => l.push_str("fl"),
                '\u{FB03}' => l.push_str("ffi"),
                '\u{FB04}' => l.push_str("ffl"),
                '\t' => l.push('\t'),
                '\u{00A0}' | '\u{2007}' | '\u{202F}' | '\u{2009}' | '\u{200A}' => l.push(' '),
                '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{FEFF}' => {}
                // Box-drawing frames and block letters (plain-text and terminal resumes):
                // decoration around the text, like a table's rulings.
                '\u{2500}'..='\u{259F}' => l.push(' '),
                // Emoji (pictographs, flags, their variation selectors and keycaps) label or
                // decorate; they carry nothing a resume's reader needs.
                '\u{1F000}'..='\u{1FAFF}' | '\u{FE0E}' | '\u{FE0F}' | '\u{20E3}' | '\u{E0020}'..='\u{E007F}' => {}
                // Private-use code points are symbol-font glyphs (list bullets from
                // Symbol/Wingdings in PDFs): a bullet at the start of a line, else nothing.
                '\u{E000}'..='\u{F8FF}' => {
                    if l.trim().is_empty() {
                        l.push('•');
                    }
                }
                c if c.is_control() => {}
                c => l.push(c),
            }
        }
        let collapsed = collapse_spaces(&l);
        // A list marker alone on its line (HTML themes that put the bullet in a box of its
        // own) marks the next line.
        if pending_marker.is_none() && matches!(collapsed.as_str(), "•" | "·" | "▪" | "■" | "●" | "◦" | "–" | "-" | "*")
        {
            pending_marker = Some(collapsed);
            continue;
        }
        let collapsed = match pending_marker.take() {
            Some(marker) if !collapsed.is_empty() => format!("{marker} {collapsed}"),
            Some(marker) => {
                out.push_str(&marker);
                out.push('\n');
                collapsed
            }
            None => collapsed,
        };
        if collapsed.is_empty() {
            blank_run += 1;
            if blank_run == 1 && !out.is_empty() {
                out.push('\n');
            }
            continue;
        }
        blank_run = 0;
        out.push_str(&collapsed);
        out.push('\n');
    }
    if let Some(marker) = pending_marker {
        out.push_str(&marker);
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

/// A plain-text resume drawn in an ASCII frame: "|Name: Vibhu Agarwal      |" is the text
/// between the bars, and "|-------------|" or "+=====+" a ruling with no text.
fn without_ascii_frame(line: &str) -> &str {
    let t = line.trim();
    if t.chars().count() >= 5 && t.chars().all(|c| matches!(c, '|' | '+' | '-' | '=' | '_' | '~' | ' ')) {
        return "";
    }
    match t.strip_prefix('|').and_then(|r| r.strip_suffix('|')) {
        // A Markdown table row keeps its inner bars; only the frame goes.
        Some(inner) if !inner.trim().is_empty() || t.len() > 2 => inner,
        _ => line,
    }
}

/// Runs of spaces, which PDF and HTML layouts produce, become one space. A run with a
/// tab in it, or of three spaces or more, becomes one tab: that is a column gap (a DOCX
/// tab stop between "Acme GmbH" and "Berlin", an aligned plain-text layout), and the
/// entry parser splits on it where a single space would glue the columns together.
fn collapse_spaces(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut run = String::new();
    let flush = |out: &mut String, run: &mut String| {
        if !run.is_empty() && !out.is_empty() {
            // After a list marker ("•\tPython", "1.\tRust") the gap is no column.
            let marker = out.chars().count() <= 3 && out.chars().last().is_some_and(|c| !c.is_alphanumeric());
            let gap = !marker && (run.contains('\t') || run.chars().count() >= 3);
            out.push(if gap { '\t' } else { ' ' });
        }
        run.clear();
    };
    for c in line.chars() {
        if c == ' ' || c == '\t' {
            run.push(c);
        } else {
            flush(&mut out, &mut run);
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_frames_are_decoration() {
        let t = normalize(
            "|------------------------|\n|Name: Vibhu Agarwal     |\n|                        |\n|Education:              |\n+========================+\n| Python | 3 years |",
        );
        assert_eq!(t, "Name: Vibhu Agarwal\n\nEducation:\n\nPython | 3 years");
    }

    #[test]
    fn a_bullet_alone_marks_the_next_line() {
        assert_eq!(
            normalize("Work\n•\nWrote a build system\n•\nCut deploys by 18%\n•"),
            "Work\n• Wrote a build system\n• Cut deploys by 18%\n•"
        );
    }

    #[test]
    fn frames_and_emoji_are_decoration() {
        let t = normalize(
            "╔══════╗\n║   ANDY REAGAN   ║\n╚══════╝\n\n🔸 Data Scientist, MassMutual\n📧 Email: a@b.io\nArgentinian 🇦🇷 living in the UK\nEXPERIENCE\n──────────\nx",
        );
        assert_eq!(
            t,
            "ANDY REAGAN\n\nData Scientist, MassMutual\nEmail: a@b.io\nArgentinian living in the UK\nEXPERIENCE\n\nx"
        );
    }

    #[test]
    fn normalize_collapses_space_and_blank_lines() {
        let t = normalize("  A\u{FB01}x  b \r\n\n\n\nC\u{00AD}D\n\n");
        assert_eq!(t, "Afix b\n\nCD");
        // Column gaps stay one tab: a tab stop, or three spaces or more.
        let t = normalize("Acme GmbH\tBerlin, Germany\nAcme  \t  Ltd   London \t\n\tLead\n•\tRust\n2.\tGo");
        assert_eq!(t, "Acme GmbH\tBerlin, Germany\nAcme\tLtd\tLondon\nLead\n• Rust\n2. Go");
    }

    #[test]
    fn limits_from_env_reject_nonsense() {
        let err = Limits::from_lookup(|k| (k == "PARSE_MAX_PAGES").then(|| "many".to_string())).unwrap_err();
        assert!(err.message().contains("PARSE_MAX_PAGES"));
        let l = Limits::from_lookup(|k| (k == "PARSE_MAX_BYTES").then(|| "1000".to_string())).unwrap();
        assert_eq!(l.max_bytes, 1000);
    }

    #[test]
    fn size_cap_and_empty_input() {
        let limits = Limits { max_bytes: 10, ..Limits::default() };
        let d = Deadline::after(Duration::from_secs(5));
        assert_eq!(extract(b"0123456789ab", None, None, &limits, d).unwrap_err().code(), "file_too_large");
        assert_eq!(extract(b"  \n ", None, None, &limits, d).unwrap_err().code(), "empty_file");
    }
}
