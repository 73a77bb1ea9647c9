//! Keeping tokens fresh (ARCHITECTURE.md#the-refresh-transaction-and-locking):
//! one refresh transaction per credential, across every running instance.
//!
//! The transaction, top to bottom (see [`App::refresh_steps`]); each step
//! logs one line (`refresh N/6: …`) and any failure ends it with nothing
//! sent or written after that point:
//! 1. take the credential's exclusive file lock (waits without polling,
//!    with a bound) — or adopt a token another instance stores meanwhile;
//!    only from here on does `exit` wait for the transaction;
//! 2. re-read storage, failing closed: a record that cannot be read stops
//!    the transaction (the in-memory copy may lag another instance's
//!    rotation); if another instance already refreshed, adopt its token;
//! 3. refresh at the token endpoint (client authentication, `resource`),
//!    sent again only when the refresh token was surely not spent: a
//!    connection that never opened, a 503, or the AS's own
//!    `temporarily_unavailable`/`server_error` answer;
//! 4. persist atomically — the rotated refresh token is on disk before
//!    anyone sees the new access token; an answer whose access token cannot
//!    be handed out still has its rotated refresh token persisted (the one
//!    sent may be revoked now), and the error is reported;
//! 5. on `invalid_grant`, re-read (still under the lock, failing closed):
//!    adopt a token someone else stored meanwhile, else drop the tokens
//!    (never the registration, never someone else's tokens);
//! 6. release the lock (drop), update memory, publish.
//!
//! It runs in its own task: a cancelled request or a closed editor does not
//! stop a refresh whose single-use refresh token may already be spent.
//!
//! Residual risks (what this cannot prevent):
//! - An answer lost after the AS rotated the token (a timeout, a dropped
//!   connection, a gateway's 502/504): we never learn the new refresh
//!   token. We do not resend at once, but the old token stays stored and
//!   the next refresh presents it; an AS with reuse detection then revokes
//!   the grant (`invalid_grant` → `unauthenticated`, authorize again). An
//!   AS with a reuse grace period accepts it.
//! - A process killed between step 3 and step 4 loses the rotated token
//!   the same way; the lock is released by the kernel and the
//!   stored record stays whole.
//! - A 503 that a gateway sent after the AS processed the request would be
//!   retried; RFC 9110 §15.6.4 means "not handled", and we take it at its
//!   word.
//! - Another process of the same user can read and write the records (the
//!   same user is the trust boundary; see ARCHITECTURE.md).

use super::authorize::discovery_error;
use super::{App, fingerprint};
use crate::error::Error;
use crate::oauth::{OAuthError, token};
use crate::status::now_ms;
use crate::store::record::TokenSet;
use std::sync::Arc;
use std::time::Duration;

/// How long a refresh waits beyond the browser-flow timeout for another
/// instance's transaction on the same credential: a browser flow holds the
/// lock that long at most, then one token exchange.
const LOCK_MARGIN: Duration = Duration::from_secs(30);
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

/// What a failed refresh attempt allows next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterFailure {
    /// The refresh token was surely not spent: send it again after a
    /// backoff.
    Retry,
    /// The request may have been processed (a lost answer, a gateway's
    /// 502/504): the AS may have rotated the refresh token already, and
    /// presenting it again would trip reuse detection and revoke the grant.
    /// Report a transient error and keep the tokens.
    Stop,
}

