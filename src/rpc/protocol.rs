//! The editor-facing wire types (docs/protocol.md). Every type here has a JSON
//! Schema in `schemas/`; tests validate real responses against them.

use crate::status::Status;
use crate::store::StorageChoice;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The editor protocol's version, once for both places it is announced:
/// `capabilities.experimental.mcpAuth.version` in the `initialize` result
/// (docs/protocol.md#capability-negotiation) and `(protocol N)` in
/// `mcp-auth-sidecar --version`, which editor integrations read before
/// starting the sidecar (`:checkhealth`).
/// It changes only with a change that breaks existing integrations.
macro_rules! protocol_version {
    () => {
        1
    };
}
pub(crate) use protocol_version;
pub const PROTOCOL_VERSION: u32 = protocol_version!();

pub const AUTH_STATUS: &str = "mcp/authStatus";
pub const AUTHORIZE: &str = "mcp/authorize";
pub const COMPLETE_AUTHORIZATION: &str = "mcp/completeAuthorization";
pub const ACCESS_TOKEN: &str = "mcp/accessToken";
pub const HANDLE_CHALLENGE: &str = "mcp/handleChallenge";
pub const LOGOUT: &str = "mcp/logout";
pub const AUTH_STATUS_CHANGED: &str = "mcp/authStatusChanged";
pub const AUTHORIZATION_PENDING: &str = "mcp/authorizationPending";

/// `initializationOptions` (docs/protocol.md#initialization-options). Unknown
/// keys are logged, not fatal, so older sidecars work with newer plugins.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializationOptions {
    #[serde(default)]
    pub servers: Option<Map<String, Value>>,
    #[serde(default)]
    pub config_files: Option<Vec<String>>,
    #[serde(default)]
    pub discover_config_files: Option<bool>,
    #[serde(default)]
    pub storage: Option<StorageChoice>,
    #[serde(default)]
    pub browser: Option<BrowserOption>,
    #[serde(default)]
    pub callback_host: Option<String>,
    /// Seconds a browser flow may take (default 300, docs/protocol.md#initialization-options).
    #[serde(default)]
    pub authorization_timeout: Option<u64>,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// `"auto"`, `"none"`, or a command with arguments (the URL is appended).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum BrowserOption {
    Named(BrowserName),
    Command(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrowserName {
    Auto,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthStatusParams {
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub probe: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthStatusResult {
    pub servers: Vec<ServerStatus>,
    /// Configuration files or entries that could not be used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_problems: Vec<String>,
}

/// docs/protocol.md#serverstatus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerStatus {
    pub server: String,
    pub url: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    pub storage: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl From<&Status> for ServerStatus {
    fn from(s: &Status) -> Self {
        Self {
            server: s.server.clone(),
            url: s.url.clone(),
            state: s.state.as_str().to_owned(),
            expires_at: s.expires_at,
            scopes: s.scopes.clone(),
            issuer: s.issuer.clone(),
            storage: s.storage.as_str().to_owned(),
            message: s.message.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizeParams {
    pub server: String,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub force: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteAuthorizationParams {
    pub server: String,
    pub callback_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessTokenParams {
    pub server: String,
    #[serde(default)]
    pub min_validity_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessTokenResult {
    pub server: String,
    pub access_token: String,
    pub token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HandleChallengeParams {
    pub server: String,
    pub status: u16,
    #[serde(default)]
    pub www_authenticate: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HandleChallengeResult {
    pub action: &'static str,
    pub status: ServerStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogoutParams {
    pub server: String,
    #[serde(default)]
    pub revoke: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogoutResult {
    pub server: String,
    pub revoked: bool,
    pub status: ServerStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationPendingParams {
    pub server: String,
    pub url: String,
}

/// `mcp/authorizationPending`.
pub enum AuthorizationPending {}

impl tower_lsp_server::ls_types::notification::Notification for AuthorizationPending {
    type Params = AuthorizationPendingParams;
    const METHOD: &'static str = AUTHORIZATION_PENDING;
}

/// `mcp/authStatusChanged`.
pub enum AuthStatusChanged {}

impl tower_lsp_server::ls_types::notification::Notification for AuthStatusChanged {
    type Params = ServerStatus;
    const METHOD: &'static str = AUTH_STATUS_CHANGED;
}

/// Parses request params, naming the offending field in the error.
pub fn parse_params<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(params).map_err(|e| crate::config::describe_serde_error(&e))
}
