//! Audio in: detect the container from the bytes, decode, mix to mono and resample to
//! 16 kHz, streaming (the 16 kHz mono result is the only full-length buffer held).
//!
//! - WAV, MP3, FLAC, OGG/Vorbis, M4A/MP4 (AAC), ADTS AAC: symphonia.
//! - OGG/Opus: symphonia's Ogg demuxer, packets decoded by ropus (mono, stereo and
//!   multichannel streams).
//! - WebM/Matroska Opus (what browsers record): our [`crate::webm`] demuxer and ropus;
//!   other codecs in WebM/Matroska (Vorbis, FLAC, AAC): symphonia's Matroska reader.
//!
//! ropus is a pure-Rust, bit-exact port of the reference libopus decoder: nothing to
//! install on CI or in the Lambda/Cloud Run image, and it decodes straight to 16 kHz
//! mono, which Opus supports natively, so Opus needs no resampling at all.

use bytes::Bytes;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoderOptions, CODEC_ID_NULL_AUDIO};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, Track};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::mel::SAMPLE_RATE;

/// The containers we recognise from their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Wav,
    Flac,
    Ogg,
    WebM,
    Mp3,
    Mp4,
    Aac,
}

impl Container {
    pub fn name(self) -> &'static str {
        match self {
            Container::Wav => "wav",
            Container::Flac => "flac",
            Container::Ogg => "ogg",
            Container::WebM => "webm",
            Container::Mp3 => "mp3",
            Container::Mp4 => "mp4",
            Container::Aac => "aac",
        }
    }
}

/// Why audio could not be read; each maps to a stable error code.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioError {
    /// The bytes are no container we know.
    UnknownFormat,
    /// A known container holding a codec we do not decode.
    UnsupportedCodec(String),
    NoAudioTrack,
    /// Corrupt or truncated beyond use.
    Malformed(String),
    /// Longer than the limit (seconds).
    TooLong {
        limit_seconds: f64,
    },
}

impl AudioError {
    pub fn code(&self) -> &'static str {
        match self {
            AudioError::UnknownFormat => "unsupported_audio_format",
            AudioError::UnsupportedCodec(_) => "unsupported_codec",
            AudioError::NoAudioTrack => "no_audio_track",
            AudioError::Malformed(_) => "malformed_audio",
            AudioError::TooLong { .. } => "audio_too_long",
        }
    }

    pub fn message(&self) -> String {
        match self {
            AudioError::UnknownFormat => {
                "the body is not audio in a supported format (WAV, MP3, FLAC, OGG Vorbis/Opus, WebM Opus/Vorbis, M4A/AAC)"
                    .into()
            }
            AudioError::UnsupportedCodec(c) => format!("the audio codec is not supported: {c}"),
            AudioError::NoAudioTrack => "the file has no audio track".into(),
            AudioError::Malformed(why) => format!("the audio could not be decoded: {why}"),
            AudioError::TooLong { limit_seconds } => {
                format!("the audio is longer than the limit of {} minutes", limit_seconds / 60.0)
            }
        }
    }
}

/// Decoded audio: 16 kHz mono samples.
#[derive(Debug)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub container: Container,
}

impl Audio {
    pub fn duration(&self) -> f64 {
        self.samples.len() as f64 / SAMPLE_RATE as f64
    }
}

/// The container, from magic bytes.
pub fn sniff(b: &[u8]) -> Option<Container> {
    if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WAVE" {
        return Some(Container::Wav);
    }
    if b.starts_with(b"fLaC") {
        return Some(Container::Flac);
    }
    if b.starts_with(b"OggS") {
        return Some(Container::Ogg);
    }
    if crate::webm::is_ebml(b) {
        return Some(Container::WebM);
    }
    if b.len() >= 8 && &b[4..8] == b"ftyp" {
        return Some(Container::Mp4);
    }
    if b.starts_with(b"ID3") {
        return Some(Container::Mp3);
    }
    if b.len() >= 2 && b[0] == 0xFF {
        // ADTS: sync 0xFFF, layer 00. MPEG audio: sync 0xFFE, layer != 00.
        if b[1] & 0xF6 == 0xF0 {
            return Some(Container::Aac);
        }
        if b[1] & 0xE0 == 0xE0 && b[1] & 0x06 != 0 {
            return Some(Container::Mp3);
        }
    }
    None
}

