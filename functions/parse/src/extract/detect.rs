//! Format detection from the bytes. The declared content type and file name only break
//! ties between text flavours (Markdown vs plain text), never override the magic bytes.
//!
//! Written here rather than with `infer`: `infer` tells DOCX from other zips by scanning
//! for a file name in the first bytes, which misses DOCX files whose `[Content_Types].xml`
//! is not first; we open the zip's central directory instead, which we need anyway.

use super::Format;
use catalyst_shared::{Error, ErrorKind, Result};
use std::io::Cursor;

fn unsupported(what: &str) -> Error {
    Error::new(
        ErrorKind::UnsupportedMediaType,
        format!("{what} is not supported; send a PDF, DOCX, ODT, RTF, HTML, Markdown or plain-text resume"),
    )
    .with_code("unsupported_format")
}

pub fn detect(bytes: &[u8], declared_type: Option<&str>, name: Option<&str>) -> Result<Format> {
    // PDF allows junk before the header; readers look in the first 1024 bytes.
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        return Ok(Format::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return zip_kind(bytes);
    }
    if bytes.starts_with(b"{\\rtf") {
        return Ok(Format::Rtf);
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Err(unsupported("a legacy Word (.doc) file; save it as DOCX or PDF. It"));
    }
    const IMAGES: &[&[u8]] = &[b"\x89PNG", b"\xFF\xD8\xFF", b"GIF8", b"II*\0", b"MM\0*", b"RIFF"];
    if IMAGES.iter().any(|m| bytes.starts_with(m)) {
        return Err(unsupported("an image (a scan or photo) has no text layer and"));
    }
    // Text of some kind. NUL bytes outside UTF-16 mean binary data.
    let utf16 = bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]);
    if !utf16 && head.contains(&0) {
        return Err(unsupported("this binary file"));
    }
    let sniff = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).to_ascii_lowercase();
    let sniff_trim = sniff.trim_start_matches('\u{feff}').trim_start();
    if sniff_trim.starts_with("<!doctype html")
        || sniff_trim.starts_with("<html")
        || (sniff_trim.starts_with('<') && (sniff.contains("<body") || sniff.contains("<div") || sniff.contains("<p>")))
    {
        return Ok(Format::Html);
    }
    let declared = declared_type.map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if declared.as_deref() == Some("text/html") && sniff.contains('<') && sniff.contains('>') {
        return Ok(Format::Html);
    }
    let md_name = name.map(|n| {
        let n = n.to_ascii_lowercase();
        n.ends_with(".md") || n.ends_with(".markdown")
    });
    if matches!(declared.as_deref(), Some("text/markdown") | Some("text/x-markdown")) || md_name == Some(true) {
        return Ok(Format::Markdown);
    }
    if looks_like_markdown(&sniff) {
        return Ok(Format::Markdown);
    }
    Ok(Format::Text)
}

/// ATX headings or emphasis/link syntax on several lines: Markdown, not prose.
fn looks_like_markdown(s: &str) -> bool {
    let headings = s.lines().filter(|l| l.starts_with("# ") || l.starts_with("## ") || l.starts_with("### ")).count();
    let marks = s.matches("**").count() / 2 + s.matches("](").count();
    headings >= 2 || (headings >= 1 && marks >= 2)
}

fn zip_kind(bytes: &[u8]) -> Result<Format> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| super::corrupt(Format::Docx, e))?;
    if let Ok(mut f) = zip.by_name("mimetype") {
        let mut buf = Vec::new();
        use std::io::Read;
        let _ = (&mut f).take(128).read_to_end(&mut buf);
        let mime = String::from_utf8_lossy(&buf);
        return match mime.trim() {
            "application/vnd.oasis.opendocument.text" => Ok(Format::Odt),
            other => Err(unsupported(&format!("an OpenDocument file of type `{other}`"))),
        };
    }
    if zip.by_name("word/document.xml").is_ok() {
        return Ok(Format::Docx);
    }
    if zip.by_name("xl/workbook.xml").is_ok() || zip.by_name("ppt/presentation.xml").is_ok() {
        return Err(unsupported("a spreadsheet or presentation"));
    }
    Err(unsupported("this zip archive"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_win_over_declared_type() {
        assert_eq!(detect(b"%PDF-1.7\n...", Some("text/plain"), Some("cv.txt")).unwrap(), Format::Pdf);
        assert_eq!(detect(b"{\\rtf1\\ansi hi}", None, None).unwrap(), Format::Rtf);
        assert_eq!(
            detect(b"<!DOCTYPE html><html><body>x</body></html>", Some("text/plain"), None).unwrap(),
            Format::Html
        );
        assert_eq!(detect(b"Jane Doe\nEngineer", Some("text/html"), None).unwrap(), Format::Text);
        assert_eq!(detect(b"# Jane\n\n## Experience\n", None, None).unwrap(), Format::Markdown);
        assert_eq!(detect(b"Jane\nEngineer", Some("text/markdown"), None).unwrap(), Format::Markdown);
        assert_eq!(detect(b"Jane\nEngineer", None, Some("CV.MD")).unwrap(), Format::Markdown);
    }

    #[test]
    fn refuses_images_legacy_word_and_binaries() {
        for b in [&b"\x89PNG\r\n\x1a\n...."[..], b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1...", b"\x01\x02\0\0abc"] {
            let e = detect(b, None, None).unwrap_err();
            assert_eq!(e.code(), "unsupported_format");
            assert_eq!(e.status(), 415);
        }
        assert_eq!(detect(b"PK\x03\x04garbage", None, None).unwrap_err().code(), "corrupt_file");
    }
}
