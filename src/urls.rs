//! Which URLs the sidecar is willing to talk to or open (error
//! 1006 in docs/protocol.md#errors): https everywhere, plain http only on a loopback host (RFC 8252
//! §7.3 loopback redirects, local test servers).

use std::net::IpAddr;
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?} is not an absolute URL")]
    Malformed(String),
    #[error("{0:?} is not https (http is allowed only for loopback hosts)")]
    Insecure(String),
}

/// True for `localhost`, `127.0.0.0/8` and `[::1]`.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses `raw` and checks it is https, or http on a loopback host.
///
/// The parsed `Url` is for inspection and for making requests only: callers
/// keep `raw` as the identity string, because `Url` normalises (it adds a
/// trailing `/` to `http://host:1`), and issuer and resource comparisons are
/// exact-string (RFC 8414 §3.3, RFC 9728 §3.3).
pub fn parse_secure(raw: &str) -> Result<Url, UrlError> {
    let url = Url::parse(raw).map_err(|_| UrlError::Malformed(raw.to_owned()))?;
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if is_loopback_host(&url) => Ok(url),
        "http" | "https" if url.host().is_none() => Err(UrlError::Malformed(raw.to_owned())),
        _ => Err(UrlError::Insecure(raw.to_owned())),
    }
}

/// Whether `raw` looks like a URL rather than a configured server name.
pub fn looks_like_url(raw: &str) -> bool {
    raw.contains("://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(parse_secure("https://mcp.example.com/mcp").is_ok());
        assert!(parse_secure("http://127.0.0.1:8080/mcp").is_ok());
        assert!(parse_secure("http://127.9.9.9/").is_ok());
        assert!(parse_secure("http://localhost:1").is_ok());
        assert!(parse_secure("http://[::1]:3000/mcp").is_ok());
        assert_eq!(
            parse_secure("http://mcp.example.com/mcp"),
            Err(UrlError::Insecure("http://mcp.example.com/mcp".into()))
        );
        assert!(matches!(
            parse_secure("javascript:alert(1)"),
            Err(UrlError::Insecure(_))
        ));
        assert!(matches!(
            parse_secure("file:///etc/passwd"),
            Err(UrlError::Insecure(_))
        ));
        assert!(matches!(
            parse_secure("not a url"),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            parse_secure("http://localhost.evil.com/"),
            Err(UrlError::Insecure(_))
        ));
    }
}
