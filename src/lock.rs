//! Cross-process exclusive locks on files under `MCP_AUTH_SIDECAR_HOME`
//! (SPEC §6). `std::fs::File::lock` is `flock(2)` on Linux: the kernel
//! releases it when the holder exits, even by SIGKILL, and a waiter wakes as
//! soon as it is released, so there is no polling here.

use crate::home::open_private_file;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

    /// Waits for the lock on a blocking thread, at most `bound`. On timeout
    /// the waiting thread keeps waiting; if it later gets the lock, it drops
    /// it at once because nobody receives it.
    pub async fn acquire(path: &Path, bound: Duration) -> Result<Self, LockError> {
        let owned = path.to_owned();
        let wait = tokio::task::spawn_blocking(move || Self::acquire_blocking(&owned));
        match tokio::time::timeout(bound, wait).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(LockError::Join(join.to_string())),
            Err(_) => Err(LockError::TimedOut {
                path: path.to_owned(),
                waited: bound,
            }),
        }
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
}
