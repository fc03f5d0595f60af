//! The transcription loop: 30 s windows over the log-mel features, each decoded with
//! Whisper's rules (suppress lists, timestamp pairing, temperature fallback on a bad
//! compression ratio or log-probability), segments cut at timestamp tokens, and the next
//! window starting where the last complete segment ended. Silence is gated twice — by
//! audio energy before decoding, and by the no-speech probability after — so that quiet
//! stretches never turn into "you".

use candle_core::Device;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::ct2::Ct2Model;
use crate::mel::{self, HOP, N_FRAMES, SAMPLE_RATE};
use crate::model::{KvCache, LoadError, Whisper};
use crate::vocab::Vocab;

/// Knobs of the decoder, defaulting to Whisper's reference values.
#[derive(Debug, Clone)]
pub struct Options {
    pub temperatures: Vec<f32>,
    /// Candidates sampled at each temperature above zero; the most likely is kept.
    pub best_of: usize,
    pub compression_ratio_threshold: f64,
    pub logprob_threshold: f64,
    pub no_speech_threshold: f64,
    pub condition_on_previous_text: bool,
    /// Latest allowed first timestamp of a window, in seconds.
    pub max_initial_timestamp: f64,
    /// RMS (full scale = 1) of the loudest 20 ms frame below which a stretch is silence.
    pub silence_rms: f32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            best_of: 5,
            compression_ratio_threshold: 2.4,
            logprob_threshold: -1.0,
            no_speech_threshold: 0.6,
            condition_on_previous_text: true,
            max_initial_timestamp: 1.0,
            // About -54 dBFS: room tone and digital silence sit below, speech well above.
            silence_rms: 0.002,
        }
    }
}

/// One stretch of speech with its timing (seconds) and the decoder's confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Mean log-probability of the window's tokens (closer to 0 is more confident).
    pub avg_logprob: f64,
    /// Probability the window holds no speech.
    pub no_speech_prob: f64,
}

/// A finished transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transcript {
    pub text: String,
    /// ISO 639-1 code of the spoken language.
    pub language: String,
    /// Length of the audio in seconds.
    pub duration: f64,
    pub segments: Vec<Segment>,
    /// Words per minute over the span from the first segment's start to the last one's
    /// end (0 when nothing was said).
    pub words_per_minute: f64,
}

#[derive(Debug, Clone)]
struct DecodeResult {
    tokens: Vec<u32>,
    avg_logprob: f64,
    sum_logprob: f64,
    no_speech_prob: f64,
    temperature: f32,
    compression_ratio: f64,
}

pub struct Transcriber {
    model: Whisper,
    vocab: Vocab,
    filters: Vec<f32>,
    suppress: Vec<u32>,
    suppress_begin: Vec<u32>,
    multilingual: bool,
    pub options: Options,
}

#[derive(Debug, Deserialize)]
struct ModelConfig {
    #[serde(default)]
    suppress_ids: Vec<u32>,
    #[serde(default)]
    suppress_ids_begin: Vec<u32>,
}

fn zlib_ratio(text: &str) -> f64 {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let compressed = miniz_oxide::deflate::compress_to_vec_zlib(bytes, 6);
    bytes.len() as f64 / compressed.len().max(1) as f64
}

fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + logits.iter().map(|&l| (l - max).exp()).sum::<f32>().ln()
}

/// Sample offset of the first 20 ms frame of `samples` louder than `threshold` (RMS).
pub fn first_audible_frame(samples: &[f32], threshold: f32) -> Option<usize> {
    let frame = SAMPLE_RATE / 50;
    samples
        .chunks(frame)
        .position(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt() >= threshold)
        .map(|i| i * frame)
}

/// RMS of the loudest 20 ms frame of `samples`.
pub fn peak_frame_rms(samples: &[f32]) -> f32 {
    samples
        .chunks(SAMPLE_RATE / 50)
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt())
        .fold(0.0, f32::max)
}

