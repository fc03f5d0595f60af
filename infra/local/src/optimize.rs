//! `catalyst optimize`: an optimize run by hand on the local stack. It starts (or resumes)
//! the run the way the schedule does, works the stack's queues in this process (the
//! agent function replays, the optimize function steps; a `catalyst serve` on the same
//! data directory shares the work), and shows progress until the run decides.

use crate::stack::Stack;
use catalyst_optimize::run::{self, Options, Run, Stage};
use catalyst_shared::queue::SharedQueue;
use catalyst_shared::store::SharedDocumentStore;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;
use std::time::Duration;

pub enum Start {
    New(Options),
    Resume(String),
}

pub async fn optimize(stack: Arc<Stack>, start: Start, wait: Duration) -> anyhow::Result<Run> {
    let store: SharedDocumentStore = stack.store.clone();
    let queue: SharedQueue = stack.queue.clone();
    let started = match start {
        Start::New(options) => run::start(&store, &queue, "manual", chrono::Utc::now(), options).await,
        Start::Resume(id) => run::resume(&store, &queue, &id).await,
    }
    .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    println!("optimize run {}", started.id);
    let workers = stack.clone().spawn_background();
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} replays {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let deadline = std::time::Instant::now() + wait;
    let outcome = loop {
        let (run, _) = run::load(&store, &started.id).await.map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        bar.set_length(run.planned() as u64);
        if let Some(done) = run.status.strip_prefix("replaying ").and_then(|s| s.split('/').next()) {
            bar.set_position(done.parse().unwrap_or(0));
        }
        bar.set_message(run.status.clone());
        if run.stage == Stage::Done {
            break Ok(run);
        }
        if std::time::Instant::now() > deadline {
            break Err(anyhow::anyhow!(
                "run {} is still {} after {:?}; it goes on with `catalyst serve`, or `catalyst optimize --resume {}`",
                run.id,
                run.status,
                wait,
                run.id
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    bar.finish_and_clear();
    for w in workers {
        w.abort();
    }
    outcome
}

/// What a finished run decided, one block per agent.
pub fn report(run: &Run) -> String {
    let mut out = format!(
        "{}\nspent: {} LLM calls, {} tokens (budget {} calls, {} tokens)\n",
        run.status,
        run.spend.calls,
        run.spend.tokens(),
        run.options.max_calls,
        run.options.max_tokens
    );
    for task in &run.tasks {
        if let Some(why) = &task.skipped {
            out.push_str(&format!("{:<13} skipped: {why}\n", task.agent));
            continue;
        }
        let decision = task.outcome.as_ref().map(|o| o.decision.as_str()).unwrap_or("undecided");
        let version = task.outcome.as_ref().and_then(|o| o.version).map(|v| format!(" v{v}")).unwrap_or_default();
        out.push_str(&format!(
            "{:<13} {decision}{version} ({} inputs, active v{})\n",
            task.agent,
            task.items.len(),
            task.active_version
        ));
        for c in task.outcome.iter().flat_map(|o| &o.comparisons) {
            out.push_str(&format!("  {:<10} {:.3} vs {:.3}  {}\n", c.variant, c.mean_variant, c.mean_active, c.reason));
        }
    }
    out
}
