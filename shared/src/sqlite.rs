//! Shared SQLite setup for the embedded adapters.

use crate::error::Error;
use std::path::Path;
use std::time::Duration;

/// Open (creating) a database in WAL mode with a busy timeout, so several processes on
/// one machine (the local stack and a function run by hand) can share it.
pub fn open(path: &Path) -> Result<rusqlite::Connection, Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::internal(format!("cannot create directory {}", parent.display())).with_source(e))?;
    }
    let conn = rusqlite::Connection::open(path)
        .map_err(|e| Error::internal(format!("cannot open database {}", path.display())).with_source(e))?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(error)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(error)?;
    Ok(conn)
}

/// How often the background checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Keeps a database's WAL checkpointed from a thread of its own while it lives; dropping
/// it stops the thread.
///
/// Why: SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 WAL pages,
/// and that commit then pays for copying the pages and two fsyncs (measured under load:
/// 6-33 ms for a commit that otherwise takes 0.2 ms, and every request queued behind it
/// waits as long). Here commits only append to the WAL; a PASSIVE checkpoint on a second
/// connection never blocks them, and the WAL restarts from its beginning once it is fully
/// copied, so it stays about a second of writes long.
pub struct Checkpointer {
    _stop: std::sync::mpsc::Sender<()>,
}

/// Start checkpointing `path` in the background and turn automatic checkpoints off on
/// `conn`, the connection that writes.
pub fn checkpoint_in_background(conn: &rusqlite::Connection, path: &Path) -> Result<Checkpointer, Error> {
    let own = open(path)?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            // Ends when the owner drops the sender (recv then fails as disconnected).
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                if let Err(e) = own.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0)) {
                    tracing::debug!(error = %e, "background checkpoint failed; the next one retries");
                }
            }
        })
        .map_err(|e| Error::internal("cannot start the database checkpoint thread").with_source(e))?;
    conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(error)?;
    Ok(Checkpointer { _stop: stop })
}

pub fn error(e: rusqlite::Error) -> Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
        {
            Error::unavailable("embedded database is busy").with_source(e)
        }
        _ => Error::internal("embedded database error").with_source(e),
    }
}

/// Run `f` on the shared connection. The mutex serialises this process's writers (WAL and
/// the busy timeout handle other processes).
///
/// On a multi-threaded runtime `f` runs right here, inside `block_in_place` (the worker's
/// other tasks move to another thread meanwhile): a store call takes 0.1-0.3 ms, while
/// handing it to a blocking-pool thread meant waking that thread, which on a busy machine
/// waited out the scheduler's time slice first (measured: 3-8 ms before the call even
/// started, the whole p99 of an agent turn's store time). Elsewhere (a current-thread
/// runtime, as in most tests) it goes to the blocking pool as before.
pub async fn blocking<T: Send + 'static>(
    conn: &std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>,
    f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let conn = conn.clone();
    let run = move || {
        // A poisoned lock still guards a usable connection: a panic inside `f` dropped its
        // rusqlite Transaction while unwinding, which rolled it back.
        let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    };
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        // A panic stays this call's error, as it is from the blocking pool.
        return tokio::task::block_in_place(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)))
            .map_err(|_| Error::internal("database task failed"))?;
    }
    tokio::task::spawn_blocking(run).await.map_err(|e| Error::internal("database task failed").with_source(e))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    async fn panics_become_errors_and_the_connection_stays_usable() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Arc::new(Mutex::new(open(&dir.path().join("t.db")).unwrap()));
        let err = blocking(&conn, |_| -> Result<(), Error> { panic!("bug") }).await.unwrap_err();
        assert_eq!(err.code(), "internal");
        let one = blocking(&conn, |c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map_err(error)).await;
        assert_eq!(one.unwrap(), 1);
    }

    #[tokio::test]
    async fn on_the_blocking_pool() {
        panics_become_errors_and_the_connection_stays_usable().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inline_on_a_worker() {
        panics_become_errors_and_the_connection_stays_usable().await;
    }
}
