//! A guard between the real stdin and the JSON-RPC codec.
//!
//! tower-lsp-server's codec buffers a whole message before parsing it, so a
//! hostile or broken `Content-Length: 99999999999` would make it allocate
//! that much. This pump re-frames stdin: headers are read with a small bound,
//! bodies up to [`MAX_MESSAGE`] are passed through, larger bodies are read
//! into a fixed buffer and discarded, and a small stand-in body is passed on
//! instead so the peer still gets an error (-32600, id null) and the next
//! message is served normally.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// SPEC-independent sanity bound: no request of this protocol is anywhere
/// near this size.
pub const MAX_MESSAGE: u64 = 16 * 1024 * 1024;
const MAX_HEADER_LINE: usize = 8 * 1024;
/// Valid JSON that is not a JSON-RPC message: answered with -32600.
const OVERSIZED_STAND_IN: &[u8] = br#"{"error":"message too large"}"#;
/// Not JSON at all: answered with -32700.
const BAD_HEADER_STAND_IN: &[u8] = b"{";

/// Copies framed messages from `input` to `output` until EOF (or until the
/// reader side is closed), enforcing the limits above.
pub async fn pump<R, W>(input: R, mut output: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut input = BufReader::new(input);
    loop {
        let mut content_length: Option<Result<u64, String>> = None;
        let mut saw_header = false;
        loop {
            let mut line = Vec::new();
            let n = (&mut input)
                .take(MAX_HEADER_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .await?;
            if n == 0 {
                return Ok(()); // EOF between messages (or mid-header): done
            }
            if line.len() > MAX_HEADER_LINE {
                content_length = Some(Err("header line too long".into()));
                // Skip the rest of this overlong line.
                let mut sink = Vec::new();
                input.read_until(b'\n', &mut sink).await?;
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            if text.is_empty() {
                if saw_header {
                    break;
                }
                continue; // tolerate stray blank lines between messages
            }
            saw_header = true;
            if let Some((name, value)) = text.split_once(':') {
                if name.trim().eq_ignore_ascii_case("content-length") {
                    content_length = Some(
                        value
                            .trim()
                            .parse::<u64>()
                            .map_err(|_| format!("bad Content-Length {:?}", value.trim())),
                    );
                }
            }
        }
        match content_length {
            Some(Ok(len)) if len <= MAX_MESSAGE => {
                let mut body = Vec::with_capacity(len as usize);
                let read = (&mut input).take(len).read_to_end(&mut body).await?;
                if (read as u64) < len {
                    return Ok(()); // EOF inside a body
                }
                write_frame(&mut output, &body).await?;
            }
            Some(Ok(len)) => {
                tracing::error!(bytes = len, limit = MAX_MESSAGE, "refusing an oversized message");
                let skipped = tokio::io::copy(&mut (&mut input).take(len), &mut tokio::io::sink()).await?;
                if skipped < len {
                    return Ok(());
                }
                write_frame(&mut output, OVERSIZED_STAND_IN).await?;
            }
            Some(Err(why)) => {
                tracing::error!(%why, "malformed message header");
                write_frame(&mut output, BAD_HEADER_STAND_IN).await?;
            }
            None => {
                tracing::error!("message without a Content-Length header");
                write_frame(&mut output, BAD_HEADER_STAND_IN).await?;
            }
        }
    }
}

async fn write_frame<W: AsyncWrite + Unpin>(output: &mut W, body: &[u8]) -> std::io::Result<()> {
    output
        .write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())
        .await?;
    output.write_all(body).await?;
    output.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(input: Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        pump(&input[..], &mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn passes_through_and_refuses_oversized_without_buffering() {
        let mut input = b"Content-Length: 2\r\n\r\n{}".to_vec();
        input.extend_from_slice(format!("Content-Length: {}\r\n\r\n", MAX_MESSAGE + 1).as_bytes());
        input.extend(std::iter::repeat_n(b'x', (MAX_MESSAGE + 1) as usize));
        input.extend_from_slice(b"content-length: 3\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n[1]");
        let out = String::from_utf8(run(input).await).unwrap();
        assert_eq!(
            out,
            format!(
                "Content-Length: 2\r\n\r\n{{}}Content-Length: {}\r\n\r\n{}Content-Length: 3\r\n\r\n[1]",
                OVERSIZED_STAND_IN.len(),
                String::from_utf8_lossy(OVERSIZED_STAND_IN)
            )
        );
    }

    #[tokio::test]
    async fn bad_headers_become_parse_errors_and_eof_ends_cleanly() {
        let out = run(b"Content-Length: abc\r\n\r\nX-Other: 1\r\n\r\nContent-Length: 10\r\n\r\n{}".to_vec()).await;
        assert_eq!(out, b"Content-Length: 1\r\n\r\n{Content-Length: 1\r\n\r\n{".to_vec());
    }
}
