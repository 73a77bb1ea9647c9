//! The editor protocol: JSON-RPC 2.0 with LSP framing on stdio (docs/protocol.md).
//! Only this module knows about JSON-RPC.
//!
//! The path of a message (ARCHITECTURE.md has the picture): a reader
//! thread frames stdin and decodes each body once (`framing`, `message`);
//! the dispatcher task hands requests to tower-lsp-server's `LspService`
//! (lifecycle, routing, `$/cancelRequest`) and the editor's responses to its
//! `ClientSocket`; answers and the sidecar's own notifications go through
//! one bounded queue to a writer thread that flushes once per batch.
//! Every queue is bounded: a client that stops reading stdout makes the
//! sidecar stop reading stdin.

mod backend;
pub mod errors;
mod framing;
mod message;
pub mod protocol;

use backend::Backend;
use framing::{Frame, Out};
use futures::{SinkExt, StreamExt};
use message::Incoming;
use serde_json::Value;
use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tower_lsp_server::LspService;
use tower_lsp_server::jsonrpc::{self, Request};
use tower_service::Service;

/// Batches of messages decoded but not yet dispatched.
const IN_QUEUE: usize = 4;
/// A batch is what one read from stdin brought, up to this many messages
/// or bytes: one wake-up of the dispatcher for all of them.
const BATCH_MESSAGES: usize = 256;
const BATCH_BYTES: usize = 1024 * 1024;
/// Bodies waiting for the writer.
const OUT_QUEUE: usize = 256;
/// Requests being answered at once. Past it, the dispatcher waits (and so
/// stops reading stdin) until one finishes.
const MAX_PENDING: usize = 1024;
/// Requests that may wait on the network or a browser, at once. Past it, a
/// new one is refused at once (1007) instead of queueing behind the others.
pub(crate) const MAX_LONG_PENDING: usize = 256;

/// How long the end of the process waits for credential transactions: one
/// refresh (30 s HTTP timeout plus backoff) fits.
pub(crate) const DRAIN_BOUND: Duration = Duration::from_secs(40);
/// How long the last answers may take to reach stdout at the end.
const FLUSH_BOUND: Duration = Duration::from_secs(2);

/// Serves the protocol on stdin/stdout until `exit`, stdin EOF or a signal
/// to end ([`crate::signals`]).
pub async fn serve() {
    let app_slot = Arc::new(OnceLock::new());
    let slot = app_slot.clone();
    let long = Arc::new(Semaphore::new(MAX_LONG_PENDING));
    let waiting = long.clone();
    let (service, socket) =
        LspService::build(move |client| Backend::new(client, slot.clone(), waiting.clone()))
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

    let (out_tx, out_rx) = mpsc::channel::<Out>(OUT_QUEUE);
    let (in_tx, mut in_rx) = mpsc::channel::<Vec<Incoming>>(IN_QUEUE);
    let answers = out_tx.clone();
    let started = spawn_thread("stdout-writer", move || {
        framing::write_batches(std::io::stdout().lock(), out_rx)
    }) && spawn_thread("stdin-reader", move || read_input(in_tx, answers));
    if !started {
        return;
    }

    // The sidecar's own requests and notifications to the editor.
    let (mut to_editor, editor_answers) = socket.split();
    let notifications = out_tx.clone();
    tokio::spawn(async move {
        while let Some(request) = to_editor.next().await {
            if send_json(&notifications, &request).await.is_err() {
                break;
            }
        }
    });

    let mut dispatcher = Dispatcher {
        service,
        editor_answers,
        out: out_tx.clone(),
        all: Arc::new(Semaphore::new(MAX_PENDING)),
        long,
    };
    let serving = async {
        while let Some(batch) = in_rx.recv().await {
            for incoming in batch {
                if dispatcher.handle(incoming).await.is_break() {
                    return;
                }
            }
        }
    };
    // A signal ends the session wherever the loop is, even while it waits
    // for an editor that stopped reading stdout.
    tokio::select! {
        () = serving => {}
        _ = crate::signals::termination() => {}
    }

    // `exit` without `shutdown`, stdin EOF, or a signal (SIGTERM, SIGHUP,
    // SIGINT; Ctrl-C, Ctrl-Break, console close): a refresh or logout already
    // begun still finishes (docs/protocol.md#transport-and-lifecycle) before
    // the process ends.
    if let Some(app) = app_slot.get() {
        app.drain(DRAIN_BOUND).await;
    }
    // Everything answered so far reaches stdout before the caller ends the
    // process.
    // Bounded as a whole: an editor that stopped reading stdout must not
    // keep the process alive (docs/protocol.md#transport-and-lifecycle).
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let flushed = async {
        if out_tx.send(Out::Flush(done_tx)).await.is_ok() {
            let _ = tokio::task::spawn_blocking(move || done_rx.recv_timeout(FLUSH_BOUND)).await;
        }
    };
    let _ = tokio::time::timeout(FLUSH_BOUND, flushed).await;
}

/// Hands each decoded message to the service (or the editor's answers to
/// the client socket) and admits requests within the bounds.
struct Dispatcher {
    service: LspService<Backend>,
    editor_answers: <tower_lsp_server::ClientSocket as tower_lsp_server::Loopback>::ResponseSink,
    out: mpsc::Sender<Out>,
    /// Requests in flight, of any kind.
    all: Arc<Semaphore>,
    /// Requests in flight that may wait on the network or a browser.
    long: Arc<Semaphore>,
}

