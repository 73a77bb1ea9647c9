//! `mcp/logout` (docs/protocol.md#mcplogout): revoke at the authorization server (RFC 7009),
//! then delete the tokens locally — in every instance, because every
//! instance watches the store.

use super::App;
use crate::error::Error;
use crate::oauth::{OAuthError, token};
use crate::status::Status;
use std::time::Duration;

const LOCK_BOUND: Duration = Duration::from_secs(60);

/// What a logout did.
#[derive(Debug)]
pub struct LoggedOut {
    /// Every revocation attempted succeeded (false when none was attempted).
    pub revoked: bool,
    /// Tokens were stored and are now deleted (false: there were none).
    pub deleted: bool,
    /// The new status.
    pub status: Status,
}

impl App {
    pub async fn logout(&self, name: &str, revoke: bool) -> Result<LoggedOut, Error> {
        let url = self.config_of(name)?.url;
        // A flow of ours waiting for the browser would hold the lock for
        // minutes: signing out ends it.
        if let Some(abort) = self.with_runtime(name, |rt| rt.abort.take()).flatten() {
            let _ = abort.send(());
        }
        let _lock = self.credential_lock(&url, LOCK_BOUND).await?;
        // From here to the deletion, exit waits for us (`App::drain`); not
        // while we wait for the lock, or a closing editor would wait too.
        let _critical = self.critical_section().await;
        let Some(mut record) = self.reload(&url).await? else {
            self.forget_runtime(name);
            return Ok(LoggedOut {
                revoked: false,
                deleted: false,
                status: self.status(name),
            });
        };
        let mut revoked = false;
        if let (true, Some(tokens)) = (revoke, &record.tokens) {
            let client = record.registrations.get(&tokens.issuer);
            if let (Some(endpoint), Some(client)) = (&tokens.revocation_endpoint, client) {
                let methods = tokens.revocation_auth_methods.as_deref();
                // The refresh token first (RFC 7009 §2.1: revoking it may
                // also revoke its access tokens), each in its own attempt.
                let mut all_ok = true;
                if let Some(rt) = &tokens.refresh_token {
                    let r =
                        token::revoke(self.http(), endpoint, client, methods, rt, "refresh_token")
                            .await;
                    if let Err(e) = &r {
                        tracing::warn!(server = %name, error = %e, "revoking the refresh token failed");
                    }
                    all_ok &= r.is_ok();
                }
                let r = token::revoke(
                    self.http(),
                    endpoint,
                    client,
                    methods,
                    &tokens.access_token,
                    "access_token",
                )
                .await;
                // RFC 7009 §2.2.1: a server may decline to revoke a token
                // type (self-contained JWT access tokens just expire); that
                // is not a failed logout.
                let access_ok = match &r {
                    Ok(()) => true,
                    Err(OAuthError::Refused { error, .. }) if error == "unsupported_token_type" => {
                        tracing::info!(server = %name, "the server does not revoke access tokens; it expires on its own");
                        true
                    }
                    Err(e) => {
                        tracing::warn!(server = %name, error = %e, "revoking the access token failed");
                        false
                    }
                };
                revoked = all_ok && access_ok;
            }
        }
        // Local deletion happens whatever revocation did; the registration
        // stays, so signing in again needs no new registration.
        let deleted = record.tokens.take().is_some();
        if deleted {
            record.revision += 1;
            self.persist(record).await?;
        }
        self.forget_runtime(name);
        self.with_runtime(name, |rt| {
            rt.notice = Some("signed out; authorize to connect".into())
        });
        self.publish_changes();
        tracing::info!(server = %name, revoked, "signed out");
        Ok(LoggedOut {
            revoked,
            deleted,
            status: self.status(name),
        })
    }

    /// Clears what this instance learned about `name`'s credential.
    fn forget_runtime(&self, name: &str) {
        self.with_runtime(name, |rt| {
            rt.rejected.clear();
            rt.step_up = None;
            rt.failure = None;
            rt.authorizations.clear();
        });
    }
}