/// Which failures are retried at once. Residual risk: see the module's
/// documentation.
fn after_failure(e: &OAuthError) -> AfterFailure {
    use crate::http::FetchError;
    match e {
        // Never sent.
        OAuthError::Fetch(FetchError::Unreachable { .. }) => AfterFailure::Retry,
        // RFC 9110 §15.6.4: the server cannot handle requests right now.
        OAuthError::Fetch(FetchError::ServerError { status: 503, .. }) => AfterFailure::Retry,
        OAuthError::Fetch(_) => AfterFailure::Stop,
        // RFC 6749 §5.2 error answers come from the AS itself: it did not
        // issue tokens, and these two say "try later".
        OAuthError::Refused { error, .. }
            if error == "temporarily_unavailable" || error == "server_error" =>
        {
            AfterFailure::Retry
        }
        OAuthError::Refused { .. }
        | OAuthError::Malformed(_)
        | OAuthError::UnusableTokens { .. } => AfterFailure::Stop,
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
        // (docs/protocol.md#mcpaccesstoken: token requests never wait for an authorization).
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

    /// Whether the held credential has a refresh token (and may be used for
    /// this server at all: a record is keyed by its server URL).
    pub fn refreshable(&self, name: &str) -> bool {
        let inner = self.lock();
        inner
            .servers
            .get(name)
            .and_then(|e| inner.records.get(&e.server.config.url))
            .and_then(|r| {
                r.tokens
                    .as_ref()
                    .filter(|t| super::issued_for(t, &r.server_url))
            })
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
        tokio::spawn(async move { app.refresh_transaction(&owned, stale, min_validity).await })
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
        let bound = self.options.flow_timeout.saturating_add(LOCK_MARGIN);
        let lock = self.credential_lock(url, bound);
        tokio::pin!(lock);
        let _lock = loop {
            let changed = self.record_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.replaced_in_memory(url, stale, margin) {
                tracing::info!(server = %name, "refresh 1/6: adopted, while waiting for the lock, a token another instance stored");
                return Ok(());
            }
            tokio::select! {
                held = &mut lock => break held?,
                () = &mut changed => {}
            }
        };
        // From here until the new tokens are persisted, exit waits for us
        // (`App::drain`): once sent, a rotating refresh token must not be
        // stranded. Not while waiting for the lock: nothing is at stake
        // yet, and a closing editor must not wait for another instance.
        let _critical = self.critical_section().await;
        tracing::debug!(server = %name, "refresh 1/6: credential lock held");

        // 2. Re-read under the lock. Fails closed: without a successful
        // read, memory may lag another instance's rotation, so nothing is
        // sent and nothing is written.
        let Some(mut record) = self.reload(url).await? else {
            tracing::info!(server = %name, "refresh 2/6: the record is gone (signed out elsewhere)");
            return Err(self.authorization_required(name));
        };
        let Some(tokens) = record.tokens.clone() else {
            tracing::info!(server = %name, "refresh 2/6: no tokens stored (signed out elsewhere)");
            return Err(self.authorization_required(name));
        };
        let changed = stale != Some(fingerprint(&tokens.access_token).as_str());
        if changed && tokens.access_valid_at(now_ms(), margin) {
            tracing::info!(server = %name, "refresh 2/6: adopted a token another instance stored");
            return Ok(());
        }
        let (Some(refresh_token), Some(client)) = (
            tokens.refresh_token.clone(),
            record.registrations.get(&tokens.issuer).cloned(),
        ) else {
            tracing::info!(server = %name, "refresh 2/6: nothing to refresh with");
            return Err(self.authorization_required(name));
        };
        tracing::debug!(server = %name, "refresh 2/6: re-read; our token is still the stored one");
        let endpoint = match &tokens.token_endpoint {
            Some(e) => e.clone(),
            None => {
                crate::oauth::discovery::authorization_server(self.http(), &tokens.issuer)
                    .await
                    .map_err(discovery_error)?
                    .token_endpoint
            }
        };

        // 3. The refresh request, sent again only while the refresh token
        // was surely not spent.
        let mut attempt = 0;
        let outcome = loop {
            let result = token::refresh(
                self.http(),
                &endpoint,
                &client,
                &refresh_token,
                tokens.resource.as_deref(),
            )
            .await;
            match result {
                Err(e) if after_failure(&e) == AfterFailure::Retry && attempt < BACKOFF.len() => {
                    tracing::info!(server = %name, error = %e, "refresh 3/6: not processed; retrying");
                    tokio::time::sleep(BACKOFF[attempt]).await;
                    attempt += 1;
                }
                other => break other,
            }
        };

        match outcome {
            Ok(new) => {
                tracing::debug!(server = %name, "refresh 3/6: new tokens received");
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
                tracing::info!(server = %name, "refresh 4/6: refreshed and persisted");
                Ok(())
            }
            Err(OAuthError::Refused { error, description }) if is_dead_grant(&error) => {
                // 5. Dead grant: adopt what someone else stored, if
                // anything. Again fail closed: an unreadable record is left
                // alone, never overwritten.
                let again = self.reload(url).await?;
                let theirs = again.as_ref().and_then(|r| r.tokens.as_ref());
                if theirs.is_some_and(|t| t.refresh_token.as_ref() != Some(&refresh_token)) {
                    tracing::info!(server = %name, "refresh 5/6: refused, but another instance stored new tokens: adopted");
                    return Ok(());
                }
                if let Some(mut mine) = again {
                    mine.tokens = None; // the registration stays
                    mine.revision += 1;
                    self.persist(mine).await?;
                }
                tracing::info!(server = %name, %error, "refresh 5/6: the refresh token is dead; tokens dropped");
                let why = description
                    .map(|d| format!("{error}: {d}"))
                    .unwrap_or(error);
                self.with_runtime(name, |rt| {
                    rt.notice = Some(format!("the authorization server refused the refresh token ({why}); authorize again"))
                });
                Err(self.authorization_required(name))
            }
            Err(OAuthError::UnusableTokens {
                message,
                refresh_token: Some(rotated),
            }) => {
                // 4'. An access token we cannot hand out, but a rotated
                // refresh token: the one we sent may be revoked now, so the
                // new one is persisted (the access token stays the old,
                // expired one) and the next refresh presents it.
                tracing::info!(server = %name, error = %message, "refresh 3/6: unusable access token, but a rotated refresh token");
                record.tokens = Some(TokenSet {
                    refresh_token: Some(rotated),
                    expires_at: Some(now_ms()),
                    ..tokens
                });
                record.revision += 1;
                self.persist(record).await?;
                tracing::info!(server = %name, "refresh 4/6: the rotated refresh token persisted");
                Err(super::authorize::oauth_error(OAuthError::Malformed(
                    message,
                )))
            }
            Err(e) => {
                tracing::info!(server = %name, error = %e, "refresh 3/6: failed; the stored tokens are kept");
                Err(super::authorize::oauth_error(e))
            }
        }
        // 6. The lock is released as `_lock` drops; the caller updates the
        // runtime state and publishes.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::FetchError;

    fn refused(error: &str) -> OAuthError {
        OAuthError::Refused {
            error: error.into(),
            description: None,
        }
    }

    fn status(status: u16) -> OAuthError {
        OAuthError::Fetch(FetchError::ServerError {
            url: "https://as.example/token".into(),
            status,
        })
    }

    #[test]
    fn only_requests_that_surely_spent_nothing_are_sent_again() {
        use AfterFailure::{Retry, Stop};
        let unreachable = OAuthError::Fetch(FetchError::Unreachable {
            url: "https://as.example/token".into(),
            reason: "connection refused".into(),
        });
        let lost = OAuthError::Fetch(FetchError::Interrupted {
            url: "https://as.example/token".into(),
            reason: "operation timed out".into(),
        });
        let too_large = OAuthError::Fetch(FetchError::TooLarge {
            url: "https://as.example/token".into(),
        });
        let table: Vec<(&str, OAuthError, AfterFailure)> = vec![
            ("connection refused", unreachable, Retry),
            ("503", status(503), Retry),
            (
                "temporarily_unavailable",
                refused("temporarily_unavailable"),
                Retry,
            ),
            ("server_error", refused("server_error"), Retry),
            ("timed out: the AS may have rotated", lost, Stop),
            ("body too large", too_large, Stop),
            ("500 without an OAuth body", status(500), Stop),
            ("502 from a gateway", status(502), Stop),
            ("504 from a gateway", status(504), Stop),
            ("invalid_grant", refused("invalid_grant"), Stop),
            ("invalid_client", refused("invalid_client"), Stop),
            ("malformed", OAuthError::Malformed("x".into()), Stop),
            (
                "unusable access token",
                OAuthError::UnusableTokens {
                    message: "x".into(),
                    refresh_token: None,
                },
                Stop,
            ),
        ];
        for (what, error, expected) in table {
            assert_eq!(after_failure(&error), expected, "{what}");
        }
    }

    #[test]
    fn dead_grant_names() {
        for dead in ["invalid_grant", "invalid_refresh_token", "token_revoked"] {
            assert!(is_dead_grant(dead), "{dead}");
        }
        for alive in ["invalid_client", "temporarily_unavailable", "server_error"] {
            assert!(!is_dead_grant(alive), "{alive}");
        }
    }
}
