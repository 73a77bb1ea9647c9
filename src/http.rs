//! The one HTTP client every outbound request uses: rustls, timeouts on
//! everything, and redirects only to URLs the policy allows (SPEC §3.5 1006).

use std::time::Duration;

pub fn client() -> reqwest::Client {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 3 {
            attempt.error("too many redirects")
        } else if crate::urls::parse_secure(attempt.url().as_str()).is_err() {
            attempt.error("redirect to a URL that is not https")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .user_agent(concat!("mcp-auth-sidecar/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(policy)
        .build()
        // Building only fails if the TLS backend cannot initialise, which
        // means the binary itself is broken; fall back to defaults.
        .unwrap_or_default()
}

/// The most any metadata, registration or token response may weigh.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request never reached the server: safe to send again.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server (or a gateway before it) answered 5xx without an OAuth
    /// error body: a 502 or 504 may hide a request the server did process.
    #[error("{url} answered HTTP {status}")]
    ServerError { url: String, status: u16 },
    /// The request may have been processed, but the answer was lost: for a
    /// single-use refresh token, sending it again could spend it twice.
    #[error("the answer from {url} was lost: {reason}")]
    Interrupted { url: String, reason: String },
    #[error("{url} answered with more than {MAX_BODY} bytes")]
    TooLarge { url: String },
}

/// Reads a response body, refusing more than [`MAX_BODY`] bytes.
pub async fn read_limited(
    url: &str,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, FetchError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(FetchError::TooLarge {
            url: url.to_owned(),
        });
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(FetchError::TooLarge {
                        url: url.to_owned(),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(FetchError::Interrupted {
                    url: url.to_owned(),
                    reason: root_cause(&e),
                });
            }
        }
    }
}

/// Sends `request` and reads its body (bounded) as JSON; a body that is
/// not JSON reads as `null`. For endpoints whose error answers are JSON too
/// (registration, token, revocation).
pub async fn send_json(
    url: &str,
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, serde_json::Value), FetchError> {
    let response = request
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            let (url, reason) = (url.to_owned(), root_cause(&e));
            if e.is_connect() {
                FetchError::Unreachable { url, reason }
            } else {
                FetchError::Interrupted { url, reason }
            }
        })?;
    let status = response.status();
    let bytes = read_limited(url, response).await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    ))
}

/// GETs a JSON document. `Ok(None)` when the server says it has none (any
/// 4xx, or a body that is not a JSON object), so callers can try the next
/// well-known location.
pub async fn get_json(
    http: &reqwest::Client,
    url: &str,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, FetchError> {
    let request = http.get(url).header("MCP-Protocol-Version", "2025-11-25");
    let (status, doc) = send_json(url, request).await?;
    if status.is_server_error() {
        return Err(FetchError::ServerError {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    Ok(match doc {
        serde_json::Value::Object(map) if status.is_success() => Some(map),
        _ => None,
    })
}

/// The innermost error's text: reqwest's outer message repeats the URL, the
/// inner one says what actually went wrong.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