/// Mixes to mono, counts against the duration limit, and resamples to 16 kHz in chunks.
struct Sink {
    limit_seconds: f64,
    rate: u32,
    source_frames: u64,
    resampler: Option<Fft<f32>>,
    chunk: usize,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    delay_left: usize,
    out: Vec<f32>,
}

const CHUNK: usize = 4096;

impl Sink {
    fn new(limit_seconds: f64) -> Sink {
        Sink {
            limit_seconds,
            rate: 0,
            source_frames: 0,
            resampler: None,
            chunk: CHUNK,
            pending: Vec::new(),
            scratch: Vec::new(),
            delay_left: 0,
            out: Vec::new(),
        }
    }

    fn set_rate(&mut self, rate: u32) -> Result<(), AudioError> {
        if rate == self.rate {
            return Ok(());
        }
        if self.rate != 0 {
            return Err(AudioError::Malformed("the sample rate changes mid-stream".into()));
        }
        if !(1_000..=768_000).contains(&rate) {
            return Err(AudioError::Malformed(format!("implausible sample rate {rate} Hz")));
        }
        self.rate = rate;
        if rate as usize != SAMPLE_RATE {
            let r = Fft::<f32>::new(rate as usize, SAMPLE_RATE, CHUNK, 1, FixedSync::Input)
                .map_err(|e| AudioError::Malformed(format!("cannot resample from {rate} Hz: {e}")))?;
            self.chunk = r.input_frames_next();
            self.scratch = vec![0.0; r.output_frames_max()];
            self.delay_left = r.output_delay();
            self.resampler = Some(r);
        }
        Ok(())
    }

    fn check_length(&self, extra: u64) -> Result<(), AudioError> {
        if (self.source_frames + extra) as f64 > self.limit_seconds * self.rate as f64 {
            return Err(AudioError::TooLong { limit_seconds: self.limit_seconds });
        }
        Ok(())
    }

    /// Interleaved samples with `channels` channels.
    fn push(&mut self, interleaved: &[f32], channels: usize) -> Result<(), AudioError> {
        let channels = channels.max(1);
        let frames = interleaved.len() / channels;
        self.check_length(frames as u64)?;
        self.source_frames += frames as u64;
        let mono = interleaved.chunks_exact(channels).map(|f| {
            let s = f.iter().sum::<f32>() / channels as f32;
            if s.is_finite() { s.clamp(-1.0, 1.0) } else { 0.0 }
        });
        if self.resampler.is_none() {
            self.out.extend(mono);
            return Ok(());
        }
        self.pending.extend(mono);
        while self.pending.len() >= self.chunk {
            self.run(self.chunk, false)?;
        }
        Ok(())
    }

