//! Reading configuration files without trusting them (issue 8): only
//! regular files, at most [`MAX_BYTES`], on worker threads under one
//! deadline. A link to `/dev/zero`, a FIFO, the editor's own pipe or a stuck
//! network filesystem becomes a problem, never a hang or an exhausted heap.

use std::collections::VecDeque;
use std::fs::{File, FileType, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

/// Real MCP configuration files are a few KiB.
pub const MAX_BYTES: u64 = 1 << 20;
/// How long all the files of one load may take together.
pub const READ_BOUND: Duration = Duration::from_secs(3);
/// Reader threads: a read stuck in the kernel (a hung NFS mount) keeps its
/// thread, so the others must go on without it.
const WORKERS: usize = 4;

/// What reading one file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Missing,
    Text {
        text: String,
        /// Device and inode of the file read, to recognise one file reached
        /// by two paths.
        id: Option<(u64, u64)>,
    },
    /// Why it was not used (no contents: they could be anything).
    Refused(String),
}

/// One file to read. `confine`: a project file must resolve to a file
/// inside this folder.
#[derive(Debug, Clone)]
pub struct Job {
    pub path: PathBuf,
    pub confine: Option<PathBuf>,
    /// Under `MCP_AUTH_SIDECAR_HOME` (`servers.json`): read by the home's
    /// rules instead (no link, ours, not writable by others; see `home`).
    pub in_home: bool,
}

pub type Reader = fn(&Path, Option<&Path>) -> Outcome;

/// Reads `path` if it is (or links to) a regular file of at most
/// [`MAX_BYTES`]. Blocking: call it through [`read_all`].
pub fn read(path: &Path, confine: Option<&Path>) -> Outcome {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Outcome::Missing,
        Err(e) => return Outcome::Refused(format!("cannot be read: {e}")),
        Ok(_) => {}
    }
    match read_checked(path, confine) {
        Ok(outcome) => outcome,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Outcome::Refused("is a symbolic link to something that does not exist".into())
        }
        Err(e) => Outcome::Refused(format!("cannot be read: {e}")),
    }
}

fn read_checked(path: &Path, confine: Option<&Path>) -> io::Result<Outcome> {
    let target = match confine {
        Some(folder) => {
            let target = std::fs::canonicalize(path)?;
            if !target.starts_with(std::fs::canonicalize(folder)?) {
                return Ok(Outcome::Refused(
                    "is a symbolic link out of its workspace folder; a project's configuration must stay inside the project".into(),
                ));
            }
            target
        }
        None => path.to_owned(),
    };
    // The type is checked before opening (opening a FIFO waits for a
    // writer; opening a device may do things) and again on the file
    // opened, in case the path changed in between.
    if let Some(refused) = refusal(&std::fs::metadata(&target)?) {
        return Ok(refused);
    }
    let file = open(&target, confine.is_some())?;
    let meta = file.metadata()?;
    if let Some(refused) = refusal(&meta) {
        return Ok(refused);
    }
    // The size is enforced by reading at most one byte more than allowed,
    // whatever the metadata claimed (procfs, a file that grows).
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Ok(too_large());
    }
    Ok(match String::from_utf8(bytes) {
        Ok(text) => Outcome::Text {
            text,
            id: identity(&meta),
        },
        Err(_) => Outcome::Refused("is not UTF-8 text".into()),
    })
}

/// A file in the sidecar's own home, which another user must not control.
fn read_in_home(path: &Path) -> Outcome {
    let home = path.parent();
    match crate::home::read_config(path, home) {
        Ok(text) if text.len() as u64 > MAX_BYTES => too_large(),
        Ok(text) => Outcome::Text { text, id: None },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::Missing,
        Err(e) => Outcome::Refused(format!("cannot be read: {e}")),
    }
}

fn refusal(meta: &Metadata) -> Option<Outcome> {
    if !meta.is_file() {
        return Some(Outcome::Refused(format!(
            "is not a regular file ({}); it was not read",
            describe(meta.file_type())
        )));
    }
    (meta.len() > MAX_BYTES).then(too_large)
}

fn too_large() -> Outcome {
    Outcome::Refused(format!(
        "is larger than {} MiB; it was not read",
        MAX_BYTES >> 20
    ))
}

fn describe(t: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO or pipe";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a plain file"
    }
}

/// Opens without blocking on a FIFO and without becoming the controlling
/// terminal; a project file's final component must not be a link (it was
/// resolved already).
#[cfg(unix)]
fn open(path: &Path, no_follow: bool) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if no_follow {
        flags |= libc::O_NOFOLLOW;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
}

#[cfg(not(unix))]
fn open(path: &Path, _no_follow: bool) -> io::Result<File> {
    File::open(path)
}

