//! The one HTTP client every outbound request uses: rustls with the
//! machine's trust (`tls`), the proxies of the environment, timeouts on
//! everything, and redirects only to URLs the policy allows (1006 in docs/protocol.md#errors).

use std::time::Duration;

/// Built once, on first use (`App::http`): reading the certificate store
/// and the environment is not done by a sidecar that never goes online.
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
    let mut builder = base_builder().redirect(policy).no_proxy();
    for proxy in proxies(&ProxyEnv::from_env(|name| std::env::var(name).ok())) {
        builder = builder.proxy(proxy);
    }
    match crate::tls::client_config() {
        Ok(tls) => builder = builder.use_preconfigured_tls(tls),
        Err(e) => tracing::warn!("TLS cannot be set up ({e}): https requests will fail"),
    }
    builder.build().unwrap_or_else(|e| {
        // Only a broken TLS backend makes this fail: the binary itself is
        // broken, and every https request will say so.
        tracing::warn!("the HTTP client cannot be built ({e}); using defaults");
        reqwest::Client::default()
    })
}

/// For requests to this machine only (another instance's loopback
/// listener): never through a proxy, whatever the environment says, since
/// a proxy's 127.0.0.1 is not ours.
pub fn loopback_client() -> reqwest::Client {
    base_builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

fn base_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("mcp-auth-sidecar/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
}

/// Hosts that never go through a proxy unless the user sets `NO_PROXY`
/// (then their list is used as written): a proxy cannot reach this
/// machine's local servers.
pub const LOOPBACK_NO_PROXY: &str = "localhost,127.0.0.0/8,::1";

/// The proxy settings of the environment, read as curl reads them:
/// `HTTPS_PROXY` for https URLs and `HTTP_PROXY` for http ones (either
/// case, upper first), `ALL_PROXY` for both when those are unset, and
/// `NO_PROXY` for the hosts that go direct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyEnv {
    pub https: Option<String>,
    pub http: Option<String>,
    pub no_proxy: String,
}

impl ProxyEnv {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: &[&str]| {
            names
                .iter()
                .filter_map(|n| var(n))
                .find(|v| !v.trim().is_empty())
        };
        let all = first(&["ALL_PROXY", "all_proxy"]);
        ProxyEnv {
            https: first(&["HTTPS_PROXY", "https_proxy"]).or_else(|| all.clone()),
            http: first(&["HTTP_PROXY", "http_proxy"]).or(all),
            // Set, even empty, is the user's choice; unset keeps loopback direct.
            no_proxy: var("NO_PROXY")
                .or_else(|| var("no_proxy"))
                .unwrap_or_else(|| LOOPBACK_NO_PROXY.to_owned()),
        }
    }
}

fn proxies(env: &ProxyEnv) -> Vec<reqwest::Proxy> {
    let https = env
        .https
        .as_deref()
        .map(|u| ("HTTPS_PROXY", reqwest::Proxy::https(u)));
    let http = env
        .http
        .as_deref()
        .map(|u| ("HTTP_PROXY", reqwest::Proxy::http(u)));
    let mut out = Vec::new();
    for (name, proxy) in [https, http].into_iter().flatten() {
        match proxy {
            Ok(p) => out.push(p.no_proxy(reqwest::NoProxy::from_string(&env.no_proxy))),
            // The value may hold a password: name the variable, not the value.
            Err(_) => tracing::warn!("{name} is not a proxy URL; connecting directly"),
        }
    }
    out
}

/// The most any metadata, registration or token response may weigh.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request never reached the server: safe to send again.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The TLS handshake refused the server's certificate: nothing was
    /// sent, and sending again will not help until trust changes.
    #[error("the certificate of {authority} is not trusted ({why}); {hint}")]
    Untrusted {
        authority: String,
        why: String,
        hint: String,
    },
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
        .map_err(|e| send_error(url, &e))?;
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

/// What a failed `send()` means: a refused certificate, a request that
/// never left, or an answer that was lost.
pub fn send_error(url: &str, e: &reqwest::Error) -> FetchError {
    // The certificate is that of the URL reqwest was at (after redirects).
    let at = e.url().map(|u| u.as_str()).unwrap_or(url);
    classify(
        url,
        at,
        e,
        e.is_connect(),
        std::env::var("SSL_CERT_FILE").ok().as_deref(),
    )
}

