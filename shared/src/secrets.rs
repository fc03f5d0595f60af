//! Secrets read once at cold start from the cloud's secret manager: what a
//! `*_API_KEY_SECRET` variable names (Terraform sets `LLM_API_KEY_SECRET` for the
//! functions that list the `llm` secret).
//!
//! - AWS Secrets Manager (feature `aws`): an ARN
//!   (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-abc123`, read in the ARN's region)
//!   or a secret name, read with `GetSecretValue` (the current version). The SDK takes its
//!   credentials, region and endpoint from the environment as every AWS adapter does
//!   (`AWS_ENDPOINT_URL_SECRETS_MANAGER` or `AWS_ENDPOINT_URL` point it elsewhere).
//! - Google Secret Manager (feature `gcp`): `projects/P/secrets/S` (version `latest`) or
//!   `projects/P/secrets/S/versions/V`, read with the REST `:access` method and a token
//!   from application default credentials (the metadata server on Cloud Run).
//!   `CATALYST_SECRET_MANAGER_URL` replaces `https://secretmanager.googleapis.com`.
//!
//! The value is trimmed; a value that is a JSON object with exactly one string field
//! (`{"api_key": "…"}`, what the AWS console's key/value editor stores) is unwrapped to
//! that field. Errors name the variable and the secret, never the value, and the value
//! is only ever held in a [`SecretValue`], whose `Debug` is redacted.

use std::fmt;

use crate::error::{Error, Result};

/// Where a secret lives: parsed from a `*_SECRET` variable, checked before any network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An AWS Secrets Manager ARN or name.
    Aws { id: String, region: Option<String> },
    /// A Google Secret Manager version: `projects/P/secrets/S/versions/V`.
    Gcp { name: String },
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Aws { id, .. } => f.write_str(id),
            SecretRef::Gcp { name } => f.write_str(name),
        }
    }
}

/// A secret's value. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

const FORMS: &str =
    "an AWS Secrets Manager ARN or name, or a Google Secret Manager `projects/P/secrets/S[/versions/V]`";

impl SecretRef {
    /// Parse what a `*_SECRET` variable says. The message of an error never repeats the
    /// value (it may be a key pasted into the wrong variable).
    pub fn parse(value: &str) -> std::result::Result<SecretRef, String> {
        let v = value.trim();
        if v.is_empty() {
            return Err(format!("is empty; expected {FORMS}"));
        }
        if looks_like_a_key(v) {
            return Err(format!("looks like an API key itself; it must name the secret that holds the key ({FORMS})"));
        }
        if let Some(rest) = v.strip_prefix("projects/") {
            return parse_gcp(rest).map(|name| SecretRef::Gcp { name }).ok_or_else(|| {
                "is not `projects/PROJECT/secrets/SECRET` or `projects/PROJECT/secrets/SECRET/versions/VERSION`".into()
            });
        }
        if v.starts_with("arn:") {
            let parts: Vec<&str> = v.splitn(7, ':').collect();
            return match parts.as_slice() {
                ["arn", partition, "secretsmanager", region, account, "secret", name]
                    if !partition.is_empty() && !region.is_empty() && !account.is_empty() && aws_name_ok(name) =>
                {
                    Ok(SecretRef::Aws { id: v.to_string(), region: Some(region.to_string()) })
                }
                _ => Err("is an ARN but not `arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME`".into()),
            };
        }
        if aws_name_ok(v) {
            return Ok(SecretRef::Aws { id: v.to_string(), region: None });
        }
        Err(format!("is not {FORMS}"))
    }

    /// Which service holds it, for messages.
    pub fn service(&self) -> &'static str {
        match self {
            SecretRef::Aws { .. } => "AWS Secrets Manager",
            SecretRef::Gcp { .. } => "Google Secret Manager",
        }
    }

    /// Why this build cannot read it, when it cannot: the feature to build with.
    pub fn unsupported(&self) -> Option<String> {
        let (supported, feature) = match self {
            SecretRef::Aws { .. } => (cfg!(feature = "secretsmanager"), "aws"),
            SecretRef::Gcp { .. } => (cfg!(any(feature = "gcs", feature = "pubsub")), "gcp"),
        };
        (!supported).then(|| {
            format!(
                "`{self}` is a {} secret, but this build cannot read one: build with the `{feature}` feature",
                self.service()
            )
        })
    }
}

/// Keys that are commonly pasted where a secret's name belongs.
fn looks_like_a_key(v: &str) -> bool {
    ["sk-", "AIza", "ya29.", "xai-", "gsk_"].iter().any(|p| v.starts_with(p))
}

/// Secrets Manager names: 1-512 of letters, digits and `/_+=.@-`.
fn aws_name_ok(name: &str) -> bool {
    (1..=512).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
}

