//! The `optimize` function: scheduled prompt optimization over the turn log.
//!
//! A run (`run.rs`) reads the agent function's turn log for a window, proposes prompt
//! variants (`propose.rs`), has the agent function replay the logged inputs with each
//! variant over the `replays` queue, and promotes a variant into the prompt registry
//! (`shared::prompts`) only when paired tests (`stats.rs`) say it beats the active one.

use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use catalyst_shared::auth::Principal;
use catalyst_shared::event::QueueMessage;
use catalyst_shared::event::Scheduled;
use catalyst_shared::store::SharedDocumentStore;
use catalyst_shared::{Deps, Error, Function, Result, Triggers};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod propose;
pub mod run;
pub mod stats;

pub use catalyst_shared::optimize::{RUNS, TURNS};
pub use catalyst_shared::prompts::PROMPTS;

#[derive(Clone)]
pub struct AppState {
    pub store: SharedDocumentStore,
}

/// The active prompt version of each agent, with the earlier active versions (newest
/// last) that `catalyst prompts rollback` returns to.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivePrompts {
    pub active: std::collections::BTreeMap<String, catalyst_shared::prompts::Active>,
}

/// Which prompt version each agent uses now.
#[utoipa::path(get, path = "/v1/prompts", tag = "optimize", responses((status = 200, body = ActivePrompts)))]
async fn active_prompts(State(state): State<AppState>, principal: Principal) -> Result<Json<ActivePrompts>> {
    principal.require_scope("prompts:read")?;
    Ok(Json(ActivePrompts { active: catalyst_shared::prompts::list_active(&state.store).await? }))
}

pub struct OptimizeTriggers {
    ports: run::Ports,
}

#[async_trait]
impl Triggers for OptimizeTriggers {
    /// The schedule starts a run over the window before it (once per firing: a
    /// redelivered firing finds its run and only nudges it on).
    async fn scheduled(&self, event: Scheduled) -> Result<()> {
        let options: run::Options = if event.payload.is_null() {
            run::Options::default()
        } else {
            serde_json::from_value(event.payload.clone()).map_err(|e| {
                Error::bad_request(format!("schedule payload is not optimize options: {e}"))
                    .with_code("invalid_options")
            })?
        };
        let started = run::start(&self.ports.store, &self.ports.queue, &event.schedule, event.time, options).await?;
        tracing::info!(run = %started.id, stage = ?started.stage, "optimize run started");
        Ok(())
    }

    /// `advance` steps of runs.
    async fn queue_message(&self, message: QueueMessage) -> Result<()> {
        let step: run::Advance = message.json().map_err(|e| {
            Error::bad_request(format!("not an optimize step: {}", e.message())).with_code("invalid_message")
        })?;
        run::advance(&self.ports, &step).await
    }
}

pub fn routes(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(active_prompts)).with_state(state)
}

/// Build the function. The LLM configuration is checked here. A chain of hosted providers
/// is built here too, so that an API key held in a secret manager is read (and a missing
/// or unreadable one reported) at cold start, like the agent's; a chain that includes the
/// embedded model loads on a run's first planning step instead (see `run::LazyLlm`).
pub fn function(deps: &Deps) -> Result<Function> {
    let store = deps.store()?;
    let llm_config = catalyst_shared::llm::LlmConfig::from_env(deps.config.models_dir.clone())
        .map_err(|e| Error::bad_request(e.to_string()).with_code("invalid_config"))?;
    let uses_local = std::iter::once(&llm_config.primary)
        .chain(&llm_config.fallbacks)
        .any(|p| p.kind == catalyst_shared::llm::ProviderKind::Local);
    let llm = Arc::new(if uses_local {
        run::LazyLlm::from_config(llm_config)
    } else {
        let model = catalyst_shared::runtime::block_on_startup(catalyst_shared::llm::from_config(&llm_config))??;
        run::LazyLlm::ready(model)
    });
    let ports = run::Ports { store: store.clone(), queue: deps.queue()?, llm };
    Ok(Function::new("optimize", routes(AppState { store }), Arc::new(OptimizeTriggers { ports })))
}

#[cfg(test)]
mod tests;
