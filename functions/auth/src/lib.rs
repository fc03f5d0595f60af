//! The `auth` function: who the caller is, API keys, and the API Gateway authorizer.
//!
//! Verification itself lives in `catalyst_shared::auth` (every function uses it); this
//! crate adds the routes to manage API keys and answers API Gateway HTTP API REQUEST
//! authorizer calls (payload 2.0, simple responses) with the same verifiers.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use catalyst_shared::auth::api_keys::{ApiKeyInfo, ApiKeys, CreatedApiKey, NewApiKey};
use catalyst_shared::auth::{Principal, PrincipalKind, SharedAuthenticator};
use catalyst_shared::error::ErrorKind;
use catalyst_shared::{Deps, Error, Function, JsonBody, Result, Triggers};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type ErrorBody = catalyst_shared::error::ErrorBody;

#[derive(Clone)]
pub struct AppState {
    pub keys: Arc<ApiKeys>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WhoAmI {
    pub principal: Principal,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyInfo>,
    /// Pass as `after` for the next page.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 50).
    pub limit: Option<usize>,
    /// Cursor from the previous page.
    pub after: Option<String>,
}

/// The verified caller behind this request.
#[utoipa::path(get, path = "/v1/auth/whoami", tag = "auth",
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
async fn whoami(principal: Principal) -> Json<WhoAmI> {
    Json(WhoAmI { principal })
}

/// Issue an API key for the signed-in user. The key is in this response only.
#[utoipa::path(post, path = "/v1/auth/api-keys", tag = "auth", request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, description = "called with an API key", body = ErrorBody),
        (status = 409, description = "too many keys", body = ErrorBody)))]
async fn create_api_key(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody(req): JsonBody<NewApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>)> {
    Ok((StatusCode::CREATED, Json(state.keys.create(&principal, req).await?)))
}

/// The caller's API keys, without secrets, in id order.
#[utoipa::path(get, path = "/v1/auth/api-keys", tag = "auth", params(ListParams),
    responses((status = 200, body = ApiKeyList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_api_keys(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<ListParams>,
) -> Result<Json<ApiKeyList>> {
    let (api_keys, next) =
        state.keys.list(&principal, params.after.as_deref(), params.limit.unwrap_or(50).clamp(1, 100)).await?;
    Ok(Json(ApiKeyList { api_keys, next }))
}

/// One of the caller's API keys.
#[utoipa::path(get, path = "/v1/auth/api-keys/{id}", tag = "auth",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 200, body = ApiKeyInfo), (status = 404, body = ErrorBody)))]
async fn get_api_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyInfo>> {
    Ok(Json(state.keys.get(&principal, &id).await?))
}

/// Revoke one of the caller's API keys; the next request with it is refused.
#[utoipa::path(delete, path = "/v1/auth/api-keys/{id}", tag = "auth",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 204, description = "revoked"), (status = 404, body = ErrorBody)))]
async fn revoke_api_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    state.keys.revoke(&principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(whoami))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(get_api_key, revoke_api_key))
        .with_state(state)
}

/// API Gateway HTTP API Lambda authorizer (payload format 2.0, simple responses).
pub struct Authorizer {
    pub authenticator: SharedAuthenticator,
}

impl Authorizer {
    /// `{"isAuthorized": true, "context": {uid, kind, scopes, email?}}` for a verified
    /// caller, `{"isAuthorized": false}` for a refused one. A failure of ours (certificates
    /// or store unreachable) is an error, which the gateway turns into a 500 rather than
    /// caching a denial.
    pub async fn authorize(&self, request: Value) -> Result<Value> {
        let version = request.get("version").and_then(Value::as_str);
        let kind = request.get("type").and_then(Value::as_str);
        if version != Some("2.0") || kind != Some("REQUEST") {
            return Err(Error::bad_request(
                "expected an API Gateway HTTP API REQUEST authorizer event with payload format 2.0",
            )
            .with_code("invalid_event"));
        }
        let headers = gateway_headers(&request);
        let route = request.get("routeKey").and_then(Value::as_str).unwrap_or("");
        match self.authenticator.authenticate(&headers).await {
            // `dev` exists only with CATALYST_AUTH=off, which is refused on Lambda; never admit it at a gateway.
            Ok(p) if p.kind == PrincipalKind::Dev => {
                tracing::warn!(route, "authorizer refused the local-development principal");
                Ok(json!({"isAuthorized": false}))
            }
            Ok(p) => {
                tracing::info!(route, uid = %p.uid, kind = ?p.kind, "authorized");
                let kind = match p.kind {
                    PrincipalKind::User => "user",
                    _ => "api_key",
                };
                let mut context = json!({"uid": p.uid, "kind": kind, "scopes": p.scopes.join(" ")});
                if let Some(email) = p.email {
                    context["email"] = json!(email);
                }
                Ok(json!({"isAuthorized": true, "context": context}))
            }
            Err(e) if matches!(e.kind(), ErrorKind::Unauthenticated | ErrorKind::Forbidden) => {
                tracing::info!(route, code = e.code(), reason = %e.message(), "not authorized");
                Ok(json!({"isAuthorized": false}))
            }
            Err(e) => Err(e),
        }
    }
}

/// The request headers of an authorizer event. Payload 2.0 lowercases names and joins
/// repeated headers with commas; values that are not valid header values are dropped.
fn gateway_headers(request: &Value) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    let Some(map) = request.get("headers").and_then(Value::as_object) else { return headers };
    for (name, value) in map {
        let (Ok(name), Some(Ok(value))) =
            (http::HeaderName::from_bytes(name.as_bytes()), value.as_str().map(http::HeaderValue::from_str))
        else {
            continue;
        };
        headers.append(name, value);
    }
    headers
}

#[async_trait::async_trait]
impl Triggers for Authorizer {
    async fn authorize(&self, request: Value) -> Result<Value> {
        Authorizer::authorize(self, request).await
    }
}

pub fn function(deps: &Deps) -> Result<Function> {
    let state = AppState { keys: Arc::new(ApiKeys::new(deps.store()?)) };
    let triggers = Arc::new(Authorizer { authenticator: deps.authenticator()? });
    Ok(Function::new("auth", routes(state), triggers))
}
