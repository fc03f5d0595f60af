//! Firebase ID token verification, as strict as the Firebase Admin SDKs.
//!
//! The JWT handling is written here rather than taken from `jsonwebtoken`: Firebase needs
//! checks that crate does not make (`iat` and `auth_time` not in the future, `sub`
//! length, `kid` among Google's current certificates, a message per failed check), and
//! its RSA backends are either aws-lc (a long C build) or RustCrypto's `rsa` (several
//! times slower to verify than ring, which rustls already brings in). What remains is
//! base64url, two small JSON objects and one ring call.
//!
//! Checks, in order (a token failing any of them gets a 401 naming the check):
//! 1. three base64url segments, at most [`MAX_TOKEN_BYTES`];
//! 2. header `alg` exactly `RS256`, `kid` present;
//! 3. `aud` is the project id, `iss` is `https://securetoken.google.com/<project id>`;
//! 4. `sub` a non-empty string of at most 128 characters;
//! 5. `exp` in the future, `iat` and `auth_time` not in the future, each allowing
//!    [`DEFAULT_CLOCK_SKEW`] (60 s, the most firebase-admin allows; never above 5 min);
//! 6. `kid` among the certificates currently published at `FIREBASE_CERTS_URL`;
//! 7. RSASSA-PKCS1-v1_5 SHA-256 signature by that certificate's key.
//!
//! The token itself is never logged or echoed; messages quote claim values only,
//! shortened and escaped.

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use url::Url;

use super::certs::CertCache;
use super::{Authenticator, NO_CREDENTIAL, Principal, PrincipalKind, api_keys::API_KEY_PREFIX};
use crate::error::{Error, Result};

/// Tolerated difference between our clock and Google's.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);
/// The most skew [`FirebaseVerifier::with_clock_skew`] accepts.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
/// Firebase ID tokens are 1-2 KB (custom claims are capped at 1000 bytes); anything
/// much larger is refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The audience of Firebase *custom* tokens, which are sometimes sent by mistake.
const CUSTOM_TOKEN_AUDIENCE: &str =
    "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit";

/// What a verified Firebase ID token says about its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirebaseClaims {
    pub uid: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub auth_time: i64,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl From<FirebaseClaims> for Principal {
    fn from(c: FirebaseClaims) -> Principal {
        Principal { kind: PrincipalKind::User, uid: c.uid, email: c.email, scopes: Vec::new() }
    }
}

pub struct FirebaseVerifier {
    project_id: String,
    issuer: String,
    skew: i64,
    certs: CertCache,
}

