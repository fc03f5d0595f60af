//! The audio subset of Matroska/WebM: find the audio track and yield its frames.
//!
//! Written here because symphonia's Matroska reader cannot read what browsers record:
//! `MediaRecorder` writes the Segment and every Cluster with an unknown size (it cannot
//! seek back to patch lengths), which symphonia rejects (pdeljanov/Symphonia#541). This
//! reader never needs a master element's end: it walks masters' children as one flat
//! stream, so unknown sizes, truncated recordings and Chrome's single open-ended Cluster
//! all read the same way.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebmError(pub String);

impl std::fmt::Display for WebmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Track {
    pub number: u64,
    pub kind: u64,
    pub codec_id: String,
    pub codec_private: Vec<u8>,
    pub channels: u64,
    pub sample_rate: f64,
    /// Nanoseconds of decoder delay (Opus pre-skip), when the muxer wrote it.
    pub codec_delay_ns: u64,
}

/// The first audio track and its frames, in file order.
#[derive(Debug)]
pub struct AudioTrack<'a> {
    pub track: Track,
    pub frames: Vec<&'a [u8]>,
}

const EBML: u32 = 0x1A45_DFA3;
const DOC_TYPE: u32 = 0x4282;
const SEGMENT: u32 = 0x1853_8067;
const CLUSTER: u32 = 0x1F43_B675;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const AUDIO: u32 = 0xE1;
const BLOCK_GROUP: u32 = 0xA0;
const SIMPLE_BLOCK: u32 = 0xA3;
const BLOCK: u32 = 0xA1;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const CHANNELS: u32 = 0x9F;
const SAMPLING_FREQUENCY: u32 = 0xB5;
const CODEC_DELAY: u32 = 0x56AA;

/// Masters whose children we read in line (their sizes may be unknown).
fn is_walked_master(id: u32) -> bool {
    matches!(id, SEGMENT | CLUSTER | TRACKS | TRACK_ENTRY | AUDIO | BLOCK_GROUP)
}

pub fn is_ebml(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3])
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn id(&mut self) -> Option<u32> {
        let first = *self.data.get(self.pos)?;
        let len = first.leading_zeros() as usize + 1;
        if len > 4 {
            return None;
        }
        let bytes = self.data.get(self.pos..self.pos + len)?;
        self.pos += len;
        Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | b as u32))
    }

    /// A size; `Ok(None)` is the reserved "unknown size" value.
    fn size(&mut self) -> Result<Option<u64>, WebmError> {
        let first = *self.data.get(self.pos).ok_or_else(|| WebmError("truncated element size".into()))?;
        if first == 0 {
            return Err(WebmError("invalid element size".into()));
        }
        let len = first.leading_zeros() as usize + 1;
        let bytes =
            self.data.get(self.pos..self.pos + len).ok_or_else(|| WebmError("truncated element size".into()))?;
        self.pos += len;
        let mask = (1u64 << (7 * len)) - 1;
        let value = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64) & mask;
        Ok(if value == mask { None } else { Some(value) })
    }
}

fn uint(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0u64, |acc, &x| (acc << 8) | x as u64)
}

fn float(b: &[u8]) -> f64 {
    match b.len() {
        4 => f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64,
        8 => f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        _ => 0.0,
    }
}

/// A vint as used for the track number inside a block (marker bit removed).
fn block_vint(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let bytes = b.get(..len)?;
    let mask = (1u64 << (7 * len)) - 1;
    Some((bytes.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64) & mask, len))
}

/// Frames of one (Simple)Block payload, undoing Xiph, EBML or fixed-size lacing.
fn block_frames(payload: &[u8]) -> Result<(u64, Vec<&[u8]>), WebmError> {
    let bad = || WebmError("malformed block".into());
    let (track, n) = block_vint(payload).ok_or_else(bad)?;
    let rest = payload.get(n + 2..).ok_or_else(bad)?;
    let (&flags, body) = rest.split_first().ok_or_else(bad)?;
    let lacing = (flags >> 1) & 3;
    if lacing == 0 {
        return Ok((track, vec![body]));
    }
    let (&count_minus_one, mut body) = body.split_first().ok_or_else(bad)?;
    let count = count_minus_one as usize + 1;
    let mut sizes = Vec::with_capacity(count);
    match lacing {
        1 => {
            for _ in 0..count - 1 {
                let mut size = 0usize;
                loop {
                    let (&b, r) = body.split_first().ok_or_else(bad)?;
                    body = r;
                    size += b as usize;
                    if b != 255 {
                        break;
                    }
                }
                sizes.push(size);
            }
        }
        3 => {
            let (first, n) = block_vint(body).ok_or_else(bad)?;
            body = &body[n..];
            sizes.push(first as usize);
            let mut prev = first as i64;
            for _ in 1..count - 1 {
                let (raw, n) = block_vint(body).ok_or_else(bad)?;
                body = &body[n..];
                let bias = (1i64 << (7 * n - 1)) - 1;
                prev += raw as i64 - bias;
                if prev < 0 {
                    return Err(bad());
                }
                sizes.push(prev as usize);
            }
        }
        _ => {
            if body.len() % count != 0 {
                return Err(bad());
            }
            sizes = vec![body.len() / count; count - 1];
        }
    }
    let laced: usize = sizes.iter().sum();
    let last = body.len().checked_sub(laced).ok_or_else(bad)?;
    sizes.push(last);
    let mut frames = Vec::with_capacity(count);
    let mut at = 0;
    for s in sizes {
        frames.push(&body[at..at + s]);
        at += s;
    }
    Ok((track, frames))
}