    fn run(&mut self, len: usize, partial: bool) -> Result<(), AudioError> {
        let Some(r) = self.resampler.as_mut() else { return Ok(()) };
        let fail = |e: &dyn std::fmt::Display| AudioError::Malformed(format!("resampling failed: {e}"));
        let input_len = self.pending.len().max(self.chunk);
        if self.pending.len() < input_len {
            self.pending.resize(input_len, 0.0);
        }
        let input = InterleavedSlice::new(&self.pending[..], 1, input_len).map_err(|e| fail(&e))?;
        let out_len = self.scratch.len();
        let mut output = InterleavedSlice::new_mut(&mut self.scratch[..], 1, out_len).map_err(|e| fail(&e))?;
        let indexing = rubato::Indexing {
            input_offset: 0,
            output_offset: 0,
            partial_len: partial.then_some(len),
            active_channels_mask: None,
        };
        let (used, produced) = r.process_into_buffer(&input, &mut output, Some(&indexing)).map_err(|e| fail(&e))?;
        let skip = self.delay_left.min(produced);
        self.delay_left -= skip;
        self.out.extend_from_slice(&self.scratch[skip..produced]);
        self.pending.drain(..used.min(len).min(self.pending.len()));
        if partial {
            self.pending.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<f32>, AudioError> {
        if self.resampler.is_some() {
            let expected = (self.source_frames as f64 * SAMPLE_RATE as f64 / self.rate as f64).round() as usize;
            if !self.pending.is_empty() {
                let n = self.pending.len();
                self.run(n, true)?;
            }
            // Pump silence until the resampler's delay has drained out.
            let mut guard = 0;
            while self.out.len() < expected && guard < 64 {
                self.run(0, true)?;
                guard += 1;
            }
            self.out.truncate(expected);
        }
        Ok(self.out)
    }
}

/// Decode `bytes` to 16 kHz mono, refusing audio longer than `limit_seconds`.
pub fn decode(bytes: Bytes, limit_seconds: f64) -> Result<Audio, AudioError> {
    let container = sniff(&bytes).ok_or(AudioError::UnknownFormat)?;
    // Demuxers and decoders are third-party code fed untrusted bytes; a panic in one of
    // them must become a 422 for this request, not a dead worker.
    let samples = std::panic::catch_unwind(move || match container {
        Container::WebM => decode_webm(bytes, limit_seconds),
        _ => decode_symphonia(bytes, container, limit_seconds),
    })
    .unwrap_or_else(|_| Err(AudioError::Malformed("the decoder rejected the stream".into())))?;
    Ok(Audio { samples, container })
}

/// The fields of an `OpusHead` we act on (RFC 7845 §5.1).
struct OpusHead {
    channels: u8,
    pre_skip: u16,
    gain: i16,
    family: u8,
    /// Family 1 and 255: how many Opus streams a packet holds, how many of them are
    /// coupled (stereo), and the stream channel each output channel comes from.
    streams: u8,
    coupled: u8,
    mapping: Vec<u8>,
}

fn opus_head(b: &[u8]) -> Result<OpusHead, AudioError> {
    if b.len() < 19 || !b.starts_with(b"OpusHead") {
        return Err(AudioError::Malformed("missing or short OpusHead".into()));
    }
    let channels = b[9];
    let family = b[18];
    let (streams, coupled, mapping) = if family == 0 {
        (1, u8::from(channels == 2), Vec::new())
    } else {
        let table = b.get(19..21 + channels as usize).ok_or_else(|| {
            AudioError::Malformed(format!("the OpusHead of a {channels}-channel stream has no channel mapping table"))
        })?;
        (table[0], table[1], table[2..].to_vec())
    };
    Ok(OpusHead {
        channels,
        pre_skip: u16::from_le_bytes([b[10], b[11]]),
        gain: i16::from_le_bytes([b[16], b[17]]),
        family,
        streams,
        coupled,
        mapping,
    })
}

/// Mono and stereo streams decode straight to mono (ropus downmixes inside the decoder);
/// surround and other multichannel streams (mapping families 1 and 255) go through the
/// multistream decoder and are mixed down here.
enum OpusDecoder {
    Mono(Box<ropus::Decoder>),
    Multi { decoder: Box<ropus::OpusMSDecoder>, channels: usize, lfe: Option<usize>, pcm: Vec<i16> },
}

/// 120 ms at 16 kHz: the longest frame an Opus packet holds.
const OPUS_MAX_FRAME: usize = 1_920;

impl OpusDecoder {
    fn new(head: &OpusHead) -> Result<OpusDecoder, AudioError> {
        let unsupported = || {
            AudioError::UnsupportedCodec(format!(
                "Opus with {} channels in mapping family {} (families 0, 1 and 255 are supported)",
                head.channels, head.family
            ))
        };
        if head.channels == 0 {
            return Err(AudioError::Malformed("the OpusHead says 0 channels".into()));
        }
        let mut decoder = match head.family {
            0 if head.channels <= 2 => {
                let d = ropus::Decoder::new(SAMPLE_RATE as u32, ropus::Channels::Mono)
                    .map_err(|e| AudioError::Malformed(format!("opus decoder: {e}")))?;
                OpusDecoder::Mono(Box::new(d))
            }
            1 | 255 => {
                let channels = head.channels as usize;
                let d = ropus::OpusMSDecoder::new(
                    SAMPLE_RATE as i32,
                    head.channels as i32,
                    head.streams as i32,
                    head.coupled as i32,
                    &head.mapping,
                )
                .map_err(|code| {
                    AudioError::Malformed(format!(
                        "the OpusHead's channel mapping is invalid ({} streams, {} coupled, error {code})",
                        head.streams, head.coupled
                    ))
                })?;
                // Vorbis channel order (RFC 7845 §5.1.1.2): the LFE is last in 5.1, 6.1 and 7.1.
                let lfe = (head.family == 1 && (6..=8).contains(&channels)).then_some(channels - 1);
                OpusDecoder::Multi { decoder: Box::new(d), channels, lfe, pcm: vec![0; OPUS_MAX_FRAME * channels] }
            }
            _ => return Err(unsupported()),
        };
        if head.gain != 0 {
            match &mut decoder {
                OpusDecoder::Mono(d) => {
                    d.set_gain(head.gain as i32).map_err(|e| AudioError::Malformed(format!("opus gain: {e}")))?
                }
                OpusDecoder::Multi { decoder, .. } => {
                    let code = decoder.set_gain(head.gain as i32);
                    if code != 0 {
                        return Err(AudioError::Malformed(format!("opus gain {}: error {code}", head.gain)));
                    }
                }
            }
        }
        Ok(decoder)
    }

    /// Decode one packet into `out` (mono, 16 kHz); the number of samples, or `None` when
    /// the packet does not decode.
    fn decode(&mut self, packet: &[u8], out: &mut Vec<f32>) -> Option<usize> {
        match self {
            OpusDecoder::Mono(d) => {
                out.resize(d.max_frame_samples_per_channel(), 0.0);
                let n = d.decode_float(packet, out, ropus::DecodeMode::Normal).ok()?;
                out.truncate(n.min(out.len()));
            }
            OpusDecoder::Multi { decoder, channels, lfe, pcm } => {
                let len = i32::try_from(packet.len()).ok()?;
                let n = decoder.decode(Some(packet), len, pcm, OPUS_MAX_FRAME as i32, false).ok()?;
                let n = usize::try_from(n).ok()?.min(OPUS_MAX_FRAME);
                // The mean of the full-range channels: speech sits in the front and centre,
                // and the LFE carries none.
                let heard = *channels - usize::from(lfe.is_some());
                out.clear();
                out.extend(pcm[..n * *channels].chunks_exact(*channels).map(|frame| {
                    let sum: i32 =
                        frame.iter().enumerate().filter(|(i, _)| Some(*i) != *lfe).map(|(_, s)| *s as i32).sum();
                    sum as f32 / (heard as f32 * 32_768.0)
                }));
            }
        }
        Some(out.len())
    }
}

/// Decode Opus packets to 16 kHz mono with ropus, dropping the encoder's pre-skip.
fn decode_opus<'a>(
    head: &OpusHead,
    packets: impl Iterator<Item = Result<Vec<u8>, AudioError>> + 'a,
    limit_seconds: f64,
) -> Result<Vec<f32>, AudioError> {
    let mut decoder = OpusDecoder::new(head)?;
    let mut sink = Sink::new(limit_seconds);
    sink.set_rate(SAMPLE_RATE as u32)?;
    // Pre-skip counts 48 kHz samples.
    let mut skip = head.pre_skip as usize / 3;
    let mut pcm = Vec::with_capacity(OPUS_MAX_FRAME);
    let (mut good, mut bad) = (0usize, 0usize);
    for packet in packets {
        let packet = packet?;
        if packet.is_empty() {
            continue;
        }
        match decoder.decode(&packet, &mut pcm) {
            Some(n) => {
                good += 1;
                let drop = skip.min(n);
                skip -= drop;
                sink.push(&pcm[drop..n], 1)?;
            }
            None => bad += 1,
        }
    }
    if good == 0 && bad > 0 {
        return Err(AudioError::Malformed(format!("none of {bad} Opus packets decoded")));
    }
    sink.finish()
}

fn decode_webm(bytes: Bytes, limit_seconds: f64) -> Result<Vec<f32>, AudioError> {
    let track = crate::webm::demux(&bytes).map_err(|e| match e.0.as_str() {
        "no audio track" => AudioError::NoAudioTrack,
        _ => AudioError::Malformed(e.0),
    })?;
    match track.track.codec_id.as_str() {
        "A_OPUS" => {
            let mut head = opus_head(&track.track.codec_private)?;
            if head.pre_skip == 0 && track.track.codec_delay_ns > 0 {
                head.pre_skip = (track.track.codec_delay_ns * 48 / 1_000_000).min(u16::MAX as u64) as u16;
            }
            decode_opus(&head, track.frames.into_iter().map(|f| Ok(f.to_vec())), limit_seconds)
        }
        // Anything else (Vorbis from older recorders, FLAC, AAC in Matroska): symphonia's
        // Matroska reader, which since 0.6 also reads the unknown-size elements live
        // recordings are made of.
        _ => decode_symphonia(bytes.clone(), Container::WebM, limit_seconds),
    }
}

fn sym_err(e: SymError) -> AudioError {
    match e {
        SymError::Unsupported(what) => AudioError::UnsupportedCodec(what.to_string()),
        other => AudioError::Malformed(other.to_string()),
    }
}

fn audio_params(t: &Track) -> Option<&AudioCodecParameters> {
    t.codec_params.as_ref().and_then(|p| p.audio()).filter(|p| p.codec != CODEC_ID_NULL_AUDIO)
}

fn decode_symphonia(bytes: Bytes, container: Container, limit_seconds: f64) -> Result<Vec<f32>, AudioError> {
    let mut hint = Hint::new();
    hint.with_extension(container.name());
    let mss = MediaSourceStream::new(Box::new(std::io::Cursor::new(bytes)), Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
        .map_err(|e| match e {
            SymError::Unsupported(_) => AudioError::UnknownFormat,
            other => sym_err(other),
        })?;
    let track = format
        .tracks()
        .iter()
        .find(|t| audio_params(t).is_some_and(|p| p.sample_rate.is_some() || p.codec == CODEC_ID_OPUS))
        .or_else(|| format.tracks().iter().find(|t| audio_params(t).is_some()))
        .cloned()
        .ok_or(AudioError::NoAudioTrack)?;
    let params = audio_params(&track).cloned().ok_or(AudioError::NoAudioTrack)?;
    // Refuse early when the header already says it is too long.
    if let (Some(frames), Some(rate)) = (track.num_frames, params.sample_rate)
        && rate > 0
        && frames as f64 / rate as f64 > limit_seconds + 1.0
    {
        return Err(AudioError::TooLong { limit_seconds });
    }
    let track_id = track.id;
    let mut next_packet = move || -> Option<Result<symphonia::core::packet::Packet, AudioError>> {
        loop {
            match format.next_packet() {
                Ok(Some(p)) if p.track_id == track_id => return Some(Ok(p)),
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
                Err(SymError::ResetRequired) => return None,
                Err(e) => return Some(Err(sym_err(e))),
            }
        }
    };

    if params.codec == CODEC_ID_OPUS {
        let head = opus_head(params.extra_data.as_deref().unwrap_or(&[]))?;
        let packets = std::iter::from_fn(move || next_packet().map(|p| p.map(|p| p.data.into_vec())));
        return decode_opus(&head, packets, limit_seconds);
    }

    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(sym_err)?;
    let mut sink = Sink::new(limit_seconds);
    let mut interleaved: Vec<f32> = Vec::new();
    let (mut good, mut bad) = (0usize, 0usize);
    let mut last_error = String::new();
    while let Some(packet) = next_packet() {
        let packet = match packet {
            Ok(p) => p,
            // A stream that breaks after some audio keeps what decoded (as players do).
            Err(e) if good > 0 => {
                tracing::debug!(error = %e.message(), "audio stream ends early");
                break;
            }
            Err(e) => return Err(e),
        };
        match decoder.decode(&packet) {
            Ok(decoded) => {
                good += 1;
                let spec = decoded.spec();
                sink.set_rate(spec.rate())?;
                let channels = spec.channels().count();
                sink.check_length(decoded.frames() as u64)?;
                decoded.copy_to_vec_interleaved(&mut interleaved);
                sink.push(&interleaved, channels)?;
            }
            Err(SymError::DecodeError(e)) => {
                bad += 1;
                last_error = e.to_string();
            }
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(sym_err(e)),
        }
    }
    if good == 0 && bad > 0 {
        return Err(AudioError::Malformed(last_error));
    }
    sink.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let data_len = (samples.len() * 2) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + data_len).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * channels as u32 * 2).to_le_bytes());
        b.extend_from_slice(&(channels * 2).to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&data_len.to_le_bytes());
        for s in samples {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b
    }

    pub(crate) fn tone(rate: u32, seconds: f32, hz: f32) -> Vec<i16> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| ((2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin() * 12000.0) as i16)
            .collect()
    }

    #[test]
    fn sniffs_containers_from_bytes() {
        assert_eq!(sniff(&wav(16000, 1, &[0; 4])), Some(Container::Wav));
        assert_eq!(sniff(b"fLaC\0\0\0\x22"), Some(Container::Flac));
        assert_eq!(sniff(b"OggS\0\x02"), Some(Container::Ogg));
        assert_eq!(sniff(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]), Some(Container::WebM));
        assert_eq!(sniff(b"\0\0\0\x20ftypM4A "), Some(Container::Mp4));
        assert_eq!(sniff(b"ID3\x04\0"), Some(Container::Mp3));
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x64]), Some(Container::Mp3));
        assert_eq!(sniff(&[0xFF, 0xF1, 0x50, 0x80]), Some(Container::Aac));
        assert_eq!(sniff(b"{\"json\": true}"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn resamples_44k_stereo_to_16k_mono_keeping_length_and_pitch() {
        let rate = 44_100;
        let mono = tone(rate, 2.0, 440.0);
        let stereo: Vec<i16> = mono.iter().flat_map(|&s| [s, s]).collect();
        let audio = decode(Bytes::from(wav(rate, 2, &stereo)), 900.0).unwrap();
        assert_eq!(audio.container, Container::Wav);
        assert_eq!(audio.samples.len(), 32_000);
        // Zero crossings of a 440 Hz tone over 2 s: about 1760.
        let s = &audio.samples[1000..31000];
        let crossings = s.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        assert!((crossings as i64 - 1650).abs() < 20, "{crossings}");
        let rms = (s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32).sqrt();
        assert!((rms - 12000.0 / 32768.0 / 2f32.sqrt()).abs() < 0.01, "{rms}");
    }

    #[test]
    fn refuses_long_audio_and_garbage() {
        let long = wav(8000, 1, &vec![0; 8000 * 5]);
        assert_eq!(decode(Bytes::from(long), 4.0).unwrap_err().code(), "audio_too_long");
        assert_eq!(decode(Bytes::from_static(b"hello world"), 60.0).unwrap_err().code(), "unsupported_audio_format");
        let mut broken = wav(16000, 1, &tone(16000, 0.5, 300.0));
        broken.truncate(30);
        assert!(decode(Bytes::from(broken), 60.0).is_err());
        let empty = wav(16000, 1, &[]);
        assert_eq!(decode(Bytes::from(empty), 60.0).map(|a| a.samples.len()).unwrap_or(0), 0);
    }

    #[test]
    fn inputs_that_once_crashed_the_fuzzer_get_an_answer() {
        // Found by `infra/fuzz.sh`; one is a 1.6 KB M4A whose sample-to-chunk table claims
        // 2^31 entries, which made symphonia 0.5's MP4 demuxer ask for 32 GB and abort the
        // process. Each must now give audio within the limit or a coded error.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/decode");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            match decode(Bytes::from(bytes), 2.0) {
                Ok(a) => assert!(a.samples.len() <= 32_000, "{}: {} samples", path.display(), a.samples.len()),
                Err(e) => assert!(!e.code().is_empty() && !e.message().is_empty()),
            }
            seen += 1;
        }
        assert!(seen >= 4, "regression inputs missing from {}", dir.display());
        let m4a = std::fs::read(dir.join("crash-f83aeab190ede5b27ca34c0e67c65533e0a37fec")).unwrap();
        assert_eq!(sniff(&m4a), Some(Container::Mp4));
        assert_eq!(decode(Bytes::from(m4a), 2.0).unwrap_err().code(), "malformed_audio");
    }

    #[test]
    fn opus_heads_with_bad_or_unknown_channel_mappings_are_refused() {
        let head = |channels: u8, family: u8, table: &[u8]| {
            let mut h = b"OpusHead\x01".to_vec();
            h.push(channels);
            h.extend_from_slice(&[0x38, 0x01, 0x80, 0xBB, 0, 0, 0, 0, family]);
            h.extend_from_slice(table);
            h
        };
        let code = |h: Vec<u8>| match opus_head(&h).and_then(|h| OpusDecoder::new(&h)) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        assert_eq!(code(head(1, 0, &[])), "ok");
        assert_eq!(code(head(6, 1, &[4, 2, 0, 4, 1, 2, 3, 5])), "ok");
        assert_eq!(code(head(3, 0, &[])), "unsupported_codec");
        assert_eq!(code(head(4, 2, &[1, 0, 0, 0, 0, 0])), "unsupported_codec");
        assert_eq!(code(head(0, 0, &[])), "malformed_audio");
        // Family 1 without its table, a table naming a stream that does not exist, more
        // coupled streams than streams.
        assert_eq!(code(head(6, 1, &[4, 2])), "malformed_audio");
        assert_eq!(code(head(6, 1, &[4, 2, 0, 4, 1, 2, 3, 99])), "malformed_audio");
        assert_eq!(code(head(2, 1, &[1, 2, 0, 1])), "malformed_audio");
    }

    #[test]
    fn opus_in_live_webm_decodes_through_ropus() {
        // Encode a tone with ropus itself, mux it the way MediaRecorder does.
        let mut enc = ropus::Encoder::builder(48_000, ropus::Channels::Mono, ropus::Application::Voip).build().unwrap();
        let pcm = tone(48_000, 1.0, 500.0);
        let mut packets = Vec::new();
        for frame in pcm.chunks_exact(960) {
            let mut out = vec![0u8; 4000];
            let n = enc.encode(frame, &mut out).unwrap();
            out.truncate(n);
            packets.push(out);
        }
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 1]);
        head.extend_from_slice(&312u16.to_le_bytes());
        head.extend_from_slice(&48_000u32.to_le_bytes());
        head.extend_from_slice(&[0, 0, 0]);
        let refs: Vec<&[u8]> = packets.iter().map(|p| p.as_slice()).collect();
        let file = crate::webm::tests::live_webm("A_OPUS", &head, &refs);
        let audio = decode(Bytes::from(file), 60.0).unwrap();
        assert_eq!(audio.container, Container::WebM);
        assert_eq!(audio.samples.len(), 16_000 - 104);
        let s = &audio.samples[2000..14000];
        let crossings = s.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        assert!((crossings as i64 - 750).abs() < 25, "{crossings}");
    }
}
