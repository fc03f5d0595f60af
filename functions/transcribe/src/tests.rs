//! Quality and interface tests over real recordings in `testdata/` (see its README).

use super::*;
use crate::testutil::{engine, model_dir, testdata};
use catalyst_shared::blob::local::LocalBlobStore;
use catalyst_shared::event::Origin;
use catalyst_shared::queue::local::{QueuePolicy, SqliteQueue};

use http_body_util::BodyExt;
use tower::ServiceExt;

const JFK: &str =
    "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";
const ESPEAK: &str = "I led a team of five engineers and we shipped the new billing system two weeks early.";

/// Lower-case words without punctuation, for word-for-word comparison.
fn words(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate of `hyp` against `reference` (Levenshtein over words).
fn wer(reference: &str, hyp: &str) -> f64 {
    let (r, h) = (words(reference), words(hyp));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut cur = vec![i; h.len() + 1];
        for j in 1..=h.len() {
            let sub = prev[j - 1] + usize::from(r[i - 1] != h[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[h.len()] as f64 / r.len().max(1) as f64
}

fn wav16(samples: &[f32]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::new();
    for part in [&b"RIFF"[..], &(36 + data_len).to_le_bytes(), b"WAVEfmt ", &16u32.to_le_bytes(), &1u16.to_le_bytes()] {
        b.extend_from_slice(part);
    }
    for part in [&1u16.to_le_bytes()[..], &16000u32.to_le_bytes(), &32000u32.to_le_bytes(), &2u16.to_le_bytes()] {
        b.extend_from_slice(part);
    }
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes());
    }
    b
}

#[test]
fn jfk_word_for_word() {
    let t = engine().transcribe_bytes(Bytes::from(testdata("jfk.wav"))).unwrap();
    // Word for word. tiny.en puts no commas in this clip: faster-whisper (CTranslate2) on the
    // same model.bin gives the same words without them, so punctuation is not compared.
    assert_eq!(words(&t.text), words(JFK), "{}", t.text);
    assert_eq!(t.language, "en");
    assert!((t.duration - 11.0).abs() < 0.01);
    assert_eq!(t.segments.len(), 2);
    let (first, last) = (&t.segments[0], &t.segments[1]);
    assert!(first.start < 0.5 && (7.0..=8.5).contains(&first.end), "{first:?}");
    assert!(last.start >= first.end - 0.01 && last.end <= 11.0, "{last:?}");
    assert!(t.segments.iter().all(|s| s.avg_logprob > -0.6 && s.no_speech_prob < 0.2), "{:?}", t.segments);
    // 22 words over 11 s.
    assert!((110.0..=130.0).contains(&t.words_per_minute), "{}", t.words_per_minute);
}

#[test]
fn every_container_gives_the_same_words() {
    let e = engine();
    for file in ["jfk.mp3", "jfk.ogg", "jfk.opus", "jfk.webm", "jfk.m4a", "jfk-vorbis.webm", "jfk-5.1.opus"] {
        let t = e.transcribe_bytes(Bytes::from(testdata(file))).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(words(&t.text), words(JFK), "{file}: {}", t.text);
        assert!((t.duration - 11.0).abs() < 0.1, "{file}: {}", t.duration);
    }
}

#[test]
fn flac_is_lossless() {
    let flac = audio::decode(Bytes::from(testdata("jfk-3s.flac")), 60.0).unwrap();
    let wav = audio::decode(Bytes::from(testdata("jfk.wav")), 60.0).unwrap();
    assert_eq!(flac.container, Container::Flac);
    assert_eq!(flac.samples.len(), 48_000);
    assert_eq!(flac.samples[..], wav.samples[..48_000]);
}

#[test]
fn synthesized_speech() {
    let t = engine().transcribe_bytes(Bytes::from(testdata("espeak.wav"))).unwrap();
    // faster-whisper on the same model hears "I land a team of five engineers and we ship
    // the new building system two weeks early" (WER 0.18): robotic speech is hard for tiny.en.
    let w = wer(ESPEAK, &t.text);
    assert!(w <= 0.19, "WER {w:.2}: {}", t.text);
    assert!(t.text.contains("five engineers") && t.text.contains("two weeks early"), "{}", t.text);
}

#[test]
fn silence_and_room_tone_give_no_words() {
    let e = engine();
    let silence = e.transcribe_bytes(Bytes::from(wav16(&vec![0.0; 16000 * 40]))).unwrap();
    assert_eq!(silence.text, "");
    assert!(silence.segments.is_empty());
    assert_eq!(silence.words_per_minute, 0.0);
    assert!((silence.duration - 40.0).abs() < 1e-9);
    // Quiet noise (about -60 dBFS) is not speech either.
    let mut x = 0x2545_F491u32;
    let noise: Vec<f32> = (0..16000 * 8)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 - 0.5) * 0.003
        })
        .collect();
    let t = e.transcribe_bytes(Bytes::from(wav16(&noise))).unwrap();
    assert_eq!(t.text, "", "{t:?}");
    // A very short tail: a quarter second of silence.
    let t = e.transcribe_bytes(Bytes::from(wav16(&vec![0.0; 4000]))).unwrap();
    assert_eq!(t.text, "");
}

