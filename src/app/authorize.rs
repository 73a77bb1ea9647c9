//! `mcp/authorize` and `mcp/completeAuthorization`: the interactive flow,
//! one per server across every running instance (docs/protocol.md#mcpauthorize).
//!
//! The flow, top to bottom:
//! 1. take this process's flow mutex, then the credential's file lock
//!    (another instance's flow for the same server is joined by waiting);
//! 2. re-read storage: tokens that appeared meanwhile end the flow;
//! 3. discover (PRM, then AS metadata), choose scopes;
//! 4. choose the client (pre-registered, CIMD, stored or new DCR) and bind
//!    the loopback listener its redirect URI needs;
//! 5. announce and open the authorization URL;
//! 6. wait for the callback (loopback or pasted), validate it;
//! 7. exchange the code, persist, and only then tell the browser it worked.

use super::{App, Event, fingerprint};
use crate::error::Error;
use crate::lock::FileLock;
use crate::oauth::challenge::BearerChallenge;
use crate::oauth::discovery::{self, AuthServer, DiscoveryError};
use crate::oauth::flow::{self, CallbackError, PendingAuthorization};
use crate::oauth::loopback::{self, Callback, Listener};
use crate::oauth::{OAuthError, registration};
use crate::probe::{self, ProbeOutcome};
use crate::secret::Secret;
use crate::status::{Status, now_ms};
use crate::store::Loaded;
use crate::store::record::{ClientRegistration, CredentialRecord, RegistrationKind, TokenSet};
use crate::urls;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Exclusive use of one credential: this process's mutex and, when the
/// store is shared, the lock file. Fields drop in order: file lock first.
pub(super) struct CredentialGuard {
    _held: HeldMark,
    _file: Option<FileLock>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

/// Marks a credential URL as held by this process (lock file taken) for
/// the store watcher: a live flow marker for it is then our own.
pub(super) struct HeldMark {
    held: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    url: String,
}

impl Drop for HeldMark {
    fn drop(&mut self) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.url);
    }
}

/// A callback URL pasted by the user, with where to report the outcome.
#[derive(Debug)]
pub struct PasteRequest {
    pub params: Vec<(String, String)>,
    pub reply: oneshot::Sender<Result<(), (String, String)>>,
}

/// Marks a server `authorizing` for as long as it lives; clears that (and
/// the paste route) when the flow ends, fails or is cancelled.
struct FlowGuard<'a> {
    app: &'a App,
    name: &'a str,
}

impl<'a> FlowGuard<'a> {
    fn start(app: &'a App, name: &'a str) -> Self {
        app.with_runtime(name, |rt| {
            rt.authorizing = true;
            rt.failure = None;
        });
        app.publish_changes();
        Self { app, name }
    }
}

impl Drop for FlowGuard<'_> {
    fn drop(&mut self) {
        self.app.with_runtime(self.name, |rt| {
            rt.authorizing = false;
            rt.paste = None;
            rt.abort = None;
        });
        self.app.publish_changes();
    }
}

impl App {
    fn flow_mutex(&self, name: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.lock()
            .flows
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// The storage lock of one credential
    /// (ARCHITECTURE.md#the-refresh-transaction-and-locking): flows and
    /// refreshes of the same server URL in every instance take turns on it.
    pub(super) async fn credential_lock(
        &self,
        url: &str,
        bound: Duration,
    ) -> Result<CredentialGuard, Error> {
        // In this process first (memory mode has no lock file; two names
        // may share a URL), then across processes.
        let local = self
            .lock()
            .credentials
            .entry(url.to_owned())
            .or_default()
            .clone();
        let what = format!("the credential of {url}");
        let local = tokio::time::timeout(bound, local.lock_owned())
            .await
            .map_err(|_| {
                Error::from_lock(
                    crate::lock::LockError::TimedOut {
                        path: url.into(),
                        waited: bound,
                    },
                    &what,
                )
            })?;
        let file = match &self.home {
            None => None,
            Some(home) => {
                let dir = home
                    .dir("locks")
                    .map_err(|e| Error::StorageUnavailable(e.into()))?;
                let path = dir.join(format!("{}.lock", crate::store::sealed::file_stem(url)));
                Some(
                    FileLock::acquire(&path, bound)
                        .await
                        .map_err(|e| Error::from_lock(e, &what))?,
                )
            }
        };
        // Holding the lock proves no other instance's flow is running for
        // this credential, whatever the watcher has or has not seen yet.
        for entry in self.lock().servers.values_mut() {
            if entry.server.config.url == url {
                entry.runtime.authorizing_elsewhere = false;
            }
        }
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url.to_owned());
        Ok(CredentialGuard {
            _held: HeldMark {
                held: self.held.clone(),
                url: url.to_owned(),
            },
            _file: file,
            _local: local,
        })
    }

