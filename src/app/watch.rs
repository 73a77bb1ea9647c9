//! Live status across instances (docs/protocol.md#mcpauthstatuschanged): every instance watches the
//! store's records directory and the flow markers (inotify on Linux: the
//! thread sleeps in the kernel, no polling, no timers). A changed record is
//! re-read; a flow marker means another instance is authorizing that server
//! (`authorizing` in docs/protocol.md#serverstatus, "in this or another instance").

use super::App;
use crate::home::Home;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where flow markers live, one per credential being authorized.
pub(super) const FLOWS_DIR: &str = "flows";

/// Exists while an instance runs an interactive flow for a credential; it
/// is created under the credential's lock and removed before the lock is
/// released, so a marker whose lock is free was left by a killed process.
pub(super) struct FlowMarker(PathBuf);

impl FlowMarker {
    pub(super) fn create(home: &Home, stem: &str) -> Option<Self> {
        let dir = home.dir(FLOWS_DIR).ok()?;
        let path = dir.join(stem);
        crate::home::private_file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .ok()?;
        Some(Self(path))
    }
}

impl Drop for FlowMarker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether a live instance holds the flow marked by `marker`: the marker
/// exists and its credential lock is taken. A stale marker is removed.
fn flow_alive(home: &Home, stem: &str) -> bool {
    let marker = home.root().join(FLOWS_DIR).join(stem);
    if !marker.exists() {
        return false;
    }
    let lock = home.root().join("locks").join(format!("{stem}.lock"));
    let Ok(file) = crate::home::open_private_file(&lock) else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => {
            // Nobody holds the lock: the marker's owner died.
            let _ = std::fs::remove_file(&marker);
            false
        }
        Err(_) => true,
    }
}

enum Change {
    Record(String),
    Flow(String),
    /// Events were lost: re-read every record and flow marker.
    Everything,
}

/// What changed since the watcher task last looked. Sets, not a queue: a
/// burst of events for one file is one entry, and the size is bounded by
/// [`MAX_PENDING`] whatever the event rate.
#[derive(Default)]
struct Pending {
    batch: std::sync::Mutex<Batch>,
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct Batch {
    records: HashSet<String>,
    flows: HashSet<String>,
    everything: bool,
}

/// Past this many distinct changed names, look at everything instead.
const MAX_PENDING: usize = 1024;

impl Pending {
    fn add(&self, change: Change) {
        {
            let mut batch = self.batch.lock().unwrap_or_else(|p| p.into_inner());
            if batch.records.len() + batch.flows.len() >= MAX_PENDING {
                batch.records.clear();
                batch.flows.clear();
                batch.everything = true;
            }
            match change {
                Change::Everything => batch.everything = true,
                _ if batch.everything => {}
                Change::Record(stem) => {
                    batch.records.insert(stem);
                }
                Change::Flow(stem) => {
                    batch.flows.insert(stem);
                }
            }
        }
        // Stores a permit when the task is busy: no change is missed.
        self.wake.notify_one();
    }

