//! `MCP_AUTH_SIDECAR_HOME` and the only code that creates files in it.
//!
//! ARCHITECTURE.md#credentials-on-disk: every file is created 0600 (never
//! chmod-ed afterwards) and every directory 0700; every write is atomic (temp
//! file, fsync, rename, fsync of the directory) so a crash leaves the old or
//! the new content, never a torn one.
//!
//! The home is trusted only if no other user could have put anything in it
//! (issue 8): on Unix, the home and every directory under it must be ours
//! and not writable by group or others, directories under it must not be
//! links, and files are opened with `O_NOFOLLOW` and checked after opening
//! (ours, a regular file; keys also unreadable by others). A failed check is
//! an [`Untrusted`] error whose message says what to fix. On Windows there
//! are no POSIX modes: the per-user profile ACL of `%LOCALAPPDATA%` protects
//! the home, and only the "not a link" and "regular file" checks apply.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};

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
    /// `$MCP_AUTH_SIDECAR_HOME`, else `mcp-auth-sidecar` in the platform's
    /// per-user local data directory: `$XDG_DATA_HOME` or `~/.local/share`
    /// on Linux, `~/Library/Application Support` on macOS, `%LOCALAPPDATA%`
    /// on Windows — local, not the roaming `%APPDATA%`: the records belong
    /// with the data key, which stays on this machine (the Credential
    /// Manager item is `Local`, and a key file should not travel with a
    /// roaming profile either).
    pub fn from_env() -> Result<Self, HomeError> {
        let root = match std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            Some(v) => PathBuf::from(v),
            None => dirs::data_local_dir()
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

    /// `relative` under the home, with every missing directory created 0700
    /// and every directory on the way checked (see [`check_dir`]). One
    /// component at a time, so nothing is ever created through a link.
    pub fn dir(&self, relative: &str) -> io::Result<PathBuf> {
        self.check_root()?;
        let mut path = self.root.clone();
        for part in Path::new(relative).components() {
            let Component::Normal(part) = part else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{relative:?} is not a plain relative path"),
                ));
            };
            path.push(part);
            if let Err(e) = fs::symlink_metadata(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(e);
                }
                match private_dir_builder().create(&path) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                }
            }
            check_dir(&path, &fs::symlink_metadata(&path)?)?;
        }
        Ok(path)
    }

    /// Creates the home if it is missing and checks it. The home itself may
    /// be a link (the user chose its path); what it points to is checked.
    fn check_root(&self) -> io::Result<()> {
        let meta = match fs::metadata(&self.root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_private_dir(&self.root)?;
                fs::metadata(&self.root)?
            }
            other => other?,
        };
        if !meta.is_dir() {
            return Err(untrusted(format!(
                "{} is not a directory; remove it or set {HOME_ENV}",
                self.root.display()
            )));
        }
        check_owner_and_mode(&self.root, &meta, 0o022, "700")
    }
}

/// Something under the home that another user could have made or could
/// change. Carried inside an `io::Error` so every caller's `?` keeps it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Untrusted(String);

fn untrusted(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, Untrusted(message))
}

/// The `Untrusted` inside `e`, if that is what it is.
pub fn as_untrusted(e: &io::Error) -> Option<&Untrusted> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Untrusted>())
}

/// A directory under the home (`meta` from `symlink_metadata`): a real
/// directory, not a link to one somewhere else, and (Unix) ours and not
/// writable by group or others.
fn check_dir(path: &Path, meta: &Metadata) -> io::Result<()> {
    if meta.file_type().is_symlink() {
        return Err(untrusted(format!(
            "{0} is a symbolic link; remove the symlink {0} (the directory is recreated)",
            path.display()
        )));
    }
    if !meta.is_dir() {
        return Err(untrusted(format!(
            "{0} is not a directory; remove {0}",
            path.display()
        )));
    }
    check_owner_and_mode(path, meta, 0o022, "700")
}