    /// Reads the record of `url` from storage into the in-memory view, for
    /// a transaction under the credential lock: a record that cannot be
    /// read is an error (fail closed), because acting on the in-memory copy
    /// could present a refresh token another instance already rotated, or
    /// overwrite that instance's record.
    pub(super) async fn reload(&self, url: &str) -> Result<Option<CredentialRecord>, Error> {
        self.read_record(url, OnUnreadable::Fail).await
    }

    /// The same for looking only (the store watcher): an unreadable record
    /// keeps what memory had rather than forget a credential.
    pub(super) async fn reload_view(&self, url: &str) -> Result<Option<CredentialRecord>, Error> {
        self.read_record(url, OnUnreadable::KeepMemory).await
    }

    async fn read_record(
        &self,
        url: &str,
        on_unreadable: OnUnreadable,
    ) -> Result<Option<CredentialRecord>, Error> {
        let store = self.store.clone();
        let key = url.to_owned();
        let loaded = tokio::task::spawn_blocking(move || store.load(&key))
            .await
            .map_err(|e| {
                Error::StorageUnavailable(std::io::Error::other(e.to_string()).into())
            })??;
        let mut inner = self.lock();
        let record = match loaded {
            Loaded::Record(r) => *r,
            Loaded::Absent => {
                inner.records.remove(url);
                return Ok(None);
            }
            // Unreadable now (I/O trouble, a newer format, another key).
            Loaded::Unusable { location, problem } => {
                return match on_unreadable {
                    OnUnreadable::KeepMemory => {
                        tracing::warn!(%location, %problem, "cannot re-read a stored credential; keeping the one in memory");
                        Ok(inner.records.get(url).cloned())
                    }
                    OnUnreadable::Fail => Err(Error::StorageUnavailable(
                        crate::store::StoreError::Unreadable { location, problem },
                    )),
                };
            }
        };
        // Every write happens under the credential lock and bumps the
        // revision; a read that raced a write (the store watcher reads
        // without the lock) must not put an older record back.
        let cached = inner.records.get(url);
        if cached.is_some_and(|c| c.revision > record.revision) {
            return Ok(Some(record));
        }
        let written_elsewhere = cached.is_none_or(|c| c.revision < record.revision);
        let tokens_changed = cached
            .and_then(|c| c.tokens.as_ref())
            .map(|t| fingerprint(&t.access_token))
            != record.tokens.as_ref().map(|t| fingerprint(&t.access_token));
        inner.records.insert(url.to_owned(), record.clone());
        if written_elsewhere {
            // Another writer changed the credential: what this instance
            // concluded about the old one no longer holds (docs/protocol.md#mcpauthstatuschanged).
            for entry in inner
                .servers
                .values_mut()
                .filter(|e| e.server.config.url == url)
            {
                entry.runtime.failure = None;
                entry.runtime.notice = None;
                if tokens_changed {
                    entry.runtime.step_up = None;
                }
            }
        }
        Ok(Some(record))
    }

    /// Writes `record` and updates the in-memory view, in that order: no
    /// one sees a token that is not yet persisted (ARCHITECTURE.md#credentials-on-disk).
    pub(super) async fn persist(&self, record: CredentialRecord) -> Result<(), Error> {
        let store = self.store.clone();
        let copy = record.clone();
        tokio::task::spawn_blocking(move || store.save(&copy))
            .await
            .map_err(|e| {
                Error::StorageUnavailable(std::io::Error::other(e.to_string()).into())
            })??;
        self.lock()
            .records
            .insert(record.server_url.clone(), record);
        Ok(())
    }

