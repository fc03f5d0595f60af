//! The route, the queue trigger and the cache, plus golden snapshots of realistic pages
//! (`tests/pages/*.html` beside `*.json`; `SCRAPE_UPDATE_GOLDEN=1` rewrites them, to be
//! reviewed by hand before committing).

use super::*;
use axum::body::Body;
use catalyst_shared::auth::PrincipalKind;
use catalyst_shared::blob::local::LocalBlobStore;
use catalyst_shared::event::Origin;
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::ServiceExt;

struct Env {
    _dir: tempfile::TempDir,
    blob: SharedBlobStore,
    scraper: Scraper,
}

fn env(port: Option<u16>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let blob: SharedBlobStore = Arc::new(LocalBlobStore::open(dir.path().join("blobs")).unwrap());
    let mut config = ScrapeConfig::default();
    config.policy.allow_nets = vec!["127.0.0.1/32".parse().unwrap()];
    if let Some(p) = port {
        config.policy.allow_ports.insert(p);
    }
    config.timeout = std::time::Duration::from_secs(3);
    let scraper = Scraper::new(config, Arc::new(StaticResolver::default()), blob.clone());
    Env { _dir: dir, blob, scraper }
}

async fn call(app: axum::Router, scopes: Option<Vec<String>>, body: &str) -> (u16, serde_json::Value) {
    let mut req = axum::http::Request::post("/v1/scrape")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    req.extensions_mut().insert(Principal {
        kind: if scopes.is_some() { PrincipalKind::ApiKey } else { PrincipalKind::User },
        uid: "u1".into(),
        email: None,
        scopes: scopes.unwrap_or_default(),
    });
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

fn app(e: &Env) -> axum::Router {
    let (router, _) = routes(e.scraper.clone()).split_for_parts();
    router
}

/// A job page server on 127.0.0.1 that counts its hits.
async fn job_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let page = std::fs::read_to_string(pages_dir().join("job_jsonld_graph.html")).unwrap();
    let app = axum::Router::new()
        .route(
            "/jobs/4821",
            axum::routing::get(move || {
                h.fetch_add(1, Ordering::SeqCst);
                let page = page.clone();
                async move { ([(http::header::CONTENT_TYPE, "text/html; charset=utf-8")], page) }
            }),
        )
        .route(
            "/j/4821",
            axum::routing::get(|| async {
                (http::StatusCode::MOVED_PERMANENTLY, [(http::header::LOCATION, "/jobs/4821")])
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

#[tokio::test]
async fn extracts_given_html_without_fetching() {
    let e = env(None);
    let html = std::fs::read_to_string(pages_dir().join("job_heuristic.html")).unwrap();
    let body = serde_json::json!({"html": html, "url": "https://fernbrook.example/jobs/data-analyst"}).to_string();
    let (status, v) = call(app(&e), None, &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["url"], "https://fernbrook.example/jobs/data-analyst");
    assert_eq!(v["job"]["title"], "Data Analyst");
    assert!(v["text"].as_str().unwrap().contains("\n\n"));
    // Extraction only: nothing is cached.
    assert!(e.blob.list(CACHE_PREFIX, None, 10).await.unwrap().objects.is_empty());
}

#[tokio::test]
async fn bad_requests_get_stable_codes() {
    let e = env(None);
    let cases: &[(&str, u16, &str)] = &[
        ("{}", 400, "missing_field"),
        ("not json", 400, "invalid_json"),
        (r#"{"url": 42}"#, 400, "invalid_json"),
        (r#"{"url": "https://example.com", "extra": 1}"#, 400, "invalid_json"),
        (r#"{"url": "not a url"}"#, 400, "invalid_url"),
        (r#"{"url": "ftp://example.com/"}"#, 400, "unsupported_scheme"),
        (r#"{"url": "http://169.254.169.254/latest/meta-data/"}"#, 403, "ssrf_blocked"),
        (r#"{"url": "http://0x7f000002/"}"#, 403, "ssrf_blocked"),
        (r#"{"url": "http://[::ffff:10.0.0.1]/"}"#, 403, "ssrf_blocked"),
        (r#"{"url": "https://example.com:6379/"}"#, 403, "port_not_allowed"),
        (r#"{"html": "   "}"#, 400, "empty_document"),
        (r#"{"html": "<p>x</p>", "url": "::"}"#, 400, "invalid_url"),
    ];
    for (body, status, code) in cases {
        let (s, v) = call(app(&e), None, body).await;
        assert_eq!((s, v["error"]["code"].as_str().unwrap_or_default()), (*status, *code), "{body}: {v}");
    }
    // Bodies this large are cut by the runtime's body limit first; the scraper refuses them too.
    let big = ScrapeRequest { html: Some("a".repeat(5_000_001)), url: None };
    let err = e.scraper.scrape(big).await.unwrap_err();
    assert_eq!((err.status().as_u16(), err.code()), (413, "page_too_large"));
}

#[tokio::test]
async fn api_keys_need_the_scrape_scope() {
    let e = env(None);
    let (s, v) = call(app(&e), Some(vec!["interviews:read".into()]), r#"{"html": "<p>x</p>"}"#).await;
    assert_eq!((s, v["error"]["code"].as_str().unwrap()), (403, "missing_scope"));
    let (s, _) = call(app(&e), Some(vec!["scrape".into()]), r#"{"html": "<p>x</p>"}"#).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn fetched_results_are_cached_by_url_hash() {
    let (addr, hits) = job_server().await;
    let e = env(Some(addr.port()));
    let url = format!("http://127.0.0.1:{}/j/4821", addr.port());
    let body = serde_json::json!({ "url": url }).to_string();
    let (s, v) = call(app(&e), None, &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["final_url"], format!("http://127.0.0.1:{}/jobs/4821", addr.port()));
    assert_eq!(v["job"]["title"], "Senior Backend Engineer (Rust)");
    assert_eq!(
        v["metadata"]["canonical"],
        format!("http://127.0.0.1:{}/jobs/4821-senior-backend-engineer-rust", addr.port())
    );
    let (s, v2) = call(app(&e), None, &body).await;
    assert_eq!(s, 200);
    assert_eq!(v, v2);
    assert_eq!(hits.load(Ordering::SeqCst), 1, "second call served from the cache");
    let key = format!("{CACHE_PREFIX}{}.json", url_hash(&url));
    e.blob.head(&key).await.unwrap();

    // An expired entry is refetched.
    let mut entry: serde_json::Value = serde_json::from_slice(&e.blob.get(&key).await.unwrap().data).unwrap();
    entry["fetched_at"] = serde_json::json!("2000-01-01T00:00:00Z");
    e.blob.put(&key, Bytes::from(entry.to_string()), PutOptions::default()).await.unwrap();
    let (s, _) = call(app(&e), None, &body).await;
    assert_eq!(s, 200);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn queue_messages_write_results_idempotently() {
    let (addr, _) = job_server().await;
    let e = env(Some(addr.port()));
    let url = format!("http://127.0.0.1:{}/jobs/4821", addr.port());
    let msg = QueueMessage {
        origin: Origin::Local,
        id: "m1".into(),
        queue: "scrape".into(),
        body: serde_json::to_vec(&serde_json::json!({ "url": url })).unwrap(),
        attributes: Default::default(),
        attempt: Some(1),
        published: None,
    };
    e.scraper.queue_message(msg.clone()).await.unwrap();
    e.scraper.queue_message(msg).await.unwrap();
    let listing = e.blob.list(RESULTS_PREFIX, None, 10).await.unwrap();
    assert_eq!(listing.objects.len(), 1);
    let stored: ScrapeResponse =
        serde_json::from_slice(&e.blob.get(&listing.objects[0].key).await.unwrap().data).unwrap();
    assert_eq!(stored.job.unwrap().organization.unwrap().name, "Northwind Labs");

    let bad = QueueMessage {
        origin: Origin::Local,
        id: "m2".into(),
        queue: "scrape".into(),
        body: b"{\"link\": 1}".to_vec(),
        attributes: Default::default(),
        attempt: None,
        published: None,
    };
    let err = e.scraper.queue_message(bad).await.unwrap_err();
    assert_eq!(err.code(), "invalid_message");
    assert!(!err.retryable());
    let hostile = QueueMessage {
        origin: Origin::Local,
        id: "m3".into(),
        queue: "scrape".into(),
        body: br#"{"url": "http://[fd00:ec2::254]/"}"#.to_vec(),
        attributes: Default::default(),
        attempt: None,
        published: None,
    };
    assert_eq!(e.scraper.queue_message(hostile).await.unwrap_err().code(), "ssrf_blocked");
}

#[test]
fn openapi_documents_the_route() {
    let (_, api) = routes(env(None).scraper).split_for_parts();
    let json = serde_json::to_value(&api).unwrap();
    assert!(json["paths"]["/v1/scrape"]["post"].is_object());
}

fn pages_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/pages")
}

#[tokio::test]
async fn golden_pages() {
    let update = std::env::var("SCRAPE_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut names: Vec<_> = std::fs::read_dir(pages_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 5);
    let e = env(None);
    for name in names {
        let html = std::fs::read_to_string(pages_dir().join(format!("{name}.html"))).unwrap();
        let req = ScrapeRequest { html: Some(html), url: Some(format!("https://pages.example/{name}")) };
        let got = serde_json::to_value(e.scraper.scrape(req.clone()).await.unwrap()).unwrap();
        let again = serde_json::to_value(e.scraper.scrape(req).await.unwrap()).unwrap();
        assert_eq!(got, again, "{name}: extraction is not deterministic");
        let path = pages_dir().join(format!("{name}.json"));
        if update {
            std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
            continue;
        }
        let want: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!("{} is missing; run with SCRAPE_UPDATE_GOLDEN=1 and review it", path.display())
        }))
        .unwrap();
        assert_eq!(got, want, "{name}: extraction differs from the golden file");
    }
}