#[test]
fn speech_after_silence_keeps_its_timestamps_across_windows() {
    // 35 s of silence, then the clip: the speech lands in the second window.
    let jfk = audio::decode(Bytes::from(testdata("jfk.wav")), 60.0).unwrap().samples;
    let mut samples = vec![0.0f32; 16000 * 35];
    samples.extend_from_slice(&jfk);
    let t = engine().transcribe_bytes(Bytes::from(wav16(&samples))).unwrap();
    assert!(wer(JFK, &t.text) <= 0.05, "{}", t.text);
    let first = &t.segments[0];
    assert!((34.5..36.5).contains(&first.start), "{first:?}");
    assert!(t.segments.last().unwrap().end <= 46.0 + 1e-9);
}

#[test]
fn malformed_input_is_refused_with_stable_codes() {
    let e = engine();
    let code = |b: &[u8]| e.transcribe_bytes(Bytes::copy_from_slice(b)).unwrap_err().code().to_string();
    assert_eq!(code(b""), "empty_body");
    assert_eq!(code(b"<html>not audio</html>"), "unsupported_audio_format");
    let jfk = testdata("jfk.wav");
    let mut broken = jfk[..44].to_vec();
    broken[22] = 0; // zero channels
    assert_eq!(e.transcribe_bytes(Bytes::from(broken)).unwrap_err().status(), http::StatusCode::UNPROCESSABLE_ENTITY);
    let small = Engine::load(&model_dir(), Limits { max_seconds: 5.0, max_bytes: 1 << 20 }).unwrap();
    assert_eq!(small.transcribe_bytes(Bytes::from(jfk.clone())).unwrap_err().code(), "audio_too_long");
    let tiny = Engine::load(&model_dir(), Limits { max_seconds: 900.0, max_bytes: 1024 }).unwrap();
    assert_eq!(tiny.transcribe_bytes(Bytes::from(jfk)).unwrap_err().status(), http::StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn decoders_survive_corrupted_files() {
    // Deterministic mutation fuzzing of every container: flipped bytes, truncation, and
    // spliced garbage must give a transcript or an error, never a panic.
    let mut x = 0x9E37_79B9u32;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as usize
    };
    let files = [
        "jfk.mp3",
        "jfk.ogg",
        "jfk.opus",
        "jfk.webm",
        "jfk.m4a",
        "jfk-3s.flac",
        "espeak.wav",
        "jfk-vorbis.webm",
        "jfk-5.1.opus",
    ];
    for file in files {
        let original = testdata(file);
        for round in 0..24 {
            let mut b = original.clone();
            match round % 3 {
                0 => {
                    for _ in 0..1 + next() % 16 {
                        let i = next() % b.len();
                        b[i] = next() as u8;
                    }
                }
                1 => b.truncate(next() % b.len()),
                _ => {
                    let i = next() % b.len();
                    let junk: Vec<u8> = (0..next() % 512).map(|_| next() as u8).collect();
                    b.splice(i..(i + junk.len()).min(b.len()), junk);
                }
            }
            if let Err(e) = audio::decode(Bytes::from(b), 900.0) {
                assert!(!e.code().is_empty());
            }
        }
    }
}

/// Recordings on the embedded store, in a directory that lives as long as the test process.
fn local_blob() -> SharedBlobStore {
    let dir = std::env::temp_dir().join(format!("catalyst-transcribe-test-blobs-{}", std::process::id()));
    Arc::new(catalyst_shared::blob::local::LocalBlobStore::open(dir).unwrap())
}

fn app() -> axum::Router {
    let (router, _) = routes(AppState { engine: engine(), blob: local_blob() }).split_for_parts();
    router.layer(axum::middleware::from_fn(
        |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
            req.extensions_mut().insert(Principal::dev());
            next.run(req).await
        },
    ))
}

