//! The OAuth 2.1 engine: discovery, registration, the authorization request
//! and callback, token requests. It never touches storage and holds no
//! state between calls; `app` decides what to keep.

pub mod challenge;
pub mod discovery;
pub mod flow;
pub mod loopback;
pub mod pkce;
pub mod registration;
pub mod token;

use crate::http::FetchError;

/// What went wrong talking to an authorization server's endpoints.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The AS answered with an OAuth error (RFC 6749 §5.2), including the
    /// HTTP-200-with-error bodies some servers send.
    #[error("{error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        error: String,
        description: Option<String>,
    },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{0}")]
    Malformed(String),
    /// A success answer whose access token cannot be used. It may still
    /// carry a rotated refresh token, which must be kept: the AS may have
    /// revoked the one we sent (RFC 6749 §6, §10.4).
    #[error("{message}")]
    UnusableTokens {
        message: String,
        refresh_token: Option<crate::secret::Secret>,
    },
}
