//! Domain errors as JSON-RPC error objects (docs/protocol.md#errors).

use super::protocol::ServerStatus;
use crate::error::Error;
use serde_json::json;
use tower_lsp_server::jsonrpc::{Error as RpcError, ErrorCode};

pub const AUTHORIZATION_REQUIRED: i64 = 1001;
pub const AUTHORIZATION_FAILED: i64 = 1002;
pub const DISCOVERY_FAILED: i64 = 1003;
pub const STORAGE_UNAVAILABLE: i64 = 1004;
pub const TIMEOUT: i64 = 1005;
pub const INSECURE_URL: i64 = 1006;
pub const UNAVAILABLE: i64 = 1007;

pub fn to_rpc(e: &Error) -> RpcError {
    let message = e.to_string();
    let (code, data) = match e {
        Error::AuthorizationRequired(status) => (
            ErrorCode::ServerError(AUTHORIZATION_REQUIRED),
            serde_json::to_value(ServerStatus::from(status.as_ref())).ok(),
        ),
        Error::AuthorizationFailed { error, description } => (
            ErrorCode::ServerError(AUTHORIZATION_FAILED),
            Some(json!({ "error": error, "errorDescription": description })),
        ),
        Error::DiscoveryFailed(_) => (ErrorCode::ServerError(DISCOVERY_FAILED), None),
        Error::StorageUnavailable(_) => (ErrorCode::ServerError(STORAGE_UNAVAILABLE), None),
        Error::Timeout(_) => (ErrorCode::ServerError(TIMEOUT), None),
        Error::InsecureUrl(_) => (ErrorCode::ServerError(INSECURE_URL), None),
        Error::InvalidParams(_) => (ErrorCode::InvalidParams, None),
        Error::Unavailable(_) => (ErrorCode::ServerError(UNAVAILABLE), None),
    };
    RpcError {
        code,
        message: message.into(),
        data,
    }
}

pub fn invalid_params(message: impl Into<String>) -> RpcError {
    RpcError {
        code: ErrorCode::InvalidParams,
        message: message.into().into(),
        data: None,
    }
}

/// 1007 for a request that would wait on the network or a browser when
/// [`MAX_LONG_PENDING`](super::MAX_LONG_PENDING) such requests are pending.
pub fn too_many_waiting() -> RpcError {
    RpcError {
        code: ErrorCode::ServerError(UNAVAILABLE),
        message: format!(
            "{} requests that wait on the network or a browser are already pending; try again when some finish",
            super::MAX_LONG_PENDING
        )
        .into(),
        data: None,
    }
}
