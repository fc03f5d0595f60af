//! Handler and trigger tests, through the router and the blob port.

use super::*;
use catalyst_shared::blob::local::LocalBlobStore;
use catalyst_shared::event::Origin;
use http_body_util::BodyExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use tower::ServiceExt;

/// The skills gazetteer for tests: where `catalyst models fetch` puts it, or unpacked
/// from the skill-extractor wheel if one is at hand.
pub fn gazetteer() -> Arc<Gazetteer> {
    static G: OnceLock<Arc<Gazetteer>> = OnceLock::new();
    G.get_or_init(|| Arc::new(Gazetteer::load(&gazetteer_dir()).expect("gazetteer loads"))).clone()
}

fn gazetteer_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("SKILLS_GAZETTEER") {
        candidates.push(p.into());
    }
    if let Ok(p) = std::env::var("CATALYST_MODELS_DIR") {
        candidates.push(PathBuf::from(p).join("skills"));
    }
    candidates.push(root.join(".catalyst/models/skills"));
    if let Some(dir) = candidates.into_iter().find(|d| d.join("skills.json").is_file()) {
        return dir;
    }
    let wheel =
        std::env::var("SKILLS_WHEEL").unwrap_or_else(|_| "/tmp/pkgs/skill_extractor-0.2.0-py3-none-any.whl".into());
    let bytes = std::fs::read(&wheel).unwrap_or_else(|_| {
        panic!(
            "no skills gazetteer: run `catalyst models fetch` (fills .catalyst/models/skills) or set SKILLS_GAZETTEER"
        )
    });
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("wheel is a zip");
    let mut f = zip.by_name("skill_extractor/data/skills.json").expect("wheel has skills.json");
    let dir = std::env::temp_dir().join(format!("catalyst-parse-test-skills-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut out).unwrap();
    let tmp = dir.join("skills.json.partial");
    std::fs::write(&tmp, out).unwrap();
    std::fs::rename(&tmp, dir.join("skills.json")).unwrap();
    dir
}

pub fn parser() -> Arc<Parser> {
    Arc::new(Parser::new(gazetteer(), Limits::default()))
}

/// Uploads on the embedded store, in a directory that lives as long as the test process.
fn local_blob() -> catalyst_shared::blob::SharedBlobStore {
    let dir = std::env::temp_dir().join(format!("catalyst-parse-test-blobs-{}", std::process::id()));
    Arc::new(catalyst_shared::blob::local::LocalBlobStore::open(dir).unwrap())
}

fn app() -> axum::Router {
    let (router, _) = routes(AppState { parser: parser(), blob: local_blob() }).split_for_parts();
    router
}

async fn call(req: http::Request<Body>, principal: Option<Principal>) -> (http::StatusCode, serde_json::Value) {
    let mut req = req;
    if let Some(p) = principal {
        req.extensions_mut().insert(p);
    }
    let resp = app().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

fn post(ct: &str, body: impl Into<Body>) -> http::Request<Body> {
    http::Request::post("/v1/parse").header("content-type", ct).body(body.into()).unwrap()
}

const MD: &str = "# Ana Beatriz Souza\nDesenvolvedora Full Stack · São Paulo, Brasil · ana.souza@gmail.com · +55 11 98765-4321\n\n## Experiência Profissional\n**Desenvolvedora Sênior** – Nubank\nmar/2021 – atual\n- APIs em Clojure e Kafka\n\n## Formação Acadêmica\n**Universidade de São Paulo**\nBacharelado em Ciência da Computação, 2014 – 2018\n\n## Habilidades\nClojure, Python, React, PostgreSQL\n";

#[tokio::test]
async fn raw_body_is_parsed() {
    let (status, v) = call(post("text/markdown", MD), Some(Principal::dev())).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["format"], "markdown");
    assert_eq!(v["resume"]["basics"]["name"], "Ana Beatriz Souza");
    assert_eq!(v["resume"]["basics"]["email"], "ana.souza@gmail.com");
    assert_eq!(v["resume"]["basics"]["phone"], "+55 11 98765-4321");
    assert_eq!(v["resume"]["work"][0]["name"], "Nubank");
    assert_eq!(v["resume"]["work"][0]["position"], "Desenvolvedora Sênior");
    assert_eq!(v["resume"]["work"][0]["startDate"], "2021-03");
    assert!(v["resume"]["work"][0].get("endDate").is_none());
    assert_eq!(v["resume"]["education"][0]["studyType"], "Bacharelado");
    assert_eq!(v["resume"]["education"][0]["area"], "Ciência da Computação");
    let kinds: Vec<&str> = v["sections"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["header", "work", "education", "skills"]);
    let skills: Vec<&str> =
        v["resume"]["skills"][0]["keywords"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(skills.contains(&"Python") && skills.contains(&"PostgreSQL"), "{skills:?}");
}

#[tokio::test]
async fn multipart_upload_is_parsed() {
    let body = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cv.md\"\r\nContent-Type: text/plain\r\n\r\n{MD}\r\n--XyZ--\r\n"
    );
    let (status, v) = call(post("multipart/form-data; boundary=XyZ", body), Some(Principal::dev())).await;
    assert_eq!(status, 200, "{v}");
    // The file name says Markdown even though the part says text/plain.
    assert_eq!(v["format"], "markdown");
    assert_eq!(v["resume"]["basics"]["name"], "Ana Beatriz Souza");
}

#[tokio::test]
async fn errors_have_codes_and_statuses() {
    let dev = || Some(Principal::dev());
    let (s, v) = call(post("application/pdf", "%PDF-1.4\nnot really a pdf"), dev()).await;
    assert_eq!((s.as_u16(), v["error"]["code"].as_str()), (422, Some("corrupt_file")), "{v}");
    let (s, v) = call(post("image/png", &b"\x89PNG\r\n\x1a\n0000"[..]), dev()).await;
    assert_eq!((s.as_u16(), v["error"]["code"].as_str()), (415, Some("unsupported_format")));
    let (s, v) = call(post("application/pdf", Body::empty()), dev()).await;
    assert_eq!((s.as_u16(), v["error"]["code"].as_str()), (422, Some("empty_file")));
    let (s, v) = call(post("multipart/form-data; boundary=XyZ", "--XyZ\r\nbroken"), dev()).await;
    assert_eq!(s.as_u16(), 400, "{v}");
    let big = vec![b'a'; Limits::default().max_bytes + 1];
    let (s, v) = call(post("text/plain", big), dev()).await;
    assert_eq!((s.as_u16(), v["error"]["code"].as_str()), (413, Some("file_too_large")));
    let (s, _) = call(post("text/plain", "Jane"), None).await;
    assert_eq!(s.as_u16(), 401);
    let key = Principal {
        kind: catalyst_shared::auth::PrincipalKind::ApiKey,
        uid: "k".into(),
        email: None,
        scopes: vec!["scrape".into()],
    };
    let (s, v) = call(post("text/plain", "Jane"), Some(key)).await;
    assert_eq!((s.as_u16(), v["error"]["code"].as_str()), (403, Some("missing_scope")));
}

#[tokio::test]
async fn scanned_pdf_is_no_text_layer_not_empty_success() {
    // One page whose content is only an image-like path, no text.
    let pdf = include_bytes!("../testdata/scanned.pdf");
    let (s, v) = call(post("application/pdf", &pdf[..]), Some(Principal::dev())).await;
    assert_eq!((s.as_u16(), v["error"]["code"].as_str()), (422, Some("no_text_layer")), "{v}");
}

#[tokio::test]
async fn two_column_pdf_keeps_columns_apart() {
    let pdf = include_bytes!("../testdata/two_column_interleaved.pdf");
    let (s, v) = call(post("application/pdf", &pdf[..]), Some(Principal::dev())).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["pages"], 1);
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("SKILLS\nPython, Rust\nKubernetes"), "{text}");
    assert!(text.contains("EXPERIENCE\nSenior Engineer\nAcme Corp, 2019 - Present"), "{text}");
    assert_eq!(v["resume"]["work"][0]["name"], "Acme Corp");
}

