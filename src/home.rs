//! `MCP_AUTH_SIDECAR_HOME` and the only code that creates files in it.
//!
//! SPEC §5: every file is created 0600 (never chmod-ed afterwards) and every
//! directory 0700; every write is atomic (temp file, fsync, rename, fsync of
//! the directory) so a crash leaves the old or the new content, never a torn
//! one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

pub const HOME_ENV: &str = "MCP_AUTH_SIDECAR_HOME";

/// The sidecar's own directory. Cheap to clone; every path under it is built
/// through this type so nothing is ever created with default permissions.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("cannot find a per-user data directory; set {HOME_ENV}")]
    NoDataDir,
    #[error("{HOME_ENV} must be an absolute path, got {0:?}")]
    NotAbsolute(PathBuf),
}

impl Home {
    /// `$MCP_AUTH_SIDECAR_HOME`, else the platform's per-user data directory.
    pub fn from_env() -> Result<Self, HomeError> {
        let root = match std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            Some(v) => PathBuf::from(v),
            None => dirs::data_dir()
                .ok_or(HomeError::NoDataDir)?
                .join("mcp-auth-sidecar"),
        };
        if !root.is_absolute() {
            return Err(HomeError::NotAbsolute(root));
        }
        Ok(Self { root })
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `relative` under the home, with every missing directory created 0700.
    pub fn dir(&self, relative: &str) -> io::Result<PathBuf> {
        let path = self.root.join(relative);
        create_private_dir(&path)?;
        Ok(path)
    }
}

/// Creates `path` and its missing parents with mode 0700 at creation time.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(path)
}

/// Options that create a file 0600 (umask can only narrow it further).
pub fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    options.mode(0o600);
    options
}

/// Opens (creating if needed, 0600) a file for reading and writing without
/// truncating it: used for lock files.
pub fn open_private_file(path: &Path) -> io::Result<File> {
    private_file_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Replaces `path` with `contents` atomically: a fresh 0600 temp file in the
/// same directory, written and fsynced, renamed over the target, then the
/// directory fsynced so the rename itself is durable.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(io::Error::other)?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), hex(&suffix)));
    let result = (|| {
        let mut file = private_file_options()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes temp files that a process killed mid-write left in `dir`. Only
/// old ones: a younger one may belong to a write in progress elsewhere.
pub fn sweep_stale_temps(dir: &Path, older_than: std::time::Duration) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('.') && name.ends_with(".tmp")) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > older_than);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Removes a file and makes the removal durable. A missing file is fine.
pub fn remove_durably(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[test]
    fn directories_are_0700_and_files_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path().join("home"));
        let dir = home.dir("a/b").unwrap();
        assert_eq!(mode(&tmp.path().join("home")), 0o700);
        assert_eq!(mode(&tmp.path().join("home/a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("f");
        write_atomic(&file, b"one").unwrap();
        assert_eq!(mode(&file), 0o600);
        write_atomic(&file, b"two").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two");
        let lock = dir.join("l.lock");
        open_private_file(&lock).unwrap();
        assert_eq!(mode(&lock), 0o600);
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