impl FirebaseVerifier {
    /// A verifier for `project_id`, trusting the certificates published at `certs_url`.
    pub fn new(project_id: impl Into<String>, certs_url: Url) -> Result<Self> {
        let project_id = project_id.into();
        let valid = !project_id.is_empty()
            && project_id.len() <= 128
            && project_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || c == ':');
        if !valid {
            return Err(Error::bad_request(format!(
                "FIREBASE_PROJECT_ID: `{}` is not a project id",
                shorten(&project_id)
            ))
            .with_code("invalid_config"));
        }
        Ok(FirebaseVerifier {
            issuer: format!("https://securetoken.google.com/{project_id}"),
            project_id,
            skew: DEFAULT_CLOCK_SKEW.as_secs() as i64,
            certs: CertCache::new(certs_url)?,
        })
    }

    /// Allow a different clock skew, at most [`MAX_CLOCK_SKEW`].
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.skew = skew.min(MAX_CLOCK_SKEW).as_secs() as i64;
        self
    }

    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    pub fn certs(&self) -> &CertCache {
        &self.certs
    }

    /// Verify `token` now.
    pub async fn verify(&self, token: &str) -> Result<FirebaseClaims> {
        self.verify_at(token, Utc::now()).await
    }

    /// Verify `token` as of `now` (claims and structure first, so malformed or expired
    /// tokens never wait for a certificate fetch).
    pub async fn verify_at(&self, token: &str, now: DateTime<Utc>) -> Result<FirebaseClaims> {
        let parsed = self.check_claims(token, now.timestamp())?;
        let keys = self.certs.keys().await?;
        let Some(key) = keys.get(&parsed.kid) else {
            return Err(invalid(format!(
                "Firebase ID token has `kid` \"{}\", which is not among the current token-signing certificates",
                shorten(&parsed.kid)
            )));
        };
        if !key.verify_rs256(parsed.signed.as_bytes(), &parsed.signature) {
            return Err(invalid("Firebase ID token has an invalid signature"));
        }
        Ok(parsed.claims)
    }

    fn check_claims<'t>(&self, token: &'t str, now: i64) -> Result<Parsed<'t>> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(too_large(token.len()));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(invalid("Firebase ID token is malformed: expected three dot-separated segments"));
        };
        let header: Header = decode_segment(h, "header")?;
        let payload: Payload = decode_segment(p, "payload")?;
        let signature =
            B64.decode(s).map_err(|_| invalid("Firebase ID token is malformed: the signature is not base64url"))?;

        match header.alg.as_ref() {
            Some(Value::String(a)) if a == "RS256" => {}
            Some(Value::String(a)) => {
                return Err(invalid(format!("Firebase ID token has `alg` \"{}\"; only RS256 is accepted", shorten(a))));
            }
            _ => return Err(invalid("Firebase ID token has no `alg` header; only RS256 is accepted")),
        }
        let kid = match header.kid {
            Some(Value::String(k)) if !k.is_empty() => k,
            _ => {
                let custom = matches!(&payload.aud, Some(Value::String(a)) if a == CUSTOM_TOKEN_AUDIENCE);
                return Err(invalid(if custom {
                    "this is a Firebase custom token, not an ID token: exchange it for an ID token with signInWithCustomToken"
                } else {
                    "Firebase ID token has no `kid` header"
                }));
            }
        };

        match &payload.aud {
            Some(Value::String(a)) if *a == self.project_id => {}
            other => {
                return Err(invalid(format!(
                    "Firebase ID token has `aud` {}, expected the project id \"{}\"",
                    describe(other.as_ref()),
                    self.project_id
                )));
            }
        }
        match &payload.iss {
            Some(Value::String(i)) if *i == self.issuer => {}
            other => {
                return Err(invalid(format!(
                    "Firebase ID token has `iss` {}, expected \"{}\"",
                    describe(other.as_ref()),
                    self.issuer
                )));
            }
        }
        let uid = match payload.sub {
            Some(Value::String(s)) if s.is_empty() => return Err(invalid("Firebase ID token has an empty `sub`")),
            Some(Value::String(s)) if s.chars().count() > 128 => {
                return Err(invalid("Firebase ID token has a `sub` longer than 128 characters"));
            }
            Some(Value::String(s)) => s,
            other => {
                return Err(invalid(format!(
                    "Firebase ID token has `sub` {}, expected a string",
                    describe(other.as_ref())
                )));
            }
        };

        let exp = timestamp(payload.exp.as_ref(), "exp")?;
        let iat = timestamp(payload.iat.as_ref(), "iat")?;
        let auth_time = timestamp(payload.auth_time.as_ref(), "auth_time")?;
        if exp + self.skew <= now {
            return Err(Error::unauthenticated(format!(
                "Firebase ID token has expired (`exp` {}); get a fresh one from the client SDK",
                rfc3339(exp)
            ))
            .with_code("id_token_expired"));
        }
        if iat > now + self.skew {
            return Err(invalid(format!("Firebase ID token has `iat` {} in the future", rfc3339(iat))));
        }
        if auth_time > now + self.skew {
            return Err(invalid(format!("Firebase ID token has `auth_time` {} in the future", rfc3339(auth_time))));
        }

        let email = match payload.email {
            Some(Value::String(e)) if !e.is_empty() => Some(e),
            _ => None,
        };
        let email_verified = matches!(payload.email_verified, Some(Value::Bool(true)));
        let signed = &token[..h.len() + 1 + p.len()];
        Ok(Parsed {
            kid,
            signed,
            signature,
            claims: FirebaseClaims { uid, email, email_verified, auth_time, issued_at: iat, expires_at: exp },
        })
    }
}