#[cfg(unix)]
fn identity(meta: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(_meta: &Metadata) -> Option<(u64, u64)> {
    None
}

/// Reads every job with `reader` on at most [`WORKERS`] threads and returns
/// the outcomes in job order; a job not done within `bound` is refused.
/// Threads still stuck then are left behind: nothing can interrupt a read
/// stuck in the kernel, and the caller must not wait for it.
pub fn read_all(jobs: Vec<Job>, bound: Duration, reader: Reader) -> Vec<Outcome> {
    let deadline = Instant::now() + bound;
    let count = jobs.len();
    let queue = Arc::new(Mutex::new(
        jobs.into_iter().enumerate().collect::<VecDeque<_>>(),
    ));
    let (tx, rx) = mpsc::channel();
    let mut spawn_error = None;
    for _ in 0..WORKERS.min(count) {
        let (queue, tx) = (queue.clone(), tx.clone());
        let spawned = std::thread::Builder::new()
            .name("config-reader".into())
            .spawn(move || {
                loop {
                    let next = queue
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop_front();
                    let Some((i, job)) = next else { break };
                    let outcome = if job.in_home {
                        read_in_home(&job.path)
                    } else {
                        reader(&job.path, job.confine.as_deref())
                    };
                    if tx.send((i, outcome)).is_err() {
                        break;
                    }
                }
            });
        if let Err(e) = spawned {
            spawn_error = Some(e);
        }
    }
    drop(tx);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; count];
    let mut left = count;
    while left > 0 {
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok((i, outcome)) => {
                outcomes[i] = Some(outcome);
                left -= 1;
            }
            Err(_) => break,
        }
    }
    // What no one has started yet is not started any more.
    queue.lock().unwrap_or_else(PoisonError::into_inner).clear();
    let late = match spawn_error {
        Some(e) => format!("cannot be read: no thread to read it on ({e})"),
        None => format!(
            "was not read within {} seconds (a stuck network filesystem?)",
            bound.as_secs()
        ),
    };
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Refused(late.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(o: Outcome) -> String {
        match o {
            Outcome::Refused(why) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert_eq!(read(&dir.join("absent.json"), None), Outcome::Missing);
        std::fs::write(dir.join("ok.json"), "{}").unwrap();
        assert!(
            matches!(read(&dir.join("ok.json"), None), Outcome::Text { text, .. } if text == "{}")
        );

        std::fs::write(dir.join("max.json"), " ".repeat(MAX_BYTES as usize)).unwrap();
        assert!(matches!(
            read(&dir.join("max.json"), None),
            Outcome::Text { .. }
        ));
        std::fs::write(dir.join("big.json"), " ".repeat(MAX_BYTES as usize + 1)).unwrap();
        assert!(refused(read(&dir.join("big.json"), None)).contains("larger than 1 MiB"));
        assert!(refused(read(dir, None)).contains("a directory"));
        std::fs::write(dir.join("latin1.json"), b"{\"a\": \"\xe9\"}").unwrap();
        assert!(refused(read(&dir.join("latin1.json"), None)).contains("UTF-8"));

        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            // Devices are refused before they are opened.
            let why = refused(read(Path::new("/dev/zero"), None));
            assert!(why.contains("a device"), "{why}");
            symlink("/dev/zero", dir.join("zero.json")).unwrap();
            assert!(refused(read(&dir.join("zero.json"), None)).contains("a device"));
            symlink("/proc/self/fd/0", dir.join("stdin.json")).unwrap();
            let _ = refused(read(&dir.join("stdin.json"), None));
            symlink(dir.join("nowhere"), dir.join("dangling.json")).unwrap();
            assert!(refused(read(&dir.join("dangling.json"), None)).contains("does not exist"));
            // A user file may link anywhere, to a regular file.
            symlink(dir.join("ok.json"), dir.join("dotfile.json")).unwrap();
            assert!(matches!(
                read(&dir.join("dotfile.json"), None),
                Outcome::Text { .. }
            ));
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let started = Instant::now();
        assert!(refused(read(&fifo, None)).contains("FIFO"));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[cfg(unix)]
    #[test]
    fn project_files_stay_inside_their_folder() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        std::fs::create_dir_all(ws.join("tools")).unwrap();
        std::fs::write(ws.join("tools/mcp.json"), "{}").unwrap();
        std::fs::write(tmp.path().join("outside.json"), "{}").unwrap();
        symlink("tools/mcp.json", ws.join(".mcp.json")).unwrap();
        assert!(matches!(
            read(&ws.join(".mcp.json"), Some(&ws)),
            Outcome::Text { .. }
        ));
        symlink(tmp.path().join("outside.json"), ws.join("out.json")).unwrap();
        assert!(refused(read(&ws.join("out.json"), Some(&ws))).contains("out of its workspace"));
        // The same link is fine where links may go anywhere (user files).
        assert!(matches!(
            read(&ws.join("out.json"), None),
            Outcome::Text { .. }
        ));
        symlink("/dev/zero", ws.join("zero.json")).unwrap();
        let _ = refused(read(&ws.join("zero.json"), Some(&ws)));
    }

    #[test]
    fn a_stuck_read_becomes_a_problem_and_the_others_go_on() {
        fn reader(path: &Path, _: Option<&Path>) -> Outcome {
            if path.ends_with("stuck") {
                std::thread::sleep(Duration::from_secs(30));
            }
            Outcome::Text {
                text: path.display().to_string(),
                id: None,
            }
        }
        let jobs: Vec<Job> = ["a", "stuck", "b", "c", "d", "e", "f"]
            .iter()
            .map(|p| Job {
                path: PathBuf::from(p),
                confine: None,
                in_home: false,
            })
            .collect();
        let started = Instant::now();
        let out = read_all(jobs, Duration::from_millis(500), reader);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(out.len(), 7);
        assert!(refused(out[1].clone()).contains("was not read within"));
        for (i, o) in out.iter().enumerate().filter(|(i, _)| *i != 1) {
            assert!(matches!(o, Outcome::Text { .. }), "{i}: {o:?}");
        }
        assert!(read_all(Vec::new(), Duration::ZERO, reader).is_empty());
    }
}
