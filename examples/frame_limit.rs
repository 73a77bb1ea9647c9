//! The physical limit for `scripts/bench-protocol.sh`: the least a program
//! can do and still speak the sidecar's framing. It reads LSP frames
//! (`Content-Length: N\r\n\r\n{json}`) from stdin and answers every request
//! with a canned body; nothing is parsed beyond the `id` and `method`
//! members, nothing is looked up, nothing runs concurrently.
//!
//! - `initialize` gets a small `InitializeResult`, `shutdown` gets `null`;
//! - any other request gets an `mcp/authStatus`-shaped result padded to
//!   exactly `--body-bytes N` bytes of body (default 2000; the benchmark
//!   passes the size of the real sidecar's answer with 10 servers);
//! - notifications are read and dropped; `exit` or EOF ends the process.
//!
//! Replies are written through one buffer that is flushed only when no more
//! input is already buffered, as a fast server batches pipelined answers.
//!
//! It trusts its input to be the benchmark driver's compact JSON: `"id"` and
//! `"method"` are found by scanning, which a hostile client could fool.
//!
//! ```sh
//! cargo build --release --example frame_limit
//! ```

use std::error::Error;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// No frame of the benchmark comes near this; a larger one is an error.
const MAX_BODY: usize = 16 * 1024 * 1024;

fn main() -> Result<()> {
    let body_bytes = parse_args()?;
    let mut input = BufReader::with_capacity(64 * 1024, io::stdin().lock());
    let mut output = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut body = Vec::new();
    let mut reply = Vec::new();
    loop {
        if input.buffer().is_empty() {
            // About to block for input: what we have answered must go out.
            output.flush()?;
        }
        let Some(len) = read_header(&mut input)? else {
            break;
        };
        body.resize(len, 0);
        if input.read_exact(&mut body).is_err() {
            break; // EOF inside a body
        }
        let method = string_member(&body, b"\"method\"");
        if method == Some(b"exit") {
            break;
        }
        let Some(id) = raw_member(&body, b"\"id\"") else {
            continue; // a notification
        };
        reply.clear();
        match method {
            Some(b"initialize") => {
                reply.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
                reply.extend_from_slice(id);
                reply.extend_from_slice(
                    br#","result":{"capabilities":{"experimental":{"mcpAuth":{"version":1}}},"serverInfo":{"name":"frame-limit","version":"0"}}}"#,
                );
            }
            Some(b"shutdown") => {
                reply.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
                reply.extend_from_slice(id);
                reply.extend_from_slice(br#","result":null}"#);
            }
            _ => status_reply(&mut reply, id, body_bytes),
        }
        write!(output, "Content-Length: {}\r\n\r\n", reply.len())?;
        output.write_all(&reply)?;
    }
    output.flush()?;
    Ok(())
}

fn parse_args() -> Result<usize> {
    let mut body_bytes = 2000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--body-bytes" => {
                let value = args.next().ok_or("--body-bytes needs a number")?;
                body_bytes = value
                    .parse()
                    .map_err(|_| format!("--body-bytes: not a number: {value:?}"))?;
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(body_bytes)
}

/// The `Content-Length` of the next header block; `None` at EOF.
fn read_header(input: &mut impl BufRead) -> Result<Option<usize>> {
    let mut len = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            if len.is_some() {
                break;
            }
            continue;
        }
        if let Some((name, value)) = text.split_at_checked(15)
            && name.eq_ignore_ascii_case(b"content-length:")
        {
            let n: usize = std::str::from_utf8(value)?.trim().parse()?;
            if n > MAX_BODY {
                return Err(format!("frame of {n} bytes").into());
            }
            len = Some(n);
        }
    }
    Ok(len)
}

/// The raw value of member `key` (a number or a string with its quotes),
/// found by scanning.
fn raw_member<'a>(body: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = body[at..].trim_ascii_start().strip_prefix(b":")?;
    let rest = rest.trim_ascii_start();
    let end = rest
        .iter()
        .position(|b| matches!(b, b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n'))?;
    (end > 0).then_some(&rest[..end])
}

/// The contents of string member `key`, found by scanning.
fn string_member<'a>(body: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let raw = raw_member(body, key)?;
    raw.strip_prefix(b"\"")?.strip_suffix(b"\"")
}

/// An `mcp/authStatus`-shaped answer for `id` with ten servers, the last
/// server's `message` padded so the body is exactly `size` bytes (or the
/// unpadded minimum when `size` is smaller than that).
fn status_reply(out: &mut Vec<u8>, id: &[u8], size: usize) {
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id);
    out.extend_from_slice(br#","result":{"servers":["#);
    for i in 0..10 {
        if i > 0 {
            out.push(b',');
        }
        // Writing to a Vec cannot fail.
        let _ = write!(
            out,
            r#"{{"server":"s{i}","url":"https://s{i}.example/mcp","state":"unknown","scopes":[],"storage":"memory","message":""#
        );
        if i == 9 {
            let tail = br#""}]}}"#.len();
            let pad = size.saturating_sub(out.len() + tail);
            out.resize(out.len() + pad, b'x');
        }
        out.extend_from_slice(br#""}"#);
    }
    out.extend_from_slice(b"]}}");
}
