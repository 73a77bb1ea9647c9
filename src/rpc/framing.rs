//! The guard between the real stdio and tower-lsp-server's codec.
//!
//! Two problems with handing stdin to the codec directly: it buffers a whole
//! message before parsing (a `Content-Length: 99999999999` makes it
//! allocate that much), and tokio-util's `FramedRead` ends the stream after
//! the first body that does not decode, which would end the session on one
//! malformed message. So [`pump_in`] re-frames stdin: headers are read with a
//! small bound; bodies up to [`MAX_MESSAGE`] that parse as JSON-RPC are
//! passed on; larger bodies are skipped through a fixed buffer; anything else
//! is answered here (-32700 / -32600) through [`pump_out`], which owns stdout
//! and interleaves those answers with the server's frames whole.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tower_lsp_server::jsonrpc::{Request, Response};

/// No message of this protocol comes anywhere near this size.
pub const MAX_MESSAGE: u64 = 16 * 1024 * 1024;
const MAX_HEADER_LINE: usize = 8 * 1024;

/// What the stdout writer is asked to do.
#[derive(Debug)]
pub enum Out {
    /// One complete frame (headers and body).
    Frame(Vec<u8>),
    /// Answer once everything queued before this has been written.
    Flush(oneshot::Sender<()>),
}

pub type OutTx = mpsc::UnboundedSender<Out>;

/// Reads framed messages from `input` until EOF, forwarding valid JSON-RPC
/// to `to_server` and answering everything else through `out`.
pub async fn pump_in<R, W>(input: R, mut to_server: W, out: OutTx) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut input = BufReader::new(input);
    loop {
        let Some(header) = read_header(&mut input).await? else {
            return Ok(());
        };
        match header {
            Header::Length(len) if len <= MAX_MESSAGE => {
                let mut body = Vec::with_capacity(len as usize);
                let read = (&mut input).take(len).read_to_end(&mut body).await?;
                if (read as u64) < len {
                    return Ok(()); // EOF inside a body
                }
                match classify(&body) {
                    None => {
                        let body = default_params(body);
                        to_server.write_all(&frame(&body)).await?;
                        to_server.flush().await?;
                    }
                    Some(answer) => {
                        let _ = out.send(Out::Frame(frame(answer.to_string().as_bytes())));
                    }
                }
            }
            Header::Length(len) => {
                tracing::error!(
                    bytes = len,
                    limit = MAX_MESSAGE,
                    "refusing an oversized message"
                );
                let skipped =
                    tokio::io::copy(&mut (&mut input).take(len), &mut tokio::io::sink()).await?;
                if skipped < len {
                    return Ok(());
                }
                let answer = error(
                    serde_json::Value::Null,
                    -32600,
                    &format!("message of {len} bytes exceeds the limit of {MAX_MESSAGE} bytes"),
                );
                let _ = out.send(Out::Frame(frame(answer.to_string().as_bytes())));
            }
            Header::Bad(why) => {
                tracing::error!(%why, "malformed message header");
                let answer = error(
                    serde_json::Value::Null,
                    -32700,
                    &format!("malformed header: {why}"),
                );
                let _ = out.send(Out::Frame(frame(answer.to_string().as_bytes())));
            }
        }
    }
}