async fn post(router: axum::Router, content_type: &str, body: Vec<u8>) -> (http::StatusCode, serde_json::Value) {
    let req = http::Request::post("/v1/transcribe")
        .header(http::header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body))
        .unwrap();
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn http_route_transcribes_and_refuses() {
    let (status, v) = post(app(), "audio/webm;codecs=opus", testdata("jfk.webm")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(words(v["text"].as_str().unwrap()), words(JFK));
    for field in ["language", "duration", "segments", "words_per_minute"] {
        assert!(v.get(field).is_some(), "{field} missing in {v}");
    }
    let seg = &v["segments"][0];
    for field in ["start", "end", "text", "avg_logprob", "no_speech_prob"] {
        assert!(seg.get(field).is_some(), "{field} missing in {seg}");
    }

    let (status, v) = post(app(), "application/json", b"{}".to_vec()).await;
    assert_eq!((status.as_u16(), v["error"]["code"].as_str()), (415, Some("unsupported_media_type")));
    let (status, v) = post(app(), "audio/wav", b"RIFF....WAVEjunk".to_vec()).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["code"], "malformed_audio");
    let (status, v) = post(app(), "audio/ogg", Vec::new()).await;
    assert_eq!((status.as_u16(), v["error"]["code"].as_str()), (400, Some("empty_body")));
    let too_big = vec![0u8; Limits::default().max_bytes + 1];
    let (status, v) = post(app(), "audio/wav", too_big).await;
    assert_eq!((status.as_u16(), v["error"]["code"].as_str()), (413, Some("payload_too_large")));
}

#[tokio::test]
async fn storage_event_writes_once_and_announces() {
    let dir = tempfile::tempdir().unwrap();
    let blob: SharedBlobStore = Arc::new(LocalBlobStore::open(dir.path().join("blobs")).unwrap());
    let queue: SharedQueue = Arc::new(SqliteQueue::open(dir.path().join("q.db"), QueuePolicy::default()).unwrap());
    let triggers = TranscribeTriggers { engine: engine(), blob: blob.clone(), queue: queue.clone() };
    let key = "uploads/audio/user-1/turn-3.webm";
    blob.put(key, Bytes::from(testdata("jfk.webm")), PutOptions::content_type("audio/webm")).await.unwrap();
    let event = ObjectCreated {
        origin: Origin::Local,
        bucket: "local".into(),
        key: key.into(),
        size: None,
        etag: Some("\"abc\"".into()),
        content_type: Some("audio/webm".into()),
        sequencer: None,
        time: None,
    };
    triggers.object_created(event.clone()).await.unwrap();
    let stored = blob.get("transcripts/user-1/turn-3.webm.json").await.unwrap();
    let stored: StoredTranscript = serde_json::from_slice(&stored.data).unwrap();
    assert_eq!(stored.uid, "user-1");
    assert_eq!(words(&stored.transcript.text), words(JFK));
    // Redelivered: nothing rewritten, announced once.
    triggers.object_created(event.clone()).await.unwrap();
    let msgs = queue.receive(TRANSCRIPTS_QUEUE, 10, std::time::Duration::from_secs(30)).await.unwrap();
    assert_eq!(msgs.len(), 1);
    let ready: TranscriptReady = serde_json::from_slice(&msgs[0].message.body).unwrap();
    assert_eq!(ready.transcript_key, "transcripts/user-1/turn-3.webm.json");
    assert_eq!(ready.uid, "user-1");

    let bad = ObjectCreated { key: "uploads/audio/no-name".into(), ..event };
    assert_eq!(triggers.object_created(bad).await.unwrap_err().code(), "bad_key");
}

#[test]
fn transcript_keys() {
    assert_eq!(
        transcript_key("uploads/audio/u1/2024/a.m4a").unwrap(),
        ("u1".to_string(), "transcripts/u1/2024/a.m4a.json".to_string())
    );
    assert!(transcript_key("uploads/resumes/u1/a.pdf").is_err());
    assert!(transcript_key("uploads/audio/u1/").is_err());
    assert!(transcript_key("uploads/audio//a.wav").is_err());
}

