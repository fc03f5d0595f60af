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

/// Run `f` on the shared connection on a blocking thread: SQLite calls block, and the
/// mutex serialises this process's writers (WAL and the busy timeout handle other processes).
pub async fn blocking<T: Send + 'static>(
    conn: &std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>,
    f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || {
        // A poisoned lock still guards a usable connection: a panic inside `f` dropped its
        // rusqlite Transaction while unwinding, which rolled it back.
        let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    })
    .await
    .map_err(|e| Error::internal("database task failed").with_source(e))?
}