impl Transcriber {
    /// Load `model.bin`, `config.json` and `vocabulary.txt` from `dir`.
    pub fn load(dir: &Path) -> Result<Transcriber, LoadError> {
        let read = |f: &str| {
            std::fs::read(dir.join(f)).map_err(|e| LoadError::Unsupported(format!("{}: {e}", dir.join(f).display())))
        };
        let bin = read("model.bin")?;
        let ct2 = Ct2Model::parse(&bin)?;
        let model = Whisper::load(&ct2, &Device::Cpu)?;
        drop(ct2);
        drop(bin);
        let config: ModelConfig = serde_json::from_slice(&read("config.json")?)
            .map_err(|e| LoadError::Unsupported(format!("config.json: {e}")))?;
        let vocab_text = String::from_utf8(read("vocabulary.txt")?)
            .map_err(|_| LoadError::Unsupported("vocabulary.txt is not UTF-8".into()))?;
        let vocab = Vocab::parse(&vocab_text).map_err(LoadError::Unsupported)?;
        if vocab.len() != model.dims.n_vocab {
            return Err(LoadError::Unsupported(format!(
                "vocabulary has {} tokens, the model {}",
                vocab.len(),
                model.dims.n_vocab
            )));
        }
        let n_vocab = model.dims.n_vocab as u32;
        // Whisper's own list plus the task and special tokens it always suppresses.
        let mut suppress: Vec<u32> = config.suppress_ids.into_iter().filter(|&t| t < n_vocab).collect();
        suppress.extend([vocab.transcribe, vocab.sot, vocab.sot_prev, vocab.no_speech]);
        suppress.extend(vocab.translate.into_iter().chain(vocab.sot_lm));
        suppress.sort_unstable();
        suppress.dedup();
        let mut suppress_begin: Vec<u32> = config.suppress_ids_begin.into_iter().filter(|&t| t < n_vocab).collect();
        if suppress_begin.is_empty() {
            suppress_begin = vec![220, vocab.eot];
        }
        Ok(Transcriber {
            filters: mel::filterbank(model.dims.n_mels),
            multilingual: model.dims.n_vocab >= 51865,
            model,
            vocab,
            suppress,
            suppress_begin,
            options: Options::default(),
        })
    }

    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    pub fn n_vocab(&self) -> usize {
        self.model.dims.n_vocab
    }

