//! What the AWS adapters share: one SDK configuration, loaded on first use, over an
//! HTTPS client on rustls + ring, and one mapping of SDK errors onto the port errors.
//!
//! Loading is lazy so that a cold start never waits on the network: credentials come
//! from the environment Lambda sets (or a profile, or the container/instance endpoints)
//! only when the first request is signed. `AWS_ENDPOINT_URL` (and the per-service
//! `AWS_ENDPOINT_URL_S3` etc.) point the clients at an S3-, SQS- or DynamoDB-compatible
//! server; `AWS_MAX_ATTEMPTS` and `AWS_RETRY_MODE` tune the SDK's retries (standard mode,
//! 3 attempts, jittered exponential backoff on throttling, 5xx and connection errors).

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::time::Duration;
use tokio::sync::OnceCell;

use crate::error::{Error, ErrorKind};

static SDK_CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();

/// The HTTPS client every AWS client uses: rustls on ring, the crypto the rest of the
/// workspace already links (the SDK's default would add aws-lc).
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// The process-wide SDK configuration from the environment, loaded once on first use.
pub async fn sdk_config() -> &'static SdkConfig {
    SDK_CONFIG
        .get_or_init(|| async {
            let started = std::time::Instant::now();
            let config = aws_config::defaults(BehaviorVersion::latest()).http_client(https_client()).load().await;
            tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, region = ?config.region(), "AWS SDK configuration loaded");
            config
        })
        .await
}

/// A configuration for an S3/SQS/DynamoDB-compatible server at `endpoint` with static
/// credentials: what tests and self-hosted servers use. Retries back off from 10 ms so
/// tests that inject throttling stay quick.
pub fn static_config(endpoint: &str, region: &str, access_key: &str, secret_key: &str) -> SdkConfig {
    use aws_config::retry::RetryConfig;
    use aws_credential_types::Credentials;
    let mut builder = SdkConfig::builder();
    builder.set_sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep());
    builder
        .behavior_version(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
            access_key, secret_key, None, None, "static",
        )))
        .http_client(https_client())
        .retry_config(RetryConfig::standard().with_max_attempts(4).with_initial_backoff(Duration::from_millis(10)))
        .time_source(aws_smithy_async::time::SharedTimeSource::default())
        .build()
}

/// What an SDK call's failure means for the port: missing things are `NotFound`, lost
/// races `Conflict`, throttling and server errors `Unavailable` (the SDK has already
/// retried them), anything else a safe, described error.
pub(crate) fn sdk_error<E, R>(what: &str, err: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: HttpStatus + std::fmt::Debug + Send + Sync + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let (status, code) = match &err {
        SdkError::ServiceError(ctx) => (Some(ctx.raw().status_code()), ctx.err().code().map(str::to_owned)),
        SdkError::ResponseError(ctx) => (Some(ctx.raw().status_code()), None),
        _ => (None, None),
    };
    let kind = classify(status, code.as_deref(), &err);
    let detail = match (&code, status) {
        (Some(c), Some(s)) => format!("{c} (HTTP {s})"),
        (None, Some(s)) => format!("HTTP {s}"),
        _ => match &err {
            SdkError::TimeoutError(_) => "timed out".to_owned(),
            SdkError::DispatchFailure(_) => "could not reach the service".to_owned(),
            SdkError::ConstructionFailure(_) => "request could not be built (configuration?)".to_owned(),
            _ => "unexpected response".to_owned(),
        },
    };
    let mut error = Error::new(kind, format!("{what}: {detail}"));
    if let Some(c) = code {
        error = error.with_code(to_snake(&c));
    }
    error.with_source(err)
}

fn classify<E, R>(
    status: Option<u16>,
    code: Option<&str>,
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> ErrorKind {
    use aws_smithy_runtime_api::client::result::SdkError;
    match code {
        Some(
            "NoSuchKey"
            | "NoSuchBucket"
            | "NotFound"
            | "ResourceNotFoundException"
            | "QueueDoesNotExist"
            | "AWS.SimpleQueueService.NonExistentQueue",
        ) => return ErrorKind::NotFound,
        Some("PreconditionFailed" | "ConditionalCheckFailedException" | "ConditionalRequestConflict") => {
            return ErrorKind::Conflict;
        }
        Some(
            "ThrottlingException"
            | "Throttling"
            | "SlowDown"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "TransactionConflictException"
            | "ServiceUnavailable"
            | "InternalError",
        ) => return ErrorKind::Unavailable,
        Some("AccessDenied" | "AccessDeniedException" | "InvalidAccessKeyId" | "SignatureDoesNotMatch") => {
            return ErrorKind::Forbidden;
        }
        _ => {}
    }
    match (status, err) {
        (Some(404), _) => ErrorKind::NotFound,
        (Some(409 | 412), _) => ErrorKind::Conflict,
        (Some(401 | 403), _) => ErrorKind::Forbidden,
        (Some(429), _) => ErrorKind::Unavailable,
        (Some(s), _) if s >= 500 => ErrorKind::Unavailable,
        (Some(_), _) => ErrorKind::Internal,
        (None, SdkError::TimeoutError(_)) => ErrorKind::Timeout,
        (None, SdkError::DispatchFailure(_)) => ErrorKind::Unavailable,
        (None, _) => ErrorKind::Internal,
    }
}

/// `NoSuchKey` -> `no_such_key`, the style of the port's error codes.
fn to_snake(code: &str) -> String {
    let code = code.rsplit('.').next().unwrap_or(code);
    let mut out = String::with_capacity(code.len() + 4);
    for (i, c) in code.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

/// The raw response types of the SDK's errors, for their status codes.
pub(crate) trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A bad adapter URL, naming the variable it came from.
pub(crate) fn url_error(var: &str, url: &url::Url, why: &str) -> Error {
    Error::bad_request(format!("{var} `{url}`: {why}")).with_code("invalid_config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_become_snake_case() {
        assert_eq!(to_snake("NoSuchKey"), "no_such_key");
        assert_eq!(to_snake("AWS.SimpleQueueService.NonExistentQueue"), "non_existent_queue");
        assert_eq!(to_snake("ConditionalCheckFailedException"), "conditional_check_failed_exception");
    }
}
