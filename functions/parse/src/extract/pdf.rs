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
use pdf_oxide::layout::TextSpan;

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
            // A tab inside PDF text is a font's space glyph (wkhtmltopdf writes every word
            // space so), never a column: columns are geometry, marked below.
            let page = page.replace('\t', " ");
            // Spans give the geometry the plain text lost; a page whose spans fail to read
            // keeps its text as it is.
            let page = match doc.extract_spans(i) {
                // The geometry passes compare spans with lines; a page of thousands of
                // spans is no resume page, and would make them slow.
                Ok(spans) if spans.len() > MAX_GEOMETRY_SPANS => page,
                Ok(mut spans) => {
                    for span in &mut spans {
                        span.text = span.text.replace('\t', " ");
                    }
                    let page = place_floating_accents(&page, &mut spans);
                    let rows = rows_of(&spans);
                    let page = if label_column_read_apart(&rows, &page) {
                        page_by_rows(&rows)
                    } else {
                        mark_column_gaps(&page, &gaps_between_spans(&rows))
                    };
                    let page = isolate_display_lines(&page, &rows);
                    let page = if i == 0 { restore_title_row(&page, &rows) } else { page };
                    let page = attach_lone_dates(&page, &rows);
                    let page = rejoin_row_fragments(&page, &rows);
                    join_hyphenated(&accents_onto_next_letter(&page))
                }
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

/// Above this many spans on a page, its text is taken as pdf_oxide reads it.
const MAX_GEOMETRY_SPANS: usize = 3000;

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

/// One line of a page as laid out: spans sharing a baseline, left to right.
struct Row<'a> {
    spans: Vec<&'a TextSpan>,
    /// The lowest baseline among the spans.
    y: f32,
    size: f32,
}

/// The page's spans grouped into rows, top to bottom; spans of whitespace alone are left out,
/// so every span of a row has text. A span within 0.3 em of a row's baseline belongs to it,
/// which keeps sub- and superscripts (the "E" of LaTeX) on their line.
fn rows_of(spans: &[TextSpan]) -> Vec<Row<'_>> {
    let mut sorted: Vec<&TextSpan> = spans.iter().filter(|s| !s.text.trim().is_empty()).collect();
    sorted.sort_by(|a, b| b.bbox.y.total_cmp(&a.bbox.y).then(a.bbox.x.total_cmp(&b.bbox.x)));
    let mut rows: Vec<Row> = Vec::new();
    for span in sorted {
        let size = span.font_size.max(1.0);
        match rows.last_mut() {
            // Compared with the row's lowest span so far (the nearest, spans coming top down).
            Some(row) if row.y - span.bbox.y < 0.3 * row.size.max(size) => {
                row.size = row.size.max(size);
                row.y = span.bbox.y;
                row.spans.push(span);
            }
            _ => rows.push(Row { spans: vec![span], y: span.bbox.y, size }),
        }
    }
    for row in &mut rows {
        row.spans.sort_by(|a, b| a.bbox.x.total_cmp(&b.bbox.x));
    }
    rows
}

/// The horizontal space between two neighbouring spans of a row, in points.
fn gap(left: &TextSpan, right: &TextSpan) -> f32 {
    right.bbox.x - (left.bbox.x + left.bbox.width)
}

/// Gaps wider than two ems between neighbouring spans on one baseline: a right-aligned place
/// or date ("Schlumberger ⟶ Pune, India"), a tab stop, a table column. pdf_oxide's plain
/// text joins such spans with one space, which glues the place to the employer.
fn gaps_between_spans(rows: &[Row]) -> Vec<ColumnGap> {
    let mut gaps = Vec::new();
    for row in rows {
        for pair in row.spans.windows(2) {
            let (left, right) = (pair[0], pair[1]);
            if gap(left, right) > 2.0 * row.size {
                let before = left.text.trim();
                let tail: String =
                    before.chars().rev().take(GAP_CONTEXT).collect::<Vec<_>>().into_iter().rev().collect();
                let head: String = right.text.trim().chars().take(GAP_CONTEXT).collect();
                gaps.push(ColumnGap { before: tail, after: head });
            }
        }
    }
    gaps
}

