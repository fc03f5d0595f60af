//! Google's token-signing certificates, fetched from `FIREBASE_CERTS_URL` and cached for
//! the response's `Cache-Control: max-age`.
//!
//! The cache is read on every verification, so the read path is one uncontended read
//! lock and an `Arc` clone. A refresh happens only when the cached set is past its
//! max-age, and only one task fetches at a time: the others wait for it and then use
//! what it fetched (no stampede). A failed fetch is remembered for a few seconds so an
//! outage of the certificate endpoint costs one request per interval, not one per call.
//! Certificates past their max-age are not used after a failed refresh (a 503 instead),
//! as firebase-admin would fail too: a key Google withdrew must stop being trusted.
//! A `kid` missing from a fresh set is refused without a fetch, so made-up `kid`s cannot
//! make us fetch per request.

use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use url::Url;

use crate::error::{Error, Result};

/// Used when the response carries no `max-age` (Google always sends one).
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Lower bound on caching, so a `max-age=0` endpoint still is not fetched per request.
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// Upper bound, so a key Google withdraws stops being trusted within a day.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// After a failed fetch, calls fail fast for this long before the next attempt.
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// Google's document is a few KB; anything this large is not it.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// An RSA public key ready for RS256 verification.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaKey({} bits)", self.n.len() * 8)
    }
}

impl RsaKey {
    /// From big-endian modulus and exponent. ring wants minimal encodings, and DER
    /// integers carry a leading zero byte when the top bit is set, so strip those.
    pub fn from_components(n: &[u8], e: &[u8]) -> Self {
        let strip = |b: &[u8]| b[b.iter().position(|&x| x != 0).unwrap_or(b.len())..].to_vec();
        RsaKey { n: strip(n), e: strip(e) }
    }

    /// The public key of an x509 certificate in PEM form.
    pub fn from_x509_pem(pem: &str) -> std::result::Result<Self, String> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| format!("not PEM: {e}"))?;
        let cert = pem.parse_x509().map_err(|e| format!("not an x509 certificate: {e}"))?;
        match cert.public_key().parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => Ok(RsaKey::from_components(rsa.modulus, rsa.exponent)),
            Ok(_) => Err("the certificate's key is not RSA".into()),
            Err(e) => Err(format!("unreadable public key: {e}")),
        }
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (RS256); keys of 2048 to 8192 bits.
    pub fn verify_rs256(&self, message: &[u8], signature: &[u8]) -> bool {
        RsaPublicKeyComponents { n: &self.n, e: &self.e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
            .is_ok()
    }
}

/// The certificates current at one fetch.
#[derive(Debug)]
pub struct KeySet {
    keys: HashMap<String, RsaKey>,
    fresh_until: Instant,
}

impl KeySet {
    pub fn get(&self, kid: &str) -> Option<&RsaKey> {
        self.keys.get(kid)
    }
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
    fn is_fresh(&self) -> bool {
        Instant::now() < self.fresh_until
    }

    /// Parse the endpoint's document: Google's x509 form (`{"kid": "-----BEGIN
    /// CERTIFICATE-----..."}`) or a JWK set (`{"keys": [{"kid", "kty": "RSA", "n", "e"}]}`).
    /// Entries that cannot be used are skipped with a warning; none usable is an error.
    pub fn parse(body: &[u8], ttl: Duration) -> std::result::Result<KeySet, String> {
        #[derive(Deserialize)]
        struct Jwk {
            kid: Option<String>,
            kty: Option<String>,
            n: Option<String>,
            e: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Doc {
            Jwks { keys: Vec<Jwk> },
            X509(HashMap<String, String>),
        }
        let doc: Doc = serde_json::from_slice(body)
            .map_err(|e| format!("not a JSON object of x509 certificates or a JWK set: {e}"))?;
        let mut keys = HashMap::new();
        match doc {
            Doc::X509(certs) => {
                for (kid, pem) in certs {
                    match RsaKey::from_x509_pem(&pem) {
                        Ok(k) => {
                            keys.insert(kid, k);
                        }
                        Err(e) => tracing::warn!(kid = %kid, error = %e, "skipping unusable certificate"),
                    }
                }
            }
            Doc::Jwks { keys: jwks } => {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                for jwk in jwks {
                    let (Some(kid), Some("RSA"), Some(n), Some(e)) = (jwk.kid, jwk.kty.as_deref(), jwk.n, jwk.e) else {
                        tracing::warn!("skipping a JWK that is not an RSA key with a kid");
                        continue;
                    };
                    match (b64.decode(&n), b64.decode(&e)) {
                        (Ok(n), Ok(e)) => {
                            keys.insert(kid, RsaKey::from_components(&n, &e));
                        }
                        _ => tracing::warn!(kid = %kid, "skipping a JWK whose n or e is not base64url"),
                    }
                }
            }
        }
        if keys.is_empty() {
            return Err("the document holds no usable RSA key".into());
        }
        Ok(KeySet { keys, fresh_until: Instant::now() + ttl })
    }
}

/// How long a response may be cached: `max-age` less `Age`, bounded by [`MIN_TTL`] and
/// [`MAX_TTL`]; [`DEFAULT_TTL`] without `max-age`. `no-store`/`no-cache` count as zero,
/// which the lower bound turns into one second.
pub fn cache_ttl(headers: &http::HeaderMap) -> Duration {
    let mut max_age: Option<u64> = None;
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "max-age" => {
                    if let Ok(secs) = arg.trim().trim_matches('"').parse::<u64>() {
                        max_age = Some(max_age.map_or(secs, |m| m.min(secs)));
                    }
                }
                "no-store" | "no-cache" => max_age = Some(0),
                _ => {}
            }
        }
    }
    let Some(max_age) = max_age else { return DEFAULT_TTL };
    let age = headers
        .get(http::header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_secs(max_age.saturating_sub(age)).clamp(MIN_TTL, MAX_TTL)
}

