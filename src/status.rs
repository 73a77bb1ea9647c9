//! The state of one server as the sidecar sees it (docs/protocol.md#serverstatus), in domain
//! terms. `rpc::protocol::ServerStatus` is its wire form.

use crate::store::StorageMode;

/// `state` (docs/protocol.md#state-machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthState {
    Unknown,
    NotRequired,
    Unauthenticated,
    Authorizing,
    Authorized,
    Refreshing,
    StepUpRequired,
    Error,
}

impl AuthState {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthState::Unknown => "unknown",
            AuthState::NotRequired => "not_required",
            AuthState::Unauthenticated => "unauthenticated",
            AuthState::Authorizing => "authorizing",
            AuthState::Authorized => "authorized",
            AuthState::Refreshing => "refreshing",
            AuthState::StepUpRequired => "step_up_required",
            AuthState::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub server: String,
    pub url: String,
    pub state: AuthState,
    /// Access-token expiry, ms since the epoch, when known.
    pub expires_at: Option<i64>,
    pub scopes: Vec<String>,
    pub issuer: Option<String>,
    pub storage: StorageMode,
    /// What to do, when the state needs action or something went wrong.
    pub message: Option<String>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
