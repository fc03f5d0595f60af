//! Whisper's vocabulary from CTranslate2's `vocabulary.txt` (one GPT-2 byte-level token per
//! line, the line number being the id), and the special tokens found in it by name.
//!
//! Decoding byte-level BPE is a table lookup, so this avoids loading the 2 MB
//! `tokenizer.json` (and the tokenizers crate) at cold start: we never encode text.

use std::collections::HashMap;

#[derive(Debug)]
pub struct Vocab {
    /// Bytes of each token.
    bytes: Vec<Vec<u8>>,
    pub eot: u32,
    pub sot: u32,
    pub sot_prev: u32,
    pub no_speech: u32,
    pub no_timestamps: u32,
    pub transcribe: u32,
    pub translate: Option<u32>,
    pub sot_lm: Option<u32>,
    /// `<|0.00|>`: every id from here on is a timestamp, 20 ms apart.
    pub timestamp_begin: u32,
    /// Language tokens and their codes, for multilingual models.
    pub languages: Vec<(u32, String)>,
}

/// GPT-2's reversible map from bytes to printable characters, inverted.
fn unicode_to_byte() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut chars = printable.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    printable.into_iter().zip(chars).filter_map(|(b, c)| char::from_u32(c).map(|c| (c, b as u8))).collect()
}

impl Vocab {
    pub fn parse(text: &str) -> Result<Vocab, String> {
        let map = unicode_to_byte();
        let lines: Vec<&str> = text.lines().collect();
        let index: HashMap<&str, u32> = lines.iter().enumerate().map(|(i, t)| (*t, i as u32)).collect();
        let find = |t: &str| index.get(t).copied();
        let need = |t: &str| find(t).ok_or_else(|| format!("vocabulary has no `{t}` token"));
        let bytes = lines.iter().map(|t| t.chars().map(|c| map.get(&c).copied().unwrap_or(b'?')).collect()).collect();
        let languages = lines
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let code = t.strip_prefix("<|")?.strip_suffix("|>")?;
                ((2..=3).contains(&code.len()) && code.chars().all(|c| c.is_ascii_lowercase()))
                    .then(|| (i as u32, code.to_string()))
            })
            .collect();
        Ok(Vocab {
            bytes,
            eot: need("<|endoftext|>")?,
            sot: need("<|startoftranscript|>")?,
            sot_prev: need("<|startofprev|>")?,
            no_speech: find("<|nospeech|>")
                .or_else(|| find("<|nocaptions|>"))
                .ok_or("vocabulary has no no-speech token")?,
            no_timestamps: need("<|notimestamps|>")?,
            transcribe: need("<|transcribe|>")?,
            translate: find("<|translate|>"),
            sot_lm: find("<|startoflm|>"),
            timestamp_begin: need("<|0.00|>")?,
            languages,
        })
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The text of `tokens`, special and timestamp tokens left out. Bytes are joined before
    /// UTF-8 decoding because one character can span several tokens.
    pub fn decode(&self, tokens: &[u32]) -> String {
        let mut out = Vec::new();
        for &t in tokens {
            if t < self.eot
                && let Some(b) = self.bytes.get(t as usize)
            {
                out.extend_from_slice(b);
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_tokens_decode_to_text() {
        let mut lines: Vec<String> = vec!["Hello".into(), "Ġworld".into(), "Ã©".into(), "<|endoftext|>".into()];
        for t in ["<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>"] {
            lines.push(t.into());
        }
        for t in ["<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>", "<|0.00|>", "<|0.02|>"] {
            lines.push(t.into());
        }
        let v = Vocab::parse(&lines.join("\n")).unwrap();
        assert_eq!(v.eot, 3);
        assert_eq!(v.no_speech, 10);
        assert_eq!(v.timestamp_begin, 12);
        assert_eq!(v.decode(&[0, 1, 2, 12, 3]), "Hello worldé");
        assert_eq!(v.languages, vec![(5, "en".to_string())]);
    }
}