/// `P/secrets/S[/versions/V]` (after `projects/`) to the full version name.
fn parse_gcp(rest: &str) -> Option<String> {
    let seg = |s: &str, extra: &str| {
        !s.is_empty()
            && s.len() <= 255
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c) || extra.contains(c))
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (project, secret, version) = match parts.as_slice() {
        [p, "secrets", s] => (*p, *s, "latest"),
        [p, "secrets", s, "versions", v] => (*p, *s, *v),
        _ => return None,
    };
    // Domain-scoped projects look like `example.com:project`.
    (seg(project, ".:") && seg(secret, "") && seg(version, ""))
        .then(|| format!("projects/{project}/secrets/{secret}/versions/{version}"))
}

/// Read the secret `reference` (from the variable `var`) from its service.
pub async fn read(var: &str, reference: &SecretRef) -> Result<SecretValue> {
    if let Some(why) = reference.unsupported() {
        return Err(Error::bad_request(format!("{var}: {why}")).with_code("invalid_config"));
    }
    let started = std::time::Instant::now();
    let raw = fetch(var, reference).await?;
    let value = finish(var, reference, raw)?;
    tracing::info!(
        var,
        secret = %reference,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "secret read from {}",
        reference.service()
    );
    Ok(value)
}

#[cfg(any(feature = "secretsmanager", feature = "gcs", feature = "pubsub"))]
async fn fetch(var: &str, reference: &SecretRef) -> Result<Raw> {
    match reference {
        #[cfg(feature = "secretsmanager")]
        SecretRef::Aws { id, region } => aws_sm::read_from_env(var, id, region.as_deref()).await,
        #[cfg(any(feature = "gcs", feature = "pubsub"))]
        SecretRef::Gcp { name } => gcp_sm::read_from_env(var, name).await,
        #[allow(unreachable_patterns)] // with both clouds' features
        _ => Err(Error::internal("no secret manager for this reference in this build")),
    }
}

#[cfg(not(any(feature = "secretsmanager", feature = "gcs", feature = "pubsub")))]
async fn fetch(_var: &str, _reference: &SecretRef) -> Result<Raw> {
    Err(Error::internal("no secret manager in this build"))
}

/// A secret as the service returned it, before trimming and unwrapping.
#[allow(dead_code)] // each variant is built by one cloud's feature only
pub(crate) enum Raw {
    Text(String),
    Bytes(Vec<u8>),
}

/// The value a secret's payload stands for: text, trimmed, a one-field JSON object unwrapped.
pub(crate) fn finish(var: &str, reference: &SecretRef, raw: Raw) -> Result<SecretValue> {
    let bad = |why: &str| {
        Error::bad_request(format!("{var}: {} secret `{reference}` {why}", reference.service()))
            .with_code("invalid_secret")
    };
    let text = match raw {
        Raw::Text(t) => t,
        Raw::Bytes(b) => String::from_utf8(b).map_err(|_| bad("is not UTF-8 text"))?,
    };
    let text = text.trim();
    let value = if text.starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|_| bad("starts with `{` but is not a JSON object"))?;
        match map.values().next() {
            Some(serde_json::Value::String(s)) if map.len() == 1 => s.trim().to_string(),
            _ => {
                return Err(bad(&format!(
                    "is a JSON object with {} fields; store the key alone, or as an object with one string field",
                    map.len()
                )));
            }
        }
    } else {
        text.to_string()
    };
    if value.is_empty() {
        return Err(bad("is empty"));
    }
    Ok(SecretValue(value))
}

#[cfg(any(feature = "secretsmanager", feature = "gcs", feature = "pubsub"))]
fn read_error(
    var: &str,
    reference: &str,
    service: &str,
    kind: crate::error::ErrorKind,
    detail: impl fmt::Display,
) -> Error {
    use crate::error::ErrorKind;
    let code = match kind {
        ErrorKind::NotFound => "secret_not_found",
        ErrorKind::Forbidden | ErrorKind::Unauthenticated => "secret_forbidden",
        _ => "secret_unavailable",
    };
    Error::new(kind, format!("{var}: cannot read {service} secret `{reference}`: {detail}")).with_code(code)
}

#[cfg(feature = "secretsmanager")]
pub(crate) mod aws_sm {
    use super::*;
    use crate::error::ErrorKind;
    use aws_config::BehaviorVersion;
    use std::time::Duration;

    /// Credentials, region and endpoint from the environment, loaded for this one read
    /// (the adapters' shared configuration is left to the runtime that serves requests).
    pub(crate) async fn read_from_env(var: &str, id: &str, region: Option<&str>) -> Result<Raw> {
        let config =
            aws_config::defaults(BehaviorVersion::latest()).http_client(crate::aws::https_client()).load().await;
        read(&config, var, id, region).await
    }