/// Claims that have passed every check but the signature.
struct Parsed<'t> {
    kid: String,
    signed: &'t str,
    signature: Vec<u8>,
    claims: FirebaseClaims,
}

// Fields are `Value` so a wrong type gets a message naming the claim, not a serde error.
// Duplicate keys are refused by serde, so `{"alg":"RS256","alg":"none"}` cannot smuggle.
#[derive(Deserialize)]
struct Header {
    alg: Option<Value>,
    kid: Option<Value>,
}

#[derive(Deserialize)]
struct Payload {
    aud: Option<Value>,
    iss: Option<Value>,
    sub: Option<Value>,
    exp: Option<Value>,
    iat: Option<Value>,
    auth_time: Option<Value>,
    email: Option<Value>,
    email_verified: Option<Value>,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn decode_segment<T: serde::de::DeserializeOwned>(segment: &str, what: &str) -> Result<T> {
    let bytes = B64
        .decode(segment)
        .map_err(|_| invalid(format!("Firebase ID token is malformed: the {what} is not base64url")))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| invalid(format!("Firebase ID token is malformed: the {what} is not a JSON object")))
}

/// A NumericDate: seconds since the epoch. Fractions are truncated, as Google's SDKs do.
fn timestamp(v: Option<&Value>, claim: &str) -> Result<i64> {
    let n = match v {
        None => return Err(invalid(format!("Firebase ID token has no `{claim}`"))),
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Some(_) => None,
    };
    n.ok_or_else(|| invalid(format!("Firebase ID token has a `{claim}` that is not a number of seconds")))
}

fn rfc3339(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0).map(|t| t.to_rfc3339()).unwrap_or_else(|| secs.to_string())
}

/// A claim value for an error message: short, escaped, never the token.
fn describe(v: Option<&Value>) -> String {
    match v {
        None => "missing".into(),
        Some(Value::String(s)) => format!("\"{}\"", shorten(s)),
        Some(Value::Array(_)) => "an array".into(),
        Some(Value::Object(_)) => "an object".into(),
        Some(other) => shorten(&other.to_string()),
    }
}

pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = s.chars().take(MAX).flat_map(char::escape_debug).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::unauthenticated(message).with_code("invalid_id_token")
}

pub(crate) fn too_large(len: usize) -> Error {
    Error::unauthenticated(format!("credential of {len} bytes refused: at most {MAX_TOKEN_BYTES} bytes are accepted"))
        .with_code("credential_too_large")
}

/// Where Google API Gateway (ESPv2) puts the caller's original Authorization header.
pub(crate) const FORWARDED_AUTHORIZATION: &str = "x-forwarded-authorization";

/// The bearer token of a request, if it carries exactly one `Authorization: Bearer` header
/// (or `X-Forwarded-Authorization`, see below).
///
/// `Ok(None)`: no Authorization header, or one that holds an API key (left to the API-key
/// verifier). A non-Bearer scheme is "no credential of this kind" so a [`super::Chain`]
/// may still find an `x-api-key`.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<&str>> {
    // Behind Google API Gateway, the gateway authenticates to Cloud Run with its own token
    // in Authorization and moves the caller's header here. Either way the token is then
    // verified in full, so taking it from this header trusts nothing new.
    let name = if headers.contains_key(FORWARDED_AUTHORIZATION) {
        http::HeaderName::from_static(FORWARDED_AUTHORIZATION)
    } else {
        http::header::AUTHORIZATION
    };
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Error::unauthenticated("send exactly one Authorization header").with_code("invalid_credentials"));
    }
    if value.len() > MAX_TOKEN_BYTES + 16 {
        return Err(too_large(value.len()));
    }
    let value = value.to_str().map_err(|_| {
        Error::unauthenticated("the Authorization header is not visible ASCII").with_code("invalid_credentials")
    })?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::unauthenticated(format!(
            "the Authorization header uses the `{}` scheme; send `Authorization: Bearer <Firebase ID token>` or `x-api-key: <key>`",
            shorten(scheme)
        ))
        .with_code(NO_CREDENTIAL));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(invalid("the Authorization header has no bearer token"));
    }
    Ok(Some(token))
}

