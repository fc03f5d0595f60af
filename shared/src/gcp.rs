//! What the Google Cloud Storage and Pub/Sub adapters share: credentials and backoff.

use google_cloud_auth::credentials::Credentials;
use google_cloud_gax::exponential_backoff::ExponentialBackoff;
use std::time::Duration;

use crate::error::{Error, Result};

/// Application default credentials (the metadata server on Cloud Run, a key file or
/// gcloud's locally), or anonymous ones for emulators. Nothing is fetched here: tokens
/// are requested on first use. The Google crates are built without a TLS provider of
/// their own (no aws-lc), so ring becomes the process default, as in the rest of the
/// workspace.
pub(crate) fn credentials(anonymous: bool, unavailable: impl Fn(&str) -> Error) -> Result<Credentials> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if anonymous {
        return Ok(google_cloud_auth::credentials::anonymous::Builder::new().build());
    }
    google_cloud_auth::credentials::Builder::default()
        .build()
        .map_err(|e| unavailable("Google credentials").with_source(e))
}

/// Exponential backoff between `initial` and `max` (the crates add jitter).
pub(crate) fn backoff(initial: Duration, max: Duration) -> ExponentialBackoff {
    google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder::new()
        .with_initial_delay(initial)
        .with_maximum_delay(max)
        .clamp()
}

/// The scope every Google API this crate calls accepts.
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// OAuth access tokens for Google APIs called over plain HTTPS (Secret Manager, Vertex
/// AI), from google-cloud-auth's credentials: they cache the token and refresh it in the
/// background before it expires (4 minutes ahead, as the metadata servers do).
///
/// That refresh task is spawned when the credentials are built, on a runtime of its own
/// that lives as long as the process: the credentials are often first built inside the
/// short-lived start-up runtime (`runtime::block_on_startup`), whose tasks die with it.
#[derive(Clone)]
pub(crate) struct GoogleAuth {
    credentials: Credentials,
}

impl std::fmt::Debug for GoogleAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GoogleAuth(<credentials>)")
    }
}

fn auth_runtime() -> Result<&'static tokio::runtime::Runtime> {
    // Built inside `get_or_init`, so no spare runtime is ever dropped (which would panic
    // in an async context).
    static RUNTIME: std::sync::OnceLock<std::io::Result<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("google-auth")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| Error::internal(format!("cannot start the Google token runtime: {e}")))
}

impl GoogleAuth {
    /// Application default credentials, one set per process: `GOOGLE_APPLICATION_CREDENTIALS`
    /// or gcloud's file locally, otherwise the metadata server (Cloud Run, GCE), whose
    /// address `GCE_METADATA_HOST` overrides (google-cloud-auth reads it). Nothing is
    /// fetched here; a credentials file that cannot be read fails now.
    pub(crate) fn adc() -> Result<GoogleAuth> {
        static ADC: std::sync::Mutex<Option<GoogleAuth>> = std::sync::Mutex::new(None);
        let mut slot = ADC.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(auth) = slot.as_ref() {
            return Ok(auth.clone());
        }
        let auth =
            Self::build(|| google_cloud_auth::credentials::Builder::default().with_scopes([CLOUD_PLATFORM]).build())?;
        *slot = Some(auth.clone());
        Ok(auth)
    }

    /// The metadata server at `endpoint` (`http://host:port`) only, skipping the ADC
    /// search: what tests use. `GCE_METADATA_HOST`, when set, still wins.
    #[cfg(all(test, feature = "llm"))]
    pub(crate) fn metadata_server(endpoint: &str) -> Result<GoogleAuth> {
        let endpoint = endpoint.to_string();
        Self::build(move || {
            google_cloud_auth::credentials::mds::Builder::default()
                .with_endpoint(endpoint)
                .with_scopes([CLOUD_PLATFORM])
                .build()
        })
    }

    fn build(
        build: impl FnOnce() -> std::result::Result<Credentials, google_cloud_auth::build_errors::Error>,
    ) -> Result<GoogleAuth> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let _in_auth_runtime = auth_runtime()?.enter();
        let credentials = build().map_err(|e| {
            Error::unavailable("cannot load Google application default credentials (GOOGLE_APPLICATION_CREDENTIALS?)")
                .with_code("google_credentials")
                .with_source(e)
        })?;
        Ok(GoogleAuth { credentials })
    }

    /// The headers that authenticate one request (`authorization: Bearer …`, and the
    /// quota project when one is configured): the cached token, or the next one when it
    /// has expired.
    pub(crate) async fn headers(&self) -> Result<http::HeaderMap> {
        use google_cloud_auth::credentials::CacheableResource;
        let failed = |why: &str| {
            Error::unavailable(format!("cannot get a Google access token from application default credentials: {why}"))
                .with_code("google_credentials")
        };
        match self.credentials.headers(http::Extensions::new()).await {
            Ok(CacheableResource::New { data, .. }) => Ok(data),
            Ok(_) => Err(failed("no token in the answer")),
            Err(e) => {
                Err(failed(if e.is_transient() { "the token service is unavailable" } else { "refused" })
                    .with_source(e))
            }
        }
    }
}
