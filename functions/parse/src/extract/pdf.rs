//! PDF text with `pdf_oxide`.
//!
//! Chosen over `pdf-extract` (and raw `lopdf`) after trying both on our development set:
//! on a two-column page whose content stream interleaves the columns line by line,
//! `pdf-extract` emits the columns mixed ("SKILLS EXPERIENCE / Python, Rust Senior
//! Engineer"), while `pdf_oxide` groups each column, as pdftotext does; it was as fast
//! (about 3 ms per page, release build) and is built to survive malformed files. It
//! still runs under `catch_unwind` so a bug in it is a 422 for that file, not a crash.

use super::{Deadline, Format, Limits, Warning, corrupt, no_text_layer};
use catalyst_shared::{Error, Result};

pub fn extract(bytes: &[u8], limits: &Limits, deadline: Deadline) -> Result<(String, u32, Vec<Warning>)> {
    let bytes = bytes.to_vec();
    let max_pages = limits.max_pages;
    let result = std::panic::catch_unwind(move || -> Result<(String, u32, Vec<Warning>)> {
        let doc = pdf_oxide::PdfDocument::from_bytes(bytes).map_err(|e| open_error(&e.to_string()))?;
        let pages = doc.page_count().map_err(|e| corrupt(Format::Pdf, e))?;
        if pages == 0 {
            return Err(corrupt(Format::Pdf, "it has no pages"));
        }
        if pages > max_pages {
            return Err(Error::unprocessable(format!(
                "the PDF has {pages} pages; at most {max_pages} are accepted for a resume"
            ))
            .with_code("too_many_pages"));
        }
        let mut text = String::new();
        let mut empty = Vec::new();
        for i in 0..pages {
            deadline.check()?;
            let page = doc.extract_text(i).map_err(|e| corrupt(Format::Pdf, format!("page {}: {e}", i + 1)))?;
            if page.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
                empty.push(i + 1);
            }
            // Spans give the geometry the plain text lost; a page whose spans fail to read
            // keeps its text as it is.
            let page = match doc.extract_spans(i) {
                Ok(spans) => mark_column_gaps(&page, &gaps_between_spans(&spans)),
                Err(_) => page,
            };
            text.push_str(&drop_echoed_fragments(&page));
            text.push('\n');
        }
        if empty.len() == pages {
            return Err(no_text_layer());
        }
        let mut warnings = Vec::new();
        if !empty.is_empty() {
            let list = empty.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
            warnings.push(Warning::new(
                "no_text_layer",
                format!("page(s) {list} have no text layer (scanned or images); their content is missing"),
            ));
        }
        Ok((text, pages as u32, warnings))
    });
    match result {
        Ok(r) => r,
        Err(_) => Err(corrupt(Format::Pdf, "the PDF reader failed on this file")),
    }
}

fn open_error(msg: &str) -> Error {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("encrypt") || lower.contains("password") {
        Error::unprocessable("the PDF is password-protected; remove the password and upload it again")
            .with_code("encrypted_pdf")
    } else {
        corrupt(Format::Pdf, msg)
    }
}

/// A wide horizontal gap inside one row of text: the end of the text before it and the start
/// of the text after it, each at most [`GAP_CONTEXT`] characters.
#[derive(Debug, PartialEq)]
struct ColumnGap {
    before: String,
    after: String,
}

const GAP_CONTEXT: usize = 16;

/// Gaps wider than two ems between neighbouring spans on one baseline: a right-aligned place
/// or date ("Schlumberger ⟶ Pune, India"), a tab stop, a table column. pdf_oxide's plain
/// text joins such spans with one space, which glues the place to the employer.
fn gaps_between_spans(spans: &[pdf_oxide::layout::TextSpan]) -> Vec<ColumnGap> {
    let mut rows: Vec<&pdf_oxide::layout::TextSpan> = spans.iter().filter(|s| !s.text.trim().is_empty()).collect();
    rows.sort_by(|a, b| b.bbox.y.total_cmp(&a.bbox.y).then(a.bbox.x.total_cmp(&b.bbox.x)));
    let mut gaps = Vec::new();
    for pair in rows.windows(2) {
        let (left, right) = (pair[0], pair[1]);
        let size = left.font_size.max(right.font_size).max(1.0);
        let same_row = (left.bbox.y - right.bbox.y).abs() < 0.3 * size;
        let gap = right.bbox.x - (left.bbox.x + left.bbox.width);
        if same_row && gap > 2.0 * size {
            let before = left.text.trim();
            let tail: String = before.chars().rev().take(GAP_CONTEXT).collect::<Vec<_>>().into_iter().rev().collect();
            let head: String = right.text.trim().chars().take(GAP_CONTEXT).collect();
            gaps.push(ColumnGap { before: tail, after: head });
        }
    }
    gaps
}