/// Whether pdf_oxide read a label column apart from the text it labels. Resumes often set
/// each entry's dates in a narrow column left of the entry ("2016 – 2018 | Master …", a
/// table or a LaTeX CV class); when the reader takes that column as a block of its own, the
/// dates end up on lines by themselves, away from their entries, and no entry is found.
/// Two or more rows that start with a date range followed by text on the same baseline,
/// one of whose dates stands alone in the plain text, mean the page reads better row by row.
fn label_column_read_apart(rows: &[Row], page: &str) -> bool {
    let alone: std::collections::HashSet<&str> = page.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let is_label = |text: &str| text.chars().count() <= 40 && crate::dates::find_range(text).is_some();
    let labels: Vec<&str> = rows
        .iter()
        .filter_map(|row| {
            let spans = &row.spans;
            let (first, last) = (spans.first()?, spans.last()?);
            if spans.len() < 2 {
                return None;
            }
            // Dates left of the entry (a label column) or right of it (a date column).
            if is_label(first.text.trim()) && gap(first, spans[1]) > 0.5 * row.size {
                Some(first.text.trim())
            } else if is_label(last.text.trim()) && gap(spans[spans.len() - 2], last) > 2.0 * row.size {
                Some(last.text.trim())
            } else {
                None
            }
        })
        .collect();
    // A sidebar beside the entries: many rows hold two texts, neither a date, a column
    // apart; read by rows, such a page would interleave the sidebar with the entries, so it
    // keeps the reader's order. (A place set at the right margin, "Research University ⟶ Milan, Italy", is no sidebar:
    // the second text must start left of the page's middle.)
    let right_edge = rows.iter().flat_map(|r| &r.spans).map(|s| s.bbox.x + s.bbox.width).fold(0.0f32, f32::max);
    let sidebar_rows = rows
        .iter()
        .filter(|row| {
            row.spans.windows(2).any(|w| {
                let (a, b) = (w[0].text.trim(), w[1].text.trim());
                !is_label(a) && !is_label(b) && gap(w[0], w[1]) > 2.0 * row.size && w[1].bbox.x < 0.5 * right_edge
            })
        })
        .count();
    if sidebar_rows >= 4 {
        return false;
    }
    let read_apart = labels.iter().filter(|l| alone.contains(*l)).count();
    // A label column (two dated rows or more) and the reader took at least one date away.
    labels.len() >= 2 && read_apart >= 1
}

/// The page as rows: spans on one baseline joined left to right (a tab at a column gap, a
/// space at a word gap), a blank line where the vertical space between rows opens up.
fn page_by_rows(rows: &[Row]) -> String {
    let mut out = String::new();
    let mut previous: Option<&Row> = None;
    for row in rows {
        if let Some(p) = previous {
            out.push('\n');
            // Lines of a paragraph sit about 1.2 em apart; more than 1.5 em is a new block.
            if p.y - row.y > 1.5 * p.size.max(row.size) {
                out.push('\n');
            }
        }
        for (i, span) in row.spans.iter().enumerate() {
            if i > 0 {
                let left = row.spans[i - 1];
                let space = gap(left, span);
                // Word spaces are a quarter em; an em or more is a column.
                if space > row.size {
                    out.push('\t');
                } else if space > 0.15 * row.size && !left.text.ends_with(' ') && !span.text.starts_with(' ') {
                    out.push(' ');
                }
            }
            out.push_str(&span.text);
        }
        previous = Some(row);
    }
    out.push('\n');
    out
}

/// The combining mark of a spacing accent that LaTeX (OT1 fonts) sets as a glyph of its own
/// over the letter: "fu¨r" for "für".
fn combining_mark(accent: char) -> Option<char> {
    Some(match accent {
        '\u{00A8}' => '\u{0308}',
        '\u{00B4}' => '\u{0301}',
        '\u{02C6}' => '\u{0302}',
        '\u{02DC}' => '\u{0303}',
        '\u{00B8}' => '\u{0327}',
        '\u{02C7}' => '\u{030C}',
        '\u{02DA}' => '\u{030A}',
        _ => return None,
    })
}

