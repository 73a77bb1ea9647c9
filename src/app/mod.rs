//! The application core: the one owner of per-server state. `rpc` and
//! `cli` are front ends that call it; it calls the store, the probe and the
//! OAuth engine, and publishes every status change.

mod authorize;
mod challenge;
mod events;
mod logout;
mod refresh;
mod watch;

use crate::browser::Opener;
use crate::config::{ConfigProblem, ConfigSet, ConfiguredServer, ServerConfig, Source};
use crate::error::Error;
use crate::home::Home;
use crate::oauth::challenge::BearerChallenge;
use crate::probe::{self, ProbeOutcome};
use crate::secret::Secret;
use crate::status::{AuthState, Status, now_ms};
use crate::store::Store;
use crate::store::record::{CredentialRecord, TokenSet};
use crate::urls;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use authorize::PasteRequest;
pub use challenge::{Action, ChallengeOutcome};
pub use events::{Event, Events};
pub use logout::LoggedOut;

/// How this instance runs interactive flows.
pub struct Options {
    /// Loopback host for redirect URIs (docs/protocol.md#initialization-options `callbackHost`).
    pub callback_host: String,
    /// How long a browser flow may take (`authorizationTimeout`, default 5
    /// minutes: docs/protocol.md#mcpauthorize).
    pub flow_timeout: Duration,
    pub opener: Arc<dyn Opener>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            callback_host: "127.0.0.1".into(),
            flow_timeout: Duration::from_secs(300),
            opener: Arc::new(crate::browser::Browser::None),
        }
    }
}

/// A probe that failed (server down, network away) is retried by a later
/// `probe: true` after this long; successful answers are kept.
const REPROBE_AFTER: Duration = Duration::from_secs(30);

/// What the sidecar learned about a server at run time (not stored).
#[derive(Debug, Default)]
struct Runtime {
    probe: Option<ProbeOutcome>,
    /// When `probe` was learned: a failed probe may be retried after
    /// [`REPROBE_AFTER`].
    probed_at: Option<Instant>,
    /// The last challenge seen (probe or `mcp/handleChallenge`): seeds
    /// discovery and scope choice of the next authorization.
    challenge: Option<BearerChallenge>,
    /// Scopes a 403 `insufficient_scope` asked for, united with those held.
    step_up: Option<Vec<String>>,
    /// An interactive flow of this instance is running.
    authorizing: bool,
    /// A refresh transaction of this instance is running.
    refreshing: bool,
    /// Another instance runs an interactive flow for this credential.
    authorizing_elsewhere: bool,
    /// Why the credential went away (a refused refresh token), shown with
    /// `unauthenticated`.
    notice: Option<String>,
    /// The last failure that is not "authorize again" (`error` in docs/protocol.md#serverstatus).
    failure: Option<String>,
    /// Fingerprints of access tokens a server rejected: never handed out
    /// again (docs/protocol.md#mcphandlechallenge).
    rejected: HashSet<String>,
    /// When recent authorizations completed, for the 3-attempt bound.
    authorizations: Vec<Instant>,
    /// Where a pasted callback URL goes while a flow waits.
    paste: Option<tokio::sync::mpsc::UnboundedSender<PasteRequest>>,
    /// Ends this instance's waiting flow (a sign-out wins over it).
    abort: Option<tokio::sync::oneshot::Sender<()>>,
}

struct Entry {
    server: ConfiguredServer,
    runtime: Runtime,
    /// What is wrong with the configuration itself (an insecure URL, a
    /// `resource` that does not cover it), found once: status is derived
    /// on every request, and parsing URLs each time was most of its cost.
    config_error: Option<String>,
}

impl Entry {
    fn new(server: ConfiguredServer) -> Self {
        let config_error = if let Err(e) = urls::parse_secure(&server.config.url) {
            Some(format!("{e}; fix the server's URL in {}", server.source))
        } else if !server.config.resource_covers_url() {
            Some(format!(
                "the configured `resource` does not cover the server's URL, so no token is requested or handed out for it; fix it in {}",
                server.source
            ))
        } else {
            None
        };
        Self {
            server,
            runtime: Runtime::default(),
            config_error,
        }
    }
}

