//! The LSP base protocol on blocking byte streams: `Content-Length` framed
//! bodies in ([`read_frame`]) and out ([`write_batches`]).
//!
//! Both ends run on threads of their own, with plain blocking I/O: a read
//! or a write is one system call, not a hop through the async runtime's
//! blocking pool, and an idle thread sleeps in the kernel. Every length is
//! bounded before anything is allocated for it.

use std::io::{self, BufRead, Read, Write};

/// No message of this protocol comes anywhere near this size (the largest,
/// `initialize` with every server configured, is a few KiB). Kept small
/// because a decoded body takes up to ~16 times its size in memory (`[0,0,…]`
/// is 2 bytes of text per 32-byte value), and a few bodies may be queued.
pub const MAX_MESSAGE: u64 = 1024 * 1024;
/// A header line longer than this is not a header.
const MAX_HEADER_LINE: usize = 8 * 1024;
/// Header lines per message before the block is given up on.
const MAX_HEADER_LINES: usize = 64;

/// What one read from the input gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete body, in the buffer passed to [`read_frame`].
    Body,
    /// A body over [`MAX_MESSAGE`], skipped without being stored.
    TooLarge(u64),
    /// A header block that frames nothing; reading resumes after it.
    BadHeader(String),
    /// The input ended (possibly inside a message).
    Eof,
}

/// Reads the next framed message into `body` (cleared first).
pub fn read_frame<R: BufRead>(input: &mut R, body: &mut Vec<u8>) -> io::Result<Frame> {
    body.clear();
    let length = match read_header(input)? {
        None => return Ok(Frame::Eof),
        Some(Err(why)) => return Ok(Frame::BadHeader(why)),
        Some(Ok(n)) => n,
    };
    if length > MAX_MESSAGE {
        let skipped = io::copy(&mut input.by_ref().take(length), &mut io::sink())?;
        return Ok(if skipped < length {
            Frame::Eof
        } else {
            Frame::TooLarge(length)
        });
    }
    // `length` is at most `MAX_MESSAGE` here; the buffer is reused across frames.
    let read = input.by_ref().take(length).read_to_end(body)?;
    Ok(if (read as u64) < length {
        Frame::Eof
    } else {
        Frame::Body
    })
}

/// Reads one header block: `None` at EOF, else the `Content-Length` or why
/// there is none.
fn read_header<R: BufRead>(input: &mut R) -> io::Result<Option<Result<u64, String>>> {
    let mut length: Option<Result<u64, String>> = None;
    let mut lines = 0usize;
    let mut line = Vec::with_capacity(64);
    loop {
        line.clear();
        let n = input
            .by_ref()
            .take(MAX_HEADER_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        if line.len() > MAX_HEADER_LINE {
            // Skip the rest of this line, whatever its length, in bounded
            // steps.
            while !line.ends_with(b"\n") {
                line.clear();
                if input
                    .by_ref()
                    .take(MAX_HEADER_LINE as u64)
                    .read_until(b'\n', &mut line)?
                    == 0
                {
                    return Ok(None);
                }
            }
            length = Some(Err("header line too long".into()));
            lines += 1;
            continue;
        }
        let text = trim_eol(&line);
        // After a bad header the unframed body runs straight into the next
        // message's header on the same line: resynchronise there.
        let text = match find_ignore_case(text, b"content-length:") {
            Some(at) if at > 0 => &text[at..],
            _ => text,
        };
        if text.is_empty() {
            if lines > 0 {
                break;
            }
            continue; // stray blank lines between messages
        }
        lines += 1;
        if lines > MAX_HEADER_LINES {
            length = Some(Err("too many header lines".into()));
        }
        if let Some(colon) = text.iter().position(|&b| b == b':') {
            let (name, value) = (&text[..colon], &text[colon + 1..]);
            if name.trim_ascii().eq_ignore_ascii_case(b"content-length") {
                let value = value.trim_ascii();
                length = Some(
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse::<u64>().ok())
                        .ok_or_else(|| {
                            format!(
                                "bad Content-Length {:?}",
                                String::from_utf8_lossy(&value[..value.len().min(40)])
                            )
                        }),
                );
            }
        }
    }
    Ok(Some(
        length.unwrap_or_else(|| Err("no Content-Length header".into())),
    ))
}

