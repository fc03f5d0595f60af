//! SSRF-safe fetching.
//!
//! Built on hyper with our own connector rather than reqwest because the connector is
//! where safety lives: we resolve the name ourselves, check every address, and open the
//! socket to exactly the address we checked. reqwest would skip a custom resolver for IP
//! literals and can route through proxies from the environment; here nothing connects
//! except [`connect`]. Redirects are followed by hand so each hop is checked again.

use async_trait::async_trait;
use bytes::Bytes;
use catalyst_shared::{Error, ErrorKind};
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::Url;

use crate::config::ScrapeConfig;
use crate::guard::{Policy, Target, TargetHost, canonical};

pub const MAX_REDIRECTS: usize = 5;
const USER_AGENT: &str = "CatalystScrape/0.1 (+https://catalyst.example/bot)";

/// Name resolution, injectable so tests never touch real DNS.
#[async_trait]
pub trait Resolver: Send + Sync + 'static {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>>;
}

/// The system resolver. In this crate's test build it refuses every lookup, a second
/// guard so no test can reach real DNS even by mistake.
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>> {
        if cfg!(test) {
            return Err(std::io::Error::other(format!("test build: real DNS lookup of `{host}` refused")));
        }
        Ok(tokio::net::lookup_host((host, port)).await?.map(|a| a.ip()).collect())
    }
}

/// A fixed name -> addresses map (tests, and pinning hosts in a local stack).
#[derive(Default, Clone)]
pub struct StaticResolver(pub HashMap<String, Vec<IpAddr>>);

#[async_trait]
impl Resolver for StaticResolver {
    async fn resolve(&self, host: &str, _port: u16) -> std::io::Result<Vec<IpAddr>> {
        self.0
            .get(host)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("no such host `{host}`")))
    }
}

/// What kind of document came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Html,
    PlainText,
}

#[derive(Debug, Clone)]
pub struct Fetched {
    pub final_url: Url,
    pub kind: DocKind,
    pub body: String,
}

#[derive(Clone)]
pub struct Fetcher {
    policy: Policy,
    max_bytes: usize,
    timeout: Duration,
    resolver: Arc<dyn Resolver>,
    tls: tokio_rustls::TlsConnector,
}

impl Fetcher {
    pub fn new(config: &ScrapeConfig, resolver: Arc<dyn Resolver>) -> Self {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        Self::with_roots(config, resolver, roots)
    }