    /// `GetSecretValue` of the current version. An ARN's own region wins over the
    /// environment's; an endpoint override still applies.
    pub(crate) async fn read(config: &aws_config::SdkConfig, var: &str, id: &str, region: Option<&str>) -> Result<Raw> {
        let mut builder = aws_sdk_secretsmanager::config::Builder::from(config).timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        );
        if let Some(r) = region {
            builder = builder.region(aws_config::Region::new(r.to_string()));
        }
        let client = aws_sdk_secretsmanager::Client::from_conf(builder.build());
        let out = client.get_secret_value().secret_id(id).send().await.map_err(|e| {
            let err = crate::aws::sdk_error("", e);
            let detail = err.message().trim_start_matches(": ").to_string();
            read_error(var, id, "AWS Secrets Manager", err.kind(), detail).with_source(err)
        })?;
        if let Some(s) = out.secret_string() {
            return Ok(Raw::Text(s.to_string()));
        }
        match out.secret_binary() {
            Some(b) => Ok(Raw::Bytes(b.as_ref().to_vec())),
            None => Err(read_error(var, id, "AWS Secrets Manager", ErrorKind::NotFound, "the version has no value")),
        }
    }
}

#[cfg(any(feature = "gcs", feature = "pubsub"))]
pub(crate) mod gcp_sm {
    use super::*;
    use crate::error::ErrorKind;
    use crate::gcp::GoogleAuth;
    use base64::Engine;
    use std::time::Duration;

    pub(crate) const URL_VAR: &str = "CATALYST_SECRET_MANAGER_URL";
    const DEFAULT_URL: &str = "https://secretmanager.googleapis.com";
    const SERVICE: &str = "Google Secret Manager";
    const ATTEMPTS: u32 = 3;

