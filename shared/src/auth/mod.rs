//! Who is calling: the `Principal` every HTTP handler receives, and the hook that
//! produces it from a request.
//!
//! Verification itself plugs in as an [`Authenticator`]: [`firebase::FirebaseVerifier`]
//! for `Authorization: Bearer <Firebase ID token>`, [`api_keys::ApiKeys`] for `x-api-key`,
//! combined by [`configured`].
//! On AWS behind API Gateway the `auth` authorizer has already verified the caller and
//! its context arrives with the request; that context is trusted because only the
//! gateway can set it (it is not a header).

use async_trait::async_trait;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::request::Parts;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};

pub mod api_keys;
pub mod certs;
pub mod firebase;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A signed-in person (Firebase ID token).
    User,
    /// An integration calling with `x-api-key`; limited to its scopes.
    ApiKey,
    /// Local development with `CATALYST_AUTH=off`.
    Dev,
}

/// The verified caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub uid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Principal {
    pub fn dev() -> Self {
        Principal { kind: PrincipalKind::Dev, uid: "dev".into(), email: None, scopes: vec!["*".into()] }
    }

    /// Users act with all their own rights; API keys only within their scopes.
    pub fn has_scope(&self, scope: &str) -> bool {
        match self.kind {
            PrincipalKind::User | PrincipalKind::Dev => true,
            PrincipalKind::ApiKey => self.scopes.iter().any(|s| s == scope || s == "*"),
        }
    }

    pub fn require_scope(&self, scope: &str) -> Result<()> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(Error::forbidden(format!("this API key lacks the `{scope}` scope")).with_code("missing_scope"))
        }
    }

    /// The principal an API Gateway Lambda authorizer put in the request context
    /// (`{"uid", "kind", "scopes", "email"?}`; scopes space-separated, as authorizer
    /// context values must be strings).
    pub fn from_authorizer_context(fields: &HashMap<String, serde_json::Value>) -> Option<Principal> {
        let s = |k: &str| fields.get(k).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
        let uid = s("uid")?.to_string();
        let kind = match s("kind")? {
            "user" => PrincipalKind::User,
            "api_key" => PrincipalKind::ApiKey,
            _ => return None,
        };
        let scopes = s("scopes").map(|v| v.split_whitespace().map(str::to_string).collect()).unwrap_or_default();
        Some(Principal { kind, uid, email: s("email").map(str::to_string), scopes })
    }
}

/// Turns request headers into a verified principal, or a 401.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal>;
}

pub type SharedAuthenticator = Arc<dyn Authenticator>;

/// `CATALYST_AUTH=off`: everyone is the `dev` user. Config refuses this in the cloud.
pub struct DevAuthenticator;

#[async_trait]
impl Authenticator for DevAuthenticator {
    async fn authenticate(&self, _headers: &HeaderMap) -> Result<Principal> {
        Ok(Principal::dev())
    }
}

/// Tries each authenticator that recognises the request's credential kind, in order.
/// Used to combine Firebase ID tokens (`Authorization: Bearer`) with API keys (`x-api-key`).
pub struct Chain(pub Vec<SharedAuthenticator>);

#[async_trait]
impl Authenticator for Chain {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal> {
        let mut last = None;
        for a in &self.0 {
            match a.authenticate(headers).await {
                Ok(p) => return Ok(p),
                Err(e) if e.code() == NO_CREDENTIAL => last.get_or_insert(e),
                Err(e) => return Err(e),
            };
        }
        Err(last.unwrap_or_else(no_credential))
    }
}

/// Error code of "this request carries no credential of my kind", so a [`Chain`] moves on.
pub const NO_CREDENTIAL: &str = "missing_credentials";

pub fn no_credential() -> Error {
    Error::unauthenticated(
        "missing credentials: send `Authorization: Bearer <Firebase ID token>` or `x-api-key: <key>`",
    )
    .with_code(NO_CREDENTIAL)
}

/// Axum middleware: put a verified [`Principal`] in the request's extensions or answer 401.
/// A principal already there (from the gateway authorizer context) is kept.
pub async fn require_principal(State(auth): State<SharedAuthenticator>, mut req: Request, next: Next) -> Response {
    if req.extensions().get::<Principal>().is_none() {
        match auth.authenticate(req.headers()).await {
            Ok(p) => {
                tracing::Span::current().record("uid", p.uid.as_str());
                req.extensions_mut().insert(p);
            }
            Err(e) => return e.into_response(),
        }
    }
    next.run(req).await
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(no_credential)
    }
}

/// The authenticator for `CATALYST_AUTH=on`, from configuration: Firebase ID tokens
/// when `FIREBASE_PROJECT_ID` is set, then API keys from the document store.
///
/// Without `FIREBASE_PROJECT_ID` a bearer token gets a 401 that says to set it, rather
/// than being ignored. The document store must open (`CATALYST_STORE_URL`), or start-up
/// fails: a deployment that cannot check API keys should not pretend to.
pub fn configured(config: &crate::config::Config, deps: &crate::runtime::Deps) -> Result<SharedAuthenticator> {
    let id_tokens: SharedAuthenticator = match &config.firebase_project_id {
        Some(project) => Arc::new(firebase::FirebaseVerifier::new(project, config.firebase_certs_url.clone())?),
        None => {
            tracing::warn!("FIREBASE_PROJECT_ID is not set: Firebase ID tokens are refused, only API keys work");
            Arc::new(firebase::FirebaseNotConfigured)
        }
    };
    let api_keys = Arc::new(api_keys::ApiKeys::new(deps.store()?));
    Ok(Arc::new(Chain(vec![id_tokens, api_keys])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_bind_api_keys_only() {
        let key =
            Principal { kind: PrincipalKind::ApiKey, uid: "u".into(), email: None, scopes: vec!["scrape".into()] };
        assert!(key.has_scope("scrape"));
        assert_eq!(key.require_scope("interviews:write").unwrap_err().code(), "missing_scope");
        let user = Principal { kind: PrincipalKind::User, uid: "u".into(), email: None, scopes: vec![] };
        assert!(user.has_scope("anything"));
    }

    #[test]
    fn authorizer_context_round_trip() {
        let mut f = HashMap::new();
        f.insert("uid".to_string(), serde_json::json!("u_123"));
        f.insert("kind".to_string(), serde_json::json!("api_key"));
        f.insert("scopes".to_string(), serde_json::json!("scrape evaluate"));
        let p = Principal::from_authorizer_context(&f).unwrap();
        assert_eq!(p.kind, PrincipalKind::ApiKey);
        assert_eq!(p.scopes, vec!["scrape", "evaluate"]);
        f.insert("kind".to_string(), serde_json::json!("root"));
        assert!(Principal::from_authorizer_context(&f).is_none());
    }

    #[test]
    fn principal_json_shape() {
        let v = serde_json::to_value(Principal::dev()).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "dev", "uid": "dev", "scopes": ["*"]}));
    }
}
