//! The editor protocol: JSON-RPC 2.0 with LSP framing on stdio (SPEC §3).
//! Only this module knows about JSON-RPC.

mod backend;
pub mod errors;
mod framing;
pub mod protocol;

use backend::Backend;
use tower_lsp_server::{LspService, Server};

/// High enough that any number of slow requests (authorizations waiting for
/// a browser, probes) never delay a status request or a cancellation.
const CONCURRENCY: usize = 1024;

/// Serves the protocol on stdin/stdout until `exit` or stdin EOF.
pub async fn serve() {
    let (service, socket) = LspService::build(Backend::new)
        .custom_method(protocol::AUTH_STATUS, Backend::auth_status)
        .finish();
    let (reader, writer) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        if let Err(e) = framing::pump(tokio::io::stdin(), writer).await {
            tracing::error!(error = %e, "reading stdin failed");
        }
    });
    Server::new(reader, tokio::io::stdout(), socket)
        .concurrency_level(CONCURRENCY)
        .serve(service)
        .await;
}