    fn take(&self) -> Batch {
        std::mem::take(&mut *self.batch.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Whether an event can mean that another process changed a record or a
/// flow marker. Opening and reading a file are events too (notify asks
/// inotify for `IN_OPEN`), and reacting to them made every re-read trigger
/// the next one: an idle sidecar with a stored credential spun a core.
fn is_write_or_removal(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

impl App {
    /// Starts watching; the watcher lives as long as the app. Nothing to do
    /// for a memory store, which no other process shares.
    pub fn watch_store(self: &Arc<Self>) {
        let (Some(records), Some(home)) = (self.store.records_dir(), self.home.clone()) else {
            return;
        };
        let Ok(flows) = home.dir(FLOWS_DIR) else {
            return;
        };
        let pending = Arc::new(Pending::default());
        let flows_dir = flows.clone();
        let from_handler = pending.clone();
        let handler = move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if event.need_rescan() {
                // The kernel's queue overflowed: events were lost.
                from_handler.add(Change::Everything);
                return;
            }
            if !is_write_or_removal(&event.kind) {
                return;
            }
            for path in event.paths {
                let stem = stem_of(&path);
                if path.parent() == Some(flows_dir.as_path()) {
                    from_handler.add(Change::Flow(stem));
                } else if path.extension().is_some_and(|e| e == "rec") {
                    from_handler.add(Change::Record(stem));
                }
            }
        };
        let watcher = notify::recommended_watcher(handler).and_then(|mut w| {
            notify::Watcher::watch(&mut w, &records, notify::RecursiveMode::NonRecursive)?;
            notify::Watcher::watch(&mut w, &flows, notify::RecursiveMode::NonRecursive)?;
            Ok(w)
        });
        match watcher {
            Ok(w) => *self.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the store; other instances' changes will not show here");
                return;
            }
        }
        // Flows already running elsewhere when we started.
        self.refresh_flow_marks(&home, &dir_stems(&flows));
        let app = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                pending.wake.notified().await;
                // One rename makes several events: a burst is handled once.
                let Batch {
                    mut records,
                    mut flows,
                    everything,
                } = pending.take();
                let Some(app) = app.upgrade() else { break };
                if everything {
                    records.extend(app.known_stems());
                    flows.extend(dir_stems(&home.root().join(FLOWS_DIR)));
                }
                if !flows.is_empty() {
                    app.refresh_flow_marks(&home, &flows);
                }
                if !records.is_empty() {
                    app.reload_changed(&records).await;
                }
            }
        });
    }

    /// Re-evaluates whether another instance is authorizing the servers
    /// whose credentials are `stems`, and publishes what changed. For a
    /// live flow, a waiter sleeps on its lock (the kernel wakes it when the
    /// holder finishes or dies, SIGKILL included) and looks again: a killed
    /// instance leaves no file event behind.
    fn refresh_flow_marks(self: &Arc<Self>, home: &Home, stems: &HashSet<String>) {
        let alive: HashSet<String> = stems
            .iter()
            .filter(|s| flow_alive(home, s))
            .cloned()
            .collect();
        let mut wait_for = Vec::new();
        {
            // Credentials whose lock file this process holds: a live marker
            // for one of them is ours (the lock is exclusive), whichever of
            // our requests runs the flow at this moment.
            let held_here = self.held.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let mut inner = self.lock();
            for entry in inner.servers.values_mut() {
                let url = &entry.server.config.url;
                let stem = crate::store::sealed::file_stem(url);
                if stems.contains(&stem) {
                    entry.runtime.authorizing_elsewhere = !entry.runtime.authorizing
                        && !held_here.contains(url)
                        && alive.contains(&stem);
                }
            }
            for stem in &alive {
                if inner.flow_waiters.insert(stem.clone()) {
                    wait_for.push(stem.clone());
                }
            }
        }
        self.publish_changes();
        for stem in wait_for {
            let app = Arc::downgrade(self);
            let home = home.clone();
            let lock = home.root().join("locks").join(format!("{stem}.lock"));
            let bound = self
                .options
                .flow_timeout
                .saturating_add(std::time::Duration::from_secs(60));
            tokio::spawn(async move {
                // Taken and dropped at once: we only want to know it is free.
                let _ = crate::lock::FileLock::acquire(&lock, bound).await;
                let Some(app) = app.upgrade() else { return };
                app.lock().flow_waiters.remove(&stem);
                app.refresh_flow_marks(&home, &HashSet::from([stem]));
            });
        }
    }

    /// The record file stems of every server this instance knows.
    fn known_stems(&self) -> HashSet<String> {
        self.lock()
            .servers
            .values()
            .map(|e| crate::store::sealed::file_stem(&e.server.config.url))
            .collect()
    }

    async fn reload_changed(&self, stems: &HashSet<String>) {
        let urls: Vec<String> = {
            let inner = self.lock();
            inner
                .servers
                .values()
                .map(|e| e.server.config.url.clone())
                .filter(|u| stems.contains(&crate::store::sealed::file_stem(u)))
                .collect()
        };
        for url in urls {
            if let Err(e) = self.reload_view(&url).await {
                tracing::warn!(server = %url, error = %e, "cannot re-read a changed record");
            }
        }
        self.publish_changes();
        self.record_changed.notify_waiters();
    }
}

/// The stems of the files in `dir` (flow markers).
fn dir_stems(dir: &Path) -> HashSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| stem_of(&e.path())).collect())
        .unwrap_or_default()
}

fn stem_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
