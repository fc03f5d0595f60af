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
