//! What the app tells its front end, queued without bound on time but not
//! on memory: a front end whose editor stops reading stdout stops taking
//! events, and the app must not pile them up meanwhile.

use crate::status::Status;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;

/// A flow started that the user must finish in a browser; more than this
/// many unsent ones means the oldest are stale (their flows have moved on).
const MAX_PENDING_URLS: usize = 256;

/// What the app tells its front end, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A server's status changed (`mcp/authStatusChanged`).
    Status(Status),
    /// A browser flow started (`mcp/authorizationPending`).
    AuthorizationPending { server: String, url: String },
}

/// The queue between the app and its front end. A status is state, not
/// history: a new one for a server replaces that server's unsent one (and
/// goes to the back, so the order of the latest events is kept). So the
/// queue holds at most one status per server and [`MAX_PENDING_URLS`]
/// authorization notices.
#[derive(Debug, Default)]
pub struct Events {
    queue: Mutex<VecDeque<Event>>,
    ready: Notify,
}

impl Events {
    pub fn push(&self, event: Event) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        match &event {
            Event::Status(new) => {
                queue.retain(|e| !matches!(e, Event::Status(old) if old.server == new.server));
            }
            Event::AuthorizationPending { .. } => {
                let urls = queue
                    .iter()
                    .filter(|e| matches!(e, Event::AuthorizationPending { .. }))
                    .count();
                if urls >= MAX_PENDING_URLS
                    && let Some(oldest) = queue
                        .iter()
                        .position(|e| matches!(e, Event::AuthorizationPending { .. }))
                {
                    queue.remove(oldest);
                }
            }
        }
        queue.push_back(event);
        drop(queue);
        self.ready.notify_one();
    }

    /// The next event, waiting for one.
    pub async fn next(&self) -> Event {
        loop {
            let ready = self.ready.notified();
            if let Some(event) = self
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front()
            {
                return event;
            }
            ready.await;
        }
    }

    #[cfg(test)]
    fn queued(&self) -> Vec<Event> {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(server: &str, message: &str) -> Event {
        Event::Status(Status {
            server: server.into(),
            url: format!("https://{server}.example/mcp"),
            state: crate::status::AuthState::Unauthenticated,
            expires_at: None,
            scopes: Vec::new(),
            issuer: None,
            storage: crate::store::StorageMode::Memory,
            message: Some(message.into()),
        })
    }

    fn pending(server: &str, n: usize) -> Event {
        Event::AuthorizationPending {
            server: server.into(),
            url: format!("https://as.example/authorize?n={n}"),
        }
    }

    #[test]
    fn statuses_coalesce_per_server_and_keep_the_order_of_the_latest() {
        let events = Events::default();
        for e in [
            status("a", "1"),
            status("b", "1"),
            pending("a", 0),
            status("a", "2"),
        ] {
            events.push(e);
        }
        assert_eq!(
            events.queued(),
            vec![status("b", "1"), pending("a", 0), status("a", "2")]
        );
    }

    #[test]
    fn an_editor_that_never_reads_bounds_the_queue() {
        let events = Events::default();
        for n in 0..100_000 {
            events.push(status(&format!("s{}", n % 10), &n.to_string()));
            events.push(pending("s0", n));
        }
        let queued = events.queued();
        assert_eq!(queued.len(), 10 + MAX_PENDING_URLS);
        // The newest notices are the ones kept.
        assert_eq!(queued.last(), Some(&pending("s0", 99_999)));
    }

    #[tokio::test]
    async fn next_waits_for_an_event() {
        let events = std::sync::Arc::new(Events::default());
        let waiter = tokio::spawn({
            let events = events.clone();
            async move { events.next().await }
        });
        tokio::task::yield_now().await;
        events.push(pending("a", 1));
        assert_eq!(waiter.await.unwrap(), pending("a", 1));
    }
}
