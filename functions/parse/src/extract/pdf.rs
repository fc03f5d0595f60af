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
