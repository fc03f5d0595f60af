//! The `agent` function: the interview, turn by turn.
//!
//! Interviews live in the document store under `interviews/{uid}/{id}`, so a caller can
//! only ever address their own: the uid comes from the verified principal, never the URL.

use axum::Json;
use axum::extract::{Path, Query, State};
use catalyst_shared::auth::Principal;
use catalyst_shared::runtime::HttpOnly;
use catalyst_shared::store::SharedDocumentStore;
use catalyst_shared::{Deps, Error, Function, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const INTERVIEWS: &str = "interviews";

#[derive(Clone)]
pub struct AppState {
    pub store: SharedDocumentStore,
}

/// A stored interview as the API returns it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InterviewRecord {
    pub id: String,
    /// Store version, for optimistic concurrency on updates.
    pub version: u64,
    #[schema(value_type = Object)]
    pub interview: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InterviewList {
    pub interviews: Vec<InterviewRecord>,
    /// Pass as `after` for the next page.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<usize>,
    /// Cursor from the previous page.
    pub after: Option<String>,
}

fn valid_id(id: &str) -> Result<()> {
    let ok = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request("interview ids are 1-64 letters, digits, `-` or `_`").with_code("invalid_id"))
    }
}

fn key(uid: &str, id: &str) -> String {
    format!("{uid}/{id}")
}

/// One of the caller's interviews.
#[utoipa::path(get, path = "/v1/interviews/{id}", tag = "agent",
    params(("id" = String, Path, description = "Interview id")),
    responses((status = 200, body = InterviewRecord), (status = 404, body = catalyst_shared::error::ErrorBody)))]
async fn get_interview(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<InterviewRecord>> {
    valid_id(&id)?;
    let doc = state
        .store
        .get(INTERVIEWS, &key(&principal.uid, &id))
        .await?
        .ok_or_else(|| Error::not_found(format!("no interview `{id}`")))?;
    Ok(Json(InterviewRecord { id, version: doc.version, interview: doc.value }))
}

/// The caller's interviews, oldest id first.
#[utoipa::path(get, path = "/v1/interviews", tag = "agent", params(ListParams),
    responses((status = 200, body = InterviewList)))]
async fn list_interviews(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<ListParams>,
) -> Result<Json<InterviewList>> {
    let limit = params.limit.unwrap_or(20).clamp(1, 100);
    let prefix = format!("{}/", principal.uid);
    let after = match params.after {
        Some(a) => {
            valid_id(&a)?;
            Some(key(&principal.uid, &a))
        }
        None => None,
    };
    let page = state.store.query_prefix(INTERVIEWS, &prefix, after.as_deref(), limit).await?;
    let interviews = page
        .documents
        .into_iter()
        .map(|d| InterviewRecord { id: d.key[prefix.len()..].to_string(), version: d.version, interview: d.value })
        .collect();
    Ok(Json(InterviewList { interviews, next: page.next.map(|k| k[prefix.len()..].to_string()) }))
}

pub fn routes(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(list_interviews)).routes(routes!(get_interview)).with_state(state)
}

pub fn function(deps: &Deps) -> Result<Function> {
    let state = AppState { store: deps.store()? };
    Ok(Function::new("agent", routes(state), Arc::new(HttpOnly)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use catalyst_shared::store::{Precondition, local::SqliteDocumentStore};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn call(app: axum::Router, uid: &str, uri: &str) -> (u16, serde_json::Value) {
        let mut req = axum::http::Request::get(uri).body(Body::empty()).unwrap();
        req.extensions_mut().insert(Principal {
            kind: catalyst_shared::auth::PrincipalKind::User,
            uid: uid.into(),
            email: None,
            scopes: vec![],
        });
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }

    #[tokio::test]
    async fn callers_see_only_their_own_interviews() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedDocumentStore = Arc::new(SqliteDocumentStore::open(dir.path().join("s.db")).unwrap());
        store
            .put(INTERVIEWS, "alice/i1", serde_json::json!({"mode": "behavioral"}), Precondition::Absent, None)
            .await
            .unwrap();
        store
            .put(INTERVIEWS, "alice/i2", serde_json::json!({"mode": "technical"}), Precondition::Absent, None)
            .await
            .unwrap();
        store
            .put(INTERVIEWS, "bob/i3", serde_json::json!({"mode": "mixed"}), Precondition::Absent, None)
            .await
            .unwrap();
        let (app, _) = routes(AppState { store }).split_for_parts();

        let (status, body) = call(app.clone(), "alice", "/v1/interviews/i1").await;
        assert_eq!(status, 200);
        assert_eq!(body["interview"]["mode"], "behavioral");
        assert_eq!(body["version"], 1);

        let (status, body) = call(app.clone(), "bob", "/v1/interviews/i1").await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "not_found");

        let (_, body) = call(app.clone(), "alice", "/v1/interviews?limit=1").await;
        assert_eq!(body["interviews"].as_array().unwrap().len(), 1);
        assert_eq!(body["next"], "i1");
        let (_, body) = call(app.clone(), "alice", "/v1/interviews?limit=1&after=i1").await;
        assert_eq!(body["interviews"][0]["id"], "i2");
        assert!(body["next"].is_null());

        let (status, body) = call(app, "alice", "/v1/interviews/..%2Fbob%2Fi3").await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "invalid_id");
    }
}