    /// Trusting `roots` instead of the Mozilla set: a private CA (an intranet job board),
    /// or a test's own CA.
    pub fn with_roots(config: &ScrapeConfig, resolver: Arc<dyn Resolver>, roots: rustls::RootCertStore) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Fetcher {
            policy: config.policy.clone(),
            max_bytes: config.max_bytes,
            timeout: config.timeout,
            resolver,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Fetch `url`, following at most [`MAX_REDIRECTS`] redirects, each checked again.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, Error> {
        let target = self.policy.check_str(url)?;
        match tokio::time::timeout(self.timeout, self.follow(target)).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("the page did not load within {} s", self.timeout.as_secs_f32()),
            )
            .with_code("fetch_timeout")),
        }
    }

    async fn follow(&self, mut target: Target) -> Result<Fetched, Error> {
        for hop in 0..=MAX_REDIRECTS {
            let addrs = self.addresses(&target).await?;
            let resp = self.request(&target, &addrs).await?;
            let status = resp.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let location =
                    resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
                        upstream(format!("the page answered {status} without a valid Location header"))
                    })?;
                if hop == MAX_REDIRECTS {
                    return Err(Error::unprocessable(format!("more than {MAX_REDIRECTS} redirects"))
                        .with_code("too_many_redirects"));
                }
                let next = target
                    .url
                    .join(location)
                    .map_err(|e| upstream(format!("the page redirected to an invalid URL: {e}")))?;
                target = self.policy.check_url(next)?;
                continue;
            }
            if !status.is_success() {
                let msg = format!("the page answered {status}");
                return Err(if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    Error::unavailable(msg).with_code("upstream_unavailable")
                } else {
                    upstream(msg)
                });
            }
            let (kind, header_charset) = content_kind(resp.headers())?;
            let encoding = resp
                .headers()
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
            if let Some(enc) = encoding.as_deref()
                && !SUPPORTED_ENCODINGS.contains(&enc)
            {
                return Err(upstream(format!("the page used content encoding `{enc}`, which we did not ask for"))
                    .with_code("unsupported_encoding"));
            }
            if let Some(len) =
                resp.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                && len > self.max_bytes as u64
            {
                return Err(too_large(self.max_bytes));
            }
            let bytes =
                decompress(encoding.as_deref(), read_capped(resp.into_body(), self.max_bytes).await?, self.max_bytes)?;
            let body = decode(&bytes, header_charset.as_deref(), kind == DocKind::Html);
            return Ok(Fetched { final_url: target.url, kind, body });
        }
        unreachable!("the loop returns on its last hop")
    }

    /// The checked addresses to try for a target. A name with any forbidden address is
    /// refused whole, so a record set mixing public and internal addresses cannot be used.
    async fn addresses(&self, target: &Target) -> Result<Vec<IpAddr>, Error> {
        let ips = match &target.host {
            TargetHost::Ip(ip) => vec![*ip],
            TargetHost::Name(name) => {
                let ips = self.resolver.resolve(name, target.port).await.map_err(|e| {
                    Error::unprocessable(format!("the host `{name}` could not be resolved"))
                        .with_code("host_not_found")
                        .with_source(e)
                })?;
                if ips.is_empty() {
                    return Err(
                        Error::unprocessable(format!("the host `{name}` has no addresses")).with_code("host_not_found")
                    );
                }
                ips
            }
        };
        for ip in &ips {
            self.policy.check_ip(*ip)?;
        }
        Ok(ips.into_iter().map(canonical).collect())
    }

    async fn request(&self, target: &Target, addrs: &[IpAddr]) -> Result<http::Response<hyper::body::Incoming>, Error> {
        let mut last = None;
        let mut stream = None;
        for ip in addrs {
            match connect(SocketAddr::new(*ip, target.port)).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(stream) = stream else {
            let e = last.unwrap_or_else(|| std::io::Error::other("no address"));
            return Err(Error::unavailable("could not connect to the page's server")
                .with_code("fetch_failed")
                .with_source(e));
        };
        let host_header = match target.url.port() {
            Some(p) => format!("{}:{p}", target.url.host_str().unwrap_or_default()),
            None => target.url.host_str().unwrap_or_default().to_string(),
        };
        let path = match target.url.query() {
            Some(q) => format!("{}?{q}", target.url.path()),
            None => target.url.path().to_string(),
        };
        let req = Request::get(path)
            .header(header::HOST, host_header)
            .header(header::USER_AGENT, USER_AGENT)
            .header(header::ACCEPT, "text/html,application/xhtml+xml,text/plain;q=0.8")
            // Job boards and CDNs compress; a third of the bytes arrive sooner.
            .header(header::ACCEPT_ENCODING, "gzip, deflate, br")
            .header(header::ACCEPT_LANGUAGE, "en;q=0.9,*;q=0.5")
            .body(Empty::<Bytes>::new())
            .map_err(|e| Error::bad_request("the URL cannot be requested").with_code("invalid_url").with_source(e))?;
        if target.url.scheme() == "https" {
            let name = match &target.host {
                TargetHost::Ip(ip) => rustls::pki_types::ServerName::IpAddress((*ip).into()),
                TargetHost::Name(n) => rustls::pki_types::ServerName::try_from(n.clone()).map_err(|e| {
                    Error::bad_request("invalid TLS server name").with_code("invalid_url").with_source(e)
                })?,
            };
            let tls = self.tls.connect(name, stream).await.map_err(|e| {
                Error::unavailable("TLS handshake with the page's server failed").with_code("tls_failed").with_source(e)
            })?;
            send(tls, req).await
        } else {
            send(stream, req).await
        }
    }
}

/// The only place a socket is opened. The test build refuses anything but loopback, a
/// second guard under the SSRF tests: were the policy broken, a test still could not
/// reach another host.
async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    if cfg!(test) && !addr.ip().is_loopback() {
        return Err(std::io::Error::other(format!("test build: connection to non-loopback {addr} refused")));
    }
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn send<S>(io: S, req: Request<Empty<Bytes>>) -> Result<http::Response<hyper::body::Incoming>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let failed = |e: hyper::Error| {
        Error::unavailable("the page's server closed the connection").with_code("fetch_failed").with_source(e)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(failed)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "scrape connection ended with an error");
        }
    });
    sender.send_request(req).await.map_err(failed)
}

fn upstream(msg: String) -> Error {
    Error::unprocessable(msg).with_code("upstream_status")
}

fn too_large(max: usize) -> Error {
    Error::new(ErrorKind::PayloadTooLarge, format!("the page is larger than {max} bytes")).with_code("page_too_large")
}

/// HTML, XHTML or plain text only; the charset parameter if any.
fn content_kind(headers: &HeaderMap) -> Result<(DocKind, Option<String>), Error> {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        // No type at all: treat as HTML, which is what browsers sniff most pages to.
        return Ok((DocKind::Html, None));
    };
    let mut parts = ct.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let charset = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string());
    let kind = match mime.as_str() {
        "text/html" | "application/xhtml+xml" => DocKind::Html,
        "text/plain" => DocKind::PlainText,
        _ => {
            return Err(Error::new(
                ErrorKind::UnsupportedMediaType,
                format!("the page is `{mime}`; only HTML, XHTML and plain text are extracted"),
            )
            .with_code("unsupported_content_type"));
        }
    };
    Ok((kind, charset))
}