#[derive(Default)]
struct Inner {
    servers: BTreeMap<String, Entry>,
    /// Stored records by server URL: the in-memory view status and token
    /// requests are served from (docs/protocol.md#storage-and-locking: the
    /// keyring is not touched per request).
    records: HashMap<String, CredentialRecord>,
    /// Problems with configuration files, shown in status messages.
    config_problems: Vec<ConfigProblem>,
    /// The last status published per server, to publish only changes.
    published: HashMap<String, Status>,
    /// One interactive flow per server in this process.
    flows: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// One probe per server in this process.
    probes: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// One refresh per server in this process.
    refreshes: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// One writer per credential (server URL) in this process.
    credentials: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// Credentials (file stems) whose flow lock a waiter watches.
    flow_waiters: HashSet<String>,
}

pub struct App {
    home: Option<Home>,
    store: Arc<Store>,
    /// Built on first use: TLS roots and the connection pool cost memory
    /// and time that a sidecar which only answers from memory never needs.
    http: std::sync::OnceLock<reqwest::Client>,
    inner: Mutex<Inner>,
    events: Option<Arc<Events>>,
    options: Options,
    /// Keeps the store watcher alive (see `watch.rs`).
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    /// Signalled whenever the watcher re-read changed records.
    record_changed: tokio::sync::Notify,
    /// Credential URLs whose lock this process holds (see
    /// `authorize::HeldMark`).
    held: Arc<Mutex<HashSet<String>>>,
    /// Held (shared) by every credential transaction that must finish once
    /// begun — a refresh, a logout; taken exclusively before the process
    /// ends (see [`App::drain`]).
    critical: Arc<tokio::sync::RwLock<()>>,
    /// The exclusive hold taken by a completed [`App::drain`], kept until
    /// the process ends: no credential transaction starts after it.
    closed: Mutex<Option<tokio::sync::OwnedRwLockWriteGuard<()>>>,
}

/// A valid access token handed to the editor (docs/protocol.md#mcpaccesstoken).
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub server: String,
    pub token: Secret,
    pub expires_at: Option<i64>,
    pub scopes: Vec<String>,
}

pub(crate) fn fingerprint(token: &Secret) -> String {
    crate::home::hex(&Sha256::digest(token.expose().as_bytes())[..16])
}

