//! The editor protocol: JSON-RPC 2.0 with LSP framing on stdio (SPEC §3).
//! Only this module knows about JSON-RPC.

mod backend;
pub mod errors;
mod framing;
pub mod protocol;

use backend::Backend;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower_lsp_server::{LspService, Server};

/// High enough that any number of slow requests (authorizations waiting for
/// a browser, probes) never delay a status request or a cancellation.
const CONCURRENCY: usize = 1024;

/// How long the end of the process waits for credential transactions: one
/// refresh (30 s HTTP timeout plus backoff) fits.
const DRAIN_BOUND: Duration = Duration::from_secs(40);

/// Serves the protocol on stdin/stdout until `exit` or stdin EOF.
pub async fn serve() {
    let app_slot = Arc::new(OnceLock::new());
    let slot = app_slot.clone();
    let (service, socket) = LspService::build(move |client| Backend::new(client, slot.clone()))
        .custom_method(protocol::AUTH_STATUS, Backend::auth_status)
        .custom_method(protocol::AUTHORIZE, Backend::authorize)
        .custom_method(
            protocol::COMPLETE_AUTHORIZATION,
            Backend::complete_authorization,
        )
        .custom_method(protocol::ACCESS_TOKEN, Backend::access_token)
        .custom_method(protocol::HANDLE_CHALLENGE, Backend::handle_challenge)
        .custom_method(protocol::LOGOUT, Backend::logout)
        .finish();
    let (server_in, pump_writer) = tokio::io::duplex(64 * 1024);
    let (server_out_reader, server_out) = tokio::io::duplex(64 * 1024);
    let (out_tx, out_rx) = tokio::sync::mpsc::unbounded_channel();

    let writer = tokio::spawn(framing::pump_out(tokio::io::stdout(), out_rx));
    let collector = tokio::spawn(framing::collect_server_output(
        server_out_reader,
        out_tx.clone(),
    ));
    let pump_tx = out_tx.clone();
    tokio::spawn(async move {
        if let Err(e) = framing::pump_in(tokio::io::stdin(), pump_writer, pump_tx).await {
            tracing::error!(error = %e, "reading stdin failed");
        }
    });

    Server::new(server_in, server_out, socket)
        .concurrency_level(CONCURRENCY)
        .serve(service)
        .await;

    // `exit` without `shutdown`, or stdin EOF: a refresh or logout already
    // begun still finishes (SPEC §6) before the process ends.
    if let Some(app) = app_slot.get() {
        app.drain(DRAIN_BOUND).await;
    }

    // Everything the server wrote is in the duplex; let it reach stdout
    // before the caller ends the process.
    let _ = tokio::time::timeout(Duration::from_secs(2), collector).await;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    if out_tx.send(framing::Out::Flush(done_tx)).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), done_rx).await;
    }
    drop(writer);
}