/// Ours, and no mode bit of `forbidden` set; `fix` is the mode to suggest.
#[cfg(unix)]
fn check_owner_and_mode(path: &Path, meta: &Metadata, forbidden: u32, fix: &str) -> io::Result<()> {
    let me = euid();
    if meta.uid() != me {
        return Err(untrusted(format!(
            "{} is owned by uid {}, not by you (uid {me}): another user could control it; \
             remove it, or set {HOME_ENV} to a directory of yours",
            path.display(),
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & forbidden != 0 {
        let who = if forbidden & 0o044 != 0 {
            "accessible"
        } else {
            "writable"
        };
        return Err(untrusted(format!(
            "{0} is {who} by other users (mode {mode:04o}); run chmod {fix} {0}",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_and_mode(_: &Path, _: &Metadata, _: u32, _: &str) -> io::Result<()> {
    // No POSIX owner or modes: the per-user profile's ACL protects the home.
    Ok(())
}

#[cfg(unix)]
fn euid() -> u32 {
    // SAFETY: geteuid(2) takes nothing, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// How much a file under the home must be ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    /// Key material: no access at all for group or others (0600).
    Key,
    /// Anything else (sealed records, `servers.json`, the keyring account
    /// name): not writable by group or others.
    Plain,
}

/// Reads a file under the home without following a link at its name, and
/// only if it is a regular file that is ours (Unix; see [`Secrecy`]). A
/// missing file is `NotFound`, as from `fs::read`.
pub fn read_file(path: &Path, secrecy: Secrecy) -> io::Result<Vec<u8>> {
    let mut options = OpenOptions::new();
    options.read(true);
    // O_NONBLOCK: a FIFO planted under the name must not hang the open; it
    // changes nothing for regular files.
    #[cfg(unix)]
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    let mut file = options
        .open(path)
        .map_err(|e| explain_open_error(path, e))?;
    check_file(path, &file.metadata()?, secrecy)?;
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(out)
}

/// Reads a configuration file as text; one under the home (`servers.json`)
/// only as [`read_file`] allows, others (the user's own dotfiles, which may
/// well be links) as they are.
pub fn read_config(path: &Path, home: Option<&Path>) -> io::Result<String> {
    if !home.is_some_and(|h| path.starts_with(h)) {
        return fs::read_to_string(path);
    }
    String::from_utf8(read_file(path, Secrecy::Plain)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// An opened file (`meta` from the open handle): a regular file, ours, with
/// the modes `secrecy` asks for.
fn check_file(path: &Path, meta: &Metadata, secrecy: Secrecy) -> io::Result<()> {
    if !meta.is_file() {
        return Err(untrusted(format!(
            "{0} is not a regular file; remove {0}",
            path.display()
        )));
    }
    match secrecy {
        Secrecy::Key => check_owner_and_mode(path, meta, 0o077, "600"),
        Secrecy::Plain => check_owner_and_mode(path, meta, 0o022, "go-w"),
    }
}

/// With `O_NOFOLLOW`, a link at the name fails with `ELOOP` ("too many
/// levels of symbolic links"); say instead what it is and what to do.
fn explain_open_error(path: &Path, e: io::Error) -> io::Error {
    if e.kind() != io::ErrorKind::NotFound
        && fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    {
        return untrusted(format!(
            "{0} is a symbolic link; remove the symlink {0}",
            path.display()
        ));
    }
    e
}

fn private_dir_builder() -> fs::DirBuilder {
    #[cfg_attr(not(unix), expect(unused_mut, reason = "only Unix has modes to set"))]
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    builder.mode(0o700);
    builder
}

/// Creates `path` and its missing parents with mode 0700 at creation time.
/// For the home itself and directories outside it; under the home, use
/// [`Home::dir`], which checks each directory.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    private_dir_builder().recursive(true).create(path)
}

/// Options that create a file 0600 (umask can only narrow it further) and
/// never open a link at the file's name (`O_NOFOLLOW`).
pub fn private_file_options() -> OpenOptions {
    #[cfg_attr(not(unix), expect(unused_mut, reason = "only Unix has modes to set"))]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    options
}

/// Opens (creating if needed, 0600) a file for reading and writing without
/// truncating it, never through a link, and only if it is ours: used for
/// lock files, which another user must not be able to hold for us.
pub fn open_private_file(path: &Path) -> io::Result<File> {
    let file = private_file_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| explain_open_error(path, e))?;
    check_file(path, &file.metadata()?, Secrecy::Plain)?;
    Ok(file)
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
        retry_while_shared(|| fs::rename(&tmp, path))?;
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
    match retry_while_shared(|| fs::remove_file(path)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Runs `replace` (a rename over a file, or a removal) again while another
/// process holds the file open in a way that forbids it, for a bounded
/// while. Only Windows does that: a file opened without `FILE_SHARE_DELETE`
/// (a virus scanner, the search indexer, a backup tool; never this program,
/// whose files std opens with every share flag) cannot be replaced or
/// removed until it is closed, and the attempt fails with a sharing
/// violation or "access denied". Unix replaces the name whoever has the
/// file open, so there the first answer is final. The caller's thread
/// sleeps between attempts, 1.9 s at most in all.
fn retry_while_shared(mut replace: impl FnMut() -> io::Result<()>) -> io::Result<()> {
    let mut attempt = 0;
    loop {
        match replace() {
            Err(e) => match shared_retry_delay(cfg!(windows), e.raw_os_error(), attempt) {
                Some(delay) => {
                    std::thread::sleep(delay);
                    attempt += 1;
                }
                None => return Err(e),
            },
            Ok(()) => return Ok(()),
        }
    }
}

/// The delays of [`retry_while_shared`]: 10 ms doubling to 640 ms, eight
/// of them (1.9 s in all).
const SHARED_RETRY_DELAYS_MS: [u64; 8] = [10, 20, 40, 80, 160, 320, 640, 640];

/// Whether (and after how long) to try again after `raw_os_error` on the
/// `attempt`th try (from 0). Separate from the OS call so it is tested on
/// every platform.
fn shared_retry_delay(
    windows: bool,
    raw_os_error: Option<i32>,
    attempt: usize,
) -> Option<std::time::Duration> {
    // ERROR_ACCESS_DENIED (5: how a pending delete or an open handle
    // without FILE_SHARE_DELETE answers a rename), ERROR_SHARING_VIOLATION
    // (32), ERROR_LOCK_VIOLATION (33).
    const HELD_ELSEWHERE: [i32; 3] = [5, 32, 33];
    if !windows || !raw_os_error.is_some_and(|code| HELD_ELSEWHERE.contains(&code)) {
        return None;
    }
    SHARED_RETRY_DELAYS_MS
        .get(attempt)
        .map(|&ms| std::time::Duration::from_millis(ms))
}

/// Makes a rename or removal in `dir` durable (fsync of the directory).
/// Windows has no such call (a directory cannot be flushed like a file;
/// NTFS journals the rename itself), so there it does nothing.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
            .open(dir)?
            .sync_all()
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

/// Platform logic that runs on every platform's tests.
#[cfg(test)]
mod portable_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_windows_sharing_errors_are_retried_and_boundedly() {
        let table = [
            // (windows, error, attempt, retried after)
            (true, Some(32), 0, Some(10)),
            (true, Some(5), 0, Some(10)),
            (true, Some(33), 3, Some(80)),
            (true, Some(32), 7, Some(640)),
            (true, Some(32), 8, None),
            (true, Some(2), 0, None), // ERROR_FILE_NOT_FOUND
            (true, None, 0, None),
            (false, Some(13), 0, None), // EACCES
            (false, Some(32), 0, None), // EPIPE on Linux: not Windows' 32
        ];
        for (windows, error, attempt, expected) in table {
            assert_eq!(
                shared_retry_delay(windows, error, attempt),
                expected.map(Duration::from_millis),
                "{windows} {error:?} {attempt}"
            );
        }
        let total: Duration = (0..)
            .map_while(|attempt| shared_retry_delay(true, Some(32), attempt))
            .sum();
        assert_eq!(total, Duration::from_millis(1910));
    }

    /// The loop stops at the first success and returns the first final
    /// error as it was.
    #[test]
    fn retrying_ends_on_success_or_a_final_error() {
        let mut calls = 0;
        retry_while_shared(|| {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 1);
        let mut calls = 0;
        let e = retry_while_shared(|| {
            calls += 1;
            Err(io::Error::from_raw_os_error(if cfg!(windows) {
                2
            } else {
                32
            }))
        })
        .unwrap_err();
        assert_eq!(calls, 1);
        assert!(e.raw_os_error().is_some());
    }
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

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The message of an `Untrusted` error; panics on anything else.
    fn refusal<T: std::fmt::Debug>(result: io::Result<T>) -> String {
        let e = result.unwrap_err();
        as_untrusted(&e)
            .unwrap_or_else(|| panic!("not an Untrusted error: {e}"))
            .to_string()
    }

    fn private_tmp() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        chmod(tmp.path(), 0o700);
        tmp
    }

    #[test]
    fn a_home_writable_by_others_is_refused_and_left_untouched() {
        let tmp = private_tmp();
        for mode in [0o777, 0o770, 0o1777] {
            chmod(tmp.path(), mode);
            let message = refusal(Home::at(tmp.path()).dir("locks"));
            assert!(
                message.contains(&format!("chmod 700 {}", tmp.path().display())),
                "{message}"
            );
            assert!(!tmp.path().join("locks").exists());
        }
        chmod(tmp.path(), 0o755);
        Home::at(tmp.path()).dir("locks").unwrap();
    }

    /// Tests run as root in CI, where root owns every temp directory: the
    /// check compares with the effective uid, and this chowns to prove it.
    #[test]
    fn directories_of_another_user_are_refused() {
        if euid() != 0 {
            eprintln!("skipped: chown to another uid needs root");
            return;
        }
        let tmp = private_tmp();
        let home = Home::at(tmp.path());
        home.dir("store").unwrap();
        std::os::unix::fs::chown(tmp.path().join("store"), Some(65534), None).unwrap();
        let message = refusal(home.dir("store/file/records"));
        assert!(message.contains("owned by uid 65534"), "{message}");
        assert!(!tmp.path().join("store/file").exists());
        std::os::unix::fs::chown(tmp.path(), Some(65534), None).unwrap();
        assert!(refusal(home.dir("locks")).contains("owned by uid 65534"));
    }

    #[test]
    fn nothing_is_created_through_a_linked_directory() {
        let tmp = private_tmp();
        let elsewhere = private_tmp();
        std::os::unix::fs::symlink(elsewhere.path(), tmp.path().join("store")).unwrap();
        let message = refusal(Home::at(tmp.path()).dir("store/file/records"));
        assert!(message.contains("remove the symlink"), "{message}");
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
        // A link to nowhere is no better.
        fs::remove_file(tmp.path().join("store")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", tmp.path().join("store")).unwrap();
        assert!(refusal(Home::at(tmp.path()).dir("store")).contains("remove the symlink"));
        assert!(Home::at(tmp.path()).dir("../x").is_err());
    }

    /// The home itself may be a link the user made; its target is checked.
    #[test]
    fn the_home_may_be_a_link_to_a_private_directory() {
        let tmp = private_tmp();
        let real = tmp.path().join("real");
        create_private_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, tmp.path().join("home")).unwrap();
        Home::at(tmp.path().join("home")).dir("locks").unwrap();
        assert!(real.join("locks").is_dir());
        chmod(&real, 0o777);
        assert!(refusal(Home::at(tmp.path().join("home")).dir("locks")).contains("chmod 700"));
    }

    #[test]
    fn files_are_never_opened_through_a_link() {
        let tmp = private_tmp();
        let target = tmp.path().join("target");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        // A lock file or flow marker: not created at the link's target.
        let message = refusal(open_private_file(&link));
        assert!(
            message.contains(&format!("remove the symlink {}", link.display())),
            "{message}"
        );
        assert!(
            private_file_options()
                .write(true)
                .create(true)
                .open(&link)
                .is_err()
        );
        assert!(!target.exists());
        // Reading: a link to an existing key is refused too.
        fs::write(&target, b"key").unwrap();
        chmod(&target, 0o600);
        assert!(refusal(read_file(&link, Secrecy::Key)).contains("remove the symlink"));
        assert_eq!(read_file(&target, Secrecy::Key).unwrap(), b"key");
        // write_atomic replaces a link, it never writes through it.
        write_atomic(&link, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"key");
        assert!(
            !fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let missing = read_file(&tmp.path().join("missing"), Secrecy::Key).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn keys_must_be_private_regular_files() {
        let tmp = private_tmp();
        let key = tmp.path().join("data.key");
        write_atomic(&key, b"k").unwrap();
        read_file(&key, Secrecy::Key).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            chmod(&key, mode);
            let message = refusal(read_file(&key, Secrecy::Key));
            assert!(
                message.contains(&format!("chmod 600 {}", key.display())),
                "{message}"
            );
        }
        // Readable by others is fine for what is not a key; writable is not.
        chmod(&key, 0o644);
        read_file(&key, Secrecy::Plain).unwrap();
        chmod(&key, 0o664);
        assert!(refusal(read_file(&key, Secrecy::Plain)).contains("chmod go-w"));
        // A FIFO under the name neither hangs the open nor passes.
        let fifo = tmp.path().join("fifo.key");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            assert!(refusal(read_file(&fifo, Secrecy::Key)).contains("not a regular file"));
        }
        // A directory neither.
        assert!(refusal(read_file(tmp.path(), Secrecy::Plain)).contains("not a regular file"));
        if euid() == 0 {
            chmod(&key, 0o600);
            std::os::unix::fs::chown(&key, Some(65534), None).unwrap();
            assert!(refusal(read_file(&key, Secrecy::Key)).contains("owned by uid 65534"));
            assert!(refusal(open_private_file(&key)).contains("owned by uid 65534"));
        }
    }
}
