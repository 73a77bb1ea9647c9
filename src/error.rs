//! Errors the sidecar reports to whoever asked (docs/protocol.md#errors). `rpc` maps each
//! variant to its JSON-RPC code; the CLI prints the message.

use crate::status::Status;
use crate::store::StoreError;
use crate::urls::UrlError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 1001: no usable credential.
    #[error("{}", .0.message.clone().unwrap_or_else(|| format!("{} needs authorization", .0.server)))]
    AuthorizationRequired(Box<Status>),
    /// 1002: the authorization server refused.
    #[error("the authorization server refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    AuthorizationFailed {
        error: String,
        description: Option<String>,
    },
    /// 1003: no usable metadata.
    #[error("discovery failed: {0}")]
    DiscoveryFailed(String),
    /// 1004: the chosen store cannot be used.
    #[error("{0}")]
    StorageUnavailable(#[from] StoreError),
    /// 1005: the user did not finish in time.
    #[error("{0}")]
    Timeout(String),
    /// 1006: a URL that is not https (or http on loopback).
    #[error("{0}")]
    InsecureUrl(String),
    /// -32602: unknown server name, malformed URL, bad field.
    #[error("{0}")]
    InvalidParams(String),
    /// 1007: a server did not answer (unreachable, timed out, 5xx) or
    /// another instance held the credential too long. Transient: the
    /// stored tokens are kept and asking again may work (docs/protocol.md#errors).
    #[error("{0}")]
    Unavailable(String),
}

impl Error {
    /// A lock that could not be taken: waiting too long is transient (some
    /// other instance is busy with the credential), anything else is the
    /// store's problem.
    pub fn from_lock(e: crate::lock::LockError, what: &str) -> Self {
        match e {
            crate::lock::LockError::TimedOut { waited, .. } => Error::Unavailable(format!(
                "another mcp-auth-sidecar process has been using {what} for more than {} s \
                 (an authorization waiting in its browser?); try again when it is done",
                waited.as_secs()
            )),
            other => Error::StorageUnavailable(other.into()),
        }
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        match e {
            UrlError::Malformed(_) => Error::InvalidParams(e.to_string()),
            UrlError::Insecure(_) => Error::InsecureUrl(e.to_string()),
        }
    }
}
