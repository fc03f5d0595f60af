//! DOCX (Office Open XML) and ODT (OpenDocument) text: both are zips of XML.
//!
//! Zip-bomb limits: entry count, declared and actual uncompressed size, and the
//! expansion ratio of each entry we read; a lying header cannot get past the actual-size
//! check because reads are capped. XML is read with `quick-xml`, which never fetches or
//! expands external entities or DTDs: entity references other than the five XML
//! built-ins and character references are dropped.

use super::{Deadline, Format, Limits, corrupt};
use catalyst_shared::{Error, Result};
use quick_xml::Reader;
use quick_xml::events::Event;
use std::io::{Cursor, Read};

fn bomb(msg: String) -> Error {
    Error::unprocessable(msg).with_code("zip_bomb")
}

struct Container<'a> {
    zip: zip::ZipArchive<Cursor<&'a [u8]>>,
    format: Format,
    budget: u64,
    max_ratio: u64,
}

impl<'a> Container<'a> {
    fn open(bytes: &'a [u8], format: Format, limits: &Limits) -> Result<Self> {
        let zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| corrupt(format, e))?;
        if zip.len() > limits.max_zip_entries {
            return Err(bomb(format!(
                "the archive has {} entries; the limit is {}",
                zip.len(),
                limits.max_zip_entries
            )));
        }
        let declared: u64 = zip.decompressed_size().map(|n| n as u64).unwrap_or(0);
        if declared > limits.max_unzipped_bytes {
            return Err(bomb(format!(
                "the archive expands to {declared} bytes; the limit is {}",
                limits.max_unzipped_bytes
            )));
        }
        Ok(Container { zip, format, budget: limits.max_unzipped_bytes, max_ratio: limits.max_zip_ratio })
    }

    fn names(&self) -> Vec<String> {
        self.zip.file_names().map(str::to_string).collect()
    }

    /// Read one entry, or `None` if absent, within the remaining size budget and ratio.
    fn read(&mut self, name: &str) -> Result<Option<String>> {
        let format = self.format;
        let mut f = match self.zip.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(corrupt(format, e)),
        };
        let compressed = f.compressed_size().max(1);
        // Small entries compress extremely well legitimately; the ratio matters for big ones.
        let cap = self.budget.min((compressed * self.max_ratio).max(1024 * 1024));
        let mut buf = Vec::new();
        (&mut f).take(cap + 1).read_to_end(&mut buf).map_err(|e| corrupt(format, e))?;
        if buf.len() as u64 > cap {
            return Err(bomb(format!(
                "`{name}` expands beyond {cap} bytes ({compressed} compressed); the archive looks like a zip bomb"
            )));
        }
        self.budget -= buf.len() as u64;
        String::from_utf8(buf).map(Some).map_err(|_| corrupt(format, format!("`{name}` is not UTF-8 XML")))
    }
}

/// Which elements mean what, for one XML vocabulary.
struct Vocab {
    /// Elements whose text content is document text.
    text: &'static [&'static str],
    /// End of these: a line break.
    block_end: &'static [&'static str],
    /// Empty elements that stand for a tab / a line break.
    tab: &'static [&'static str],
    line: &'static [&'static str],
    /// Subtrees to skip entirely.
    skip: &'static [&'static str],
    /// Start of these marks a list paragraph.
    list_marker: &'static [&'static str],
    /// An element that stands for N spaces (ODF `text:s c="N"`).
    spaces: Option<&'static str>,
}

const DOCX: Vocab = Vocab {
    text: &["t"],
    block_end: &["p", "tc", "tr"],
    tab: &["tab", "ptab"],
    line: &["br", "cr"],
    // mc:Fallback repeats the text of mc:Choice (text boxes); delText is deleted text.
    skip: &["Fallback", "delText", "instrText", "del", "comments", "footnoteReference"],
    list_marker: &["numPr"],
    spaces: None,
};

const ODT: Vocab = Vocab {
    text: &["p", "h", "span", "a", "list-item"],
    block_end: &["p", "h", "table-cell"],
    tab: &["tab"],
    line: &["line-break"],
    skip: &["annotation", "tracked-changes", "note", "notes-configuration", "bookmark-ref"],
    list_marker: &[],
    spaces: Some("s"),
};