/// Read at most `max` bytes, stopping as soon as the cap is passed.
async fn read_capped(mut body: hyper::body::Incoming, max: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Error::unavailable("the page's body could not be read").with_code("fetch_failed").with_source(e)
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(too_large(max));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// The content encodings we ask for and undo (`Accept-Encoding`).
const SUPPORTED_ENCODINGS: &[&str] = &["identity", "gzip", "x-gzip", "deflate", "br"];

/// Undo the page's `Content-Encoding`, never producing more than `max` bytes, so a small
/// compressed body cannot expand into gigabytes (a decompression bomb). The compressed
/// body was already capped at `max` while it was read.
fn decompress(encoding: Option<&str>, bytes: Vec<u8>, max: usize) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let reader: Box<dyn Read + '_> = match encoding {
        None | Some("identity") => return Ok(bytes),
        Some("gzip" | "x-gzip") => Box::new(flate2::read::MultiGzDecoder::new(&bytes[..])),
        // HTTP's "deflate" is zlib-wrapped by the standard, raw deflate in practice as often.
        Some("deflate")
            if bytes.len() >= 2
                && bytes[0] & 0x0f == 8
                && u16::from_be_bytes([bytes[0], bytes[1]]).is_multiple_of(31) =>
        {
            Box::new(flate2::read::ZlibDecoder::new(&bytes[..]))
        }
        Some("deflate") => Box::new(flate2::read::DeflateDecoder::new(&bytes[..])),
        Some("br") => Box::new(brotli_decompressor::Decompressor::new(&bytes[..], 8192)),
        Some(other) => {
            return Err(upstream(format!("the page used content encoding `{other}`, which we did not ask for"))
                .with_code("unsupported_encoding"));
        }
    };
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(max));
    reader.take(max as u64 + 1).read_to_end(&mut out).map_err(|e| {
        upstream(format!("the page's {} body is corrupt", encoding.unwrap_or_default()))
            .with_code("corrupt_encoding")
            .with_source(e)
    })?;
    if out.len() > max {
        return Err(too_large(max));
    }
    Ok(out)
}

/// Decode bytes to text the way browsers pick the encoding: BOM, then the header's
/// charset, then a `<meta>` charset in the first 1024 bytes, then UTF-8 if the bytes are
/// valid UTF-8, else windows-1252.
pub fn decode(bytes: &[u8], header_charset: Option<&str>, html: bool) -> String {
    use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        return enc.decode_without_bom_handling(&bytes[bom_len..]).0.into_owned();
    }
    let from_header = header_charset.and_then(|c| Encoding::for_label(c.as_bytes()));
    let from_meta = if html && from_header.is_none() { meta_charset(bytes) } else { None };
    let enc = from_header
        .or(from_meta)
        .unwrap_or_else(|| if std::str::from_utf8(bytes).is_ok() { UTF_8 } else { WINDOWS_1252 });
    enc.decode_without_bom_handling(bytes).0.into_owned()
}

/// A simplified form of the HTML prescan: the first `charset=` in the first 1024 bytes
/// inside a `<meta` tag. UTF-16 labels in a meta mean UTF-8, as the spec says.
fn meta_charset(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let head = &bytes[..bytes.len().min(1024)];
    let lower: Vec<u8> = head.iter().map(|b| b.to_ascii_lowercase()).collect();
    let mut from = 0;
    while let Some(pos) = find(&lower[from..], b"<meta") {
        let start = from + pos;
        let end = find(&lower[start..], b">").map(|e| start + e).unwrap_or(lower.len());
        let tag = &lower[start..end];
        if let Some(c) = find(tag, b"charset") {
            let rest = &tag[c + 7..];
            let rest = rest.iter().skip_while(|b| b.is_ascii_whitespace()).copied().collect::<Vec<u8>>();
            if let Some(rest) = rest.strip_prefix(b"=") {
                let rest: Vec<u8> = rest
                    .iter()
                    .skip_while(|b| b.is_ascii_whitespace() || **b == b'"' || **b == b'\'')
                    .copied()
                    .collect();
                let label: Vec<u8> = rest
                    .iter()
                    .take_while(|b| !(b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b';' | b'/' | b'>')))
                    .copied()
                    .collect();
                if let Some(enc) = encoding_rs::Encoding::for_label(&label) {
                    return Some(if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
                        encoding_rs::UTF_8
                    } else {
                        enc
                    });
                }
            }
        }
        from = end.max(start + 1);
        if from >= lower.len() {
            break;
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;
