//! RTF to text. Written here: the RTF crates on crates.io are unmaintained or
//! panic on malformed input, and the subset resumes need (paragraphs, tabs, `\'hh` and
//! `\uN` characters, skipping font/colour/style tables, pictures and `\*` destinations)
//! is a small state machine.

use super::{Deadline, Format, corrupt};
use catalyst_shared::Result;

/// Destinations whose text is not document text.
const SKIP_DEST: &[&str] = &[
    "fonttbl",
    "colortbl",
    "stylesheet",
    "info",
    "pict",
    "object",
    "themedata",
    "colorschememapping",
    "datastore",
    "latentstyles",
    "listtable",
    "listoverridetable",
    "rsidtbl",
    "generator",
    "xmlnstbl",
    "mmathPr",
    "fldinst",
];

pub fn extract(bytes: &[u8], deadline: Deadline) -> Result<String> {
    let mut out = String::new();
    // Per group: (skipping, unicode fallback count).
    let mut stack: Vec<(bool, usize)> = vec![(false, 1)];
    let mut codepage = encoding_rs::WINDOWS_1252;
    let mut pending_skip = 0usize; // bytes to drop after \uN
    let mut i = 0usize;
    let mut ops = 0usize;
    while i < bytes.len() {
        ops += 1;
        if ops.is_multiple_of(8192) {
            deadline.check()?;
        }
        let (skipping, uc) = *stack.last().unwrap_or(&(false, 1));
        let b = bytes[i];
        match b {
            b'{' => {
                if stack.len() > 512 {
                    return Err(corrupt(Format::Rtf, "groups nested too deeply"));
                }
                stack.push((skipping, uc));
                i += 1;
            }
            b'}' => {
                if stack.len() > 1 {
                    stack.pop();
                }
                i += 1;
            }
            b'\\' => {
                i += 1;
                let Some(&c) = bytes.get(i) else { break };
                if c.is_ascii_alphabetic() {
                    let start = i;
                    while i < bytes.len() && bytes[i].is_ascii_alphabetic() && i - start < 32 {
                        i += 1;
                    }
                    let word = std::str::from_utf8(&bytes[start..i]).unwrap_or("");
                    let nstart = i;
                    if i < bytes.len() && bytes[i] == b'-' {
                        i += 1;
                    }
                    while i < bytes.len() && bytes[i].is_ascii_digit() && i - nstart < 10 {
                        i += 1;
                    }
                    let param: Option<i64> = std::str::from_utf8(&bytes[nstart..i]).ok().and_then(|s| s.parse().ok());
                    if i < bytes.len() && bytes[i] == b' ' {
                        i += 1;
                    }
                    if SKIP_DEST.contains(&word) {
                        if let Some(top) = stack.last_mut() {
                            top.0 = true;
                        }
                        continue;
                    }
                    if skipping {
                        continue;
                    }
                    match word {
                        "par" | "line" | "row" | "sect" | "page" => out.push('\n'),
                        "cell" => out.push('\n'),
                        "tab" => out.push('\t'),
                        "bullet" => out.push('•'),
                        "emdash" => out.push('—'),
                        "endash" => out.push('–'),
                        "lquote" => out.push('‘'),
                        "rquote" => out.push('’'),
                        "ldblquote" => out.push('“'),
                        "rdblquote" => out.push('”'),
                        "uc" => {
                            if let Some(top) = stack.last_mut() {
                                top.1 = param.unwrap_or(1).clamp(0, 8) as usize;
                            }
                        }
                        "u" => {
                            let v = param.unwrap_or(0);
                            let v = if v < 0 { v + 65536 } else { v } as u32;
                            out.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
                            pending_skip = uc;
                        }
                        "ansicpg" => {
                            let label = format!("windows-{}", param.unwrap_or(1252));
                            codepage = encoding_rs::Encoding::for_label(label.as_bytes()).unwrap_or(codepage);
                        }
                        _ => {}
                    }
                    continue;
                }
                // Control symbols.
                i += 1;
                match c {
                    b'*' => {
                        if let Some(top) = stack.last_mut() {
                            top.0 = true;
                        }
                    }
                    b'\'' => {
                        let hex = bytes.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok());
                        if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                            i += 2;
                            if pending_skip > 0 {
                                pending_skip -= 1;
                            } else if !skipping {
                                let buf = [v];
                                let (s, _, _) = codepage.decode(&buf);
                                out.push_str(&s);
                            }
                        }
                    }
                    b'~' if !skipping => out.push('\u{00A0}'),
                    b'-' | b'_' if !skipping => {}
                    b'\\' | b'{' | b'}' if !skipping => out.push(c as char),
                    b'\n' | b'\r' if !skipping => out.push('\n'),
                    _ => {}
                }
            }
            b'\r' | b'\n' => i += 1,
            _ => {
                i += 1;
                if pending_skip > 0 {
                    pending_skip -= 1;
                    continue;
                }
                if !skipping {
                    // Plain text is 7-bit in RTF; anything else is kept as Latin-1.
                    out.push(b as char);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rtf_text_with_escapes_and_skipped_tables() {
        let rtf = br"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}{\colortbl;\red0;}{\*\generator Writer}
\pard Jos\'e9 Garc\'eda\par
\u8226?\tab Python\par {\*\bkmkstart x}Ren\u233\'e9e}";
        let t = extract(rtf, Deadline::after(Duration::from_secs(5))).unwrap();
        assert_eq!(super::super::normalize(&t), "José García\n• Python\nRenée");
    }
}
