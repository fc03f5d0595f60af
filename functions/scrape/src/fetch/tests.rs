//! Live fetches, only from servers this test starts on 127.0.0.1. Two guards stand under
//! them: the test build's `connect` refuses every non-loopback address and its
//! `SystemResolver` refuses every lookup, so even a broken policy cannot reach out.

use super::*;
use crate::guard::HOSTILE;
use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const PAGE: &str = "<html><head><title>Job</title></head><body><p>Hello</p></body></html>";

async fn server() -> SocketAddr {
    let app = Router::new()
        .route("/page", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) }))
        .route("/plain", get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "one\n\ntwo") }))
        .route(
            "/latin1-header",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/html; charset=ISO-8859-1")], b"<p>Caf\xe9 M\xfcller</p>".to_vec())
            }),
        )
        .route(
            "/latin1-meta",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\"></head><body><p>\x93Quoted\x94 \x80</p></body></html>".to_vec(),
                )
            }),
        )
        .route(
            "/utf16-bom",
            get(|| async {
                let mut body = vec![0xFF, 0xFE];
                for u in "<p>Zoë</p>".encode_utf16() {
                    body.extend_from_slice(&u.to_le_bytes());
                }
                ([(header::CONTENT_TYPE, "text/html; charset=iso-8859-1")], body)
            }),
        )
        .route("/gzip", get(|| async { compressed("gzip", gzip(PAGE.as_bytes())) }))
        .route("/br", get(|| async { compressed("br", br(PAGE.as_bytes())) }))
        .route("/deflate-zlib", get(|| async { compressed("deflate", zlib(PAGE.as_bytes())) }))
        .route("/deflate-raw", get(|| async { compressed("deflate", raw_deflate(PAGE.as_bytes())) }))
        // 64 MiB of spaces in about 64 KiB: must stop at the cap, not fill memory.
        .route("/bomb", get(|| async { compressed("gzip", gzip(&vec![b' '; 64 * 1024 * 1024])) }))
        .route("/corrupt-gzip", get(|| async { compressed("gzip", b"\x1f\x8b\x08\x00garbage".to_vec()) }))
        .route("/compress", get(|| async { compressed("compress", PAGE.as_bytes().to_vec()) }))
        .route("/pdf", get(|| async { ([(header::CONTENT_TYPE, "application/pdf")], "%PDF-1.7") }))
        .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "gone") }))
        .route("/broken", get(|| async { (StatusCode::BAD_GATEWAY, "down") }))
        .route(
            "/big",
            get(|| async {
                // An endless stream: the reader must stop at the cap, not wait for the end.
                let chunk = Bytes::from(vec![b'a'; 64 * 1024]);
                let stream = futures_stream(chunk);
                Response::builder().header(header::CONTENT_TYPE, "text/html").body(Body::from_stream(stream)).unwrap()
            }),
        )
        .route(
            "/big-declared",
            get(|| async { ([(header::CONTENT_TYPE, "text/html")], vec![b'a'; 3 * 1024 * 1024]) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route("/to/{i}", get(|Path(i): Path<usize>| async move { redirect(HOSTILE[i]) }))
        .route("/go", get(|axum::extract::RawQuery(q): axum::extract::RawQuery| async move { redirect(&q.unwrap_or_default()) }))
        .route(
            "/chain/{n}",
            get(|Path(n): Path<usize>| async move {
                if n == 0 { "<p>end of chain</p>".into_response() } else { redirect(&format!("/chain/{}", n - 1)) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn compressed(encoding: &'static str, body: Vec<u8>) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_ENCODING, encoding)
        .body(Body::from(body))
        .unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn br(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &data[..], &mut out, &brotli::enc::BrotliEncoderParams::default()).unwrap();
    out
}

fn futures_stream(chunk: Bytes) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    // Bounded (64 MiB) so a broken reader still ends, never loops forever.
    futures::stream::iter((0..1024).map(move |_| Ok(chunk.clone())))
}

fn redirect(to: &str) -> Response {
    Response::builder().status(StatusCode::FOUND).header(header::LOCATION, to).body(Body::empty()).unwrap()
}

fn fetcher(addr: SocketAddr, names: &[(&str, &[&str])]) -> Fetcher {
    let mut config = ScrapeConfig::default();
    config.policy.allow_nets = vec!["127.0.0.1/32".parse().unwrap()];
    config.policy.allow_ports.insert(addr.port());
    config.max_bytes = 1024 * 1024;
    config.timeout = Duration::from_secs(2);
    let map = names.iter().map(|(n, ips)| (n.to_string(), ips.iter().map(|i| i.parse().unwrap()).collect())).collect();
    Fetcher::new(&config, Arc::new(StaticResolver(map)))
}

#[tokio::test]
async fn fetches_html_and_text_from_an_allowed_server() {
    let addr = server().await;
    let f = fetcher(addr, &[("jobs.test", &["127.0.0.1"])]);
    let page = f.fetch(&format!("http://127.0.0.1:{}/page", addr.port())).await.unwrap();
    assert_eq!(page.kind, DocKind::Html);
    assert_eq!(page.body, PAGE);
    // A name resolves through the (static) resolver and connects to the checked address.
    let page = f.fetch(&format!("http://jobs.test:{}/plain", addr.port())).await.unwrap();
    assert_eq!((page.kind, page.body.as_str()), (DocKind::PlainText, "one\n\ntwo"));
    assert_eq!(page.final_url.host_str(), Some("jobs.test"));
}

#[tokio::test]
async fn charsets_from_header_meta_and_bom() {
    let addr = server().await;
    let f = fetcher(addr, &[]);
    let get = |p: &'static str| {
        let f = f.clone();
        async move { f.fetch(&format!("http://127.0.0.1:{}{p}", addr.port())).await.unwrap().body }
    };
    assert_eq!(get("/latin1-header").await, "<p>Café Müller</p>");
    assert!(get("/latin1-meta").await.contains("“Quoted” €"));
    // The BOM wins over the header's charset.
    assert_eq!(get("/utf16-bom").await, "<p>Zoë</p>");
}

#[tokio::test]
async fn refuses_bad_types_statuses_sizes_and_slowness() {
    let addr = server().await;
    let f = fetcher(addr, &[]);
    let code = |p: &'static str| {
        let f = f.clone();
        async move { f.fetch(&format!("http://127.0.0.1:{}{p}", addr.port())).await.unwrap_err() }
    };
    let e = code("/pdf").await;
    assert_eq!((e.code(), e.status().as_u16()), ("unsupported_content_type", 415));
    assert_eq!(code("/missing").await.code(), "upstream_status");
    let e = code("/broken").await;
    assert_eq!(e.code(), "upstream_unavailable");
    assert!(e.retryable());
    assert_eq!(code("/big").await.code(), "page_too_large");
    assert_eq!(code("/big-declared").await.code(), "page_too_large");
    let started = std::time::Instant::now();
    let e = code("/slow").await;
    assert_eq!((e.code(), e.status().as_u16()), ("fetch_timeout", 504));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn compressed_pages_are_decoded_within_the_size_cap() {
    let addr = server().await;
    let f = fetcher(addr, &[]);
    let url = |p: &str| format!("http://127.0.0.1:{}{p}", addr.port());
    let plain = f.fetch(&url("/page")).await.unwrap();
    for path in ["/gzip", "/br", "/deflate-zlib", "/deflate-raw"] {
        let got = f.fetch(&url(path)).await.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(got.body, plain.body, "{path}");
    }
    let e = f.fetch(&url("/bomb")).await.unwrap_err();
    assert_eq!(e.code(), "page_too_large");
    assert_eq!(f.fetch(&url("/corrupt-gzip")).await.unwrap_err().code(), "corrupt_encoding");
    assert_eq!(f.fetch(&url("/compress")).await.unwrap_err().code(), "unsupported_encoding");
}

/// A job board over real TLS on 127.0.0.1: a certificate for `jobs.test` from a CA the
/// test makes, a hand-written HTTP/1.1 answer behind the handshake.
async fn tls_server(names: Vec<String>) -> (SocketAddr, rustls::RootCertStore) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(names).unwrap().signed_by(&key, &ca).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, roots)
}

#[tokio::test]
async fn https_pages_are_fetched_and_certificates_checked() {
    let (addr, roots) = tls_server(vec!["jobs.test".into()]).await;
    let mut config = ScrapeConfig::default();
    config.policy.allow_nets = vec!["127.0.0.1/32".parse().unwrap()];
    config.policy.allow_ports.insert(addr.port());
    config.timeout = Duration::from_secs(5);
    let names = [
        ("jobs.test".to_string(), vec!["127.0.0.1".parse().unwrap()]),
        ("other.test".to_string(), vec!["127.0.0.1".parse().unwrap()]),
    ];
    let resolver = Arc::new(StaticResolver(names.into_iter().collect()));
    let f = Fetcher::with_roots(&config, resolver.clone(), roots);
    let got = f.fetch(&format!("https://jobs.test:{}/page", addr.port())).await.unwrap();
    assert!(got.body.contains("<p>Hello</p>"), "{}", got.body);
    // The certificate names jobs.test, not other.test: refused.
    let e = f.fetch(&format!("https://other.test:{}/page", addr.port())).await.unwrap_err();
    assert_eq!(e.code(), "tls_failed");
    // A CA we do not trust (the Mozilla set): refused.
    let e =
        Fetcher::new(&config, resolver).fetch(&format!("https://jobs.test:{}/page", addr.port())).await.unwrap_err();
    assert_eq!(e.code(), "tls_failed");
}

#[tokio::test]
async fn redirects_are_followed_at_most_five_times() {
    let addr = server().await;
    let f = fetcher(addr, &[]);
    let ok = f.fetch(&format!("http://127.0.0.1:{}/chain/5", addr.port())).await.unwrap();
    assert!(ok.final_url.path().ends_with("/chain/0"));
    let e = f.fetch(&format!("http://127.0.0.1:{}/chain/6", addr.port())).await.unwrap_err();
    assert_eq!(e.code(), "too_many_redirects");
}

#[tokio::test]
async fn redirects_to_hostile_urls_are_refused() {
    let addr = server().await;
    let f = fetcher(
        addr,
        &[
            ("start.test", &["127.0.0.1"]),
            ("rebind.test", &["93.184.216.34", "10.0.0.7"]),
            ("metadata.test", &["169.254.169.254"]),
            ("mapped.test", &["::ffff:192.168.0.1"]),
            ("ula.test", &["fd00:ec2::254"]),
        ],
    );
    let mut checked = 0;
    for (i, hostile) in HOSTILE.iter().enumerate() {
        // Hosts that denote 127.0.0.1 itself are what this test's exemption allows.
        let denotes_exempt = url::Url::parse(hostile).ok().is_some_and(|u| match u.host() {
            Some(url::Host::Ipv4(v4)) => v4 == std::net::Ipv4Addr::LOCALHOST,
            Some(url::Host::Ipv6(v6)) => v6.to_ipv4_mapped() == Some(std::net::Ipv4Addr::LOCALHOST),
            _ => false,
        });
        if denotes_exempt {
            continue;
        }
        checked += 1;
        let e = f.fetch(&format!("http://127.0.0.1:{}/to/{i}", addr.port())).await.unwrap_err();
        assert!(
            matches!(
                e.code(),
                "ssrf_blocked"
                    | "unsupported_scheme"
                    | "port_not_allowed"
                    | "url_credentials"
                    | "invalid_url"
                    | "upstream_status"
            ),
            "redirect to {hostile}: {} ({})",
            e.code(),
            e.message()
        );
    }
    assert!(checked >= 40, "only {checked} hostile redirects checked");
    // Names whose addresses are internal, reached through a redirect, by name.
    let port = addr.port();
    for target in
        ["http://rebind.test/", "http://metadata.test/latest/meta-data/", "http://mapped.test/", "http://ula.test/"]
    {
        let e = f.fetch(&format!("http://start.test:{port}/go?{target}")).await.unwrap_err();
        assert_eq!(e.code(), "ssrf_blocked", "{target}: {}", e.message());
    }
    // Another loopback address than the allowed one, on the allowed port.
    let e = f.fetch(&format!("http://127.0.0.1:{port}/go?http://127.0.0.2:{port}/page")).await.unwrap_err();
    assert_eq!(e.code(), "ssrf_blocked");
}

#[tokio::test]
async fn names_never_reach_real_dns_in_tests() {
    let f = Fetcher::new(&ScrapeConfig::default(), Arc::new(SystemResolver));
    let e = f.fetch("https://example.com/").await.unwrap_err();
    assert_eq!(e.code(), "host_not_found");
}

#[tokio::test]
async fn https_to_a_plain_http_server_fails_the_handshake() {
    let addr = server().await;
    let f = fetcher(addr, &[]);
    let e = f.fetch(&format!("https://127.0.0.1:{}/page", addr.port())).await.unwrap_err();
    assert_eq!(e.code(), "tls_failed");
}

#[test]
fn decoding_defaults() {
    assert_eq!(decode("naïve".as_bytes(), None, true), "naïve");
    assert_eq!(decode(b"na\xefve", None, true), "naïve");
    assert_eq!(decode(b"<meta charset=\"utf-16\"><p>x</p>", None, true), "<meta charset=\"utf-16\"><p>x</p>");
    assert_eq!(decode(b"<meta charset='koi8-r'>\xc1", None, true), "<meta charset='koi8-r'>а");
}
