//! Keeping tokens fresh (SPEC §6): one refresh transaction per credential,
//! across every running instance.
//!
//! The transaction, top to bottom (see [`App::refresh_transaction`]):
//! 1. take the credential's exclusive file lock (waits without polling,
//!    with a bound);
//! 2. re-read storage: if another instance already refreshed, adopt its
//!    token and make no request;
//! 3. refresh at the token endpoint (client authentication, `resource`,
//!    retries with backoff for transient failures only);
//! 4. persist atomically — the rotated refresh token is on disk before
//!    anyone sees the new access token;
//! 5. on `invalid_grant`, re-read (still under the lock): adopt a token
//!    someone else stored meanwhile, else drop the tokens (never the
//!    registration, never someone else's tokens);
//! 6. release the lock (drop), update memory, publish.
//!
//! It runs in its own task: a cancelled request or a closed editor does not
//! stop a refresh whose single-use refresh token may already be spent.

use super::{App, fingerprint};
use crate::error::Error;
use crate::oauth::{OAuthError, token};
use crate::status::now_ms;
use crate::store::record::TokenSet;
use std::sync::Arc;
use std::time::Duration;

/// How long a refresh waits for another instance's transaction on the same
/// credential (a refresh is one HTTP exchange; a browser flow holds the
/// same lock longer, and then the refresh had better wait for it).
const LOCK_BOUND: Duration = Duration::from_secs(330);
/// Backoff between attempts after transient failures.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// OAuth error codes that mean "this refresh token is dead" — RFC 6749
/// §5.2 `invalid_grant`, and the names some servers use in 200-with-error
/// bodies.
fn is_dead_grant(error: &str) -> bool {
    matches!(
        error,
        "invalid_grant"
            | "invalid_refresh_token"
            | "expired_refresh_token"
            | "refresh_token_expired"
            | "token_revoked"
    )
}

/// Worth another try: the network, 5xx, `temporarily_unavailable`.
fn is_transient(e: &OAuthError) -> bool {
    match e {
        // Only when the request surely did not get through (or the server
        // said 5xx): a lost answer may hide a spent refresh token.
        OAuthError::Fetch(f) => matches!(f, crate::http::FetchError::Unreachable { .. }),
        OAuthError::Refused { error, .. } => {
            error == "temporarily_unavailable" || error == "server_error"
        }
        OAuthError::Malformed(_) => false,
    }
}

impl App {
    /// A token valid for `min_validity`, refreshing first when the held one
    /// is too close to expiry (or was rejected) and can be refreshed.
    pub async fn fresh_token(
        self: &Arc<Self>,
        name: &str,
        min_validity: Duration,
    ) -> Result<super::AccessToken, Error> {
        match self.access_token(name, min_validity) {
            Err(Error::AuthorizationRequired(_)) if self.refreshable(name) => {}
            other => return other,
        }
        // A browser flow holds the credential for minutes: while one runs,
        // a token that is still valid is handed out instead of waiting
        // (SPEC §3.1: token requests never wait for an authorization).
        let flow_running = self
            .with_runtime(name, |rt| rt.authorizing || rt.authorizing_elsewhere)
            .unwrap_or(false);
        if flow_running && let Ok(held) = self.access_token(name, Duration::ZERO) {
            return Ok(held);
        }
        match self.refresh(name, min_validity).await {
            Ok(()) => self.access_token(name, min_validity),
            // A transient failure while the held token is still valid (just
            // inside the window): better that token than none.
            Err(e) => self.access_token(name, Duration::ZERO).map_err(|_| e),
        }
    }

    /// Whether the held credential has a refresh token.
    pub(super) fn refreshable(&self, name: &str) -> bool {
        let inner = self.lock();
        inner
            .servers
            .get(name)
            .and_then(|e| inner.records.get(&e.server.config.url))
            .and_then(|r| r.tokens.as_ref())
            .is_some_and(|t| t.refresh_token.is_some())
    }

    /// Refreshes `name` unless, by the time it is our turn, the token in
    /// memory is good again (another request of this process refreshed).
    pub async fn refresh(
        self: &Arc<Self>,
        name: &str,
        min_validity: Duration,
    ) -> Result<(), Error> {
        let gate = self
            .lock()
            .refreshes
            .entry(name.to_owned())
            .or_default()
            .clone();
        let _one_at_a_time = gate.lock().await;
        // The token found insufficient, read in the same critical section as
        // the check: if the store watcher brings a new token a moment later,
        // the transaction must see it as new (and adopt it), never mistake
        // it for the stale one and spend its refresh token again.
        let stale = {
            let inner = self.lock();
            let Some(entry) = inner.servers.get(name) else {
                return Err(Error::InvalidParams(format!("unknown server {name:?}")));
            };
            let margin = i64::try_from(min_validity.as_millis()).unwrap_or(i64::MAX);
            if super::usable_tokens(&inner, entry)
                .is_some_and(|t| t.access_valid_at(now_ms(), margin))
            {
                return Ok(());
            }
            inner
                .records
                .get(&entry.server.config.url)
                .and_then(|r| r.tokens.as_ref())
                .map(|t| fingerprint(&t.access_token))
        };
        let app = self.clone();
        let owned = name.to_owned();
        let critical = self.critical_section().await;
        tokio::spawn(async move {
            let result = app.refresh_transaction(&owned, stale, min_validity).await;
            drop(critical);
            result
        })
        .await
        .map_err(|e| Error::StorageUnavailable(std::io::Error::other(e.to_string()).into()))?
    }

