//! The application core: the one owner of per-server state. `rpc` and
//! `cli` are front ends that call it; it calls the store, the probe and
//! (later) the OAuth engine, and publishes every status change.

use crate::config::{ConfigSet, ConfiguredServer, ServerConfig, Source};
use crate::error::Error;
use crate::probe::{self, ProbeOutcome};
use crate::status::{AuthState, Status, now_ms};
use crate::store::Store;
use crate::store::record::CredentialRecord;
use crate::urls;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc::UnboundedSender;

/// What the sidecar learned about a server at run time (not stored).
#[derive(Debug, Default, Clone)]
struct Runtime {
    probe: Option<ProbeOutcome>,
}

#[derive(Debug, Clone)]
struct Entry {
    server: ConfiguredServer,
    runtime: Runtime,
}

#[derive(Debug, Default)]
struct Inner {
    servers: BTreeMap<String, Entry>,
    /// Stored records by server URL: the in-memory view status and token
    /// requests are served from (SPEC §5: the keyring is not touched per
    /// request).
    records: HashMap<String, CredentialRecord>,
    /// Problems with configuration files, shown in status messages.
    config_problems: Vec<String>,
    /// The last status published per server, to publish only changes.
    published: HashMap<String, Status>,
}

pub struct App {
    store: Arc<Store>,
    http: reqwest::Client,
    inner: Mutex<Inner>,
    events: Option<UnboundedSender<Status>>,
}

impl App {
    /// Builds the view from `config` and everything in `store`.
    pub async fn new(
        store: Arc<Store>,
        config: ConfigSet,
        events: Option<UnboundedSender<Status>>,
    ) -> Result<Arc<Self>, Error> {
        let list_store = store.clone();
        let records = tokio::task::spawn_blocking(move || list_store.list())
            .await
            .map_err(|e| {
                Error::StorageUnavailable(std::io::Error::other(e.to_string()).into())
            })??;
        let mut inner = Inner {
            config_problems: config.problems.iter().map(ToString::to_string).collect(),
            ..Inner::default()
        };
        for (name, server) in config.servers {
            inner.servers.insert(
                name,
                Entry {
                    server,
                    runtime: Runtime::default(),
                },
            );
        }
        for record in records {
            let url = record.server_url.clone();
            if !inner.servers.values().any(|e| e.server.config.url == url) {
                inner
                    .servers
                    .insert(url.clone(), ad_hoc(&url, Source::Stored));
            }
            inner.records.insert(url, record);
        }
        let app = Arc::new(App {
            store,
            http: crate::http::client(),
            inner: Mutex::new(inner),
            events,
        });
        {
            let mut inner = app.lock();
            let statuses: Vec<Status> = inner
                .servers
                .keys()
                .map(|name| app.status_of(&inner, name))
                .collect();
            for s in statuses {
                inner.published.insert(s.server.clone(), s);
            }
        }
        Ok(app)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves `Inner` consistent, even if a
        // panic unwound through it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn storage_mode(&self) -> crate::store::StorageMode {
        self.store.mode()
    }

    /// Resolves a `server` parameter: a configured name, or an https URL
    /// (http on loopback) for an ad-hoc server (SPEC §3.2).
    pub fn resolve(&self, server: &str) -> Result<String, Error> {
        let mut inner = self.lock();
        if inner.servers.contains_key(server) {
            return Ok(server.to_owned());
        }
        if !urls::looks_like_url(server) {
            let known: Vec<&str> = inner.servers.keys().map(String::as_str).collect();
            return Err(Error::InvalidParams(if known.is_empty() {
                format!("`server`: unknown server {server:?} (no servers are configured)")
            } else {
                format!(
                    "`server`: unknown server {server:?}; configured: {}",
                    known.join(", ")
                )
            }));
        }
        urls::parse_secure(server)?;
        if let Some(name) = inner
            .servers
            .iter()
            .find(|(_, e)| e.server.config.url == server)
            .map(|(n, _)| n.clone())
        {
            return Ok(name);
        }
        inner
            .servers
            .insert(server.to_owned(), ad_hoc(server, Source::AdHoc));
        let status = self.status_of(&inner, server);
        inner.published.insert(server.to_owned(), status);
        Ok(server.to_owned())
    }

    pub fn server_names(&self) -> Vec<String> {
        self.lock().servers.keys().cloned().collect()
    }

