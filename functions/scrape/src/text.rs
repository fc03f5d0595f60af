//! Plain text from an HTML subtree: one block per paragraph, heading, list item or
//! table row, blocks separated by blank lines, whitespace collapsed outside `<pre>`.
//! Written here because the extraction crate's text output joins every block with a
//! single space, which loses the paragraph structure the interview agents rely on.

use scraper::{ElementRef, Html, Node};

const SKIP: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "iframe", "object", "head", "button", "select", "form", "input",
    "textarea",
];
const BLOCK: &[&str] = &[
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "blockquote",
    "pre",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "aside",
    "nav",
    "tr",
    "dt",
    "dd",
    "figcaption",
    "table",
    "ul",
    "ol",
    "dl",
    "figure",
    "address",
    "hr",
    "body",
    "caption",
];

/// Blocks of text under `root`, in document order, empty ones dropped.
pub fn blocks(root: ElementRef<'_>) -> Vec<String> {
    let mut w = Walker { blocks: Vec::new(), cur: String::new() };
    w.walk(root, false);
    w.flush();
    w.blocks
}

/// `blocks` joined by blank lines.
pub fn text_of(root: ElementRef<'_>) -> String {
    blocks(root).join("\n\n")
}

/// Text of an HTML fragment (e.g. a JobPosting description).
pub fn fragment_blocks(html: &str) -> Vec<String> {
    let frag = Html::parse_fragment(html);
    blocks(frag.root_element())
}

struct Walker {
    blocks: Vec<String>,
    cur: String,
}

impl Walker {
    fn flush(&mut self) {
        let t = self.cur.trim();
        if !t.is_empty() {
            self.blocks.push(t.to_string());
        }
        self.cur.clear();
    }

    fn push_text(&mut self, s: &str, pre: bool) {
        if pre {
            self.cur.push_str(s);
            return;
        }
        for (i, part) in s.split(char::is_whitespace).enumerate() {
            if i > 0 && !self.cur.ends_with(' ') && !self.cur.is_empty() {
                self.cur.push(' ');
            }
            self.cur.push_str(part);
        }
    }

    fn walk(&mut self, el: ElementRef<'_>, pre: bool) {
        let name = el.value().name();
        if SKIP.contains(&name) || el.value().attr("hidden").is_some() || el.value().attr("aria-hidden") == Some("true")
        {
            return;
        }
        let block = BLOCK.contains(&name);
        let pre = pre || name == "pre";
        if block {
            self.flush();
        }
        for child in el.children() {
            match child.value() {
                Node::Text(t) => self.push_text(t, pre),
                Node::Element(e) => {
                    if e.name() == "br" {
                        self.cur.push('\n');
                        continue;
                    }
                    if let Some(c) = ElementRef::wrap(child) {
                        let inline_cell = matches!(e.name(), "td" | "th");
                        self.walk(c, pre);
                        if inline_cell && !self.cur.ends_with(' ') {
                            self.cur.push(' ');
                        }
                    }
                }
                _ => {}
            }
        }
        if block {
            self.flush_lines();
        }
    }

    /// Flush, tidying spaces around `<br>` line breaks.
    fn flush_lines(&mut self) {
        if self.cur.contains('\n') {
            let lines: Vec<String> =
                self.cur.split('\n').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
            self.cur = lines.join("\n");
        }
        self.flush();
    }
}

/// Collapse runs of whitespace to single spaces.
pub fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_are_separated_by_blank_lines() {
        let html = Html::parse_document(
            "<body><h1>Title</h1><p>One  <b>bold</b>\n word.</p><ul><li>a</li><li>b</li></ul><script>x()</script><p>Line<br>break</p></body>",
        );
        assert_eq!(text_of(html.root_element()), "Title\n\nOne bold word.\n\na\n\nb\n\nLine\nbreak");
    }
}