#[test]
fn output_keys() {
    assert_eq!(output_key("uploads/resumes/u1/cv.pdf").unwrap(), ("u1".into(), "parsed/resumes/u1/cv.pdf.json".into()));
    assert_eq!(output_key("uploads/resumes/u1/2024/cv.v2.docx").unwrap().1, "parsed/resumes/u1/2024/cv.v2.docx.json");
    assert_eq!(output_key("uploads/resumes/u1/README").unwrap().1, "parsed/resumes/u1/README.json");
    // Same name, different formats: different results.
    assert_ne!(output_key("uploads/resumes/u1/cv.pdf").unwrap().1, output_key("uploads/resumes/u1/cv.docx").unwrap().1);
    for bad in ["uploads/audio/u1/a.wav", "uploads/resumes/u1", "uploads/resumes//cv.pdf"] {
        assert_eq!(output_key(bad).unwrap_err().code(), "unexpected_key", "{bad}");
    }
}

fn event(key: &str, etag: &str) -> ObjectCreated {
    ObjectCreated {
        origin: Origin::Local,
        bucket: "b".into(),
        key: key.into(),
        size: None,
        etag: Some(etag.into()),
        content_type: None,
        sequencer: None,
        time: None,
    }
}

#[tokio::test]
async fn storage_event_writes_once_and_redelivery_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let blob: SharedBlobStore = Arc::new(LocalBlobStore::open(dir.path()).unwrap());
    let t = ParseTriggers { parser: parser(), blob: blob.clone() };
    let key = "uploads/resumes/u_42/cv.md";
    let meta =
        blob.put(key, Bytes::from_static(MD.as_bytes()), PutOptions::content_type("text/markdown")).await.unwrap();
    t.object_created(event(key, &meta.etag)).await.unwrap();
    let first = blob.get("parsed/resumes/u_42/cv.md.json").await.unwrap();
    let stored: StoredResult = serde_json::from_slice(&first.data).unwrap();
    assert_eq!(stored.source.key, key);
    assert_eq!(stored.output.as_ref().unwrap().resume.basics.name.as_deref(), Some("Ana Beatriz Souza"));
    let v: serde_json::Value = serde_json::from_slice(&first.data).unwrap();
    assert!(v.get("text").is_some() && v.get("resume").is_some() && v.get("sections").is_some());

    // Redelivered: nothing new is written (same object version, same modification time).
    t.object_created(event(key, &meta.etag)).await.unwrap();
    let again = blob.head("parsed/resumes/u_42/cv.md.json").await.unwrap();
    assert_eq!(again.last_modified, first.meta.last_modified);
    assert_eq!(again.etag, first.meta.etag);

    // A new version under the same name replaces the result.
    let v2 = MD.replace("Ana Beatriz Souza", "Ana B. Souza Lima");
    let meta2 = blob.put(key, Bytes::from(v2), PutOptions::default()).await.unwrap();
    t.object_created(event(key, &meta2.etag)).await.unwrap();
    let stored: StoredResult =
        serde_json::from_slice(&blob.get("parsed/resumes/u_42/cv.md.json").await.unwrap().data).unwrap();
    assert_eq!(stored.output.unwrap().resume.basics.name.as_deref(), Some("Ana B. Souza Lima"));

    // Deleted before the event arrived: nothing to do, no error.
    blob.delete(key).await.unwrap();
    t.object_created(event(key, &meta2.etag)).await.unwrap();
}