    /// The status of one server (resolved name) or of all.
    pub fn statuses(&self, only: Option<&str>) -> Vec<Status> {
        let inner = self.lock();
        match only {
            Some(name) => vec![self.status_of(&inner, name)],
            None => inner
                .servers
                .keys()
                .map(|n| self.status_of(&inner, n))
                .collect(),
        }
    }

    /// Probes, concurrently, every server among `names` whose state is
    /// `unknown`, then publishes what changed.
    pub async fn probe_unknown(&self, names: &[String]) {
        let targets: Vec<(String, String)> = {
            let inner = self.lock();
            names
                .iter()
                .filter(|n| self.status_of(&inner, n).state == AuthState::Unknown)
                .filter_map(|n| {
                    inner
                        .servers
                        .get(n)
                        .map(|e| (n.clone(), e.server.config.url.clone()))
                })
                .collect()
        };
        let outcomes =
            futures::future::join_all(targets.into_iter().map(|(name, url)| async move {
                let outcome = probe::probe(&self.http, &url).await;
                tracing::debug!(server = %name, ?outcome, "probed");
                (name, outcome)
            }))
            .await;
        {
            let mut inner = self.lock();
            for (name, outcome) in outcomes {
                if let Some(entry) = inner.servers.get_mut(&name) {
                    entry.runtime.probe = Some(outcome);
                }
            }
        }
        self.publish_changes();
    }

    /// Sends `mcp/authStatusChanged` for every server whose status differs
    /// from what was last published.
    fn publish_changes(&self) {
        let mut inner = self.lock();
        let current: Vec<Status> = inner
            .servers
            .keys()
            .map(|n| self.status_of(&inner, n))
            .collect();
        for status in current {
            if inner.published.get(&status.server) != Some(&status) {
                inner
                    .published
                    .insert(status.server.clone(), status.clone());
                if let Some(tx) = &self.events {
                    let _ = tx.send(status);
                }
            }
        }
    }

    /// Derives a server's status from its config, its stored record and
    /// what was learned at run time. Pure: no I/O.
    fn status_of(&self, inner: &Inner, name: &str) -> Status {
        let storage = self.store.mode();
        let Some(entry) = inner.servers.get(name) else {
            return Status {
                server: name.to_owned(),
                url: String::new(),
                state: AuthState::Unknown,
                expires_at: None,
                scopes: Vec::new(),
                issuer: None,
                storage,
                message: Some("unknown server".into()),
            };
        };
        let url = entry.server.config.url.clone();
        let mut status = Status {
            server: name.to_owned(),
            url: url.clone(),
            state: AuthState::Unknown,
            expires_at: None,
            scopes: Vec::new(),
            issuer: None,
            storage,
            message: None,
        };
        if let Err(e) = urls::parse_secure(&url) {
            status.state = AuthState::Error;
            status.message = Some(format!(
                "{e}; fix the server's URL in {}",
                entry.server.source
            ));
            return status;
        }
        let tokens = inner.records.get(&url).and_then(|r| r.tokens.as_ref());
        if let Some(tokens) = tokens {
            status.expires_at = tokens.expires_at;
            status.scopes = tokens.scopes.clone();
            status.issuer = Some(tokens.issuer.clone());
            if tokens.access_valid_at(now_ms(), 0) || tokens.refresh_token.is_some() {
                status.state = AuthState::Authorized;
            } else {
                status.state = AuthState::Unauthenticated;
                status.message = Some(
                    "the access token expired and cannot be refreshed; authorize again".into(),
                );
            }
            return status;
        }
        match &entry.runtime.probe {
            Some(ProbeOutcome::NotRequired) => status.state = AuthState::NotRequired,
            Some(ProbeOutcome::Required { .. }) => {
                status.state = AuthState::Unauthenticated;
                status.message = Some("the server requires authorization; authorize it".into());
            }
            Some(ProbeOutcome::Failed(why)) => {
                status.state = AuthState::Error;
                status.message = Some(why.clone());
            }
            None => {}
        }
        if status.message.is_none() && !inner.config_problems.is_empty() {
            status.message = Some(format!(
                "configuration problem: {}",
                inner.config_problems.join("; ")
            ));
        }
        status
    }

    pub fn config_problems(&self) -> Vec<String> {
        self.lock().config_problems.clone()
    }
}

fn ad_hoc(url: &str, source: Source) -> Entry {
    Entry {
        server: ConfiguredServer {
            name: url.to_owned(),
            config: ServerConfig::for_url(url),
            source,
        },
        runtime: Runtime::default(),
    }
}