    /// Transcribe 16 kHz mono samples.
    pub fn transcribe(&self, samples: &[f32]) -> candle_core::Result<Transcript> {
        let opts = &self.options;
        let duration = samples.len() as f64 / SAMPLE_RATE as f64;
        let n_mels = self.model.dims.n_mels;
        let (mel, n_frames) = mel::log_mel(samples, &self.filters, n_mels);
        let content_frames = n_frames - N_FRAMES;
        let window = |seek: usize| -> Vec<f32> {
            let mut w = Vec::with_capacity(n_mels * N_FRAMES);
            for m in 0..n_mels {
                w.extend_from_slice(&mel[m * n_frames + seek..m * n_frames + seek + N_FRAMES]);
            }
            w
        };
        let input_stride = N_FRAMES / self.model.dims.n_audio_ctx;
        let time_precision = input_stride as f64 * HOP as f64 / SAMPLE_RATE as f64;
        let tb = self.vocab.timestamp_begin;

        let mut language = "en".to_string();
        let mut sot_sequence = vec![self.vocab.sot];
        let mut segments: Vec<Segment> = Vec::new();
        let mut all_tokens: Vec<u32> = Vec::new();
        let mut prompt_reset_since = 0;
        let mut language_known = !self.multilingual;
        let mut seek = 0usize;
        let mut window_index = 0u64;
        while seek < content_frames {
            let time_offset = (seek * HOP) as f64 / SAMPLE_RATE as f64;
            let segment_size = (content_frames - seek).min(N_FRAMES);
            let segment_duration = (segment_size * HOP) as f64 / SAMPLE_RATE as f64;
            let audio = &samples[(seek * HOP).min(samples.len())..((seek + segment_size) * HOP).min(samples.len())];
            // Energy gate: nothing audible, nothing to decode; and a window that opens with
            // over a second of silence starts instead just before the sound (Whisper would
            // stamp the speech at the window's start and may invent words in the quiet).
            match first_audible_frame(audio, opts.silence_rms) {
                None => {
                    seek += segment_size;
                    continue;
                }
                Some(at) if at > SAMPLE_RATE => {
                    seek += (at - SAMPLE_RATE / 5) / HOP;
                    continue;
                }
                Some(_) => {}
            }
            let features = self.model.encode(&window(seek))?;
            let mut cache = self.model.cache(&features)?;
            if !language_known {
                let (lang_token, code) = self.detect_language(&mut cache)?;
                sot_sequence = vec![self.vocab.sot, lang_token, self.vocab.transcribe];
                language = code;
                language_known = true;
            }
            let prompt = &all_tokens[prompt_reset_since..];
            let result = self.decode_with_fallback(&mut cache, prompt, &sot_sequence, window_index)?;
            window_index += 1;

            if result.no_speech_prob > opts.no_speech_threshold && result.avg_logprob <= opts.logprob_threshold {
                seek += segment_size;
                continue;
            }
            let tokens = &result.tokens;
            let is_ts = |t: u32| t >= tb;
            let single_timestamp_ending =
                tokens.len() >= 2 && !is_ts(tokens[tokens.len() - 2]) && is_ts(tokens[tokens.len() - 1]);
            let consecutive: Vec<usize> =
                (1..tokens.len()).filter(|&i| is_ts(tokens[i - 1]) && is_ts(tokens[i])).collect();
            let mut current: Vec<(f64, f64, &[u32])> = Vec::new();
            if !consecutive.is_empty() {
                let mut slices = consecutive.clone();
                if single_timestamp_ending {
                    slices.push(tokens.len());
                }
                let mut last = 0;
                for &cut in &slices {
                    let part = &tokens[last..cut];
                    let start = time_offset + (part[0].saturating_sub(tb)) as f64 * time_precision;
                    let end = time_offset + (part[part.len() - 1].saturating_sub(tb)) as f64 * time_precision;
                    current.push((start, end, part));
                    last = cut;
                }
                if single_timestamp_ending {
                    seek += segment_size;
                } else {
                    let last_ts = tokens[last - 1].saturating_sub(tb) as usize;
                    seek += (last_ts * input_stride).max(1);
                }
            } else {
                let mut end = segment_duration;
                if let Some(&last_ts) = tokens.iter().rev().find(|&&t| is_ts(t))
                    && last_ts != tb
                {
                    end = (last_ts - tb) as f64 * time_precision;
                }
                current.push((time_offset, time_offset + end, &tokens[..]));
                seek += segment_size;
            }
            for (start, end, part) in current {
                let end = end.min(duration);
                let raw = self.vocab.decode(part);
                if start >= end || raw.trim().is_empty() {
                    continue;
                }
                // Energy gate per segment: a span with nothing audible is a hallucination.
                let span = &samples[((start * SAMPLE_RATE as f64) as usize).min(samples.len())
                    ..((end * SAMPLE_RATE as f64).ceil() as usize).min(samples.len())];
                if peak_frame_rms(span) < opts.silence_rms {
                    continue;
                }
                all_tokens.extend_from_slice(part);
                segments.push(Segment {
                    start: round3(start),
                    end: round3(end),
                    text: raw,
                    avg_logprob: round3(result.avg_logprob),
                    no_speech_prob: round3(result.no_speech_prob),
                });
            }
            if !opts.condition_on_previous_text || result.temperature > 0.5 {
                prompt_reset_since = all_tokens.len();
            }
        }
        let text = segments.iter().map(|s| s.text.as_str()).collect::<String>().trim().to_string();
        for s in &mut segments {
            s.text = s.text.trim().to_string();
        }
        let words = text.split_whitespace().count();
        let words_per_minute = match (segments.first(), segments.last()) {
            (Some(first), Some(last)) if words > 0 => {
                let span = (last.end - first.start).max(1.0);
                (words as f64 * 60.0 / span * 10.0).round() / 10.0
            }
            _ => 0.0,
        };
        Ok(Transcript { text, language, duration: round3(duration), segments, words_per_minute })
    }