impl Dispatcher {
    /// Breaks once the service has exited (`exit`).
    async fn handle(&mut self, incoming: Incoming) -> ControlFlow<()> {
        let request = match incoming {
            Incoming::Response(response) => {
                let _ = self.editor_answers.send(response).await;
                return ControlFlow::Continue(());
            }
            Incoming::Request(request) => request,
        };
        // Ready unless the service has exited.
        let service = &mut self.service;
        if futures::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .is_err()
        {
            return ControlFlow::Break(());
        }
        let method = request.method().to_owned();
        if method == "initialize" {
            // The service is not ready again until `initialize` is done
            // (and does not wake anyone when it is): run it here.
            if let Ok(Some(response)) = self.service.call(request).await {
                let _ = send_json(&self.out, &response).await;
            }
            return ControlFlow::Continue(());
        }
        let long_permit = if request.id().is_some() && may_wait(&request) {
            match self.long.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    let id = request.id().cloned().unwrap_or(jsonrpc::Id::Null);
                    let refusal = jsonrpc::Response::from_error(id, errors::too_many_waiting());
                    let _ = send_json(&self.out, &refusal).await;
                    return ControlFlow::Continue(());
                }
            }
        } else {
            None
        };
        let Ok(permit) = self.all.clone().acquire_owned().await else {
            return ControlFlow::Break(());
        };
        let answer = self.service.call(request);
        let out = self.out.clone();
        tokio::spawn(async move {
            if let Ok(Some(response)) = answer.await {
                let _ = send_json(&out, &response).await;
            }
            drop((permit, long_permit));
        });
        if method == "exit" {
            // docs/protocol.md#transport-and-lifecycle: the process ends at
            // once, even with stdin open.
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// Requests that may wait on the network or a browser; the others are
/// answered from memory (docs/protocol.md#transport-and-lifecycle: they never wait behind these).
/// `mcp/accessToken` takes its permit in `backend` only when it must
/// refresh.
fn may_wait(request: &Request) -> bool {
    match request.method() {
        protocol::AUTHORIZE
        | protocol::COMPLETE_AUTHORIZATION
        | protocol::HANDLE_CHALLENGE
        | protocol::LOGOUT => true,
        protocol::AUTH_STATUS => request
            .params()
            .and_then(|p| p.get("probe"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        _ => false,
    }
}

/// The reader thread: frames stdin, decodes each body once, and answers
/// what cannot be decoded itself. Blocks when the dispatcher (or, for its
/// own answers, the writer) is behind: that is the backpressure.
fn read_input(to_dispatcher: mpsc::Sender<Vec<Incoming>>, answers: mpsc::Sender<Out>) {
    let stdin = std::io::stdin();
    let mut input = std::io::BufReader::with_capacity(64 * 1024, stdin.lock());
    let mut body = Vec::new();
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    // Hands the batch over; false when the dispatcher is gone (`exit`).
    let send = |batch: &mut Vec<Incoming>, bytes: &mut usize| {
        *bytes = 0;
        batch.is_empty() || to_dispatcher.blocking_send(std::mem::take(batch)).is_ok()
    };
    loop {
        // What is decoded goes out before a read that may block.
        if !framing::whole_frame_buffered(input.buffer()) && !send(&mut batch, &mut batch_bytes) {
            return;
        }
        let refusal = match framing::read_frame(&mut input, &mut body) {
            Ok(Frame::Body) => match message::decode(&body) {
                Ok(incoming) => {
                    batch.push(incoming);
                    batch_bytes += body.len();
                    if (batch.len() >= BATCH_MESSAGES || batch_bytes >= BATCH_BYTES)
                        && !send(&mut batch, &mut batch_bytes)
                    {
                        return;
                    }
                    None
                }
                // Answered to the editor; a log line per bad message would
                // let a flood of them fill the log too.
                Err(answer) => {
                    tracing::debug!("answered an undecodable message with an error");
                    Some(answer)
                }
            },
            Ok(Frame::TooLarge(len)) => {
                // At most one line per `MAX_MESSAGE` read.
                tracing::warn!(
                    bytes = len,
                    limit = framing::MAX_MESSAGE,
                    "refusing an oversized message"
                );
                Some(message::error(
                    Value::Null,
                    message::INVALID_REQUEST,
                    &format!(
                        "message of {len} bytes exceeds the limit of {} bytes",
                        framing::MAX_MESSAGE
                    ),
                ))
            }
            Ok(Frame::BadHeader(why)) => {
                tracing::debug!(%why, "malformed message header");
                Some(message::error(
                    Value::Null,
                    message::PARSE_ERROR,
                    &format!("malformed header: {why}"),
                ))
            }
            Ok(Frame::Eof) => {
                send(&mut batch, &mut batch_bytes);
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "reading stdin failed");
                send(&mut batch, &mut batch_bytes);
                return;
            }
        };
        // A body of megabytes is not kept for the next small message.
        if body.capacity() > 1024 * 1024 {
            body = Vec::new();
        }
        if let Some(answer) = refusal
            && let Ok(bytes) = serde_json::to_vec(&answer)
            && answers.blocking_send(Out::Body(bytes)).is_err()
        {
            return;
        }
    }
}

async fn send_json<T: serde::Serialize>(out: &mpsc::Sender<Out>, message: &T) -> Result<(), ()> {
    let bytes = serde_json::to_vec(message).map_err(|_| ())?;
    out.send(Out::Body(bytes)).await.map_err(|_| ())
}

fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) -> bool {
    match std::thread::Builder::new().name(name.into()).spawn(f) {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, thread = name, "cannot start a thread");
            false
        }
    }
}