fn composed(base: char, mark: char) -> String {
    use unicode_normalization::UnicodeNormalization;
    [base, mark].iter().collect::<String>().nfc().collect()
}

/// Puts accents drawn as separate glyphs back on their letters. The reader's text has them
/// beside the word ("Max-Planck-Institut fur¨ Eisenforschung", "Universitat Hannover¨"),
/// where no German or French reader looks for them; the spans say where each was drawn:
/// over the letter whose box holds the accent's centre. That letter gets the accent and
/// the stray glyph leaves the text.
fn place_floating_accents(page: &str, spans: &mut Vec<TextSpan>) -> String {
    let mut page = page.to_string();
    // Each accent drawn apart: its span, and whether it only leads that span's text
    // ("¨ Eisenforschung", drawn back over the "u" of the "fur" before it).
    let accents: Vec<(usize, bool)> = (0..spans.len())
        .filter_map(|i| {
            let t = spans[i].text.trim_end();
            let first = t.chars().next()?;
            combining_mark(first)?;
            Some((i, t.chars().count() > 1))
        })
        .collect();
    let mut placed = Vec::new();
    for &(a, leading) in &accents {
        let accent = spans[a].text.chars().next().unwrap_or(' ');
        let Some(mark) = combining_mark(accent) else { continue };
        let size = spans[a].font_size.max(1.0);
        let centre = if leading { spans[a].bbox.x + 0.25 * size } else { spans[a].bbox.x + spans[a].bbox.width / 2.0 };
        let ay = spans[a].bbox.y;
        let Some(t) = (0..spans.len()).find(|&i| {
            let s = &spans[i];
            i != a
                && !accents.iter().any(|(k, lead)| *k == i && !lead)
                && (s.bbox.y - ay).abs() < 0.5 * size
                && s.bbox.x <= centre
                && centre <= s.bbox.x + s.bbox.width
        }) else {
            continue;
        };
        // The letter under the centre, by its share of the span's width.
        let chars: Vec<char> = spans[t].text.chars().collect();
        let share = (centre - spans[t].bbox.x) / spans[t].bbox.width.max(0.1);
        let guess = ((share * chars.len() as f32) as usize).min(chars.len().saturating_sub(1));
        // Nearest vowel to the guess: accents sit on vowels in the languages that set them so.
        let Some(at) = (0..chars.len())
            .filter(|&k| "aeiouyAEIOUY".contains(chars[k]))
            .min_by_key(|&k| k.abs_diff(guess))
            .filter(|&k| k.abs_diff(guess) <= 1)
        else {
            continue;
        };
        let before: String = chars.iter().collect();
        let after: String = chars[..at].iter().collect::<String>()
            + &composed(chars[at], mark)
            + &chars[at + 1..].iter().collect::<String>();
        if let Some(pos) = page.find(&before) {
            page.replace_range(pos..pos + before.len(), &after);
            // The stray glyph: the first one on the same line from the word on.
            let line_end = page[pos..].find('\n').map_or(page.len(), |e| pos + e);
            if let Some(stray) = page[pos..line_end].find(accent) {
                page.replace_range(pos + stray..pos + stray + accent.len_utf8(), "");
            }
        }
        spans[t].text = after;
        if leading {
            spans[a].text = spans[a].text[accent.len_utf8()..].to_string();
        } else {
            placed.push(a);
        }
    }
    placed.sort_unstable();
    for a in placed.into_iter().rev() {
        spans.remove(a);
    }
    page
}

