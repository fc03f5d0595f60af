//! Plain text in any charset, and Markdown.

use super::{Deadline, Warning};
use catalyst_shared::Result;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// Decode bytes to text: a BOM decides; else UTF-8 if valid; else the charset
/// `chardetng` guesses (Windows-1252, Latin-1, Shift_JIS, ...), with a warning.
pub fn decode(bytes: &[u8]) -> (String, Vec<Warning>) {
    if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[bom..]);
        return (text.into_owned(), Vec::new());
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return (s.to_string(), Vec::new());
    }
    let mut det = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    det.feed(bytes, true);
    let enc = det.guess(None, chardetng::Utf8Detection::Deny);
    let (text, _, had_errors) = enc.decode(bytes);
    let mut w = vec![Warning::new("decoded_charset", format!("the text is not UTF-8; it was read as {}", enc.name()))];
    if had_errors {
        w.push(Warning::new("invalid_characters", "some bytes could not be decoded and were replaced"));
    }
    (text.into_owned(), w)
}

/// Markdown to text: block structure kept as lines, list items marked with a bullet,
/// link targets kept (a `[LinkedIn](https://...)` profile is only in the target).
pub fn markdown(src: &str, deadline: Deadline) -> Result<String> {
    let mut out = String::with_capacity(src.len());
    let mut link_stack: Vec<(String, usize)> = Vec::new();
    for (i, ev) in Parser::new_ext(src, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).enumerate() {
        if i.is_multiple_of(4096) {
            deadline.check()?;
        }
        match ev {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            // A soft break after a long line is prose wrapped by its writer at 72-80 columns,
            // and the paragraph one line; after a short one it is a resume's own line
            // ("Acme Corp — Engineer" / "2019 – 2021"), kept.
            Event::SoftBreak if current_line(&out).chars().count() >= WRAPPED_PROSE => out.push(' '),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Start(Tag::Item) => {
                ensure_line(&mut out);
                out.push_str("• ");
            }
            Event::Start(Tag::Link { dest_url, .. }) => link_stack.push((dest_url.to_string(), out.len())),
            Event::End(TagEnd::Link) => {
                if let Some((url, start)) = link_stack.pop() {
                    let shown = out[start..].to_string();
                    let bare = url.trim_start_matches("mailto:").trim_start_matches("tel:");
                    if !bare.is_empty()
                        && !shown.contains(bare.trim_start_matches("https://").trim_start_matches("http://"))
                    {
                        out.push_str(&format!(" <{bare}>"));
                    }
                }
            }
            Event::Start(Tag::TableCell) if !out.ends_with('\n') && !out.is_empty() => out.push_str(" | "),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::TableRow
                | TagEnd::TableHead
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_),
            ) => ensure_line(&mut out),
            Event::Rule => ensure_line(&mut out),
            _ => {}
        }
    }
    Ok(out)
}

/// A line at least this long, soft-broken, was wrapped by hand (Markdown sources wrap at 72-80).
const WRAPPED_PROSE: usize = 60;

fn current_line(out: &str) -> &str {
    out.rsplit('\n').next().unwrap_or("")
}

fn ensure_line(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn latin1_and_utf16_are_decoded() {
        let (t, w) = decode(b"Jos\xe9 M\xfcller, Ing\xe9nieur \xe0 Lyon, d\xe9veloppement logiciel");
        assert!(t.contains("José Müller"), "{t}");
        assert_eq!(w[0].code, "decoded_charset");
        let utf16: Vec<u8> =
            [0xFF, 0xFE].into_iter().chain("Zoë".encode_utf16().flat_map(|u| u.to_le_bytes())).collect();
        assert_eq!(decode(&utf16).0, "Zoë");
    }

    #[test]
    fn markdown_keeps_lines_bullets_and_link_targets() {
        let md = "# Ana Souza\n[LinkedIn](https://linkedin.com/in/anasouza) · ana@x.com\n\n## Skills\n- Rust\n- Go\n";
        let t = markdown(md, Deadline::after(Duration::from_secs(5))).unwrap();
        assert!(t.starts_with("Ana Souza\n"), "{t}");
        assert!(t.contains("LinkedIn <https://linkedin.com/in/anasouza>"), "{t}");
        assert!(t.contains("• Rust\n• Go"), "{t}");
    }

    #[test]
    fn markdown_prose_wrapped_by_hand_is_one_line_and_short_lines_stay() {
        let md = "### Engineer, Acme\nMar 2019 -- Present\n\nAcme builds payment terminals for small shops and cafés across\nthe Nordics and the Baltics.\n\n - Cut card-reader latency by half for\n   every terminal in the field\n";
        let t = markdown(md, Deadline::after(Duration::from_secs(5))).unwrap();
        assert_eq!(
            t,
            "Engineer, Acme\nMar 2019 -- Present\nAcme builds payment terminals for small shops and cafés across the Nordics and the Baltics.\n• Cut card-reader latency by half for\nevery terminal in the field\n"
        );
    }
}