    pub async fn authorize(
        &self,
        name: &str,
        scopes: Option<Vec<String>>,
        force: bool,
    ) -> Result<Status, Error> {
        let started = now_ms();
        let config = self.config_of(name)?;
        urls::parse_secure(&config.url)?;
        // Before the user is sent anywhere: consent at a genuine server to a
        // token for another resource would be handed out for this URL.
        if !config.resource_covers_url() {
            return Err(Error::InvalidParams(format!(
                "the configured `resource` of {name} does not cover its `url`; fix the configuration in {}",
                self.source_of(name)
            )));
        }
        // 1. One flow per server: in this process, then across processes.
        let mutex = self.flow_mutex(name);
        let _in_process = mutex.lock().await;
        let guard = FlowGuard::start(self, name);
        let _file_lock = self
            .credential_lock(
                &config.url,
                self.options
                    .flow_timeout
                    .saturating_add(Duration::from_secs(60)),
            )
            .await?;
        // Other instances show `authorizing` while this marker exists; it
        // is declared after the lock, so it goes before the lock does.
        let _marker = self.home.as_ref().and_then(|h| {
            super::watch::FlowMarker::create(h, &crate::store::sealed::file_stem(&config.url))
        });
        // 2. Tokens obtained meanwhile (a joined flow) or still good.
        let record = self.reload(&config.url).await?;
        if let Some(tokens) = record
            .as_ref()
            .and_then(|r| r.tokens.as_ref())
            .filter(|t| super::issued_for(t, &config.url))
        {
            // Joined: a flow (not a refresh) finished while we waited, and
            // it covers what we ask for.
            let covers = scopes
                .as_deref()
                .is_none_or(|w| w.iter().all(|x| tokens.scopes.contains(x)));
            let joined = tokens.obtained_at >= started && !tokens.via_refresh && covers;
            if joined || (!force && self.tokens_satisfy(name, tokens, scopes.as_deref())) {
                drop(guard);
                return Ok(self.status(name));
            }
        }
        let result = self.run_flow(name, &config, scopes, record).await;
        drop(guard); // before taking the status: it is no longer `authorizing`
        let result = result.map(|()| self.status(name));
        if let Err(e) = &result {
            let remembered = !matches!(
                e,
                Error::Timeout(_) | Error::AuthorizationFailed { .. } | Error::InvalidParams(_)
            );
            if remembered {
                self.with_runtime(name, |rt| rt.failure = Some(e.to_string()));
                self.publish_changes();
            }
        }
        result
    }

    fn tokens_satisfy(&self, name: &str, tokens: &TokenSet, wanted: Option<&[String]>) -> bool {
        let rejected = self
            .with_runtime(name, |rt| {
                rt.rejected.contains(&fingerprint(&tokens.access_token))
            })
            .unwrap_or(true);
        let covers = wanted.is_none_or(|w| w.iter().all(|s| tokens.scopes.contains(s)));
        !rejected && covers && tokens.access_valid_at(now_ms(), 60_000)
    }

