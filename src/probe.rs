//! `probe: true` of `mcp/authStatus` (docs/protocol.md#mcpauthstatus): one unauthenticated MCP
//! `initialize` to learn whether a server wants authorization.

use crate::http::{FetchError, root_cause, send_error};
use std::time::Duration;

pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The MCP protocol revision the probe's `initialize` announces.
const PROTOCOL_VERSION: &str = "2025-11-25";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// 2xx: the server answered without asking for authorization.
    NotRequired,
    /// 401, with the `WWW-Authenticate` header if there was one (RFC 6750
    /// §3); kept to seed discovery later.
    Required { www_authenticate: Option<String> },
    /// Anything else: unreachable, timed out, or an unexpected status.
    Failed(String),
}

pub async fn probe(http: &reqwest::Client, url: &str) -> ProbeOutcome {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "mcp-auth-sidecar", "version": env!("CARGO_PKG_VERSION") }
        }
    });
    let response = http
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .json(&body)
        .timeout(PROBE_TIMEOUT)
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return ProbeOutcome::Failed(format!("no answer within {}s", PROBE_TIMEOUT.as_secs()));
        }
        Err(e) => {
            return ProbeOutcome::Failed(match send_error(url, &e) {
                untrusted @ FetchError::Untrusted { .. } => untrusted.to_string(),
                _ => format!("cannot reach the server: {}", root_cause(&e)),
            });
        }
    };
    let status = response.status();
    if status.is_success() {
        // Be polite: a stateful server may have opened a session for us.
        if let Some(session) = response.headers().get("mcp-session-id").cloned() {
            let _ = http
                .delete(url)
                .header("mcp-session-id", session)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
        }
        ProbeOutcome::NotRequired
    } else if status == reqwest::StatusCode::UNAUTHORIZED {
        ProbeOutcome::Required {
            www_authenticate: response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }
    } else {
        ProbeOutcome::Failed(format!(
            "the server answered HTTP {status} to an MCP initialize"
        ))
    }
}
