//! The `evaluate` function. (Skeleton: its capability is being built.)

use catalyst_shared::runtime::HttpOnly;
use catalyst_shared::{Deps, Function, Result};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;

pub fn function(_deps: &Deps) -> Result<Function> {
    Ok(Function::new("evaluate", OpenApiRouter::new(), Arc::new(HttpOnly)))
}