#[test]
fn limits_from_environment() {
    let l = Limits::from_lookup(|k| (k == MAX_SECONDS_VAR).then(|| "60".to_string())).unwrap();
    assert_eq!(l.max_seconds, 60.0);
    assert_eq!(Limits::from_lookup(|_| Some("lots".into())).unwrap_err().code(), "invalid_config");
    assert!(check_device(|_| None).is_ok());
    assert!(check_device(|_| Some("CPU".into())).is_ok());
    let err = check_device(|_| Some("cuda".into())).unwrap_err();
    assert!(err.message().contains(DEVICE_VAR), "{}", err.message());
}

#[test]
fn missing_model_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let config = Config::from_lookup(|k| (k == "CATALYST_DATA_DIR").then(|| d.clone())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt.block_on(resolve_model(&config, |_| None)).unwrap_err();
    assert_eq!(err.code(), "model_missing");
    assert!(err.message().contains("WHISPER_MODEL") && err.message().contains("catalyst models fetch"));
    // A directory with the files but a broken model.bin fails to load, clearly.
    for f in WHISPER.files {
        std::fs::write(dir.path().join(f), b"not a model").unwrap();
    }
    let err = Engine::load(dir.path(), Limits::default()).err().unwrap();
    assert_eq!(err.code(), "model_invalid");
}

#[test]
fn timestamp_rules_pair_and_never_go_back() {
    let e = engine();
    let tr = &e.transcriber;
    let v = tr.vocab();
    let (tb, eot) = (v.timestamp_begin as usize, v.eot as usize);
    let allowed = |sampled: &[u32]| {
        let mut logits = vec![0.0f32; tr.n_vocab()];
        tr.filter_logits(&mut logits, sampled);
        logits
    };
    let ts = |i: u32| v.timestamp_begin + i;
    // First token: a timestamp within the first second.
    let l = allowed(&[]);
    assert!(l[..tb].iter().all(|x| x.is_infinite()));
    assert!(l[tb..=tb + 50].iter().all(|x| x.is_finite()) && l[tb + 51].is_infinite());
    // After an opening timestamp: text, not another timestamp.
    let l = allowed(&[ts(10)]);
    assert!(l[tb..].iter().all(|x| x.is_infinite()) && l[400].is_finite());
    // After text: no timestamp earlier than the last one (and none equal: segments have length).
    let l = allowed(&[ts(10), 400]);
    assert!(l[tb..=tb + 10].iter().all(|x| x.is_infinite()) && l[tb + 11].is_finite());
    // After a closing timestamp: another timestamp (or the end), never text.
    let l = allowed(&[ts(10), 400, ts(20)]);
    assert!(l[..eot].iter().all(|x| x.is_infinite()));
    assert!(l[tb..tb + 20].iter().all(|x| x.is_infinite()) && l[tb + 20].is_finite());
    // Suppressed tokens never come.
    assert!(l[v.no_timestamps as usize].is_infinite() && l[v.sot as usize].is_infinite());
}

#[test]
fn temperature_fallback_samples_deterministically() {
    // A log-probability threshold no window can meet forces every window through the
    // fallback: sampling at 0.2 with best-of-5, seeded, so the result is repeatable.
    let mut tr = Transcriber::load(&model_dir()).unwrap();
    tr.options.logprob_threshold = 0.0;
    tr.options.no_speech_threshold = 1.0;
    tr.options.temperatures = vec![0.0, 0.2];
    let samples = audio::decode(Bytes::from(testdata("jfk.wav")), 60.0).unwrap().samples;
    let a = tr.transcribe(&samples).unwrap();
    let b = tr.transcribe(&samples).unwrap();
    assert_eq!(a, b);
    assert!(wer(JFK, &a.text) <= 0.1, "{}", a.text);
}

#[tokio::test]
async fn upload_urls_check_the_type_and_say_when_storage_cannot_sign() {
    let post = |body: serde_json::Value| {
        http::Request::post("/v1/transcribe/uploads")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap()
    };
    for (body, status, code) in [
        (
            serde_json::json!({"filename": "answer.webm", "content_type": "audio/webm;codecs=opus"}),
            503,
            "signing_unsupported",
        ),
        (serde_json::json!({"filename": "answer.webm", "content_type": "video/webm"}), 503, "signing_unsupported"),
        (serde_json::json!({"filename": "notes.pdf", "content_type": "application/pdf"}), 415, "unsupported_format"),
        (serde_json::json!({"filename": "../"}), 400, "invalid_filename"),
    ] {
        let resp = app().oneshot(post(body.clone())).await.unwrap();
        assert_eq!(resp.status(), status, "{body}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"]["code"], code, "{body}");
    }
}