/// Whether `buffered` starts with a whole frame, headers and body: reading
/// it then needs no system call, and cannot block. Decided by the header
/// parser itself, so the two never disagree (a duplicate `Content-Length`:
/// the last one counts for both).
pub fn whole_frame_buffered(buffered: &[u8]) -> bool {
    let mut rest = buffered;
    match read_header(&mut rest) {
        Ok(Some(Ok(length))) => rest.len() as u64 >= length,
        // A complete header block that frames nothing: answered at once.
        Ok(Some(Err(_))) => true,
        // The header block is not all there yet.
        Ok(None) | Err(_) => false,
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    &line[..end]
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// What the writer thread is given.
#[derive(Debug)]
pub enum Out {
    /// One message body; the writer adds the header.
    Body(Vec<u8>),
    /// Answer once everything queued before it has been written.
    Flush(std::sync::mpsc::Sender<()>),
}

/// Writes at most this much before flushing, even if more is queued.
const BATCH_BYTES: usize = 256 * 1024;

/// The writer thread: takes everything queued, writes it framed, flushes
/// once per batch. Ends when every sender is gone or the output is closed
/// (the editor went away).
pub fn write_batches<W: Write>(mut output: W, mut queue: tokio::sync::mpsc::Receiver<Out>) {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut acks = Vec::new();
    while let Some(first) = queue.blocking_recv() {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Out::Body(body) => {
                    // A `Vec` write cannot fail.
                    let _ = write!(batch, "Content-Length: {}\r\n\r\n", body.len());
                    batch.extend_from_slice(&body);
                }
                Out::Flush(ack) => acks.push(ack),
            }
            if batch.len() < BATCH_BYTES {
                next = queue.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            if output
                .write_all(&batch)
                .and_then(|()| output.flush())
                .is_err()
            {
                return;
            }
            batch.clear();
            if batch.capacity() > 4 * BATCH_BYTES {
                batch.shrink_to(64 * 1024);
            }
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8]) -> Vec<(Frame, String)> {
        let mut reader = io::BufReader::with_capacity(16, input);
        let mut body = Vec::new();
        let mut out = Vec::new();
        loop {
            let f = read_frame(&mut reader, &mut body).unwrap();
            let eof = f == Frame::Eof;
            out.push((f, String::from_utf8_lossy(&body).into_owned()));
            if eof {
                return out;
            }
        }
    }

    #[test]
    fn frames_bodies_and_survives_bad_headers() {
        let mut input = Vec::new();
        input.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
        input.extend_from_slice(
            b"\r\ncontent-length: 3\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n[1]",
        );
        input.extend_from_slice(b"Content-Length: abc\r\n\r\n");
        // The bad message's body runs into the next header on one line.
        input.extend_from_slice(b"{\"id\":1}Content-Length: 1\r\n\r\n7");
        input.extend_from_slice(b"X-Other: 1\r\n\r\n");
        input.extend_from_slice(b"Content-Length: 10\r\n\r\n{}"); // EOF inside
        let got = frames(&input);
        let kinds: Vec<_> = got.iter().map(|(f, b)| (f, b.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (&Frame::Body, "{}"),
                (&Frame::Body, "[1]"),
                (&Frame::BadHeader("bad Content-Length \"abc\"".into()), ""),
                (&Frame::Body, "7"),
                (&Frame::BadHeader("no Content-Length header".into()), ""),
                (&Frame::Eof, "{}"),
            ]
        );
    }

    #[test]
    fn a_whole_buffered_frame_is_recognised() {
        let table: [(&[u8], bool); 9] = [
            (b"Content-Length: 2\r\n\r\n{}", true),
            // The last of two lengths counts, as for `read_frame`.
            (b"Content-Length: 2\r\nContent-Length: 9\r\n\r\n{}", false),
            (b"Content-Length: 9\r\nContent-Length: 2\r\n\r\n{}", true),
            (b"\r\n\r\nContent-Length: 2\r\n\r\n{}", true),
            (b"Content-Length: 2\r\n\r\n{}Content-Length: 9", true),
            (b"content-length:3\r\nX: y\r\n\r\n[1]", true),
            (b"Content-Length: 3\r\n\r\n{}", false),
            (b"Content-Length: 2\r\n", false),
            // A header block without a length is refused without a read.
            (b"X: y\r\n\r\n{}", true),
        ];
        for (buffered, whole) in table {
            assert_eq!(
                whole_frame_buffered(buffered),
                whole,
                "{:?}",
                String::from_utf8_lossy(buffered)
            );
        }
    }

    #[test]
    fn oversized_bodies_and_lines_are_skipped_without_storing_them() {
        let mut input = format!("Content-Length: {}\r\n\r\n", MAX_MESSAGE + 1).into_bytes();
        input.extend(std::iter::repeat_n(b'x', (MAX_MESSAGE + 1) as usize));
        input.extend(std::iter::repeat_n(b'h', 3 * MAX_HEADER_LINE));
        input.extend_from_slice(b"\r\n\r\nContent-Length: 2\r\n\r\nok");
        let mut reader = io::BufReader::new(&input[..]);
        let mut body = Vec::new();
        assert_eq!(
            read_frame(&mut reader, &mut body).unwrap(),
            Frame::TooLarge(MAX_MESSAGE + 1)
        );
        assert!(body.capacity() < 1024, "nothing was buffered");
        assert_eq!(
            read_frame(&mut reader, &mut body).unwrap(),
            Frame::BadHeader("header line too long".into())
        );
        assert_eq!(read_frame(&mut reader, &mut body).unwrap(), Frame::Body);
        assert_eq!(body, b"ok");
        assert_eq!(read_frame(&mut reader, &mut body).unwrap(), Frame::Eof);
    }

    #[test]
    fn the_writer_frames_everything_queued_and_acknowledges_flushes() {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let (ack_tx, ack_rx) = std::sync::mpsc::channel();
        tx.try_send(Out::Body(b"{}".to_vec())).unwrap();
        tx.try_send(Out::Body(b"[1]".to_vec())).unwrap();
        tx.try_send(Out::Flush(ack_tx)).unwrap();
        drop(tx);
        let mut written = Vec::new();
        write_batches(&mut written, rx);
        assert_eq!(
            written,
            b"Content-Length: 2\r\n\r\n{}Content-Length: 3\r\n\r\n[1]".to_vec()
        );
        assert!(ack_rx.try_recv().is_ok());
    }
}