/// An accent left in the text right before a letter ("Fernmeldeaufkl¨arer") goes on it.
fn accents_onto_next_letter(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    let mut chars = page.chars().peekable();
    while let Some(c) = chars.next() {
        match (combining_mark(c), chars.peek()) {
            (Some(mark), Some(&next)) if next.is_alphabetic() => {
                out.push_str(&composed(next, mark));
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// Text set well above the page's body size (the name, a section heading) on a line of its
/// own. pdf_oxide sometimes glues it to the line beside or below ("Address : … DC 20007
/// Anagha Kumar", "JANE Q. FULLSTACKER SENIOR DEVELOPER"), and then neither the name nor the
/// heading is found. A large span alone on its row goes above or below that line as its row
/// does; one sharing its row keeps its place and only gets its own line.
fn isolate_display_lines(page: &str, rows: &[Row]) -> String {
    let mut sizes: Vec<(f32, usize)> =
        rows.iter().flat_map(|r| &r.spans).map(|s| (s.font_size, s.text.trim().chars().count())).collect();
    let body = {
        sizes.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: usize = sizes.iter().map(|(_, n)| n).sum();
        let mut seen = 0;
        sizes.iter().find(|(_, n)| {
            seen += n;
            seen * 2 >= total
        })
    };
    let Some(&(body, _)) = body else { return page.to_string() };
    let mut lines: Vec<String> = page.lines().map(str::to_string).collect();
    for row in rows {
        // Large words set as one run ("Softtestlab" "Technologies") are one display line.
        let mut runs: Vec<String> = Vec::new();
        let mut previous: Option<&TextSpan> = None;
        for span in &row.spans {
            let large = span.font_size >= 1.25 * body;
            match (previous, runs.last_mut()) {
                (Some(p), Some(run)) if large && gap(p, span) < row.size => {
                    if gap(p, span) > 0.15 * row.size {
                        run.push(' ');
                    }
                    run.push_str(span.text.trim());
                }
                _ if large => runs.push(span.text.trim().to_string()),
                _ => {}
            }
            previous = large.then_some(*span);
        }
        let alone = runs.len() == 1 && row.spans.iter().all(|s| s.font_size >= 1.25 * body);
        for big in runs {
            let big = big.as_str();
            if big.chars().count() < 3 || big.chars().count() > 60 {
                continue;
            }
            let Some(at) = lines.iter().position(|l| {
                let t = l.trim();
                t != big && (t.starts_with(&format!("{big} ")) || t.ends_with(&format!(" {big}")))
            }) else {
                continue;
            };
            let t = lines[at].trim().to_string();
            let (first, second) = if let Some(rest) = t.strip_prefix(big) {
                (big.to_string(), rest.trim().to_string())
            } else {
                let head = t[..t.len() - big.len()].trim().to_string();
                // Alone on its row, it goes where its row is: above the text it was glued
                // to (a name over the address) or below it (a title's wrapped second line).
                let head_row_y =
                    rows.iter().find(|r| r.spans.iter().any(|s| head.starts_with(s.text.trim()))).map(|r| r.y);
                let above = head_row_y.is_none_or(|y| row.y > y);
                if alone && above { (big.to_string(), head) } else { (head, big.to_string()) }
            };
            lines.splice(at..=at, [first, second]);
        }
    }
    joined_like(&lines, page)
}

/// Lines joined again, ending in a newline when the page they came from did.
fn joined_like(lines: &[String], page: &str) -> String {
    let mut out = lines.join("\n");
    if page.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Dates the reader took away from their entry, back on its line. A right-hand date column
/// (moderncv's oldstyle, many Word templates) or a left one beside a sidebar can come out
/// as lines of their own at the end of the page or of the column ("2020–present"), and then
/// no entry has dates. The date's row says which text it belongs to: the nearest span
/// beside it. The date goes at that line's end (or start, for a left column) after a tab,
/// and its lone line goes. Only dates in a block of dates move.
fn attach_lone_dates(page: &str, rows: &[Row]) -> String {
    let mut lines: Vec<String> = page.lines().map(str::to_string).collect();
    let alone = |l: &str| {
        let t = l.trim();
        crate::dates::find_range(t).is_some_and(|r| t.len() - (r.span.1 - r.span.0) <= 2) && t.chars().count() <= 40
    };
    // A column read apart comes out as a block of dates; one date alone between its
    // entry's lines (a two-column page's main column) is where it belongs.
    let non_blank: Vec<&str> = lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
    let in_block: std::collections::HashSet<String> = non_blank
        .iter()
        .enumerate()
        .filter(|(k, l)| {
            alone(l)
                && (k.checked_sub(1).is_some_and(|p| alone(non_blank[p]))
                    || non_blank.get(k + 1).is_some_and(|n| alone(n)))
        })
        .map(|(_, l)| l.to_string())
        .collect();
    let mut changed = false;
    for row in rows {
        for (k, span) in row.spans.iter().enumerate() {
            let date = span.text.trim();
            if !alone(date) {
                continue;
            }
            let Some(lone) = lines.iter().position(|l| l.trim() == date) else { continue };
            if !in_block.contains(date) {
                continue;
            }
            // The nearest text beside it on its row.
            let left = row.spans[..k].last();
            let right = row.spans.get(k + 1);
            let (neighbour, date_after) = match (left, right) {
                (Some(l), Some(r)) => {
                    if gap(l, span) <= gap(span, r) {
                        (l, true)
                    } else {
                        (r, false)
                    }
                }
                (Some(l), None) => (l, true),
                (None, Some(r)) => (r, false),
                (None, None) => continue,
            };
            let text = neighbour.text.trim();
            if text.chars().count() < 4 || alone(text) {
                continue;
            }
            let Some(target) = lines.iter().position(|l| {
                let t = l.trim();
                t != date && if date_after { t.ends_with(text) } else { t.starts_with(text) }
            }) else {
                continue;
            };
            lines[target] = if date_after {
                format!("{}\t{date}", lines[target].trim_end())
            } else {
                format!("{date}\t{}", lines[target].trim_start())
            };
            lines.remove(lone);
            changed = true;
        }
    }
    if !changed {
        return page.to_string();
    }
    joined_like(&lines, page)
}

/// A line that opens with a separator (", Memories By Design, Inc.") is the second half of
/// a row whose first half the reader put elsewhere ("Technical Support Coordinator"); the
/// row's spans say which line that is, and the two join again.
fn rejoin_row_fragments(page: &str, rows: &[Row]) -> String {
    let mut lines: Vec<String> = page.lines().map(str::to_string).collect();
    let mut changed = false;
    let mut k = 0;
    while k < lines.len() {
        let t = lines[k].trim().to_string();
        let fragment = t.starts_with([',', '–', '—', '|']) && t.chars().count() > 3;
        let head = fragment
            .then(|| {
                let row = rows.iter().find(|r| r.spans.iter().skip(1).any(|s| t.starts_with(s.text.trim())))?;
                let first = row.spans.first()?.text.trim();
                // The same words may head another line too: the nearest one above wins.
                let same: Vec<usize> = (0..lines.len()).filter(|&h| lines[h].trim() == first).collect();
                same.iter().rev().find(|&&h| h < k).or_else(|| same.first()).copied()
            })
            .flatten();
        match head {
            Some(h) if h != k => {
                let tail = lines.remove(k);
                let h = if k < h { h - 1 } else { h };
                let tail = tail.trim_start();
                let space = if tail.starts_with(',') { "" } else { " " };
                lines[h] = format!("{}{space}{tail}", lines[h].trim_end());
                changed = true;
            }
            _ => k += 1,
        }
    }
    if !changed {
        return page.to_string();
    }
    joined_like(&lines, page)
}

/// Words hyphenated at a line's end ("… contractuel en Ma-" / "thématiques") made whole:
/// a line ending in a letter and a hyphen, followed by one opening in lowercase, is one line.
/// Typeset resumes (LaTeX, InDesign) hyphenate; a compound that really ends a line
/// ("full-" / "stack") loses its hyphen, which costs less than a broken word.
fn join_hyphenated(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    let mut lines = page.split('\n').peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_end();
        let mut chars = t.chars().rev();
        let hyphenated = chars.next() == Some('-') && chars.next().is_some_and(char::is_alphabetic);
        if hyphenated
            && let Some(next) = lines.peek()
            && next.trim_start().starts_with(char::is_lowercase)
        {
            out.push_str(&t[..t.len() - 1]);
            continue;
        }
        out.push_str(line);
        if lines.peek().is_some() {
            out.push('\n');
        }
    }
    out
}

/// The first page's title row (the topmost row set in the page's largest type: the name,
/// often with a headline) as one line at the top. pdf_oxide sometimes interleaves its words
/// with the line under it ("Agnieszka Engineer" / "Nowak | Backend" for "Agnieszka Nowak |
/// Backend" over "Engineer"); its words are taken out of the first lines and the row goes
/// first, whole. Nothing changes unless every word is found there, in order.
fn restore_title_row(page: &str, rows: &[Row]) -> String {
    let largest = rows.iter().flat_map(|r| &r.spans).map(|s| s.font_size).fold(0.0f32, f32::max);
    let Some(row) = rows.iter().find(|r| r.spans.iter().any(|s| s.font_size >= largest)) else {
        return page.to_string();
    };
    let title: String =
        row.spans.iter().filter(|s| s.font_size >= 0.9 * largest).map(|s| s.text.trim()).collect::<Vec<_>>().join(" ");
    let mut lines: Vec<String> = page.lines().map(str::to_string).collect();
    // One word is half a name set on two rows ("Séraphin" over "Lampion"): left alone.
    if title.split_whitespace().count() < 2 || lines.iter().any(|l| l.trim() == title) {
        return page.to_string();
    }
    let head = lines.len().min(8);
    let mut from = 0;
    let mut taken: Vec<(usize, String)> = Vec::new();
    for word in title.split_whitespace() {
        let found = (from..head).find(|&k| lines[k].split_whitespace().any(|w| w == word));
        let Some(k) = found else { return page.to_string() };
        let mut words: Vec<&str> = lines[k].split_whitespace().collect();
        if let Some(at) = words.iter().position(|w| *w == word) {
            words.remove(at);
        }
        let rest = words.join(" ");
        taken.push((k, std::mem::replace(&mut lines[k], rest)));
        from = k;
    }
    let mut out: Vec<String> = vec![title];
    out.extend(lines.into_iter().enumerate().filter_map(|(k, l)| {
        let emptied = taken.iter().any(|(t, _)| *t == k) && l.trim().is_empty();
        (!emptied).then_some(l)
    }));
    joined_like(&out, page)
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
    use super::{ColumnGap, isolate_display_lines, label_column_read_apart, mark_column_gaps, page_by_rows, rows_of};
    use pdf_oxide::layout::TextSpan;

    fn span(x: f32, y: f32, width: f32, text: &str) -> TextSpan {
        TextSpan {
            text: text.into(),
            bbox: pdf_oxide::geometry::Rect::new(x, y, width, 9.0),
            font_size: 10.0,
            ..TextSpan::default()
        }
    }

    /// A label column: each entry's dates left of it, on the entry's first baseline; the
    /// reader's plain text has taken the dates as a block of their own.
    fn label_column_page() -> (Vec<TextSpan>, &'static str) {
        let spans = vec![
            span(50.0, 700.0, 80.0, "Berufserfahrung"),
            span(50.0, 680.0, 90.0, "03/2019 – heute"),
            span(180.0, 680.0, 150.0, "Backend-Entwicklerin"),
            span(330.2, 680.0, 60.0, ", Nordlicht AG"),
            span(180.0, 668.0, 200.0, "Zahlungsdienste in Rust"),
            span(50.0, 640.0, 90.0, "2016 – 2019"),
            span(180.0, 640.0, 150.0, "Werkstudentin, Datenwerk GmbH"),
            span(180.0, 628.0, 150.0, "Auswertungen in Python"),
        ];
        let plain = "Berufserfahrung\n03/2019 – heute\n2016 – 2019\nBackend-Entwicklerin\nZahlungsdienste in Rust\n\
                     Werkstudentin, Datenwerk GmbH\nAuswertungen in Python\n, Nordlicht AG\n";
        (spans, plain)
    }

    #[test]
    fn a_label_column_read_apart_is_read_row_by_row() {
        let (spans, plain) = label_column_page();
        let rows = rows_of(&spans);
        assert!(label_column_read_apart(&rows, plain));
        assert_eq!(
            page_by_rows(&rows),
            "Berufserfahrung\n\n03/2019 – heute\tBackend-Entwicklerin, Nordlicht AG\nZahlungsdienste in Rust\n\n\
             2016 – 2019\tWerkstudentin, Datenwerk GmbH\nAuswertungen in Python\n"
        );
    }

    #[test]
    fn dates_kept_with_their_entries_leave_the_reading_order_alone() {
        let (spans, _) = label_column_page();
        let rows = rows_of(&spans);
        let plain = "Berufserfahrung\n03/2019 – heute Backend-Entwicklerin, Nordlicht AG\nZahlungsdienste in Rust\n\
                     2016 – 2019 Werkstudentin, Datenwerk GmbH\nAuswertungen in Python\n";
        assert!(!label_column_read_apart(&rows, plain));
        // One dated row is not a label column.
        let one_row = rows_of(&spans[..5]);
        let plain = "Berufserfahrung\n03/2019 – heute\nBackend-Entwicklerin, Nordlicht AG\nZahlungsdienste in Rust\n";
        assert!(!label_column_read_apart(&one_row, plain));
        // Two, and the reader took one of them away from its entry: read by rows.
        let one_apart =
            "Berufserfahrung\n03/2019 – heute Backend-Entwicklerin, Nordlicht AG\n2016 – 2019\nWerkstudentin\n";
        assert!(label_column_read_apart(&rows, one_apart));
    }

    fn sized(x: f32, y: f32, width: f32, size: f32, text: &str) -> TextSpan {
        TextSpan { font_size: size, ..span(x, y, width, text) }
    }

    #[test]
    fn a_name_glued_to_another_line_gets_its_own() {
        let spans = vec![
            sized(240.0, 795.0, 110.0, 14.0, "Mira Okafor"),
            span(140.0, 783.0, 300.0, "Address : 12 Elm Street, Leeds LS1 4AB"),
            span(140.0, 771.0, 200.0, "Email : mira@example.com"),
            span(50.0, 700.0, 400.0, "Body text of the resume that is long enough to set the size"),
        ];
        let rows = rows_of(&spans);
        let page = "Address : 12 Elm Street, Leeds LS1 4AB Mira Okafor\nEmail : mira@example.com\n";
        assert_eq!(
            isolate_display_lines(page, &rows),
            "Mira Okafor\nAddress : 12 Elm Street, Leeds LS1 4AB\nEmail : mira@example.com\n"
        );
        // Name and title on one row: each on its line, in their order.
        let spans = vec![
            sized(60.0, 800.0, 200.0, 20.0, "JANE Q. DOE"),
            sized(320.0, 800.0, 200.0, 20.0, "SENIOR DEVELOPER"),
            span(50.0, 700.0, 400.0, "Body text of the resume that is long enough to set the size"),
        ];
        assert_eq!(
            isolate_display_lines("JANE Q. DOE SENIOR DEVELOPER\nBody\n", &rows_of(&spans)),
            "JANE Q. DOE\nSENIOR DEVELOPER\nBody\n"
        );
        // An employer set large word by word, its place in a column beside it: left alone.
        let spans = vec![
            sized(56.0, 640.0, 60.0, 13.0, "Softtestlab"),
            sized(119.0, 640.0, 70.0, 13.0, "Technologies"),
            span(450.0, 640.0, 90.0, "Pune, India"),
            span(50.0, 600.0, 400.0, "Body text of the resume that is long enough to set the size"),
        ];
        let page = "Softtestlab Technologies\tPune, India\n";
        assert_eq!(isolate_display_lines(page, &rows_of(&spans)), page);
    }

    #[test]
    fn accents_drawn_apart_go_back_on_their_letters() {
        // "Institut für Eisenforschung": the diaeresis drawn over the u of "fur".
        let mut spans = vec![
            span(100.0, 700.0, 150.0, "Max-Planck-Institut fur"),
            span(238.0, 700.0, 6.0, "\u{a8}"),
            span(100.0, 680.0, 100.0, "Fernmeldeaufkl\u{a8}arer"),
        ];
        let page = "Max-Planck-Institut fur\u{a8} Eisenforschung GmbH\nFernmeldeaufkl\u{a8}arer\n";
        let fixed = super::accents_onto_next_letter(&super::place_floating_accents(page, &mut spans));
        assert_eq!(fixed, "Max-Planck-Institut für Eisenforschung GmbH\nFernmeldeaufklärer\n");
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].text, "Max-Planck-Institut für");
        // The accent leading the next span, drawn back over the word before.
        let mut spans =
            vec![span(100.0, 700.0, 140.0, "Institut fur"), span(233.0, 700.0, 120.0, "\u{a8} Umformtechnik")];
        let fixed = super::place_floating_accents("Institut fur\u{a8} Umformtechnik\n", &mut spans);
        assert_eq!(fixed, "Institut für Umformtechnik\n");
        assert_eq!(spans[1].text, " Umformtechnik");
    }

    #[test]
    fn lone_dates_go_back_to_their_rows() {
        let spans = vec![
            span(50.0, 700.0, 90.0, "+48 601 234 567"),
            span(150.0, 700.0, 250.0, "Senior Engineer, Wawel Payments, Kraków."),
            span(480.0, 700.0, 60.0, "2020–present"),
            span(150.0, 660.0, 250.0, "Software Developer, Vistula, Warsaw."),
            span(490.0, 660.0, 50.0, "2017–2020"),
        ];
        let rows = rows_of(&spans);
        let page = "+48 601 234 567\nSenior Engineer, Wawel Payments, Kraków.\nSoftware Developer, Vistula, Warsaw.\n\n2020–present\n2017–2020\n";
        assert_eq!(
            super::attach_lone_dates(page, &rows),
            "+48 601 234 567\nSenior Engineer, Wawel Payments, Kraków.\t2020–present\nSoftware Developer, Vistula, Warsaw.\t2017–2020\n\n"
        );
    }

    #[test]
    fn a_row_split_at_its_comma_joins_again() {
        let spans = vec![
            span(66.0, 344.0, 139.0, "Technical Support Coordinator"),
            span(205.0, 344.0, 121.0, ", Memories By Design, Inc."),
            span(447.0, 344.0, 80.0, "2005-05 — 2010-08"),
        ];
        let page = "Technical Support Coordinator\nMemories By Design is a video company.\n, Memories By Design, Inc.\t2005-05 — 2010-08\n";
        assert_eq!(
            super::rejoin_row_fragments(page, &rows_of(&spans)),
            "Technical Support Coordinator, Memories By Design, Inc.\t2005-05 — 2010-08\nMemories By Design is a video company.\n"
        );
    }

    #[test]
    fn hyphenated_words_are_whole_again() {
        assert_eq!(
            super::join_hyphenated("Enseignant en Ma-\nthématiques\nEducation Nationale\nCo-\nFounder\n"),
            "Enseignant en Mathématiques\nEducation Nationale\nCo-\nFounder\n"
        );
    }

    #[test]
    fn the_title_row_comes_back_whole() {
        let spans = vec![
            sized(145.0, 756.0, 113.0, 24.0, "Agnieszka"),
            sized(267.0, 756.0, 76.0, 24.0, "Nowak"),
            sized(352.0, 756.0, 96.0, 24.0, "| Backend"),
            sized(256.0, 731.0, 83.0, 24.0, "Engineer"),
            span(205.0, 716.0, 183.0, "ul. Długa 12 – Kraków"),
        ];
        let rows = rows_of(&spans);
        let page = "Agnieszka Engineer\n Nowak | Backend\nul. Długa 12 – Kraków\n";
        assert_eq!(
            super::restore_title_row(page, &rows),
            "Agnieszka Nowak | Backend\nEngineer\nul. Długa 12 – Kraków\n"
        );
        // Already whole: unchanged.
        let page = "Agnieszka Nowak | Backend\nEngineer\n";
        assert_eq!(super::restore_title_row(page, &rows), page);
    }

    #[test]
    fn a_superscript_stays_on_its_line() {
        let spans = vec![span(50.0, 700.0, 20.0, "L"), span(70.5, 702.0, 5.0, "A"), span(76.0, 698.0, 10.0, "TEX")];
        assert_eq!(page_by_rows(&rows_of(&spans)), "LATEX\n");
    }

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