/// Copies the server's frames to `stdout` whole, together with the answers
/// `pump_in` queues on `rx`.
pub async fn pump_out<W: AsyncWrite + Unpin>(mut stdout: W, mut rx: mpsc::UnboundedReceiver<Out>) {
    while let Some(item) = rx.recv().await {
        match item {
            Out::Frame(bytes) => {
                if stdout.write_all(&bytes).await.is_err() || stdout.flush().await.is_err() {
                    return; // the editor is gone
                }
            }
            Out::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Splits the server's output (complete frames written by the codec) into
/// frames for [`pump_out`].
pub async fn collect_server_output<R: AsyncRead + Unpin>(
    from_server: R,
    out: OutTx,
) -> std::io::Result<()> {
    let mut input = BufReader::new(from_server);
    while let Some(header) = read_header(&mut input).await? {
        let Header::Length(len) = header else {
            continue;
        };
        let mut body = Vec::with_capacity(len as usize);
        (&mut input).take(len).read_to_end(&mut body).await?;
        if out.send(Out::Frame(frame(&body))).is_err() {
            break;
        }
    }
    Ok(())
}

enum Header {
    Length(u64),
    Bad(String),
}

/// Reads one header block; `None` at EOF.
async fn read_header<R: AsyncRead + Unpin>(
    input: &mut BufReader<R>,
) -> std::io::Result<Option<Header>> {
    let mut length: Option<Result<u64, String>> = None;
    let mut saw_header = false;
    loop {
        let mut line = Vec::new();
        let n = (&mut *input)
            .take(MAX_HEADER_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        if line.len() > MAX_HEADER_LINE {
            length = Some(Err("header line too long".into()));
            let mut rest = Vec::new();
            (&mut *input)
                .take(MAX_MESSAGE)
                .read_until(b'\n', &mut rest)
                .await?;
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let mut text = text.trim_end_matches(['\r', '\n']);
        // After a bad header the unframed body runs straight into the next
        // message's header on the same line: resynchronise there.
        if let Some(at) = text
            .to_ascii_lowercase()
            .find("content-length:")
            .filter(|at| *at > 0)
        {
            text = &text[at..];
        }
        if text.is_empty() {
            if saw_header {
                break;
            }
            continue; // stray blank lines between messages
        }
        saw_header = true;
        if let Some((name, value)) = text.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = Some(
                value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| format!("bad Content-Length {:?}", value.trim())),
            );
        }
    }
    Ok(Some(match length {
        Some(Ok(n)) => Header::Length(n),
        Some(Err(why)) => Header::Bad(why),
        None => Header::Bad("no Content-Length header".into()),
    }))
}

/// `None` when `body` is a JSON-RPC request, notification or response the
/// server can decode; otherwise the error response to send back.
fn classify(body: &[u8]) -> Option<serde_json::Value> {
    if serde_json::from_slice::<Request>(body).is_ok()
        || serde_json::from_slice::<Response>(body).is_ok()
    {
        return None;
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Err(e) => Some(error(
            serde_json::Value::Null,
            -32700,
            &format!("parse error: {e}"),
        )),
        Ok(v) => {
            let id = match v.get("id") {
                Some(id @ (serde_json::Value::Number(_) | serde_json::Value::String(_))) => {
                    id.clone()
                }
                _ => serde_json::Value::Null,
            };
            Some(error(
                id,
                -32600,
                "invalid request: not a JSON-RPC 2.0 message",
            ))
        }
    }
}

/// Every `mcp/*` request's params are an object whose fields are all
/// optional or named in the error (SPEC §3.2), so absent or `null` params
/// mean `{}`: clients such as Neovim's send none for `mcp/authStatus`.
/// (tower-lsp-server would answer "Missing params field" otherwise.)
fn default_params(body: Vec<u8>) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return body;
    };
    let is_ours = v
        .get("method")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|m| m.starts_with("mcp/"));
    if !is_ours || !v.get("params").is_none_or(serde_json::Value::is_null) {
        return body;
    }
    v["params"] = serde_json::json!({});
    serde_json::to_vec(&v).unwrap_or(body)
}

fn error(id: serde_json::Value, code: i64, message: &str) -> serde_json::Value {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(input: Vec<u8>) -> (String, Vec<serde_json::Value>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut forwarded = Vec::new();
        pump_in(&input[..], &mut forwarded, tx).await.unwrap();
        let mut answers = Vec::new();
        while let Ok(Out::Frame(f)) = rx.try_recv() {
            let body = &f[f.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
            answers.push(serde_json::from_slice(body).unwrap());
        }
        (String::from_utf8(forwarded).unwrap(), answers)
    }

    #[tokio::test]
    async fn forwards_valid_messages_and_refuses_oversized_ones() {
        let ok = br#"{"jsonrpc":"2.0","id":1,"method":"x"}"#;
        let mut input = format!("Content-Length: {}\r\n\r\n", ok.len()).into_bytes();
        input.extend_from_slice(ok);
        input.extend_from_slice(format!("Content-Length: {}\r\n\r\n", MAX_MESSAGE + 1).as_bytes());
        input.extend(std::iter::repeat_n(b'x', (MAX_MESSAGE + 1) as usize));
        input.extend_from_slice(b"content-length: 38\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n");
        input.extend_from_slice(br#"{"jsonrpc":"2.0","id":2,"method":"y"} "#);
        let (forwarded, answers) = run(input).await;
        assert_eq!(
            forwarded.matches("Content-Length").count(),
            2,
            "{forwarded}"
        );
        assert!(forwarded.contains(r#""id":2"#));
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0]["error"]["code"], -32600);
        assert_eq!(answers[0]["id"], serde_json::Value::Null);
    }

    #[tokio::test]
    async fn invalid_bodies_and_headers_are_answered_here() {
        let mut input = Vec::new();
        for body in [&b"{oops"[..], br#"{"id":5,"method":3}"#, b"[1,2]"] {
            input.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            input.extend_from_slice(body);
        }
        input.extend_from_slice(b"Content-Length: abc\r\n\r\n");
        // The bad message's body runs into a valid one, which is not lost.
        let ok = br#"{"jsonrpc":"2.0","id":9,"method":"x"}"#;
        input.extend_from_slice(
            format!("{{\"id\":1}}Content-Length: {}\r\n\r\n", ok.len()).as_bytes(),
        );
        input.extend_from_slice(ok);
        input.extend_from_slice(b"Content-Length: 10\r\n\r\n{}"); // EOF inside the body
        let (forwarded, answers) = run(input).await;
        assert!(forwarded.contains(r#""id":9"#), "{forwarded}");
        assert_eq!(
            forwarded.matches("Content-Length").count(),
            1,
            "{forwarded}"
        );
        let codes: Vec<_> = answers
            .iter()
            .map(|a| a["error"]["code"].as_i64().unwrap())
            .collect();
        assert_eq!(codes, vec![-32700, -32600, -32600, -32700]);
        assert_eq!(answers[1]["id"], 5);
    }
}
