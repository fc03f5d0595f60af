//! The `optimize` function: scheduled prompt optimization over the turn log.
//!
//! The prompt registry (`shared::prompts`) lives in the document store (`prompts/{agent}/v{NNNNNN}`
//! plus an `active/{agent}` pointer with its history); runs are recorded under `optimize_runs/{schedule}@{time}`,
//! created conditionally so a schedule delivered twice starts one run.

use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use catalyst_shared::auth::Principal;
use catalyst_shared::event::Scheduled;
use catalyst_shared::store::{Precondition, SharedDocumentStore};
use catalyst_shared::{Deps, ErrorKind, Function, Result, Triggers};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use catalyst_shared::prompts::PROMPTS;
pub const RUNS: &str = "optimize_runs";
pub const TURNS: &str = "turns";

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

/// A run record: when, for which window, and what the turn log held.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub schedule: String,
    pub fired_at: String,
    pub window_hours: u64,
    pub turns_in_window: u64,
    pub status: String,
}

pub struct OptimizeTriggers {
    store: SharedDocumentStore,
}

#[async_trait]
impl Triggers for OptimizeTriggers {
    async fn scheduled(&self, event: Scheduled) -> Result<()> {
        let window_hours = event.payload.get("window_hours").and_then(|v| v.as_u64()).unwrap_or(24).clamp(1, 24 * 90);
        let since = event.time - chrono::Duration::hours(window_hours as i64);
        // Turn log keys start with the RFC 3339 time of the turn, so a window is a key range.
        let mut turns = 0u64;
        let mut after = Some(since.format("%Y-%m-%dT%H:%M:%S").to_string());
        loop {
            let page = self.store.query_prefix(TURNS, "", after.as_deref(), 1000).await?;
            turns +=
                page.documents.iter().filter(|d| d.key.as_str() <= event.time.to_rfc3339().as_str()).count() as u64;
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let run_key = format!("{}@{}", event.schedule, event.time.to_rfc3339());
        let record = RunRecord {
            schedule: event.schedule.clone(),
            fired_at: event.time.to_rfc3339(),
            window_hours,
            turns_in_window: turns,
            status: if turns == 0 { "skipped: no turns in window".into() } else { "pending".into() },
        };
        let value = serde_json::to_value(&record)
            .map_err(|e| catalyst_shared::Error::internal("run record does not serialize").with_source(e))?;
        match self.store.put(RUNS, &run_key, value, Precondition::Absent, None).await {
            Ok(_) => {
                tracing::info!(run = %run_key, turns, "optimize run recorded");
                Ok(())
            }
            // The same schedule delivered twice: the first delivery already recorded it.
            Err(e) if e.kind() == ErrorKind::Conflict => {
                tracing::info!(run = %run_key, "duplicate schedule delivery ignored");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

pub fn routes(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(active_prompts)).with_state(state)
}

pub fn function(deps: &Deps) -> Result<Function> {
    let store = deps.store()?;
    Ok(Function::new("optimize", routes(AppState { store: store.clone() }), Arc::new(OptimizeTriggers { store })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalyst_shared::event::Origin;
    use catalyst_shared::store::local::SqliteDocumentStore;

    #[tokio::test]
    async fn a_schedule_delivered_twice_records_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedDocumentStore = Arc::new(SqliteDocumentStore::open(dir.path().join("s.db")).unwrap());
        let t = OptimizeTriggers { store: store.clone() };
        let now = chrono::Utc::now();
        store
            .put(
                TURNS,
                &format!("{}#i1#1", (now - chrono::Duration::hours(2)).to_rfc3339()),
                serde_json::json!({}),
                Precondition::None,
                None,
            )
            .await
            .unwrap();
        store
            .put(
                TURNS,
                &format!("{}#i0#1", (now - chrono::Duration::hours(48)).to_rfc3339()),
                serde_json::json!({}),
                Precondition::None,
                None,
            )
            .await
            .unwrap();
        let ev = Scheduled {
            origin: Origin::Local,
            id: "x".into(),
            schedule: "nightly".into(),
            time: now,
            payload: serde_json::json!({}),
        };
        t.scheduled(ev.clone()).await.unwrap();
        t.scheduled(ev).await.unwrap();
        let page = store.query_prefix(RUNS, "", None, 10).await.unwrap();
        assert_eq!(page.documents.len(), 1);
        let run: RunRecord = page.documents[0].parse().unwrap();
        assert_eq!(run.turns_in_window, 1);
        assert_eq!(run.status, "pending");
    }
}
