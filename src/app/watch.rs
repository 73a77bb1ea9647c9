//! Live status across instances (SPEC §3.3): every instance watches the
//! store's records directory (inotify on Linux: the thread sleeps in the
//! kernel, no polling, no timers) and re-reads a record when any process
//! replaces or deletes it, then publishes what changed.

use super::App;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

impl App {
    /// Starts watching; the watcher lives as long as the app. Nothing to do
    /// for a memory store, which no other process shares.
    pub fn watch_store(self: &Arc<Self>) {
        let Some(dir) = self.store.records_dir() else {
            return;
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
        let handler = move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                for path in event.paths {
                    if path.extension().is_some_and(|e| e == "rec") {
                        let _ = tx.send(path);
                    }
                }
            }
        };
        let watcher = notify::recommended_watcher(handler).and_then(|mut w| {
            notify::Watcher::watch(&mut w, &dir, notify::RecursiveMode::NonRecursive)?;
            Ok(w)
        });
        match watcher {
            Ok(w) => *self.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(w),
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the store; other instances' changes will not show here");
                return;
            }
        }
        let app = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // One rename makes several events: handle a burst once.
                let mut stems = HashSet::new();
                let mut add = |p: PathBuf| {
                    if let Some(s) = p.file_stem() {
                        stems.insert(s.to_string_lossy().into_owned());
                    }
                };
                add(first);
                while let Ok(p) = rx.try_recv() {
                    add(p);
                }
                let Some(app) = app.upgrade() else { break };
                app.reload_changed(&stems).await;
            }
        });
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
            if let Err(e) = self.reload(&url).await {
                tracing::warn!(server = %url, error = %e, "cannot re-read a changed record");
            }
        }
        self.publish_changes();
        self.record_changed.notify_waiters();
    }
}