/// The certificate cache for one URL.
pub struct CertCache {
    url: Url,
    client: reqwest::Client,
    current: RwLock<Option<Arc<KeySet>>>,
    /// Held while fetching; remembers the last failure for [`FAILURE_BACKOFF`].
    refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl CertCache {
    pub fn new(url: Url) -> Result<Self> {
        // reqwest is built without a default crypto provider (to avoid aws-lc's C build);
        // install ring's unless the process already chose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("catalyst-auth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal("FIREBASE_CERTS_URL: cannot build an HTTP client").with_source(e))?;
        Ok(CertCache { url, client, current: RwLock::new(None), refresh: tokio::sync::Mutex::new(None) })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    fn cached(&self) -> Option<Arc<KeySet>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The current certificates: cached while fresh, otherwise fetched by exactly one caller.
    pub async fn keys(&self) -> Result<Arc<KeySet>> {
        if let Some(k) = self.cached().filter(|k| k.is_fresh()) {
            return Ok(k);
        }
        let mut last_failure = self.refresh.lock().await;
        // Whoever held the lock before us may have refreshed already.
        if let Some(k) = self.cached().filter(|k| k.is_fresh()) {
            return Ok(k);
        }
        if let Some(at) = *last_failure
            && at.elapsed() < FAILURE_BACKOFF
        {
            return Err(unavailable(None));
        }
        match self.fetch().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(keys.clone());
                *last_failure = None;
                tracing::info!(
                    kids = keys.keys.len(),
                    ttl_s = (keys.fresh_until - Instant::now()).as_secs(),
                    "fetched token-signing certificates"
                );
                Ok(keys)
            }
            Err(e) => {
                *last_failure = Some(Instant::now());
                tracing::error!(url = %self.url, error = %e, "cannot fetch token-signing certificates");
                Err(unavailable(Some(e)))
            }
        }
    }

    async fn fetch(&self) -> std::result::Result<KeySet, String> {
        let mut resp = self.client.get(self.url.clone()).send().await.map_err(|e| error_chain(&e))?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let ttl = cache_ttl(resp.headers());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("the document is larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        KeySet::parse(&body, ttl)
    }
}

fn unavailable(detail: Option<String>) -> Error {
    let e =
        Error::unavailable("cannot fetch Firebase token-signing certificates (FIREBASE_CERTS_URL); try again shortly")
            .with_code("certs_unavailable");
    match detail {
        Some(d) => e.with_source(std::io::Error::other(d)),
        None => e,
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn ttl_follows_cache_control() {
        let cases: &[(&[(&str, &str)], u64)] = &[
            (&[("cache-control", "public, max-age=19766, must-revalidate, no-transform")], 19766),
            (&[("cache-control", "max-age=100"), ("age", "40")], 60),
            (&[("cache-control", "max-age=\"30\"")], 30),
            (&[("cache-control", "max-age=0")], MIN_TTL.as_secs()),
            (&[("cache-control", "no-store")], MIN_TTL.as_secs()),
            (&[("cache-control", "max-age=99999999")], MAX_TTL.as_secs()),
            (&[("cache-control", "max-age=abc")], DEFAULT_TTL.as_secs()),
            (&[], DEFAULT_TTL.as_secs()),
        ];
        for (h, want) in cases {
            assert_eq!(cache_ttl(&headers(h)).as_secs(), *want, "{h:?}");
        }
    }

    #[test]
    fn documents_without_usable_keys_are_refused() {
        assert!(KeySet::parse(b"[]", DEFAULT_TTL).is_err());
        assert!(KeySet::parse(b"{}", DEFAULT_TTL).is_err());
        assert!(KeySet::parse(br#"{"k1": "not a certificate"}"#, DEFAULT_TTL).unwrap_err().contains("no usable"));
        assert!(KeySet::parse(br#"{"keys": [{"kid": "a", "kty": "EC"}]}"#, DEFAULT_TTL).is_err());
        let ks = KeySet::parse(br#"{"keys": [{"kid": "a", "kty": "RSA", "n": "AQAB", "e": "AQAB"}]}"#, DEFAULT_TTL);
        assert_eq!(ks.unwrap().kids().collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn leading_zeros_are_stripped() {
        let k = RsaKey::from_components(&[0, 0, 0xc3, 1], &[0, 1, 0, 1]);
        assert_eq!(k.n, vec![0xc3, 1]);
        assert_eq!(k.e, vec![1, 0, 1]);
    }
}