fn xml_text(xml: &str, vocab: &Vocab, deadline: Deadline, format: Format, out: &mut String) -> Result<()> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = false;
    let mut skip_depth = 0usize;
    let mut text_depth = 0usize;
    let mut list_depth = 0usize; // ODF: inside text:list-item, paragraphs are bullets
    let mut n = 0usize;
    loop {
        n += 1;
        if n.is_multiple_of(4096) {
            deadline.check()?;
        }
        let ev = reader.read_event().map_err(|e| corrupt(format, e))?;
        match ev {
            Event::Start(e) => {
                let local = e.local_name();
                let name: &str = local.as_ref();
                if skip_depth > 0 || vocab.skip.contains(&name) {
                    skip_depth += 1;
                    continue;
                }
                if vocab.text.contains(&name) {
                    text_depth += 1;
                }
                if vocab.list_marker.contains(&name) {
                    ensure_line(out);
                    out.push_str("• ");
                }
                if format == Format::Odt && name == "list-item" {
                    list_depth += 1;
                }
                if format == Format::Odt && (name == "p" || name == "h") && list_depth > 0 {
                    ensure_line(out);
                    out.push_str("• ");
                }
            }
            Event::Empty(e) => {
                if skip_depth > 0 {
                    continue;
                }
                let local = e.local_name();
                let name: &str = local.as_ref();
                if vocab.tab.contains(&name) {
                    out.push('\t');
                } else if vocab.line.contains(&name) {
                    out.push('\n');
                } else if vocab.list_marker.contains(&name) {
                    ensure_line(out);
                    out.push_str("• ");
                } else if vocab.block_end.contains(&name) {
                    out.push('\n');
                } else if Some(name) == vocab.spaces {
                    let count = e
                        .attributes()
                        .flatten()
                        .find(|a| AsRef::<str>::as_ref(&a.key.local_name()) == "c")
                        .and_then(|a| a.value.trim().parse::<usize>().ok())
                        .unwrap_or(1)
                        .min(64);
                    out.extend(std::iter::repeat_n(' ', count));
                }
            }
            Event::End(e) => {
                let local = e.local_name();
                let name: &str = local.as_ref();
                if skip_depth > 0 {
                    skip_depth -= 1;
                    continue;
                }
                if vocab.text.contains(&name) {
                    text_depth = text_depth.saturating_sub(1);
                }
                if format == Format::Odt && name == "list-item" {
                    list_depth = list_depth.saturating_sub(1);
                }
                if vocab.block_end.contains(&name) {
                    // An empty paragraph is spacing the author meant (it separates
                    // entries); cell and row ends only end the line.
                    if matches!(name, "p" | "h") {
                        out.push('\n');
                    } else {
                        ensure_line(out);
                    }
                }
            }
            Event::Text(t) if skip_depth == 0 && text_depth > 0 => out.push_str(&t.xml10_content()),
            Event::CData(t) if skip_depth == 0 && text_depth > 0 => out.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if skip_depth == 0 && text_depth > 0 => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.push(c);
                } else {
                    match AsRef::<str>::as_ref(&r) {
                        "amp" => out.push('&'),
                        "lt" => out.push('<'),
                        "gt" => out.push('>'),
                        "quot" => out.push('"'),
                        "apos" => out.push('\''),
                        _ => {} // never expanded: no external or custom entities
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    ensure_line(out);
    Ok(())
}

fn ensure_line(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

/// Word order: page headers (names and contact details often live there), the body,
/// then footers.
pub fn extract_docx(bytes: &[u8], limits: &Limits, deadline: Deadline) -> Result<String> {
    let mut c = Container::open(bytes, Format::Docx, limits)?;
    let names = c.names();
    let parts = |prefix: &str| {
        let mut v: Vec<String> =
            names.iter().filter(|n| n.starts_with(prefix) && n.ends_with(".xml")).cloned().collect();
        v.sort();
        v
    };
    let headers = parts("word/header");
    let footers = parts("word/footer");
    let mut out = String::new();
    let mut seen_header = std::collections::HashSet::new();
    for h in &headers {
        if let Some(xml) = c.read(h)? {
            let mut t = String::new();
            xml_text(&xml, &DOCX, deadline, Format::Docx, &mut t)?;
            // First-page and default headers often repeat each other.
            if !t.trim().is_empty() && seen_header.insert(t.clone()) {
                out.push_str(&t);
            }
        }
    }
    let body = c.read("word/document.xml")?.ok_or_else(|| corrupt(Format::Docx, "word/document.xml is missing"))?;
    xml_text(&body, &DOCX, deadline, Format::Docx, &mut out)?;
    for f in &footers {
        if let Some(xml) = c.read(f)? {
            let mut t = String::new();
            xml_text(&xml, &DOCX, deadline, Format::Docx, &mut t)?;
            if !t.trim().is_empty() && seen_header.insert(t.clone()) {
                out.push_str(&t);
            }
        }
    }
    Ok(out)
}

/// ODT: headers and footers are in the master pages of `styles.xml`.
pub fn extract_odt(bytes: &[u8], limits: &Limits, deadline: Deadline) -> Result<String> {
    let mut c = Container::open(bytes, Format::Odt, limits)?;
    let content = c.read("content.xml")?.ok_or_else(|| corrupt(Format::Odt, "content.xml is missing"))?;
    let mut out = String::new();
    if let Some(styles) = c.read("styles.xml")? {
        // Only the master pages' header/footer text, not style names.
        for tag in ["<style:header>", "<style:header "] {
            for (i, _) in styles.match_indices(tag) {
                if let Some(end) = styles[i..].find("</style:header>") {
                    let fragment = &styles[i..i + end + "</style:header>".len()];
                    xml_text(fragment, &ODT, deadline, Format::Odt, &mut out)?;
                }
            }
        }
    }
    let mut body = String::new();
    xml_text(&content, &ODT, deadline, Format::Odt, &mut body)?;
    out.push_str(&body);
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    pub fn make_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            for (name, data) in entries {
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
            w.finish().unwrap();
        }
        buf.into_inner()
    }

    fn d() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    const DOC: &str = r#"<?xml version="1.0"?><!DOCTYPE w [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<w:document xmlns:w="w" xmlns:mc="mc"><w:body>
<w:p><w:r><w:t>Jane &amp; Doe&xxe;</w:t></w:r></w:p>
<w:p><w:pPr><w:numPr/></w:pPr><w:r><w:t>Rust</w:t><w:tab/><w:t>Go</w:t></w:r></w:p>
<w:p><w:r><mc:AlternateContent><mc:Choice><w:t>Box</w:t></mc:Choice><mc:Fallback><w:t>Box</w:t></mc:Fallback></mc:AlternateContent></w:r></w:p>
<w:tbl><w:tr><w:tc><w:p><w:r><w:t>2019</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Acme</w:t></w:r><w:del><w:r><w:delText>old</w:delText></w:r></w:del></w:p></w:tc></w:tr></w:tbl>
</w:body></w:document>"#;

    #[test]
    fn docx_text_without_entities_or_duplicates() {
        let z = make_zip(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", DOC.as_bytes()),
            ("word/header1.xml", b"<w:hdr xmlns:w='w'><w:p><w:r><w:t>jane@doe.dev</w:t></w:r></w:p></w:hdr>"),
        ]);
        let t = super::super::normalize(&extract_docx(&z, &Limits::default(), d()).unwrap());
        assert_eq!(t, "jane@doe.dev\nJane & Doe\n• Rust\tGo\nBox\n2019\nAcme");
    }

    #[test]
    fn zip_bombs_are_refused() {
        let big = vec![b'a'; 8 * 1024 * 1024];
        let z = make_zip(&[("word/document.xml", &big)]);
        let limits = Limits { max_unzipped_bytes: 4 * 1024 * 1024, ..Limits::default() };
        assert_eq!(extract_docx(&z, &limits, d()).unwrap_err().code(), "zip_bomb");
        // Under the total, but the ratio of one entry is absurd.
        let limits = Limits { max_zip_ratio: 20, ..Limits::default() };
        assert_eq!(extract_docx(&z, &limits, d()).unwrap_err().code(), "zip_bomb");
        let many: Vec<(String, Vec<u8>)> = (0..50).map(|i| (format!("f{i}"), vec![])).collect();
        let refs: Vec<(&str, &[u8])> = many.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        let z = make_zip(&refs);
        let limits = Limits { max_zip_entries: 10, ..Limits::default() };
        assert_eq!(extract_docx(&z, &limits, d()).unwrap_err().code(), "zip_bomb");
    }

    #[test]
    fn odt_text_with_header_and_lists() {
        let content = r#"<office:document-content xmlns:office="o" xmlns:text="t" xmlns:table="tb"><office:body><office:text>
<text:h>Berufserfahrung</text:h><text:p>A<text:s text:c="3"/>B<text:tab/>C<text:line-break/>D</text:p>
<text:list><text:list-item><text:p>Kotlin</text:p></text:list-item></text:list>
<office:annotation><text:p>secret note</text:p></office:annotation>
</office:text></office:body></office:document-content>"#;
        let styles = r#"<office:document-styles xmlns:office="o" xmlns:style="s" xmlns:text="t"><style:master-page><style:header><text:p>Max Mustermann</text:p></style:header></style:master-page></office:document-styles>"#;
        let z = make_zip(&[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", content.as_bytes()),
            ("styles.xml", styles.as_bytes()),
        ]);
        assert_eq!(super::super::detect(&z, None, None).unwrap(), Format::Odt);
        let t = super::super::normalize(&extract_odt(&z, &Limits::default(), d()).unwrap());
        assert_eq!(t, "Max Mustermann\nBerufserfahrung\nA\tB\tC\nD\n• Kotlin");
    }
}
