//! The `auth` function: who the caller is, API keys, and the API Gateway authorizer.

use axum::Json;
use catalyst_shared::auth::Principal;
use catalyst_shared::runtime::HttpOnly;
use catalyst_shared::{Deps, Function, Result};
use serde::Serialize;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    pub principal: Principal,
}

/// The verified caller behind this request.
#[utoipa::path(get, path = "/v1/auth/whoami", tag = "auth",
    responses((status = 200, body = WhoAmI), (status = 401, body = catalyst_shared::error::ErrorBody)))]
async fn whoami(principal: Principal) -> Json<WhoAmI> {
    Json(WhoAmI { principal })
}

pub fn routes() -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(whoami))
}

pub fn function(_deps: &Deps) -> Result<Function> {
    Ok(Function::new("auth", routes(), Arc::new(HttpOnly)))
}