#[async_trait]
impl Authenticator for FirebaseVerifier {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal> {
        match bearer(headers)? {
            Some(token) if !token.starts_with(API_KEY_PREFIX) => Ok(self.verify(token).await?.into()),
            _ => Err(super::no_credential()),
        }
    }
}

/// Stands in for the Firebase verifier when `FIREBASE_PROJECT_ID` is not set, so a
/// bearer token gets a 401 that says what to configure instead of "missing credentials".
pub struct FirebaseNotConfigured;

#[async_trait]
impl Authenticator for FirebaseNotConfigured {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal> {
        match bearer(headers) {
            Ok(Some(token)) if !token.starts_with(API_KEY_PREFIX) => Err(Error::unauthenticated(
                "Firebase ID tokens are not accepted by this deployment: set FIREBASE_PROJECT_ID (or use `x-api-key`)",
            )
            .with_code("id_tokens_not_configured")),
            Err(e) if e.code() != NO_CREDENTIAL => Err(e),
            _ => Err(Error::unauthenticated(
                "missing credentials: send `x-api-key: <key>` (Firebase ID tokens need FIREBASE_PROJECT_ID to be set)",
            )
            .with_code(NO_CREDENTIAL)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> FirebaseVerifier {
        FirebaseVerifier::new("proj", Url::parse("http://127.0.0.1:9/certs").unwrap()).unwrap()
    }

    fn token(header: Value, payload: Value) -> String {
        format!("{}.{}.{}", B64.encode(header.to_string()), B64.encode(payload.to_string()), B64.encode(b"sig"))
    }

    fn good_payload(now: i64) -> Value {
        serde_json::json!({"aud": "proj", "iss": "https://securetoken.google.com/proj", "sub": "u1",
            "iat": now - 10, "exp": now + 3600, "auth_time": now - 20, "email": "a@b.c"})
    }

    /// Everything up to the signature, which needs certificates (covered with real keys
    /// and a real certificate server in the `auth` function's tests).
    #[test]
    fn claim_checks_name_the_failed_check() {
        let v = verifier();
        let now = 1_800_000_000;
        let rs = serde_json::json!({"alg": "RS256", "kid": "k1"});
        let with = |k: &str, val: Value| {
            let mut p = good_payload(now);
            p[k] = val;
            p
        };
        let without = |k: &str| {
            let mut p = good_payload(now);
            p.as_object_mut().unwrap().remove(k);
            p
        };
        let cases: Vec<(String, &str)> = vec![
            ("a.b".into(), "three dot-separated"),
            ("a.b.c.d".into(), "three dot-separated"),
            ("!!.e30.c2ln".into(), "header is not base64url"),
            (format!("{}.e30.c2ln", B64.encode("[1]")), "header is not a JSON object"),
            (token(serde_json::json!({"alg": "none", "kid": "k1"}), good_payload(now)), "`alg` \"none\""),
            (token(serde_json::json!({"alg": "HS256", "kid": "k1"}), good_payload(now)), "`alg` \"HS256\""),
            (token(serde_json::json!({"alg": "rs256", "kid": "k1"}), good_payload(now)), "only RS256"),
            (token(serde_json::json!({"kid": "k1"}), good_payload(now)), "no `alg`"),
            (token(serde_json::json!({"alg": "RS256"}), good_payload(now)), "no `kid`"),
            (token(serde_json::json!({"alg": "RS256"}), with("aud", CUSTOM_TOKEN_AUDIENCE.into())), "custom token"),
            (token(rs.clone(), with("aud", "other".into())), "`aud` \"other\""),
            (token(rs.clone(), with("aud", serde_json::json!(["proj"]))), "`aud` an array"),
            (token(rs.clone(), with("iss", "https://securetoken.google.com/other".into())), "`iss`"),
            (token(rs.clone(), without("sub")), "`sub` missing"),
            (token(rs.clone(), with("sub", "".into())), "empty `sub`"),
            (token(rs.clone(), with("sub", "x".repeat(129).into())), "longer than 128"),
            (token(rs.clone(), with("sub", 5.into())), "expected a string"),
            (token(rs.clone(), with("exp", (now - 61).into())), "expired"),
            (token(rs.clone(), without("exp")), "no `exp`"),
            (token(rs.clone(), with("iat", (now + 61).into())), "`iat`"),
            (token(rs.clone(), with("iat", "yesterday".into())), "`iat` that is not a number"),
            (token(rs.clone(), with("auth_time", (now + 61).into())), "`auth_time`"),
            (token(rs.clone(), without("auth_time")), "no `auth_time`"),
            ("x".repeat(MAX_TOKEN_BYTES + 1), "bytes refused"),
        ];
        for (tok, want) in cases {
            let err = v.check_claims(&tok, now).err().unwrap_or_else(|| panic!("accepted; wanted {want}"));
            assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
            assert!(err.message().contains(want), "{want:?} not in {:?}", err.message());
            assert!(tok.len() < 8 || !err.message().contains(&tok), "the token is echoed");
        }
        // Inside the skew is fine.
        let ok = token(rs, with("exp", (now - 30).into()));
        let parsed = v.check_claims(&ok, now).unwrap();
        assert_eq!(parsed.claims.uid, "u1");
        assert_eq!(parsed.claims.email.as_deref(), Some("a@b.c"));
    }

    #[test]
    fn skew_is_capped() {
        assert_eq!(verifier().with_clock_skew(Duration::from_secs(3600)).skew, 300);
    }

    #[test]
    fn the_forwarded_header_wins_behind_google_api_gateway() {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer gateway-oidc-token"));
        h.insert(FORWARDED_AUTHORIZATION, http::HeaderValue::from_static("Bearer caller-id-token"));
        assert_eq!(bearer(&h).unwrap(), Some("caller-id-token"));
        h.remove(FORWARDED_AUTHORIZATION);
        assert_eq!(bearer(&h).unwrap(), Some("gateway-oidc-token"));
    }

    #[test]
    fn bearer_header_parsing() {
        let h = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static(v));
            h
        };
        assert_eq!(bearer(&HeaderMap::new()).unwrap(), None);
        assert_eq!(bearer(&h("Bearer abc")).unwrap(), Some("abc"));
        assert_eq!(bearer(&h("bearer   abc ")).unwrap(), Some("abc"));
        assert_eq!(bearer(&h("Basic dXNlcjpwYXNz")).unwrap_err().code(), NO_CREDENTIAL);
        assert_eq!(bearer(&h("Bearer")).unwrap_err().code(), "invalid_id_token");
        let mut two = h("Bearer a");
        two.append(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer b"));
        assert_eq!(bearer(&two).unwrap_err().code(), "invalid_credentials");
    }

    #[test]
    fn project_id_is_validated() {
        let url = Url::parse("http://127.0.0.1:9/certs").unwrap();
        assert!(FirebaseVerifier::new("", url.clone()).is_err());
        assert!(FirebaseVerifier::new("a/b", url).is_err());
    }
}
