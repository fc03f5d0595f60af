//! HTML to text with html5ever (through `scraper`): the same tree browsers build, so
//! broken markup reads as it displays. Block elements and table cells become lines.

use super::Deadline;
use catalyst_shared::Result;
use scraper::{Html, Node};

const SKIP: &[&str] = &["script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object", "canvas"];
const BLOCK: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "td",
    "th",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "aside",
    "main",
    "nav",
    "dl",
    "dt",
    "dd",
    "blockquote",
    "pre",
    "address",
    "hr",
    "figure",
    "figcaption",
    "caption",
    "tbody",
    "thead",
    "body",
    "form",
    "fieldset",
    "details",
    "summary",
];

pub fn extract(src: &str, deadline: Deadline) -> Result<String> {
    let doc = Html::parse_document(src);
    let mut out = String::with_capacity(src.len() / 2);
    let mut skip_depth = 0usize;
    let mut pre_depth = 0usize;
    // An inline element just closed, with no text since.
    let mut after_element = false;
    // Iterative traversal: hostile nesting depth cannot overflow the stack.
    for (i, edge) in doc.tree.root().traverse().enumerate() {
        if i.is_multiple_of(4096) {
            deadline.check()?;
        }
        match edge {
            ego_tree::iter::Edge::Open(node) => match node.value() {
                Node::Element(el) => {
                    let name = el.name();
                    if skip_depth > 0 || SKIP.contains(&name) {
                        skip_depth += 1;
                        continue;
                    }
                    if name == "pre" {
                        pre_depth += 1;
                    }
                    if BLOCK.contains(&name) {
                        line_break(&mut out);
                    } else if after_element && !out.ends_with([' ', '\n', '\t']) && !out.is_empty() {
                        // "<span>Office Managerin</span><span>05/2021–heute</span>": boxes a
                        // stylesheet sets apart (flex rows), with no space between in the markup.
                        out.push('\t');
                    }
                    after_element = false;
                    if name == "li" {
                        out.push_str("• ");
                    }
                    if name == "a"
                        && let Some(href) = el.attr("href")
                    {
                        // Keep profile links whose text is just "LinkedIn" or an icon.
                        let bare = href.trim().trim_start_matches("mailto:").trim_start_matches("tel:");
                        let text: String =
                            node.descendants().filter_map(|n| n.value().as_text().map(|t| t.to_string())).collect();
                        let host_part = bare.trim_start_matches("https://").trim_start_matches("http://");
                        if !bare.starts_with('#') && !bare.starts_with("javascript:") && !text.contains(host_part) {
                            out.push_str(&format!("<{bare}> "));
                        }
                    }
                }
                Node::Text(t) if skip_depth == 0 => {
                    after_element = false;
                    if pre_depth > 0 {
                        out.push_str(t);
                    } else {
                        // Collapse whitespace as a browser does.
                        let mut last_space = out.ends_with([' ', '\n']) || out.is_empty();
                        for c in t.chars() {
                            if c.is_whitespace() {
                                if !last_space {
                                    out.push(' ');
                                    last_space = true;
                                }
                            } else {
                                out.push(c);
                                last_space = false;
                            }
                        }
                    }
                }
                _ => {}
            },
            ego_tree::iter::Edge::Close(node) => {
                if let Node::Element(el) = node.value() {
                    let name = el.name();
                    if skip_depth > 0 {
                        skip_depth -= 1;
                        continue;
                    }
                    if name == "pre" {
                        pre_depth = pre_depth.saturating_sub(1);
                    }
                    if BLOCK.contains(&name) {
                        line_break(&mut out);
                    }
                    after_element = !BLOCK.contains(&name);
                }
            }
        }
    }
    Ok(out)
}

fn line_break(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn blocks_cells_and_links() {
        let html = r#"<html><head><title>x</title><style>p{}</style></head><body>
            <h1>Jan   de Vries</h1><p>Amsterdam &amp; Utrecht<br>jan@example.nl</p>
            <table><tr><td>2019 – heden</td><td><b>Ontwikkelaar</b>, Bol.com</td></tr></table>
            <ul><li>Rust</li><li>Go</li></ul><a href="https://github.com/jdv">GitHub</a>
            <script>alert(1)</script></body></html>"#;
        let t = super::super::normalize(&extract(html, Deadline::after(Duration::from_secs(5))).unwrap());
        assert_eq!(
            t,
            "Jan de Vries\nAmsterdam & Utrecht\njan@example.nl\n2019 – heden\nOntwikkelaar, Bol.com\n• Rust\n• Go\n<https://github.com/jdv> GitHub"
        );
    }

    #[test]
    fn boxes_set_side_by_side_stay_apart() {
        let html = r#"<div class="top"><span class="role">Office Managerin</span><span class="period">05/2021–heute</span></div><div><span><b>E-Mail:</b> s@example.org</span><span><b>Profil:</b> x</span></div><p><b>Jo</b>hn</p>"#;
        let t = super::super::normalize(&extract(html, Deadline::after(Duration::from_secs(5))).unwrap());
        assert_eq!(t, "Office Managerin\t05/2021–heute\nE-Mail: s@example.org\tProfil: x\nJohn");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let html = "<div>".repeat(5_000) + "deep" + &"</div>".repeat(5_000);
        let t = extract(&html, Deadline::after(Duration::from_secs(30))).unwrap();
        assert!(t.contains("deep"));
    }
}