    pub(crate) async fn read_from_env(var: &str, name: &str) -> Result<Raw> {
        let raw = std::env::var(URL_VAR).ok().filter(|v| !v.trim().is_empty());
        let base = raw.as_deref().unwrap_or(DEFAULT_URL).trim();
        let base = url::Url::parse(base).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| {
            Error::bad_request(format!("{URL_VAR}: `{base}` is not an http(s) URL")).with_code("invalid_config")
        })?;
        read(&client()?, &base, &GoogleAuth::adc()?, var, name).await
    }

    pub(crate) fn client() -> Result<reqwest::Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| Error::internal("cannot build the Secret Manager HTTP client").with_source(e))
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Access {
        payload: Payload,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Payload {
        #[serde(default)]
        data: String,
        /// An int64, which JSON carries as a string.
        data_crc32c: Option<String>,
    }

    /// `GET {base}/v1/{name}:access` with a bearer token; retried on 429, 5xx and
    /// connection errors. The payload's CRC32C is checked when the service sends one.
    pub(crate) async fn read(
        client: &reqwest::Client,
        base: &url::Url,
        auth: &GoogleAuth,
        var: &str,
        name: &str,
    ) -> Result<Raw> {
        let fail = |kind, detail: &dyn fmt::Display| read_error(var, name, SERVICE, kind, detail);
        let url = format!("{}/v1/{name}:access", base.as_str().trim_end_matches('/'));
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let headers = auth.headers().await.map_err(|e| {
                let detail = e.message().to_string();
                fail(ErrorKind::Unavailable, &detail).with_source(e)
            })?;
            let err = match client.get(&url).headers(headers).send().await {
                Ok(r) if r.status().is_success() => break r,
                Ok(r) => {
                    let status = r.status();
                    let body = r.bytes().await.unwrap_or_default();
                    let (kind, detail) = status_detail(status, &body);
                    let retry = kind == ErrorKind::Unavailable;
                    (fail(kind, &detail), retry)
                }
                Err(e) => {
                    (fail(ErrorKind::Unavailable, &"cannot reach the service").with_source(e.without_url()), true)
                }
            };
            match err {
                (e, true) if attempt < ATTEMPTS => {
                    tracing::warn!(var, secret = name, attempt, code = e.code(), "secret read failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                (e, _) => return Err(e),
            }
        };
        let access: Access = resp.json().await.map_err(|e| {
            fail(ErrorKind::Unavailable, &"the answer is not an AccessSecretVersionResponse").with_source(e)
        })?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(access.payload.data.trim())
            .map_err(|_| fail(ErrorKind::Unavailable, &"the payload is not base64"))?;
        if let Some(want) = access.payload.data_crc32c
            && want.trim().parse::<i64>().ok() != Some(i64::from(crc32c(&data)))
        {
            return Err(fail(ErrorKind::Unavailable, &"the payload does not match its CRC32C checksum"));
        }
        Ok(Raw::Bytes(data))
    }

    /// Kind and a short, value-free description of a failed status: Google's
    /// `{"error": {"status", "message"}}`, the message cut to 200 characters.
    fn status_detail(status: http::StatusCode, body: &[u8]) -> (ErrorKind, String) {
        let kind = match status.as_u16() {
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            408 | 429 | 500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::BadRequest,
        };
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let code = v.pointer("/error/status").and_then(|s| s.as_str());
        let message =
            v.pointer("/error/message").and_then(|s| s.as_str()).map(|m| m.chars().take(200).collect::<String>());
        let detail = match (code, message) {
            (Some(c), Some(m)) => format!("{c} (HTTP {}): {m}", status.as_u16()),
            (Some(c), None) => format!("{c} (HTTP {})", status.as_u16()),
            (None, Some(m)) => format!("HTTP {}: {m}", status.as_u16()),
            (None, None) => format!("HTTP {}", status.as_u16()),
        };
        (kind, detail)
    }

    /// CRC-32C (Castagnoli), what Secret Manager checksums payloads with.
    pub(crate) fn crc32c(data: &[u8]) -> u32 {
        crc32c::crc32c(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_told_apart_by_shape() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:catalyst/llm-AbCdEf";
        assert_eq!(SecretRef::parse(arn).unwrap(), SecretRef::Aws { id: arn.into(), region: Some("eu-west-1".into()) });
        assert_eq!(
            SecretRef::parse(" catalyst/llm ").unwrap(),
            SecretRef::Aws { id: "catalyst/llm".into(), region: None }
        );
        assert_eq!(
            SecretRef::parse("projects/my-proj/secrets/catalyst-llm").unwrap(),
            SecretRef::Gcp { name: "projects/my-proj/secrets/catalyst-llm/versions/latest".into() }
        );
        assert_eq!(
            SecretRef::parse("projects/123/secrets/s/versions/7").unwrap().to_string(),
            "projects/123/secrets/s/versions/7"
        );
        for bad in [
            "",
            "projects/p/secrets/",
            "projects/p/secrets/s/versions",
            "projects/p/topics/t",
            "arn:aws:ssm:eu-west-1:1:parameter/x",
            "arn:aws:secretsmanager::1:secret:x",
            "has spaces in it",
        ] {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
        // A key pasted into the variable is refused without being repeated.
        let e = SecretRef::parse("sk-proj-THE-REAL-KEY").unwrap_err();
        assert!(e.contains("looks like an API key") && !e.contains("THE-REAL-KEY"), "{e}");
    }

    #[test]
    fn values_are_trimmed_and_one_field_json_is_unwrapped() {
        let r = SecretRef::Aws { id: "n".into(), region: None };
        let get = |raw| finish("V", &r, raw);
        assert_eq!(get(Raw::Text(" sk-1\n".into())).unwrap().expose(), "sk-1");
        assert_eq!(get(Raw::Text(r#"{"api_key": "sk-2"}"#.into())).unwrap().expose(), "sk-2");
        assert_eq!(get(Raw::Bytes(b"sk-3\n".to_vec())).unwrap().expose(), "sk-3");
        for (raw, why) in [
            (Raw::Text(r#"{"a": "SECRET-1", "b": "SECRET-2"}"#.into()), "2 fields"),
            (Raw::Text(r#"{"a": 5}"#.into()), "1 fields"),
            (Raw::Text("{SECRET-not-json".into()), "not a JSON object"),
            (Raw::Text("  \n".into()), "is empty"),
            (Raw::Bytes(vec![0xff, 0xfe]), "not UTF-8"),
        ] {
            let e = get(raw).unwrap_err();
            assert!(e.message().starts_with("V: AWS Secrets Manager secret `n`"), "{}", e.message());
            assert!(e.message().contains(why) && !e.message().contains("SECRET"), "{}", e.message());
        }
        assert_eq!(format!("{:?}", get(Raw::Text("sk-1".into())).unwrap()), "SecretValue(<redacted>)");
    }

    #[cfg(any(feature = "gcs", feature = "pubsub"))]
    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(gcp_sm::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(gcp_sm::crc32c(b""), 0);
    }

    #[cfg(not(feature = "secretsmanager"))]
    #[tokio::test]
    async fn aws_secrets_need_the_aws_feature() {
        let r = SecretRef::parse("catalyst/llm").unwrap();
        assert!(r.unsupported().unwrap().contains("`aws` feature"));
        let e = read("LLM_API_KEY_SECRET", &r).await.unwrap_err();
        assert!(e.message().starts_with("LLM_API_KEY_SECRET: `catalyst/llm`") && e.message().contains("`aws` feature"));
    }

    #[cfg(not(any(feature = "gcs", feature = "pubsub")))]
    #[tokio::test]
    async fn gcp_secrets_need_the_gcp_feature() {
        let r = SecretRef::parse("projects/p/secrets/s").unwrap();
        let e = read("LLM_API_KEY_SECRET", &r).await.unwrap_err();
        assert!(e.message().contains("`gcp` feature"), "{}", e.message());
    }
}