/// [`send_error`] without reqwest, so it can be tested with any chain.
fn classify(
    url: &str,
    at: &str,
    e: &(dyn std::error::Error + 'static),
    connect: bool,
    cert_file: Option<&str>,
) -> FetchError {
    if let Some(why) = crate::tls::find_rustls_error(e).and_then(crate::tls::untrusted_reason) {
        return FetchError::Untrusted {
            authority: authority(at),
            why,
            hint: crate::tls::untrusted_hint(cert_file),
        };
    }
    let (url, reason) = (url.to_owned(), root_cause(e));
    if connect {
        FetchError::Unreachable { url, reason }
    } else {
        FetchError::Interrupted { url, reason }
    }
}

/// `host:port` of `url` (the port even when it is the default), or `url`
/// itself when it does not parse.
fn authority(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => url.to_owned(),
        },
        Err(_) => url.to_owned(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CertificateError;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        ProxyEnv::from_env(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn proxies_are_read_as_curl_reads_them() {
        let p = |s: &str| Some(s.to_owned());
        let loopback = LOOPBACK_NO_PROXY.to_owned();
        let table: Vec<(&[(&str, &str)], ProxyEnv)> = vec![
            (
                &[],
                ProxyEnv {
                    https: None,
                    http: None,
                    no_proxy: loopback.clone(),
                },
            ),
            (
                &[("HTTPS_PROXY", "http://proxy:3128")],
                ProxyEnv {
                    https: p("http://proxy:3128"),
                    http: None,
                    no_proxy: loopback.clone(),
                },
            ),
            (
                &[
                    ("https_proxy", "http://lower:1"),
                    ("http_proxy", "http://lower:2"),
                ],
                ProxyEnv {
                    https: p("http://lower:1"),
                    http: p("http://lower:2"),
                    no_proxy: loopback.clone(),
                },
            ),
            // Upper case first, as hyper-util and curl do.
            (
                &[
                    ("HTTPS_PROXY", "http://upper:1"),
                    ("https_proxy", "http://lower:1"),
                ],
                ProxyEnv {
                    https: p("http://upper:1"),
                    http: None,
                    no_proxy: loopback.clone(),
                },
            ),
            // An empty variable counts as unset.
            (
                &[("HTTPS_PROXY", ""), ("https_proxy", "http://lower:1")],
                ProxyEnv {
                    https: p("http://lower:1"),
                    http: None,
                    no_proxy: loopback.clone(),
                },
            ),
            (
                &[
                    ("ALL_PROXY", "http://all:1"),
                    ("HTTP_PROXY", "http://plain:1"),
                ],
                ProxyEnv {
                    https: p("http://all:1"),
                    http: p("http://plain:1"),
                    no_proxy: loopback.clone(),
                },
            ),
            // NO_PROXY set (even empty) is the user's list, loopback or not.
            (
                &[
                    ("HTTPS_PROXY", "http://proxy:1"),
                    ("NO_PROXY", ".corp.example"),
                ],
                ProxyEnv {
                    https: p("http://proxy:1"),
                    http: None,
                    no_proxy: ".corp.example".into(),
                },
            ),
            (
                &[("no_proxy", "")],
                ProxyEnv {
                    https: None,
                    http: None,
                    no_proxy: String::new(),
                },
            ),
            (
                &[("NO_PROXY", "a"), ("no_proxy", "b")],
                ProxyEnv {
                    https: None,
                    http: None,
                    no_proxy: "a".into(),
                },
            ),
        ];
        for (vars, want) in table {
            assert_eq!(env(vars), want, "{vars:?}");
        }
    }

    #[test]
    fn a_bad_proxy_url_is_skipped() {
        let e = env(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("HTTP_PROXY", "http://[bad"),
        ]);
        assert_eq!(proxies(&e).len(), 1);
    }

    #[derive(Debug)]
    struct Connect(std::io::Error);
    impl std::fmt::Display for Connect {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }
    impl std::error::Error for Connect {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn send_failures_are_classified() {
        let tls = |c: CertificateError| {
            Connect(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(c),
            ))
        };
        let refused = Connect(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let table: Vec<(&str, Connect, bool, Option<&str>, &str)> = vec![
            (
                "https://auth.example.com/token",
                tls(CertificateError::UnknownIssuer),
                true,
                None,
                "the certificate of auth.example.com:443 is not trusted (unknown issuer); \
                 if your organisation uses its own certificate authority",
            ),
            (
                "https://127.0.0.1:8443/.well-known/x",
                tls(CertificateError::Expired),
                true,
                Some("/etc/ca.pem"),
                "the certificate of 127.0.0.1:8443 is not trusted (expired); \
                 SSL_CERT_FILE is \"/etc/ca.pem\"",
            ),
            (
                "https://[::1]:9/mcp",
                tls(CertificateError::NotValidForName),
                true,
                None,
                "the certificate of [::1]:9 is not trusted (issued for another name)",
            ),
            (
                "https://auth.example.com/token",
                refused,
                true,
                None,
                "cannot reach https://auth.example.com/token: ",
            ),
            (
                "https://auth.example.com/token",
                Connect(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
                false,
                None,
                "the answer from https://auth.example.com/token was lost: ",
            ),
        ];
        for (url, error, connect, cert_file, want) in table {
            let got = classify(url, url, &error, connect, cert_file);
            let text = got.to_string();
            assert!(
                text.starts_with(want),
                "{text:?} should start with {want:?}"
            );
            let untrusted = want.starts_with("the certificate");
            assert_eq!(
                matches!(got, FetchError::Untrusted { .. }),
                untrusted,
                "{got:?}"
            );
        }
    }

    #[test]
    fn authorities_carry_the_port() {
        for (url, want) in [
            ("https://as.example", "as.example:443"),
            ("https://as.example:8443/x", "as.example:8443"),
            ("http://127.0.0.1:1/cb", "127.0.0.1:1"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(authority(url), want);
        }
    }
}