impl App {
    /// Builds the view from `config` and everything in `store`. `home` is
    /// where lock files go; `None` for a memory store (nothing is shared).
    pub async fn new(
        home: Option<Home>,
        store: Arc<Store>,
        config: ConfigSet,
        events: Option<Arc<Events>>,
        options: Options,
    ) -> Result<Arc<Self>, Error> {
        let list_store = store.clone();
        let records = tokio::task::spawn_blocking(move || list_store.list())
            .await
            .map_err(|e| {
                Error::StorageUnavailable(std::io::Error::other(e.to_string()).into())
            })??;
        let mut inner = Inner {
            config_problems: config.problems,
            ..Inner::default()
        };
        for (name, server) in config.servers {
            inner.servers.insert(name, Entry::new(server));
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
            home,
            store,
            http: std::sync::OnceLock::new(),
            inner: Mutex::new(inner),
            events,
            options,
            watcher: Mutex::new(None),
            record_changed: tokio::sync::Notify::new(),
            held: Arc::default(),
            critical: Arc::new(tokio::sync::RwLock::new(())),
            closed: Mutex::new(None),
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

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(crate::http::client)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves `Inner` consistent, even if a
        // panic unwound through it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a transaction that must run to completion once begun. Take it
    /// only when something is at stake (a request about to be sent), never
    /// around a wait for another process: exit waits for every holder.
    pub async fn critical_section(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.critical.clone().read_owned().await
    }

    /// Waits (at most `bound`) for every critical transaction to finish: called
    /// before the process ends, so a closing editor never strands a spent
    /// refresh token or a half-done logout
    /// (ARCHITECTURE.md#the-refresh-transaction-and-locking). Once drained, the
    /// hold is kept: a transaction that would start now waits until the process
    /// is gone, having sent nothing. Calling it again (`exit` after `shutdown`)
    /// returns at once.
    pub async fn drain(&self, bound: Duration) {
        if self
            .closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            return;
        }
        match tokio::time::timeout(bound, self.critical.clone().write_owned()).await {
            Ok(hold) => *self.closed.lock().unwrap_or_else(|p| p.into_inner()) = Some(hold),
            Err(_) => tracing::warn!("a credential transaction was still running at exit"),
        }
    }

    pub fn storage_mode(&self) -> crate::store::StorageMode {
        self.store.mode()
    }

    /// Resolves a `server` parameter: a configured name, or an https URL
    /// (http on loopback) for an ad-hoc server (docs/protocol.md#naming-a-server).
    pub fn resolve(&self, server: &str) -> Result<String, Error> {
        let mut inner = self.lock();
        if inner.servers.contains_key(server) {
            return Ok(server.to_owned());
        }
        if !urls::looks_like_url(server) {
            let known: Vec<&str> = inner.servers.keys().map(String::as_str).collect();
            // Read by people (the CLI prints it as is): no field name in
            // front, and what would work instead.
            let url_hint = "a server's URL works too (https://…, or http://localhost…)";
            return Err(Error::InvalidParams(if known.is_empty() {
                format!("unknown server {server:?}: no servers are configured; {url_hint}")
            } else {
                format!(
                    "unknown server {server:?}; configured: {}; {url_hint}",
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

    /// The status of one server (resolved name) or of all. "All" leaves out
    /// ad-hoc URLs that hold no credentials, so naming a URL once does not
    /// clutter every status line for the rest of the session.
    pub fn statuses(&self, only: Option<&str>) -> Vec<Status> {
        let inner = self.lock();
        match only {
            Some(name) => vec![self.status_of(&inner, name)],
            None => inner
                .servers
                .iter()
                .filter(|(_, e)| {
                    e.server.source != Source::AdHoc
                        || inner.records.contains_key(&e.server.config.url)
                })
                .map(|(n, _)| self.status_of(&inner, n))
                .collect(),
        }
    }

    pub fn status(&self, name: &str) -> Status {
        let inner = self.lock();
        self.status_of(&inner, name)
    }

    /// Whether `name` should be probed: state `unknown`, or a failed probe
    /// old enough to try again.
    fn wants_probe(&self, inner: &Inner, name: &str) -> bool {
        let Some(entry) = inner.servers.get(name) else {
            return false;
        };
        let stale_failure = matches!(entry.runtime.probe, Some(ProbeOutcome::Failed(_)))
            && entry
                .runtime
                .probed_at
                .is_none_or(|t| t.elapsed() >= REPROBE_AFTER);
        let state = self.status_of(inner, name).state;
        state == AuthState::Unknown || (state == AuthState::Error && stale_failure)
    }

    /// Probes, concurrently, every server among `names` that
    /// [`wants_probe`](Self::wants_probe), at most one probe per server at a
    /// time (concurrent callers share its answer), then publishes changes.
    pub async fn probe_unknown(&self, names: &[String]) {
        let candidates: Vec<String> = {
            let inner = self.lock();
            names
                .iter()
                .filter(|n| self.wants_probe(&inner, n))
                .cloned()
                .collect()
        };
        futures::future::join_all(candidates.into_iter().map(|name| async move {
            let gate = self.lock().probes.entry(name.clone()).or_default().clone();
            let _one_at_a_time = gate.lock().await;
            let url = {
                let inner = self.lock();
                // Another caller's probe may have answered meanwhile.
                if !self.wants_probe(&inner, &name) {
                    return;
                }
                match inner.servers.get(&name) {
                    Some(e) => e.server.config.url.clone(),
                    None => return,
                }
            };
            let outcome = probe::probe(self.http(), &url).await;
            tracing::debug!(server = %name, ?outcome, "probed");
            self.with_runtime(&name, |rt| {
                if let ProbeOutcome::Required {
                    www_authenticate: Some(h),
                } = &outcome
                {
                    rt.challenge = crate::oauth::challenge::parse(h);
                }
                rt.probe = Some(outcome);
                rt.probed_at = Some(Instant::now());
            });
            self.publish_changes();
        }))
        .await;
    }

    /// A currently valid access token (docs/protocol.md#mcpaccesstoken): from
    /// memory, never one a server rejected, never one expiring within
    /// `min_validity`.
    pub fn access_token(&self, name: &str, min_validity: Duration) -> Result<AccessToken, Error> {
        let inner = self.lock();
        let entry = inner
            .servers
            .get(name)
            .ok_or_else(|| Error::InvalidParams(format!("unknown server {name:?}")))?;
        let margin = i64::try_from(min_validity.as_millis()).unwrap_or(i64::MAX);
        if let Some(tokens) = usable_tokens(&inner, entry)
            && tokens.access_valid_at(now_ms(), margin)
        {
            {
                return Ok(AccessToken {
                    server: name.to_owned(),
                    token: tokens.access_token.clone(),
                    expires_at: tokens.expires_at,
                    scopes: tokens.scopes.clone(),
                });
            }
        }
        Err(Error::AuthorizationRequired(Box::new(
            self.status_of(&inner, name),
        )))
    }

    /// Sends events for every server whose status differs from what was
    /// last published.
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
                self.emit(Event::Status(status));
            }
        }
    }

    fn emit(&self, event: Event) {
        if let Some(events) = &self.events {
            events.push(event);
        }
    }

    fn with_runtime<T>(&self, name: &str, f: impl FnOnce(&mut Runtime) -> T) -> Option<T> {
        let mut inner = self.lock();
        inner.servers.get_mut(name).map(|e| f(&mut e.runtime))
    }

    /// Where `name`'s entry came from, for messages.
    fn source_of(&self, name: &str) -> String {
        self.lock()
            .servers
            .get(name)
            .map(|e| e.server.source.to_string())
            .unwrap_or_default()
    }

    fn config_of(&self, name: &str) -> Result<ServerConfig, Error> {
        self.lock()
            .servers
            .get(name)
            .map(|e| e.server.config.clone())
            .ok_or_else(|| Error::InvalidParams(format!("unknown server {name:?}")))
    }

    /// Derives a server's status from its config, its stored record and
    /// what was learned at run time. Pure: no I/O.
    fn status_of(&self, inner: &Inner, name: &str) -> Status {
        let storage = self.store.mode();
        let mut status = Status {
            server: name.to_owned(),
            url: String::new(),
            state: AuthState::Unknown,
            expires_at: None,
            scopes: Vec::new(),
            issuer: None,
            storage,
            message: None,
        };
        let Some(entry) = inner.servers.get(name) else {
            status.message = Some("unknown server".into());
            return status;
        };
        let rt = &entry.runtime;
        status.url = entry.server.config.url.clone();
        if let Some(why) = &entry.config_error {
            status.state = AuthState::Error;
            status.message = Some(why.clone());
            return status;
        }
        let held = inner
            .records
            .get(&status.url)
            .and_then(|r| r.tokens.as_ref());
        // Tokens for a resource that does not cover this URL are treated as
        // absent: they are never handed out here.
        let tokens = held.filter(|t| issued_for(t, &status.url));
        if let Some(tokens) = tokens {
            status.expires_at = tokens.expires_at;
            status.scopes = tokens.scopes.clone();
            status.issuer = Some(tokens.issuer.clone());
        }
        if rt.authorizing || rt.authorizing_elsewhere {
            status.state = AuthState::Authorizing;
            status.message = Some(if rt.authorizing {
                "waiting for the authorization in the browser".into()
            } else {
                "another editor is waiting for the authorization in the browser".into()
            });
            return status;
        }
        if rt.refreshing {
            status.state = AuthState::Refreshing;
            return status;
        }
        if let Some(scopes) = &rt.step_up {
            status.state = AuthState::StepUpRequired;
            status.message = Some(format!(
                "the server needs more scopes ({}); authorize again",
                scopes.join(" ")
            ));
            return status;
        }
        if let Some(why) = &rt.failure {
            status.state = AuthState::Error;
            status.message = Some(why.clone());
            return status;
        }
        if let Some(tokens) = tokens {
            let rejected = rt.rejected.contains(&fingerprint(&tokens.access_token));
            let valid = !rejected && tokens.access_valid_at(now_ms(), 0);
            if valid || tokens.refresh_token.is_some() {
                status.state = AuthState::Authorized;
            } else {
                status.state = AuthState::Unauthenticated;
                status.message = Some(if rejected {
                    "the server rejected the access token; authorize again".into()
                } else {
                    "the access token expired and cannot be refreshed; authorize again".into()
                });
            }
            return status;
        }
        if held.is_some() {
            status.state = AuthState::Unauthenticated;
            status.message = Some(
                "the stored token was issued for a resource that does not cover this server's URL, so it is never handed out for it; authorize again".into(),
            );
            return status;
        }
        if inner.records.contains_key(&status.url) {
            // A record without tokens: signed out, or the grant died.
            status.state = AuthState::Unauthenticated;
            status.message = Some(
                rt.notice
                    .clone()
                    .unwrap_or_else(|| "signed out; authorize to connect".into()),
            );
            return status;
        }
        match &rt.probe {
            Some(ProbeOutcome::NotRequired) => status.state = AuthState::NotRequired,
            Some(ProbeOutcome::Required { .. }) => {
                status.state = AuthState::Unauthenticated;
                status.message = Some("the server requires authorization; authorize it".into());
            }
            Some(ProbeOutcome::Failed(why)) => {
                status.state = AuthState::Error;
                status.message = Some(why.clone());
            }
            None if rt.challenge.is_some() => {
                status.state = AuthState::Unauthenticated;
                status.message = Some("the server requires authorization; authorize it".into());
            }
            None => {}
        }
        if status.message.is_none() {
            status.message = config_note(&inner.config_problems, name);
        }
        status
    }

    pub fn config_problems(&self) -> Vec<String> {
        self.lock()
            .config_problems
            .iter()
            .map(ToString::to_string)
            .collect()
    }
}

/// What a server's status says about configuration problems: its own
/// entry's first, else the first of all; one problem and a count, so a
/// status stays small whatever the files hold.
fn config_note(problems: &[ConfigProblem], name: &str) -> Option<String> {
    let first = problems
        .iter()
        .find(|p| p.server.as_deref() == Some(name))
        .or_else(|| problems.first())?;
    Some(match problems.len() - 1 {
        0 => format!("configuration problem: {first}"),
        more => format!("configuration problem: {first} (and {more} more)"),
    })
}

/// Whether `tokens` may be handed out for `server_url`: only if the
/// resource they were issued for covers it (the RFC 9728 rule discovery
/// applies), whatever the configuration says. A record is keyed by URL, so
/// a configured URL with a borrowed `resource` must never reach tokens
/// minted for the real one. Tokens without a resource (no build writes
/// them) cannot show they qualify, so they do not.
fn issued_for(tokens: &TokenSet, server_url: &str) -> bool {
    tokens
        .resource
        .as_deref()
        .is_some_and(|r| crate::oauth::discovery::resource_covers(r, server_url))
}

/// The stored tokens of `entry`, unless a server rejected them or they were
/// issued for a resource that does not cover its URL.
fn usable_tokens<'a>(inner: &'a Inner, entry: &Entry) -> Option<&'a TokenSet> {
    let url = &entry.server.config.url;
    let tokens = inner.records.get(url)?.tokens.as_ref()?;
    (issued_for(tokens, url)
        && !entry
            .runtime
            .rejected
            .contains(&fingerprint(&tokens.access_token)))
    .then_some(tokens)
}

fn ad_hoc(url: &str, source: Source) -> Entry {
    Entry::new(ConfiguredServer {
        name: url.to_owned(),
        config: ServerConfig::for_url(url),
        source,
    })
}