    async fn refresh_transaction(
        &self,
        name: &str,
        stale: Option<String>,
        min_validity: Duration,
    ) -> Result<(), Error> {
        tracing::debug!(server = %name, "refresh transaction starts");
        let url = self.config_of(name)?.url;
        self.with_runtime(name, |rt| rt.refreshing = true);
        self.publish_changes();
        let result = self
            .refresh_steps(name, &url, stale.as_deref(), min_validity)
            .await;
        self.with_runtime(name, |rt| {
            rt.refreshing = false;
            match &result {
                Ok(()) => {
                    rt.failure = None;
                    rt.notice = None;
                }
                Err(Error::AuthorizationRequired(_)) => {}
                Err(e) => {
                    rt.failure = Some(format!(
                        "refreshing the token failed: {e}; the stored tokens are kept"
                    ))
                }
            }
        });
        self.publish_changes();
        // The status inside an error must be the one after the refresh.
        match result {
            Err(Error::AuthorizationRequired(_)) => Err(self.authorization_required(name)),
            other => other,
        }
    }

    async fn refresh_steps(
        &self,
        name: &str,
        url: &str,
        stale: Option<&str>,
        min_validity: Duration,
    ) -> Result<(), Error> {
        let margin = i64::try_from(min_validity.as_millis()).unwrap_or(i64::MAX);
        // 1. The credential's lock, across processes. While we wait, the
        // store watcher may show that the holder stored a new token: adopt
        // it at once instead of queueing for the lock only to read it.
        let lock = self.credential_lock(url, LOCK_BOUND);
        tokio::pin!(lock);
        let _lock = loop {
            let changed = self.record_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.replaced_in_memory(url, stale, margin) {
                tracing::debug!(server = %name, "adopted a token another instance refreshed");
                return Ok(());
            }
            tokio::select! {
                held = &mut lock => break held?,
                () = &mut changed => {}
            }
        };

        // 2. Re-read: someone may have refreshed while we waited.
        let record = self.reload(url).await?;
        let Some(mut record) = record else {
            return Err(self.authorization_required(name));
        };
        let Some(tokens) = record.tokens.clone() else {
            return Err(self.authorization_required(name));
        };
        let changed = stale != Some(fingerprint(&tokens.access_token).as_str());
        if changed && tokens.access_valid_at(now_ms(), margin) {
            tracing::debug!(server = %name, "adopted a token another instance refreshed");
            return Ok(());
        }
        let (Some(refresh_token), Some(client)) = (
            tokens.refresh_token.clone(),
            record.registrations.get(&tokens.issuer).cloned(),
        ) else {
            return Err(self.authorization_required(name));
        };
        let endpoint = match &tokens.token_endpoint {
            Some(e) => e.clone(),
            None => {
                crate::oauth::discovery::authorization_server(&self.http, &tokens.issuer)
                    .await
                    .map_err(|e| Error::DiscoveryFailed(e.to_string()))?
                    .token_endpoint
            }
        };

        // 3. The refresh request, retried only while failures are transient.
        tracing::debug!(server = %name, "sending the refresh request");
        let mut attempt = 0;
        let outcome = loop {
            let result = token::refresh(
                &self.http,
                &endpoint,
                &client,
                &refresh_token,
                tokens.resource.as_deref(),
            )
            .await;
            match result {
                Err(e) if is_transient(&e) && attempt < BACKOFF.len() => {
                    tracing::info!(server = %name, error = %e, "refresh failed; retrying");
                    tokio::time::sleep(BACKOFF[attempt]).await;
                    attempt += 1;
                }
                other => break other,
            }
        };

        match outcome {
            Ok(new) => {
                // 4. Persist first. No refresh token in the answer: keep ours.
                record.tokens = Some(TokenSet {
                    access_token: new.access_token,
                    token_type: new.token_type,
                    refresh_token: new.refresh_token.or(Some(refresh_token)),
                    expires_at: new.expires_at,
                    scopes: new
                        .scope
                        .map(|s| crate::oauth::challenge::split_scopes(Some(&s)))
                        .unwrap_or(tokens.scopes),
                    obtained_at: now_ms(),
                    via_refresh: true,
                    ..tokens
                });
                record.revision += 1;
                self.persist(record).await?;
                tracing::info!(server = %name, "refreshed");
                Ok(())
            }
            Err(OAuthError::Refused { error, description }) if is_dead_grant(&error) => {
                // 5. Dead grant: adopt what someone else stored, if anything.
                let again = self.reload(url).await?;
                let theirs = again.as_ref().and_then(|r| r.tokens.as_ref());
                if theirs.is_some_and(|t| t.refresh_token.as_ref() != Some(&refresh_token)) {
                    return Ok(());
                }
                if let Some(mut mine) = again {
                    mine.tokens = None; // the registration stays
                    mine.revision += 1;
                    self.persist(mine).await?;
                }
                let why = description
                    .map(|d| format!("{error}: {d}"))
                    .unwrap_or(error);
                self.with_runtime(name, |rt| {
                    rt.notice = Some(format!("the authorization server refused the refresh token ({why}); authorize again"))
                });
                Err(self.authorization_required(name))
            }
            Err(e) => Err(super::authorize::oauth_error(e)),
        }
        // 6. The lock is released as `_lock` drops.
    }

    /// Whether memory already holds a token other than `stale` that is good
    /// for `margin_ms` (stored by another instance, seen by the watcher).
    fn replaced_in_memory(&self, url: &str, stale: Option<&str>, margin_ms: i64) -> bool {
        let inner = self.lock();
        inner
            .records
            .get(url)
            .and_then(|r| r.tokens.as_ref())
            .is_some_and(|t| {
                stale != Some(fingerprint(&t.access_token).as_str())
                    && t.access_valid_at(now_ms(), margin_ms)
            })
    }

    pub(super) fn authorization_required(&self, name: &str) -> Error {
        Error::AuthorizationRequired(Box::new(self.status(name)))
    }
}