#[tokio::test]
async fn a_bad_upload_is_recorded_and_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let blob: SharedBlobStore = Arc::new(LocalBlobStore::open(dir.path()).unwrap());
    let t = ParseTriggers { parser: parser(), blob: blob.clone() };
    let key = "uploads/resumes/u_7/scan.pdf";
    let meta = blob
        .put(key, Bytes::from_static(include_bytes!("../testdata/scanned.pdf")), PutOptions::default())
        .await
        .unwrap();
    let err = t.object_created(event(key, &meta.etag)).await.unwrap_err();
    assert_eq!(err.code(), "no_text_layer");
    assert!(!err.retryable(), "a file that cannot be parsed must dead-letter, not loop");
    let stored: StoredResult =
        serde_json::from_slice(&blob.get("parsed/resumes/u_7/scan.pdf.json").await.unwrap().data).unwrap();
    assert_eq!(stored.error.unwrap().code, "no_text_layer");
    // Redelivery: the same reason again, nothing rewritten.
    let before = blob.head("parsed/resumes/u_7/scan.pdf.json").await.unwrap();
    assert_eq!(t.object_created(event(key, &meta.etag)).await.unwrap_err().code(), "no_text_layer");
    assert_eq!(blob.head("parsed/resumes/u_7/scan.pdf.json").await.unwrap().last_modified, before.last_modified);
    // Keys outside the prefix are refused without retry.
    assert!(!t.object_created(event("uploads/other/x.pdf", "e")).await.unwrap_err().retryable());
}