    async fn run_flow(
        &self,
        name: &str,
        config: &crate::config::ServerConfig,
        explicit: Option<Vec<String>>,
        record: Option<CredentialRecord>,
    ) -> Result<(), Error> {
        // 3. Discovery, seeded by the last challenge; without one, ask the
        // server for one (it may point at non-standard metadata).
        let mut seed = self.with_runtime(name, |rt| rt.challenge.clone()).flatten();
        if seed.is_none()
            && let ProbeOutcome::Required {
                www_authenticate: Some(h),
            } = probe::probe(self.http(), &config.url).await
        {
            seed = crate::oauth::challenge::parse(&h);
        }
        let (resource, server, prm_scopes) = self.discover(config, seed.as_ref()).await?;
        tracing::debug!(server = %name, %resource, issuer = %server.issuer, "discovered");
        let step_up = self.with_runtime(name, |rt| rt.step_up.clone()).flatten();
        let scope = choose_scope(
            explicit,
            step_up,
            config.scopes.clone(),
            seed.as_ref(),
            prm_scopes,
            &server,
        );

        // 4. Client and listener.
        let (client, listener) = self
            .client_and_listener(config, &server, record.as_ref(), scope.as_deref())
            .await?;
        tracing::debug!(server = %name, client = %client.client_id, kind = ?client.kind, redirect = %listener.redirect_uri, scope = ?scope, "client chosen");

        // 5. The authorization request.
        let pending = flow::start(
            &server,
            &client.client_id,
            &listener.redirect_uri,
            scope.as_deref(),
            &resource,
        )?;
        let (callback_rx, _serving) = listener.serve(pending.state.clone());
        let (paste_tx, paste_rx) = mpsc::unbounded_channel();
        self.with_runtime(name, |rt| rt.paste = Some(paste_tx));
        self.emit(Event::AuthorizationPending {
            server: name.to_owned(),
            url: pending.url.clone(),
        });
        // Opening runs beside the wait: an editor that never answers
        // `window/showDocument` must not hold the flow past its timeout.
        let (opener, url, server_name) = (
            self.options.opener.clone(),
            pending.url.clone(),
            name.to_owned(),
        );
        tokio::spawn(async move {
            if let Err(why) = opener.open(&url).await {
                tracing::warn!(server = %server_name, %why, "could not open the authorization URL; it was sent to the editor");
            }
        });
        let (abort_tx, abort_rx) = oneshot::channel();
        self.with_runtime(name, |rt| rt.abort = Some(abort_tx));

        // 6. Wait for the callback.
        let waited = tokio::time::timeout(
            self.options.flow_timeout,
            wait_for_code(callback_rx, paste_rx, abort_rx, &pending, &server),
        )
        .await;
        let (code, reply) = match waited {
            Ok(result) => result?,
            Err(_) => {
                return Err(Error::Timeout(format!(
                    "the authorization of {name} was not completed within {} seconds",
                    self.options.flow_timeout.as_secs()
                )));
            }
        };

        // 7. Exchange, persist, then answer the browser.
        let outcome = self
            .exchange_and_store(
                name,
                config,
                &server,
                &client,
                &code,
                &pending,
                scope.as_deref(),
            )
            .await;
        reply.send(match &outcome {
            Ok(()) => Ok(()),
            // The paster gets the authorization server's own error code.
            Err(Error::AuthorizationFailed { error, description }) => Err((
                error.clone(),
                description.clone().unwrap_or_else(|| error.clone()),
            )),
            Err(e) => Err(("authorization_failed".into(), e.to_string())),
        });
        outcome?;
        self.with_runtime(name, |rt| {
            rt.step_up = None;
            rt.failure = None;
            rt.notice = None;
            rt.authorizations.push(Instant::now());
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn exchange_and_store(
        &self,
        name: &str,
        config: &crate::config::ServerConfig,
        server: &AuthServer,
        client: &ClientRegistration,
        code: &Secret,
        pending: &PendingAuthorization,
        scope: Option<&str>,
    ) -> Result<(), Error> {
        let tokens = flow::exchange(self.http(), server, client, code, pending)
            .await
            .map_err(oauth_error)?;
        let granted = match &tokens.scope {
            Some(s) => crate::oauth::challenge::split_scopes(Some(s)),
            None => crate::oauth::challenge::split_scopes(scope),
        };
        let mut record = self
            .reload(&config.url)
            .await?
            .unwrap_or_else(|| CredentialRecord::new(config.url.clone()));
        record
            .registrations
            .insert(server.issuer.clone(), client.clone());
        record.tokens = Some(TokenSet {
            access_token: tokens.access_token,
            token_type: tokens.token_type,
            refresh_token: tokens.refresh_token,
            expires_at: tokens.expires_at,
            scopes: granted,
            issuer: server.issuer.clone(),
            resource: Some(pending.resource.clone()),
            obtained_at: now_ms(),
            token_endpoint: Some(server.token_endpoint.clone()),
            revocation_endpoint: server.revocation_endpoint.clone(),
            revocation_auth_methods: server.revocation_endpoint_auth_methods_supported.clone(),
            via_refresh: false,
        });
        record.revision += 1;
        self.persist(record).await?;
        tracing::info!(server = %name, issuer = %server.issuer, "authorized");
        Ok(())
    }

    /// PRM (from the challenge's `resource_metadata`, else well-known), the
    /// `resource` to request, and the authorization server's metadata.
    async fn discover(
        &self,
        config: &crate::config::ServerConfig,
        seed: Option<&BearerChallenge>,
    ) -> Result<(String, AuthServer, Option<Vec<String>>), Error> {
        let hint = seed.and_then(|c| c.resource_metadata.as_deref());
        let prm = match discovery::protected_resource(self.http(), &config.url, hint).await {
            Ok(None) if hint.is_some() => {
                discovery::protected_resource(self.http(), &config.url, None).await
            }
            other => other,
        }
        .map_err(discovery_error)?;
        match prm {
            Some(prm) => {
                // RFC 9728 §3.3: metadata for another resource is refused
                // before any authorization request.
                if config.resource.is_none()
                    && !discovery::resource_covers(&prm.resource, &config.url)
                {
                    return Err(discovery_error(DiscoveryError::ResourceMismatch {
                        found: prm.resource,
                        server: config.url.clone(),
                    }));
                }
                let resource = config.resource.clone().unwrap_or(prm.resource.clone());
                let server = match &config.auth_server_metadata_url {
                    Some(url) => discovery::authorization_server_at(self.http(), url).await,
                    None => {
                        let issuer = prm
                            .authorization_servers
                            .first()
                            .ok_or_else(|| {
                                DiscoveryError::NoAuthorizationServer(prm.metadata_url.clone())
                            })
                            .map_err(discovery_error)?;
                        discovery::authorization_server(self.http(), issuer).await
                    }
                }
                .map_err(discovery_error)?;
                Ok((resource, server, prm.scopes_supported))
            }
            None => {
                let resource = config.resource.clone().unwrap_or(config.url.clone());
                if let Some(url) = &config.auth_server_metadata_url {
                    let server = discovery::authorization_server_at(self.http(), url)
                        .await
                        .map_err(discovery_error)?;
                    return Ok((resource, server, None));
                }
                // Last resort: the 2025-03-26 rules (metadata at the
                // server's origin, else default endpoints).
                tracing::warn!(server = %config.url, "no protected resource metadata; using the 2025-03-26 fallback");
                let origin = url::Url::parse(&config.url)
                    .map(|u| u.origin().ascii_serialization())
                    .map_err(|_| Error::InvalidParams(format!("{:?} is not a URL", config.url)))?;
                let server = match discovery::authorization_server(self.http(), &origin).await {
                    Ok(s) => s,
                    Err(DiscoveryError::NoServerMetadata(_)) => {
                        discovery::legacy_defaults(&config.url).map_err(discovery_error)?
                    }
                    Err(e) => return Err(discovery_error(e)),
                };
                Ok((resource, server, None))
            }
        }
    }

    /// The client to authorize as, and a listener on the redirect URI it
    /// needs (docs/protocol.md#mcpauthorize: registrations reuse their port when it is free).
    async fn client_and_listener(
        &self,
        config: &crate::config::ServerConfig,
        server: &AuthServer,
        record: Option<&CredentialRecord>,
        scope: Option<&str>,
    ) -> Result<(ClientRegistration, Listener), Error> {
        let host = self.options.callback_host.as_str();
        let wanted_port = config.callback_port.unwrap_or(0);
        let bind_fixed = |port: u16| async move {
            loopback::bind(host, port)
                .await
                .map_err(|e| Error::AuthorizationFailed {
                    error: "redirect_port_unavailable".into(),
                    description: Some(format!(
                        "cannot listen on {host}:{port} for the redirect: {e}"
                    )),
                })
        };
        if let Some(client_id) = &config.client_id {
            let listener = bind_fixed(wanted_port).await?;
            let secret = config.client_secret.clone();
            let method = registration::auth_method(server, secret.is_some());
            return Ok((
                ClientRegistration {
                    kind: RegistrationKind::Preregistered,
                    client_id: client_id.clone(),
                    client_secret: secret,
                    token_endpoint_auth_method: Some(method),
                    redirect_uris: vec![listener.redirect_uri.clone()],
                    registered_at: now_ms(),
                },
                listener,
            ));
        }
        if let Some(document) = config
            .client_metadata_url
            .as_ref()
            .filter(|_| server.client_id_metadata_document_supported)
        {
            let listener = bind_fixed(wanted_port).await?;
            return Ok((
                ClientRegistration {
                    kind: RegistrationKind::MetadataDocument,
                    client_id: document.clone(),
                    client_secret: None,
                    token_endpoint_auth_method: Some("none".into()),
                    redirect_uris: vec![listener.redirect_uri.clone()],
                    registered_at: now_ms(),
                },
                listener,
            ));
        }
        // A dynamic registration bound to this issuer, on a port we can
        // have again (only an issuer's own registration is ever reused).
        if let Some(stored) = record
            .and_then(|r| r.registrations.get(&server.issuer))
            .filter(|r| r.kind == RegistrationKind::Dynamic)
            && let Some(port) = stored
                .redirect_uris
                .first()
                .and_then(|u| reusable_port(u, host))
        {
            match loopback::bind(host, port).await {
                Ok(listener) if stored.redirect_uris.first() == Some(&listener.redirect_uri) => {
                    return Ok((stored.clone(), listener));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::info!(port, error = %e, "the registered redirect port is busy; registering again")
                }
            }
        }
        let listener = bind_fixed(wanted_port).await?;
        let client = registration::register(self.http(), server, &listener.redirect_uri, scope)
            .await
            .map_err(oauth_error)?;
        Ok((client, listener))
    }

    /// `mcp/completeAuthorization`: a callback URL pasted by the user.
    pub async fn complete_authorization(
        &self,
        name: &str,
        callback_url: &str,
    ) -> Result<Status, Error> {
        let url = url::Url::parse(callback_url.trim())
            .map_err(|_| Error::InvalidParams("`callbackUrl`: not an absolute URL".into()))?;
        let params: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if !params.iter().any(|(k, _)| k == "state") {
            return Err(Error::InvalidParams(
                "`callbackUrl`: has no `state` parameter; copy the whole address".into(),
            ));
        }
        let route = self.with_runtime(name, |rt| rt.paste.clone()).flatten();
        if let Some(route) = route {
            let (reply, outcome) = oneshot::channel();
            if route.send(PasteRequest { params, reply }).is_ok() {
                return match outcome.await {
                    Ok(Ok(())) => {
                        // The flow persists before it replies; wait for it
                        // to end so the status is final, not "authorizing".
                        let flow = self.flow_mutex(name);
                        drop(flow.lock().await);
                        Ok(self.status(name))
                    }
                    Ok(Err((error, description))) => Err(Error::AuthorizationFailed {
                        error,
                        description: Some(description),
                    }),
                    Err(_) => Err(Error::AuthorizationFailed {
                        error: "authorization_ended".into(),
                        description: Some(
                            "the authorization ended before the callback was used".into(),
                        ),
                    }),
                };
            }
        }
        // The flow may be waiting in another instance on this machine: hand
        // the callback to its loopback listener, then read the result.
        if url.scheme() == "http"
            && urls::is_loopback_host(&url)
            && url.path() == loopback::CALLBACK_PATH
        {
            // Never through a proxy: the listener is on this machine.
            let delivered = crate::http::loopback_client()
                .get(url.as_str())
                .timeout(Duration::from_secs(60))
                .send()
                .await;
            let config = self.config_of(name)?;
            return match delivered {
                Ok(r) if r.status().is_success() => {
                    self.reload_view(&config.url).await?;
                    // A flow of ours waiting to join that one ends now too.
                    let flow = self.flow_mutex(name);
                    drop(flow.lock().await);
                    self.publish_changes();
                    Ok(self.status(name))
                }
                Ok(r) => Err(Error::AuthorizationFailed {
                    error: "invalid_callback".into(),
                    description: Some(format!(
                        "the waiting authorization refused this callback (HTTP {})",
                        r.status()
                    )),
                }),
                Err(_) => Err(Error::InvalidParams(format!(
                    "no authorization of {name} is waiting for this callback"
                ))),
            };
        }
        Err(Error::InvalidParams(format!(
            "no authorization of {name} is in progress"
        )))
    }
}

/// Waits for a callback with the right `state` from the listener or a
/// paste, and validates it. Returns the code and where to report the end.
async fn wait_for_code(
    mut callback_rx: oneshot::Receiver<Callback>,
    mut paste_rx: mpsc::UnboundedReceiver<PasteRequest>,
    mut abort_rx: oneshot::Receiver<()>,
    pending: &PendingAuthorization,
    server: &AuthServer,
) -> Result<(Secret, Reply), Error> {
    loop {
        let (params, reply) = tokio::select! {
            cb = &mut callback_rx => match cb {
                Ok(cb) => (cb.params, Reply::Browser(cb.verdict)),
                Err(_) => return Err(Error::AuthorizationFailed {
                    error: "listener_failed".into(),
                    description: Some("the loopback listener stopped".into()),
                }),
            },
            Some(paste) = paste_rx.recv() => (paste.params, Reply::Paste(paste.reply)),
            Ok(()) = &mut abort_rx => return Err(Error::AuthorizationFailed {
                error: "cancelled".into(),
                description: Some("signed out while the authorization was waiting".into()),
            }),
        };
        match flow::validate_callback(&params, pending, server) {
            Ok(code) => return Ok((code, reply)),
            // A pasted URL from another attempt: say so, keep waiting.
            Err(CallbackError::StateMismatch) => {
                reply.send(Err((
                    "invalid_state".into(),
                    CallbackError::StateMismatch.to_string(),
                )));
            }
            Err(e) => {
                let err = callback_error(&e);
                reply.send(Err(("authorization_failed".into(), e.to_string())));
                return Err(err);
            }
        }
    }
}

/// Where the outcome of a callback goes: the browser page or the paster.
enum Reply {
    Browser(oneshot::Sender<Result<(), String>>),
    Paste(oneshot::Sender<Result<(), (String, String)>>),
}

impl Reply {
    fn send(self, outcome: Result<(), (String, String)>) {
        match self {
            Reply::Browser(tx) => {
                let _ = tx.send(outcome.map_err(|(_, message)| message));
            }
            Reply::Paste(tx) => {
                let _ = tx.send(outcome);
            }
        }
    }
}

/// Scope selection (MCP 2025-11-25 "Scope Selection Strategy"): explicit
/// request, step-up union, configuration, the challenge's `scope`, the PRM's
/// `scopes_supported`, else none; `offline_access` added only when the AS
/// lists it (2026-07-28).
fn choose_scope(
    explicit: Option<Vec<String>>,
    step_up: Option<Vec<String>>,
    configured: Option<Vec<String>>,
    challenge: Option<&BearerChallenge>,
    prm_supported: Option<Vec<String>>,
    server: &AuthServer,
) -> Option<String> {
    let non_empty = |v: Vec<String>| (!v.is_empty()).then_some(v);
    let mut scopes = explicit
        .and_then(non_empty)
        .or(step_up.and_then(non_empty))
        .or(configured.and_then(non_empty))
        .or(challenge.map(BearerChallenge::scopes).and_then(non_empty))
        .or(prm_supported.and_then(non_empty))
        .unwrap_or_default();
    let offline = "offline_access".to_owned();
    if server
        .scopes_supported
        .as_ref()
        .is_some_and(|s| s.contains(&offline))
        && !scopes.contains(&offline)
    {
        scopes.push(offline);
    }
    let mut seen = std::collections::HashSet::new();
    scopes.retain(|s| seen.insert(s.clone()));
    (!scopes.is_empty()).then(|| scopes.join(" "))
}

/// The port of a stored loopback redirect URI on `host`, if it has one.
fn reusable_port(redirect_uri: &str, host: &str) -> Option<u16> {
    let url = url::Url::parse(redirect_uri).ok()?;
    let same_host = url.host_str().map(|h| h.trim_matches(['[', ']'])) == Some(host);
    same_host.then(|| url.port()).flatten()
}

/// What a failed re-read of a stored record means.
#[derive(Debug, Clone, Copy)]
enum OnUnreadable {
    Fail,
    KeepMemory,
}

pub(super) fn discovery_error(e: DiscoveryError) -> Error {
    match e {
        DiscoveryError::Insecure(u) => u.into(),
        // Not reaching a server says nothing about its metadata.
        DiscoveryError::Fetch(f) => Error::Unavailable(format!("discovery: {f}")),
        other => Error::DiscoveryFailed(other.to_string()),
    }
}

/// An engine error as the user should read it: only an answer from the AS
/// is a refusal; a server that did not answer is a transient failure.
pub(super) fn oauth_error(e: OAuthError) -> Error {
    match e {
        OAuthError::Refused { error, description } => {
            Error::AuthorizationFailed { error, description }
        }
        OAuthError::Fetch(f) => Error::Unavailable(f.to_string()),
        OAuthError::Malformed(m) | OAuthError::UnusableTokens { message: m, .. } => {
            Error::AuthorizationFailed {
                error: "invalid_response".into(),
                description: Some(m),
            }
        }
    }
}

fn callback_error(e: &CallbackError) -> Error {
    let code = match e {
        CallbackError::StateMismatch => "invalid_state",
        CallbackError::IssuerMismatch { .. } | CallbackError::IssuerMissing => "invalid_issuer",
        CallbackError::Denied { error, .. } => error.as_str(),
        CallbackError::NoCode | CallbackError::Repeated(_) => "invalid_callback",
    };
    // RFC 9207: with a wrong or missing issuer the error fields are not
    // used; `Denied` is only reached after the issuer check passed.
    let description = match e {
        CallbackError::Denied { description, .. } => description.clone(),
        other => Some(other.to_string()),
    };
    Error::AuthorizationFailed {
        error: code.to_owned(),
        description,
    }
}
