//! The loopback redirect listener (RFC 8252 §7.3, docs/protocol.md#mcpauthorize): accepts
//! exactly one callback whose `state` matches, answers the browser with a
//! small page that reflects nothing unescaped, then stops listening.

use crate::secret::Secret;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const CALLBACK_PATH: &str = "/callback";
const MAX_REQUEST_LINE: usize = 16 * 1024;

/// A callback with the right `state`, and the way to tell the browser how
/// the flow ended.
#[derive(Debug)]
pub struct Callback {
    pub params: Vec<(String, String)>,
    pub verdict: oneshot::Sender<Result<(), String>>,
}

#[derive(Debug)]
pub struct Listener {
    pub redirect_uri: String,
    pub port: u16,
    listener: TcpListener,
}

/// Whether `host` may be used for redirect URIs.
pub fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Binds `host:port` (`port` 0: the OS chooses). A busy port is an
/// `AddrInUse` error for the caller to handle, never a crash.
pub async fn bind(host: &str, port: u16) -> io::Result<Listener> {
    let addr: SocketAddr = if host.eq_ignore_ascii_case("localhost") {
        SocketAddr::from(([127, 0, 0, 1], port))
    } else {
        let ip: IpAddr = host.parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{host:?} is not a loopback address"),
            )
        })?;
        SocketAddr::new(ip, port)
    };
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host:?} is not a loopback address"),
        ));
    }
    let listener = TcpListener::bind(addr).await?;
    let port = listener.local_addr()?.port();
    let host_part = match addr.ip() {
        IpAddr::V6(_) => format!("[{host}]"),
        IpAddr::V4(_) => host.to_owned(),
    };
    Ok(Listener {
        redirect_uri: format!("http://{host_part}:{port}{CALLBACK_PATH}"),
        port,
        listener,
    })
}

impl Listener {
    /// Starts serving. The returned receiver yields the one callback whose
    /// `state` matches; aborting the returned [`Serving`] closes the port.
    pub fn serve(self, state: Secret) -> (oneshot::Receiver<Callback>, Serving) {
        let (tx, rx) = oneshot::channel();
        let slot = Arc::new(Mutex::new(Some(tx)));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = self.listener.accept().await else {
                    continue;
                };
                let slot = slot.clone();
                let state = state.clone();
                // The flow aborts this accept loop once it has its callback;
                // connections accepted until then get "already done".
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(120),
                        handle(stream, &state, &slot),
                    )
                    .await;
                });
            }
        });
        (rx, Serving(task))
    }
}

/// The listening task; dropping it closes the port (also on cancellation).
#[derive(Debug)]
pub struct Serving(JoinHandle<()>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Slot = Arc<Mutex<Option<oneshot::Sender<Callback>>>>;

async fn handle(stream: TcpStream, state: &Secret, slot: &Slot) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(10), (&mut reader).take_line(&mut line)).await;
    if !matches!(read, Ok(Ok(n)) if n > 0) {
        return;
    }
    let request_line = String::from_utf8_lossy(&line).into_owned();
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    // Drain the headers (bounded) so the browser sees a clean response.
    for _ in 0..100 {
        let mut h = Vec::new();
        match tokio::time::timeout(Duration::from_secs(5), (&mut reader).take_line(&mut h)).await {
            Ok(Ok(n)) if n > 2 => continue,
            _ => break,
        }
    }
    let Ok(url) = url::Url::parse(&format!("http://loopback{target}")) else {
        let _ = respond(
            &mut write,
            400,
            "Bad request",
            "This is not an authorization callback.",
        )
        .await;
        return;
    };
    if method != "GET" || url.path() != CALLBACK_PATH {
        let _ = respond(
            &mut write,
            404,
            "Not found",
            "This is not an authorization callback.",
        )
        .await;
        return;
    }
    let params: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // Exactly one `state`, and ours: a repeated parameter is refused here
    // (and again in validation).
    let states: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "state")
        .map(|(_, v)| v.as_str())
        .collect();
    let matches = states == [state.expose()];
    if !matches {
        let _ = respond(&mut write, 400, "Unexpected callback", "This callback does not belong to the authorization in progress. Start again from your editor.").await;
        return;
    }
    let sender = slot.lock().ok().and_then(|mut s| s.take());
    let Some(sender) = sender else {
        let _ = respond(
            &mut write,
            409,
            "Already done",
            "This authorization was already completed.",
        )
        .await;
        return;
    };
    let (verdict_tx, verdict_rx) = oneshot::channel();
    if sender
        .send(Callback {
            params,
            verdict: verdict_tx,
        })
        .is_err()
    {
        let _ = respond(
            &mut write,
            410,
            "Authorization ended",
            "The authorization is no longer waiting. Start again from your editor.",
        )
        .await;
        return;
    }
    let _ = match tokio::time::timeout(Duration::from_secs(90), verdict_rx).await {
        Ok(Ok(Ok(()))) => {
            respond(
                &mut write,
                200,
                "Authorized",
                "You can close this tab and return to your editor.",
            )
            .await
        }
        Ok(Ok(Err(why))) => respond(&mut write, 400, "Authorization failed", &why).await,
        _ => {
            respond(
                &mut write,
                500,
                "Authorization failed",
                "The editor stopped waiting for this authorization.",
            )
            .await
        }
    };
}

trait TakeLine {
    async fn take_line(self, buf: &mut Vec<u8>) -> io::Result<usize>;
}

impl<R: tokio::io::AsyncBufRead + Unpin> TakeLine for &mut R {
    async fn take_line(self, buf: &mut Vec<u8>) -> io::Result<usize> {
        use tokio::io::AsyncReadExt;
        self.take(MAX_REQUEST_LINE as u64)
            .read_until(b'\n', buf)
            .await
    }
}

async fn respond(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    code: u16,
    title: &str,
    text: &str,
) -> io::Result<()> {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>{t}</title>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{t}</h1><p>{x}</p></body>",
        t = escape(title),
        x = escape(text)
    );
    let head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\nConnection: close\r\n\r\n",
        if code == 200 { "OK" } else { "Error" },
        body.len()
    );
    write.write_all(head.as_bytes()).await?;
    write.write_all(body.as_bytes()).await?;
    write.shutdown().await
}

/// HTML-escapes text (the page never reflects raw input).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_hosts() {
        assert_eq!(
            escape("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
        assert!(
            is_loopback_name("127.0.0.1")
                && is_loopback_name("::1")
                && is_loopback_name("LOCALHOST")
        );
        assert!(!is_loopback_name("0.0.0.0") && !is_loopback_name("example.com"));
    }

    #[tokio::test]
    async fn busy_port_is_an_error_not_a_crash() {
        let first = bind("127.0.0.1", 0).await.unwrap();
        let err = bind("127.0.0.1", first.port).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(bind("10.0.0.1", 0).await.is_err());
        assert_eq!(
            first.redirect_uri,
            format!("http://127.0.0.1:{}/callback", first.port)
        );
    }
}