#[test]
fn the_sample_storage_events_map_to_output_keys() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let s3 = std::fs::read(root.join("aws/s3-put-resume.json")).unwrap();
    let evs = catalyst_shared::event::from_s3_event(serde_json::from_slice(&s3).unwrap()).unwrap();
    let (_, out) = output_key(&evs[0].key).unwrap();
    assert!(out.starts_with(PARSED_PREFIX) && out.ends_with(".json"), "{out}");
}

#[test]
fn missing_gazetteer_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let config =
        catalyst_shared::config::Config::from_lookup(|k| (k == "CATALYST_DATA_DIR").then(|| d.clone())).unwrap();
    let deps = Deps::new(config);
    let err = load_gazetteer(&deps, |_| None).unwrap_err();
    assert_eq!(err.code(), "model_missing");
    assert!(err.message().contains("SKILLS_GAZETTEER"), "{}", err.message());
    // And a directory that has it works, from inside a runtime too.
    let g = gazetteer_dir();
    let p = g.to_str().unwrap().to_string();
    let loaded = load_gazetteer(&deps, |k| (k == "SKILLS_GAZETTEER").then(|| p.clone())).unwrap();
    assert!(loaded.len() > 30_000, "{}", loaded.len());
}

#[test]
fn the_openapi_document_describes_the_route() {
    let (_, api) = routes(AppState { parser: parser(), blob: local_blob() }).split_for_parts();
    let json = serde_json::to_value(&api).unwrap();
    assert!(json["paths"]["/v1/parse"]["post"].is_object());
}

#[tokio::test]
async fn the_time_limit_stops_a_parse_without_retry() {
    let limits = Limits { timeout: std::time::Duration::from_millis(0), ..Limits::default() };
    let p = Parser::new(gazetteer(), limits);
    for file in ["in_two_page.pdf", "in_two_page.docx"] {
        let bytes = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(file)).unwrap();
        let err = p.parse(Bytes::from(bytes), None, None).await.unwrap_err();
        assert_eq!(err.code(), "parse_timeout", "{file}");
        assert!(!err.retryable());
    }
}

#[tokio::test]
async fn page_cap_and_every_rendering_format_over_http() {
    let p = Arc::new(Parser::new(gazetteer(), Limits { max_pages: 1, ..Limits::default() }));
    let bytes = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/in_two_page.pdf")).unwrap();
    assert_eq!(p.parse(Bytes::from(bytes), None, None).await.unwrap_err().code(), "too_many_pages");
    for (file, format) in [
        ("nl_header_footer.odt", "odt"),
        ("us_software.rtf", "rtf"),
        ("uk_data_scientist.txt", "text"),
        ("de_two_column.docx", "docx"),
    ] {
        let bytes = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(file)).unwrap();
        // A wrong declared type does not matter: the bytes decide.
        let (s, v) = call(post("application/octet-stream", bytes), Some(Principal::dev())).await;
        assert_eq!(s, 200, "{file}: {v}");
        assert_eq!(v["format"], format, "{file}");
        assert!(v["resume"]["basics"]["email"].as_str().is_some_and(|e| e.contains('@')), "{file}");
    }
}