    fn detect_language(&self, cache: &mut KvCache) -> candle_core::Result<(u32, String)> {
        let logits = self.model.decode(&[self.vocab.sot], cache, &[0])?.remove(0);
        cache.reset();
        let best = self
            .vocab
            .languages
            .iter()
            .filter(|(t, _)| (*t as usize) < logits.len())
            .max_by(|a, b| logits[a.0 as usize].total_cmp(&logits[b.0 as usize]));
        Ok(best.cloned().unwrap_or((self.vocab.sot + 1, "en".into())))
    }

    fn decode_with_fallback(
        &self,
        cache: &mut KvCache,
        prompt: &[u32],
        sot_sequence: &[u32],
        window_index: u64,
    ) -> candle_core::Result<DecodeResult> {
        let opts = &self.options;
        let mut best: Option<DecodeResult> = None;
        for (i, &t) in opts.temperatures.iter().enumerate() {
            let candidates = if t > 0.0 { opts.best_of.max(1) } else { 1 };
            let mut rng = rand::rngs::StdRng::seed_from_u64(window_index * 1000 + i as u64);
            let mut chosen: Option<DecodeResult> = None;
            for _ in 0..candidates {
                cache.reset();
                let r = self.decode_once(cache, prompt, sot_sequence, t, &mut rng)?;
                let score = |r: &DecodeResult| r.sum_logprob / r.tokens.len().max(1) as f64;
                if chosen.as_ref().is_none_or(|c| score(&r) > score(c)) {
                    chosen = Some(r);
                }
            }
            let r = chosen.expect("at least one candidate");
            let mut needs_fallback =
                r.compression_ratio > opts.compression_ratio_threshold || r.avg_logprob < opts.logprob_threshold;
            if r.no_speech_prob > opts.no_speech_threshold {
                needs_fallback = false;
            }
            best = Some(r);
            if !needs_fallback {
                break;
            }
        }
        Ok(best.expect("temperatures are not empty"))
    }

    /// The logit rules of Whisper's decoder: suppress lists, and timestamps that come in
    /// pairs, never go backwards, start within `max_initial_timestamp`, and win when their
    /// total probability beats any single text token.
    pub(crate) fn filter_logits(&self, logits: &mut [f32], sampled: &[u32]) {
        let ninf = f32::NEG_INFINITY;
        let tb = self.vocab.timestamp_begin as usize;
        let eot = self.vocab.eot as usize;
        let n = logits.len();
        if sampled.is_empty() {
            for &t in &self.suppress_begin {
                logits[t as usize] = ninf;
            }
        }
        for &t in &self.suppress {
            logits[t as usize] = ninf;
        }
        logits[self.vocab.no_timestamps as usize] = ninf;
        let is_ts = |t: u32| t as usize >= tb;
        let last_was_ts = sampled.last().is_some_and(|&t| is_ts(t));
        let penultimate_was_ts = sampled.len() < 2 || is_ts(sampled[sampled.len() - 2]);
        if last_was_ts {
            if penultimate_was_ts {
                logits[tb..].fill(ninf);
            } else {
                logits[..eot].fill(ninf);
            }
        }
        if let Some(&last_ts) = sampled.iter().rev().find(|&&t| is_ts(t)) {
            let limit = if last_was_ts && !penultimate_was_ts { last_ts } else { last_ts + 1 };
            logits[tb..(limit as usize).min(n)].fill(ninf);
        }
        if sampled.is_empty() {
            logits[..tb].fill(ninf);
            let max_index = (self.options.max_initial_timestamp / 0.02).round() as usize;
            if tb + max_index + 1 < n {
                logits[tb + max_index + 1..].fill(ninf);
            }
        }
        // Compare in logit space: the softmax normaliser cancels out of both sides.
        let ts_lse = log_sum_exp(&logits[tb..]);
        if ts_lse > f32::NEG_INFINITY {
            let text_max = logits[..tb].iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if ts_lse > text_max {
                logits[..tb].fill(ninf);
            }
        }
    }