/// Turns the spaces at each gap into a tab, which the normaliser keeps as a column break.
/// A gap is found in the text by the words either side of it on one line.
fn mark_column_gaps(page: &str, gaps: &[ColumnGap]) -> String {
    if gaps.is_empty() {
        return page.to_string();
    }
    let mut out = String::with_capacity(page.len());
    for line in page.split_inclusive('\n') {
        let mut line = line.to_string();
        for gap in gaps {
            let mut from = 0;
            while let Some(found) = line[from..].find(&gap.before) {
                let end = from + found + gap.before.len();
                let rest = &line[end..];
                let spaces = rest.len() - rest.trim_start_matches(' ').len();
                if spaces > 0 && rest[spaces..].starts_with(&gap.after) {
                    line.replace_range(end..end + spaces, "\t");
                    break;
                }
                from = end;
            }
        }
        out.push_str(&line);
    }
    out
}

/// pdf_oxide sometimes emits the tail of a mixed-font line a second time on its own
/// line ("Indeed — Austin, TX" then "— Austin, TX"). A line that starts with a
/// separator and repeats the end of the line before it is such an echo.
fn drop_echoed_fragments(page: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for line in page.lines() {
        let t = line.trim();
        let prev = out.iter().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim());
        let echo = t.starts_with(['—', '–', ',', '|', '·'])
            && t.chars().count() >= 3
            && prev.is_some_and(|p| p.len() > t.len() && p.ends_with(t));
        if !echo {
            out.push(line);
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::{ColumnGap, mark_column_gaps};

    fn gap(before: &str, after: &str) -> ColumnGap {
        ColumnGap { before: before.into(), after: after.into() }
    }

    #[test]
    fn a_wide_gap_becomes_a_tab() {
        let page = "Experience\nNordlicht Systems Hamburg, Germany\nSENIOR ENGINEER Jan 2019 - Present\nNordlicht Systems grew\n";
        let gaps = [gap("Nordlicht Systems", "Hamburg, Germany"), gap("ENGINEER", "Jan 2019")];
        assert_eq!(
            mark_column_gaps(page, &gaps),
            "Experience\nNordlicht Systems\tHamburg, Germany\nSENIOR ENGINEER\tJan 2019 - Present\nNordlicht Systems grew\n"
        );
    }

    #[test]
    fn text_without_the_gap_is_unchanged() {
        let page = "Skills: Rust, Go\nRust Go\n";
        assert_eq!(mark_column_gaps(page, &[gap("Rust", "Python")]), page);
        assert_eq!(mark_column_gaps(page, &[]), page);
    }

    #[test]
    fn echoed_fragments_are_dropped() {
        let t = super::drop_echoed_fragments("Indeed — Austin, TX\n\n — Austin, TX\nEngineer\n— Remote");
        assert_eq!(t, "Indeed — Austin, TX\n\nEngineer\n— Remote");
    }

    #[test]
    fn a_panic_inside_the_pdf_reader_is_a_corrupt_file_error() {
        // Found by `infra/fuzz.sh`: pdf_oxide 0.3.78 slices a string inside a multi-byte
        // character (document.rs:25363) on this 573-byte file.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/pdf");
        let crash = std::fs::read(dir.join("crash-6d4695888efc3062b8b98f6f6590a912c5d25f17")).unwrap();
        let limits = super::Limits::default();
        let err = super::extract(&crash, &limits, super::Deadline::after(limits.timeout)).unwrap_err();
        assert_eq!(err.code(), "corrupt_file", "{err}");
    }
}
