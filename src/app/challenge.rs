//! `mcp/handleChallenge` (docs/protocol.md#mcphandlechallenge): the editor got
//! a 401 or 403 from the MCP server and asks what to do.

use super::{App, fingerprint};
use crate::error::Error;
use crate::oauth::challenge;
use crate::status::Status;
use std::time::{Duration, Instant};

/// Authorizations that ended within this window and were followed by
/// another challenge count as "did not produce an accepted token": a token
/// that worked for longer than this was evidently accepted.
const ATTEMPT_WINDOW: Duration = Duration::from_secs(600);
/// docs/protocol.md#mcphandlechallenge: after this many, the answer is `fail`.
pub const MAX_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Retry,
    Authorize,
    Fail,
}

#[derive(Debug, Clone)]
pub struct ChallengeOutcome {
    pub action: Action,
    pub status: Status,
    pub scopes: Option<Vec<String>>,
}

impl App {
    pub async fn handle_challenge(
        self: &std::sync::Arc<Self>,
        name: &str,
        http_status: u16,
        www_authenticate: Option<&str>,
    ) -> Result<ChallengeOutcome, Error> {
        if http_status != 401 && http_status != 403 {
            return Err(Error::InvalidParams(format!(
                "`status`: expected 401 or 403, got {http_status}"
            )));
        }
        let config = self.config_of(name)?;
        let parsed = www_authenticate.and_then(challenge::parse);
        // The token in use is never handed out again.
        let held = {
            let mut inner = self.lock();
            let tokens = inner
                .records
                .get(&config.url)
                .and_then(|r| r.tokens.clone());
            let entry = inner
                .servers
                .get_mut(name)
                .ok_or_else(|| Error::InvalidParams(format!("unknown server {name:?}")))?;
            if let Some(t) = &tokens {
                entry.runtime.rejected.insert(fingerprint(&t.access_token));
            }
            if let Some(c) = &parsed {
                // Keep what the server said for the next authorization,
                // merging with what an earlier challenge told us.
                let mut merged = c.clone();
                if merged.resource_metadata.is_none() {
                    merged.resource_metadata = entry
                        .runtime
                        .challenge
                        .as_ref()
                        .and_then(|p| p.resource_metadata.clone());
                }
                entry.runtime.challenge = Some(merged);
            }
            let window_start = Instant::now().checked_sub(ATTEMPT_WINDOW);
            entry
                .runtime
                .authorizations
                .retain(|t| window_start.is_none_or(|w| *t >= w));
            tokens.map(|t| t.scopes).unwrap_or_default()
        };
        let attempts = self
            .with_runtime(name, |rt| rt.authorizations.len())
            .unwrap_or(0);
        let insufficient = parsed.as_ref().is_some_and(|c| c.is_insufficient_scope());

        let fail = |message: String| {
            self.with_runtime(name, |rt| {
                rt.failure = Some(message);
                rt.step_up = None;
            });
            self.publish_changes();
            Ok(ChallengeOutcome {
                action: Action::Fail,
                status: self.status(name),
                scopes: None,
            })
        };
        if attempts >= MAX_ATTEMPTS {
            return fail(format!(
                "{attempts} authorizations did not produce a token the server accepts; check the server's configuration"
            ));
        }
        if http_status == 403 && !insufficient {
            let detail = parsed
                .and_then(|c| c.error_description.or(c.error))
                .unwrap_or_else(|| "forbidden".into());
            return fail(format!(
                "the server refused access (403: {detail}); authorizing again would not help"
            ));
        }
        if http_status == 403 {
            // Step-up: what we hold plus what the server asks for, so the
            // new grant does not lose scopes (2026-07-28 SEP-2350).
            let mut union = held;
            for s in parsed.map(|c| c.scopes()).unwrap_or_default() {
                if !union.contains(&s) {
                    union.push(s);
                }
            }
            self.with_runtime(name, |rt| rt.step_up = Some(union.clone()));
            self.publish_changes();
            return Ok(ChallengeOutcome {
                action: Action::Authorize,
                status: self.status(name),
                scopes: Some(union),
            });
        }
        // 401: the token is rejected. With a refresh token, get a new one
        // without the user and let the editor retry.
        if self.refreshable(name) {
            match self.refresh(name, Duration::from_secs(60)).await {
                Ok(()) => {
                    return Ok(ChallengeOutcome {
                        action: Action::Retry,
                        status: self.status(name),
                        scopes: None,
                    });
                }
                Err(Error::AuthorizationRequired(_)) => {}
                Err(e) => {
                    return fail(format!(
                        "the token was rejected and refreshing it failed: {e}"
                    ));
                }
            }
        }
        self.with_runtime(name, |rt| rt.failure = None);
        self.publish_changes();
        let scopes = self
            .with_runtime(name, |rt| rt.challenge.as_ref().map(|c| c.scopes()))
            .flatten()
            .filter(|s| !s.is_empty());
        Ok(ChallengeOutcome {
            action: Action::Authorize,
            status: self.status(name),
            scopes,
        })
    }
}
