//! Cross-process exclusive locks on files under `MCP_AUTH_SIDECAR_HOME`
//! (ARCHITECTURE.md#the-refresh-transaction-and-locking). `std::fs::File::lock`
//! is `flock(2)` on Linux: the kernel releases it when the holder exits, even
//! by SIGKILL, and a waiter wakes as soon as it is released, so there is no
//! polling here.
//!
//! A blocking `flock` cannot be cancelled, so a wait that gives up leaves
//! its thread waiting. At most one such thread exists per lock file: every
//! waiter of this process for that file shares it, and a thread whose
//! waiters all gave up drops the lock the moment it gets it.

use crate::home::open_private_file;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open lock file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another mcp-auth-sidecar process held {path} for more than {waited:?}")]
    TimedOut { path: PathBuf, waited: Duration },
    #[error("lock wait failed: {0}")]
    Join(String),
}

/// Held while alive; dropping it (or the process dying) releases the lock.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// The one blocking wait for a lock file, shared by this process's waiters.
#[derive(Default)]
struct Wait {
    state: Mutex<WaitState>,
    done: Notify,
}

#[derive(Default)]
struct WaitState {
    /// Waiters still interested; when 0, a lock that arrives is dropped.
    waiters: usize,
    /// The thread has finished; `result` is for the first waiter to take.
    finished: bool,
    result: Option<Result<FileLock, LockError>>,
}

/// Lock files with a thread blocked on them right now.
fn waits() -> &'static Mutex<HashMap<PathBuf, Arc<Wait>>> {
    static WAITS: OnceLock<Mutex<HashMap<PathBuf, Arc<Wait>>>> = OnceLock::new();
    WAITS.get_or_init(Default::default)
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FileLock {
    /// Blocks the calling thread until the lock is ours.
    pub fn acquire_blocking(path: &Path) -> Result<Self, LockError> {
        let file = open_private_file(path).map_err(|source| LockError::Open {
            path: path.to_owned(),
            source,
        })?;
        file.lock().map_err(|source| LockError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self { _file: file })
    }

    /// Waits for the lock, at most `bound`, on the one blocking thread this
    /// process keeps per lock file (see the module documentation).
    pub async fn acquire(path: &Path, bound: Duration) -> Result<Self, LockError> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let wait = Self::join_or_start(path)?;
            let outcome = loop {
                let notified = wait.done.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let mut state = locked(&wait.state);
                    if let Some(result) = state.result.take() {
                        state.waiters -= 1;
                        break Some(result);
                    }
                    if state.finished {
                        // Another waiter of this process took the lock:
                        // queue again behind it.
                        state.waiters -= 1;
                        break None;
                    }
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    let mut state = locked(&wait.state);
                    state.waiters -= 1;
                    if state.waiters == 0 {
                        // Arrived just now and nobody wants it.
                        drop(state.result.take());
                    }
                    return Err(LockError::TimedOut {
                        path: path.to_owned(),
                        waited: bound,
                    });
                }
            };
            if let Some(result) = outcome {
                return result;
            }
        }
    }

    /// Registers a waiter on the blocking wait for `path`, starting one if
    /// none runs.
    fn join_or_start(path: &Path) -> Result<Arc<Wait>, LockError> {
        let mut all = locked(waits());
        if let Some(wait) = all.get(path) {
            locked(&wait.state).waiters += 1;
            return Ok(wait.clone());
        }
        let wait = Arc::new(Wait::default());
        wait.state.lock().unwrap_or_else(|p| p.into_inner()).waiters = 1;
        let (owned, shared) = (path.to_owned(), wait.clone());
        #[cfg(test)]
        tests::count_start(path);
        std::thread::Builder::new()
            .name("lock-wait".into())
            .spawn(move || {
                let result = Self::acquire_blocking(&owned);
                // Off the map first, so that no new waiter joins a finished
                // wait.
                locked(waits()).remove(&owned);
                let mut state = locked(&shared.state);
                state.finished = true;
                if state.waiters > 0 {
                    state.result = Some(result);
                }
                drop(state);
                shared.done.notify_waiters();
            })
            .map_err(|e| LockError::Join(format!("cannot start a lock-wait thread: {e}")))?;
        all.insert(path.to_owned(), wait.clone());
        Ok(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_holder_waits_and_times_out_then_gets_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.lock");
        let first = FileLock::acquire(&path, Duration::from_secs(5))
            .await
            .unwrap();
        let err = FileLock::acquire(&path, Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(err, LockError::TimedOut { .. }), "{err}");
        drop(first);
        FileLock::acquire(&path, Duration::from_secs(5))
            .await
            .unwrap();
    }

    static STARTED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    pub(super) fn count_start(path: &Path) {
        locked(&STARTED).push(path.to_owned());
    }

    /// Blocking waits started for `path` so far.
    fn started(path: &Path) -> usize {
        locked(&STARTED).iter().filter(|p| *p == path).count()
    }

    #[tokio::test]
    async fn waits_that_give_up_leave_one_thread_per_lock_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("y.lock");
        let holder = FileLock::acquire_blocking(&path).unwrap();
        for _ in 0..20 {
            let err = FileLock::acquire(&path, Duration::from_millis(5))
                .await
                .unwrap_err();
            assert!(matches!(err, LockError::TimedOut { .. }), "{err}");
        }
        assert_eq!(started(&path), 1);
        drop(holder);
        // The lingering thread gets the lock, finds nobody waiting and drops
        // it, so a new waiter gets it.
        let again = FileLock::acquire(&path, Duration::from_secs(10)).await;
        assert!(again.is_ok());
    }

    #[tokio::test]
    async fn waiters_of_one_process_take_the_lock_in_turn() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("z.lock");
        let holder = FileLock::acquire_blocking(&path).unwrap();
        let a = tokio::spawn({
            let path = path.clone();
            async move { FileLock::acquire(&path, Duration::from_secs(10)).await }
        });
        let b = tokio::spawn({
            let path = path.clone();
            async move { FileLock::acquire(&path, Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(holder);
        // One of them gets it; the other gets it once the first lets go.
        let (mut a, mut b) = (a, b);
        let (first, second) = tokio::select! {
            r = &mut a => (r.unwrap().unwrap(), b),
            r = &mut b => (r.unwrap().unwrap(), a),
        };
        drop(first);
        let _second = second.await.unwrap().unwrap();
    }
}