    fn decode_once(
        &self,
        cache: &mut KvCache,
        prompt: &[u32],
        sot_sequence: &[u32],
        temperature: f32,
        rng: &mut rand::rngs::StdRng,
    ) -> candle_core::Result<DecodeResult> {
        let n_ctx = self.model.dims.n_text_ctx;
        let sample_len = n_ctx / 2;
        let mut initial = Vec::new();
        if !prompt.is_empty() {
            initial.push(self.vocab.sot_prev);
            initial.extend_from_slice(&prompt[prompt.len().saturating_sub(n_ctx / 2 - 1)..]);
        }
        let sot_index = initial.len();
        initial.extend_from_slice(sot_sequence);
        let sample_begin = initial.len();

        let mut rows = self.model.decode(&initial, cache, &[sot_index, sample_begin - 1])?;
        let mut logits = rows.pop().expect("two rows");
        let sot_logits = rows.pop().expect("two rows");
        let no_speech_prob = (sot_logits[self.vocab.no_speech as usize] - log_sum_exp(&sot_logits)).exp() as f64;

        let mut tokens: Vec<u32> = Vec::new();
        let mut sum_logprob = 0f64;
        for _ in 0..sample_len {
            self.filter_logits(&mut logits, &tokens);
            let lse = log_sum_exp(&logits);
            let next = if temperature == 0.0 {
                logits
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, _)| i as u32)
                    .unwrap_or(self.vocab.eot)
            } else {
                sample(&logits, temperature, rng).unwrap_or(self.vocab.eot)
            };
            sum_logprob += (logits[next as usize] - lse) as f64;
            if next == self.vocab.eot {
                break;
            }
            tokens.push(next);
            if cache.len + 1 > n_ctx {
                break;
            }
            logits = self.model.decode(&[next], cache, &[0])?.pop().expect("one row");
        }
        let text = self.vocab.decode(&tokens);
        Ok(DecodeResult {
            avg_logprob: sum_logprob / (tokens.len() + 1) as f64,
            sum_logprob,
            no_speech_prob,
            temperature,
            compression_ratio: zlib_ratio(&text),
            tokens,
        })
    }
}

fn sample(logits: &[f32], temperature: f32, rng: &mut rand::rngs::StdRng) -> Option<u32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return None;
    }
    let weights: Vec<f32> = logits.iter().map(|&l| ((l - max) / temperature).exp()).collect();
    let total: f32 = weights.iter().sum();
    let mut u = rng.random::<f32>() * total;
    for (i, w) in weights.iter().enumerate() {
        if *w > 0.0 {
            if u < *w {
                return Some(i as u32);
            }
            u -= w;
        }
    }
    weights.iter().rposition(|&w| w > 0.0).map(|i| i as u32)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_ratio_flags_repetition() {
        assert!(zlib_ratio(&"you you you you ".repeat(20)) > 2.4);
        assert!(zlib_ratio("And so my fellow Americans, ask not what your country can do for you.") < 2.4);
        assert_eq!(zlib_ratio(""), 0.0);
    }

    #[test]
    fn sampling_respects_suppressed_tokens() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let logits = [f32::NEG_INFINITY, 1.0, f32::NEG_INFINITY, 0.5];
        for _ in 0..200 {
            let t = sample(&logits, 1.0, &mut rng).unwrap();
            assert!(t == 1 || t == 3);
        }
        assert_eq!(sample(&[f32::NEG_INFINITY; 3], 1.0, &mut rng), None);
    }

    #[test]
    fn peak_rms_finds_the_loud_frame() {
        let mut s = vec![0.0f32; 16000];
        assert_eq!(peak_frame_rms(&s), 0.0);
        for x in &mut s[8000..8320] {
            *x = 0.5;
        }
        assert!((peak_frame_rms(&s) - 0.5).abs() < 1e-6);
    }
}