/// A deterministic smoke fuzz in the test suite: mutated fixtures and odd text through
/// the whole pipeline must give a result or a clear error, never a panic. (The real
/// fuzzing is `fuzz/`, with cargo-fuzz.)
#[test]
fn mutated_inputs_never_panic() {
    let p = Parser::new(gazetteer(), Limits { timeout: std::time::Duration::from_secs(5), ..Limits::default() });
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut seeds: Vec<Vec<u8>> = [
        "us_software.pdf",
        "de_two_column.docx",
        "nl_header_footer.odt",
        "us_software.rtf",
        "br_desenvolvedora.md",
        "src/fr_table.html",
    ]
    .iter()
    .map(|f| std::fs::read(dir.join(f)).unwrap())
    .collect();
    seeds.push("Łukasz Żółć\nИван Петров\n李小龙\nİstanbul\n\u{202E}evil\n• \n– 2019 – \n@\n+\n(".as_bytes().to_vec());
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seed in &seeds {
        for _ in 0..40 {
            let mut b = seed.clone();
            match next() % 3 {
                0 => {
                    for _ in 0..(1 + next() % 8) {
                        let i = (next() as usize) % b.len();
                        b[i] = next() as u8;
                    }
                }
                1 => b.truncate(1 + (next() as usize) % b.len()),
                _ => {
                    let i = (next() as usize) % b.len();
                    let chunk: Vec<u8> = b[i..].iter().take(64).copied().collect();
                    b.splice(i..i, chunk);
                }
            }
            if let Err(e) = p.parse_blocking(&b, None, None, Deadline::after(std::time::Duration::from_secs(5))) {
                assert!(!e.code().is_empty());
            }
        }
    }
}

#[tokio::test]
async fn an_oversized_upload_is_refused_from_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let blob: SharedBlobStore = Arc::new(LocalBlobStore::open(dir.path()).unwrap());
    let p = Arc::new(Parser::new(gazetteer(), Limits { max_bytes: 1000, ..Limits::default() }));
    let t = ParseTriggers { parser: p, blob: blob.clone() };
    let key = "uploads/resumes/u_1/huge.txt";
    let meta = blob.put(key, Bytes::from(vec![b'a'; 5000]), PutOptions::default()).await.unwrap();
    let err = t.object_created(event(key, &meta.etag)).await.unwrap_err();
    assert_eq!(err.code(), "file_too_large");
    assert!(!err.retryable());
    let stored: StoredResult =
        serde_json::from_slice(&blob.get("parsed/resumes/u_1/huge.txt.json").await.unwrap().data).unwrap();
    assert_eq!(stored.error.unwrap().code, "file_too_large");
}

#[tokio::test]
async fn upload_urls_are_refused_clearly_where_storage_cannot_sign() {
    let req = |body: serde_json::Value| {
        http::Request::post("/v1/parse/uploads")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, body) =
        call(req(serde_json::json!({"filename": "cv.pdf", "content_type": "application/pdf"})), Some(Principal::dev()))
            .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "signing_unsupported");
    let (status, body) = call(
        req(serde_json::json!({"filename": "cv.exe", "content_type": "application/x-msdownload"})),
        Some(Principal::dev()),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = call(req(serde_json::json!({"filename": "..."})), Some(Principal::dev())).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some("invalid_filename")));
    let (status, _) = call(req(serde_json::json!({"name": "cv.pdf"})), Some(Principal::dev())).await;
    assert_eq!(status, 400);
}