/// Read the first audio track. A file cut short keeps the frames read before the cut.
pub fn demux(data: &[u8]) -> Result<AudioTrack<'_>, WebmError> {
    let mut r = Reader { data, pos: 0 };
    let mut tracks: Vec<Track> = Vec::new();
    let mut audio: Option<u64> = None;
    let mut frames: Vec<&[u8]> = Vec::new();
    let mut saw_header = false;
    while r.pos < data.len() {
        let Some(id) = r.id() else {
            if frames.is_empty() {
                return Err(WebmError(format!("invalid element id at byte {}", r.pos)));
            }
            break; // trailing garbage after the recording
        };
        let size = match r.size() {
            Ok(s) => s,
            Err(e) if frames.is_empty() => return Err(e),
            Err(_) => break,
        };
        if is_walked_master(id) {
            if id == TRACK_ENTRY {
                tracks.push(Track::default());
            }
            continue;
        }
        let Some(size) = size else {
            if !frames.is_empty() {
                break;
            }
            return Err(WebmError(format!("element {id:#x} has an unknown size")));
        };
        let end = r.pos.saturating_add(size as usize);
        let truncated = end > data.len();
        let payload = &data[r.pos..end.min(data.len())];
        r.pos = end.min(data.len());
        if truncated && !matches!(id, SIMPLE_BLOCK | BLOCK) {
            break;
        }
        match id {
            EBML => {
                let mut h = Reader { data: payload, pos: 0 };
                while let Some(cid) = h.id() {
                    let Ok(Some(n)) = h.size() else { break };
                    let v = payload.get(h.pos..h.pos + n as usize).unwrap_or(&[]);
                    h.pos += n as usize;
                    if cid == DOC_TYPE {
                        let doc = String::from_utf8_lossy(v);
                        let doc = doc.trim_end_matches('\0');
                        if doc != "webm" && doc != "matroska" {
                            return Err(WebmError(format!("EBML document type `{doc}` is not WebM or Matroska")));
                        }
                    }
                }
                saw_header = true;
            }
            TRACK_NUMBER | TRACK_TYPE | CODEC_ID | CODEC_PRIVATE | CHANNELS | SAMPLING_FREQUENCY | CODEC_DELAY => {
                // A field before any TrackEntry opened is ignored.
                if let Some(t) = tracks.last_mut() {
                    match id {
                        TRACK_NUMBER => t.number = uint(payload),
                        TRACK_TYPE => t.kind = uint(payload),
                        CODEC_ID => t.codec_id = String::from_utf8_lossy(payload).trim_end_matches('\0').to_string(),
                        CODEC_PRIVATE => t.codec_private = payload.to_vec(),
                        CHANNELS => t.channels = uint(payload),
                        SAMPLING_FREQUENCY => t.sample_rate = float(payload),
                        _ => t.codec_delay_ns = uint(payload),
                    }
                }
            }
            SIMPLE_BLOCK | BLOCK => {
                if audio.is_none() {
                    audio = tracks.iter().find(|t| t.kind == 2).map(|t| t.number);
                }
                if truncated {
                    break;
                }
                let (track, fs) = match block_frames(payload) {
                    Ok(v) => v,
                    Err(e) if frames.is_empty() => return Err(e),
                    Err(_) => continue,
                };
                if Some(track) == audio {
                    frames.extend(fs);
                }
            }
            _ => {}
        }
    }
    if !saw_header {
        return Err(WebmError("no EBML header".into()));
    }
    let track = match audio {
        Some(n) => tracks.into_iter().find(|t| t.number == n),
        None => tracks.into_iter().find(|t| t.kind == 2),
    }
    .ok_or_else(|| WebmError("no audio track".into()))?;
    Ok(AudioTrack { track, frames })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn el(id: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = id.to_be_bytes().iter().skip_while(|&&b| b == 0).copied().collect::<Vec<u8>>();
        out.push(0x01); // 8-byte size
        out.extend_from_slice(&(payload.len() as u64).to_be_bytes()[1..]);
        out.extend_from_slice(payload);
        out
    }

    fn unknown(id: u32) -> Vec<u8> {
        let mut out = id.to_be_bytes().iter().skip_while(|&&b| b == 0).copied().collect::<Vec<u8>>();
        out.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        out
    }

    /// A live-recorded WebM (unknown-size Segment and Clusters) with the given frames on
    /// audio track 1 and a video track 2 interleaved.
    pub(crate) fn live_webm(codec: &str, private: &[u8], frames: &[&[u8]]) -> Vec<u8> {
        let mut out = el(EBML, &el(DOC_TYPE, b"webm"));
        out.extend(unknown(SEGMENT));
        let mut video = el(TRACK_NUMBER, &[2]);
        video.extend(el(TRACK_TYPE, &[1]));
        video.extend(el(CODEC_ID, b"V_VP8"));
        let mut audio = el(TRACK_NUMBER, &[1]);
        audio.extend(el(TRACK_TYPE, &[2]));
        audio.extend(el(CODEC_ID, codec.as_bytes()));
        audio.extend(el(CODEC_PRIVATE, private));
        audio.extend(el(AUDIO, &[el(CHANNELS, &[1]), el(SAMPLING_FREQUENCY, &48000f64.to_be_bytes())].concat()));
        let tracks = [el(TRACK_ENTRY, &video), el(TRACK_ENTRY, &audio)].concat();
        out.extend(el(TRACKS, &tracks));
        for (i, f) in frames.iter().enumerate() {
            if i % 3 == 0 {
                out.extend(unknown(CLUSTER));
                out.extend(el(0xE7, &[i as u8]));
            }
            let mut b = vec![0x81, 0, 0, 0x80];
            b.extend_from_slice(f);
            out.extend(el(SIMPLE_BLOCK, &b));
            out.extend(el(SIMPLE_BLOCK, &[0x82, 0, 0, 0x80, 9, 9, 9]));
        }
        out
    }

    #[test]
    fn reads_unknown_size_clusters_and_picks_the_audio_track() {
        let frames: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i; 5 + i as usize]).collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        let file = live_webm("A_OPUS", b"OpusHead-ish", &refs);
        let t = demux(&file).unwrap();
        assert_eq!(t.track.codec_id, "A_OPUS");
        assert_eq!(t.track.channels, 1);
        assert_eq!(t.track.sample_rate, 48000.0);
        assert_eq!(t.track.codec_private, b"OpusHead-ish");
        assert_eq!(t.frames, refs);
        // Cut mid-block: the frames before the cut survive.
        let cut = demux(&file[..file.len() - 21]).unwrap();
        assert_eq!(cut.frames.len(), 6);
    }

    #[test]
    fn lacing_is_undone() {
        // Xiph lacing, 3 frames of 2, 300 and 1 bytes.
        let mut p = vec![0x81, 0, 0, 0x82, 2, 2, 255, 45];
        p.extend(vec![1u8; 2]);
        p.extend(vec![2u8; 300]);
        p.push(3);
        let (track, f) = block_frames(&p).unwrap();
        assert_eq!(track, 1);
        assert_eq!(f.iter().map(|x| x.len()).collect::<Vec<_>>(), vec![2, 300, 1]);
        // Fixed-size lacing, 2 frames of 3.
        let (_, f) = block_frames(&[0x81, 0, 0, 0x84, 1, 1, 1, 1, 2, 2, 2]).unwrap();
        assert_eq!(f, vec![&[1u8, 1, 1][..], &[2u8, 2, 2][..]]);
        // EBML lacing, 3 frames: 2, then 2+1=3, then the rest (1).
        let (_, f) = block_frames(&[0x81, 0, 0, 0x86, 2, 0x82, 0xC0, 7, 7, 8, 8, 8, 9]).unwrap();
        assert_eq!(f.iter().map(|x| x.len()).collect::<Vec<_>>(), vec![2, 3, 1]);
        assert!(block_frames(&[0x81, 0, 0, 0x82, 2, 200, 1]).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(demux(b"").is_err());
        assert!(demux(&[0x1A, 0x45, 0xDF, 0xA3]).is_err());
        assert!(demux(&[0x1A, 0x45, 0xDF, 0xA3, 0x00]).is_err());
        let mut x = 0x1234_5678u32;
        for len in 0..300 {
            let mut b = vec![0x1A, 0x45, 0xDF, 0xA3];
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                b.push(x as u8);
            }
            let _ = demux(&b);
        }
    }
}
