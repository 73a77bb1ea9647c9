//! Discovery (MCP authorization spec 2025-11-25 / 2026-07-28, client side):
//! protected-resource metadata (RFC 9728), then authorization-server
//! metadata (RFC 8414, OpenID Connect Discovery).
//!
//! Identity strings — `resource`, `authorization_servers[]`, `issuer` — are
//! kept exactly as served and compared byte for byte (RFC 8414 §3.3,
//! RFC 9728 §3.3), with one exception: a PRM entry may name a bare-origin
//! issuer with or without the slash of its empty path
//! ([`same_but_root_slash`]). `url::Url` is only used to build well-known
//! URLs.

use crate::http::{FetchError, get_json};
use crate::urls;
use serde_json::{Map, Value};
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{0}")]
    Insecure(#[from] urls::UrlError),
    #[error(
        "the protected resource metadata names resource {found:?}, which does not cover {server:?}"
    )]
    ResourceMismatch { found: String, server: String },
    #[error("the protected resource metadata at {0} lists no authorization server")]
    NoAuthorizationServer(String),
    #[error("no authorization server metadata found for issuer {0:?}")]
    NoServerMetadata(String),
    #[error(
        "authorization server metadata at {url} claims issuer {found:?}, expected {expected:?}"
    )]
    IssuerMismatch {
        url: String,
        found: String,
        expected: String,
    },
    #[error(
        "the authorization server {0:?} does not support PKCE S256 (code_challenge_methods_supported)"
    )]
    NoPkce(String),
    #[error("metadata at {url} is malformed: {why}")]
    Malformed { url: String, why: String },
}

/// RFC 9728 protected-resource metadata, the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    pub metadata_url: String,
    pub resource: String,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Option<Vec<String>>,
}

/// RFC 8414 authorization-server metadata, the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthServer {
    pub issuer: String,
    pub metadata_url: Option<String>,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub scopes_supported: Option<Vec<String>>,
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    pub revocation_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 9207 §3.
    pub iss_parameter_supported: bool,
    /// Client ID Metadata Documents (MCP 2025-11-25).
    pub client_id_metadata_document_supported: bool,
}

/// The well-known PRM locations for `server_url`: path-aware first, then
/// the root (RFC 9728 §3.1; MCP 2025-11-25 "Protected Resource Metadata
/// Discovery Requirements").
pub fn prm_candidates(server_url: &str) -> Result<Vec<String>, urls::UrlError> {
    let url = urls::parse_secure(server_url)?;
    let origin = origin_of(&url);
    let path = url.path().trim_end_matches('/');
    let mut out = Vec::new();
    if !path.is_empty() {
        out.push(format!(
            "{origin}/.well-known/oauth-protected-resource{path}"
        ));
    }
    out.push(format!("{origin}/.well-known/oauth-protected-resource"));
    Ok(out)
}

/// Fetches protected-resource metadata: from the challenge's
/// `resource_metadata` when there is one, else from the well-known
/// locations. `Ok(None)` when the server publishes none.
pub async fn protected_resource(
    http: &reqwest::Client,
    server_url: &str,
    hint: Option<&str>,
) -> Result<Option<ProtectedResource>, DiscoveryError> {
    let candidates = match hint {
        Some(h) => {
            urls::parse_secure(h)?;
            vec![h.to_owned()]
        }
        None => prm_candidates(server_url)?,
    };
    for url in candidates {
        if let Some(doc) = get_json(http, &url).await? {
            let prm = parse_prm(&url, &doc)?;
            return Ok(Some(prm));
        }
    }
    Ok(None)
}

fn parse_prm(url: &str, doc: &Map<String, Value>) -> Result<ProtectedResource, DiscoveryError> {
    let malformed = |why: &str| DiscoveryError::Malformed {
        url: url.to_owned(),
        why: why.to_owned(),
    };
    let resource = doc
        .get("resource")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("`resource` is missing"))?
        .to_owned();
    let authorization_servers = string_list(doc.get("authorization_servers")).unwrap_or_default();
    Ok(ProtectedResource {
        metadata_url: url.to_owned(),
        resource,
        authorization_servers,
        scopes_supported: string_list(doc.get("scopes_supported")),
    })
}

/// Whether the PRM `resource` covers the MCP server URL: same origin, and
/// the server's path is the resource path or below it.
pub fn resource_covers(resource: &str, server_url: &str) -> bool {
    let (Ok(r), Ok(s)) = (Url::parse(resource), Url::parse(server_url)) else {
        return false;
    };
    if r.scheme() != s.scheme()
        || r.host_str() != s.host_str()
        || r.port_or_known_default() != s.port_or_known_default()
    {
        return false;
    }
    let rp = r.path().trim_end_matches('/');
    let sp = s.path();
    rp.is_empty() || sp == rp || sp.trim_end_matches('/') == rp || sp.starts_with(&format!("{rp}/"))
}

/// The metadata URLs to try for `issuer`, in the order the MCP spec gives:
/// for an issuer with a path, OAuth path-insert, OIDC path-insert, OIDC
/// path-append — never the root, which would describe another issuer.
pub fn as_candidates(issuer: &str) -> Result<Vec<String>, urls::UrlError> {
    let url = urls::parse_secure(issuer)?;
    let origin = origin_of(&url);
    let path = url.path().trim_end_matches('/');
    Ok(if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    })
}

/// Fetches and validates the metadata of `issuer`.
pub async fn authorization_server(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<AuthServer, DiscoveryError> {
    for url in as_candidates(issuer)? {
        if let Some(doc) = get_json(http, &url).await? {
            return parse_as(&url, &doc, Some(issuer));
        }
    }
    Err(DiscoveryError::NoServerMetadata(issuer.to_owned()))
}

/// Fetches metadata from an explicitly configured URL
/// (`authServerMetadataUrl`); the issuer is whatever it says.
pub async fn authorization_server_at(
    http: &reqwest::Client,
    url: &str,
) -> Result<AuthServer, DiscoveryError> {
    urls::parse_secure(url)?;
    match get_json(http, url).await? {
        Some(doc) => parse_as(url, &doc, None),
        None => Err(DiscoveryError::NoServerMetadata(url.to_owned())),
    }
}

/// The 2025-03-26 fallback for servers without any metadata: default
/// endpoints at the server's origin.
pub fn legacy_defaults(server_url: &str) -> Result<AuthServer, DiscoveryError> {
    let url = urls::parse_secure(server_url)?;
    let origin = origin_of(&url);
    Ok(AuthServer {
        issuer: origin.clone(),
        metadata_url: None,
        authorization_endpoint: format!("{origin}/authorize"),
        token_endpoint: format!("{origin}/token"),
        registration_endpoint: Some(format!("{origin}/register")),
        revocation_endpoint: None,
        scopes_supported: None,
        token_endpoint_auth_methods_supported: None,
        revocation_endpoint_auth_methods_supported: None,
        iss_parameter_supported: false,
        client_id_metadata_document_supported: false,
    })
}

fn parse_as(
    url: &str,
    doc: &Map<String, Value>,
    expected_issuer: Option<&str>,
) -> Result<AuthServer, DiscoveryError> {
    let malformed = |why: &str| DiscoveryError::Malformed {
        url: url.to_owned(),
        why: why.to_owned(),
    };
    let issuer = doc
        .get("issuer")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("`issuer` is missing"))?
        .to_owned();
    if let Some(expected) = expected_issuer {
        // RFC 8414 §3.3: identical, as strings — but for the slash of an
        // empty path (below). From here on `issuer` is the metadata's.
        if issuer != expected && !same_but_root_slash(&issuer, expected) {
            return Err(DiscoveryError::IssuerMismatch {
                url: url.to_owned(),
                found: issuer,
                expected: expected.to_owned(),
            });
        }
    }
    let endpoint = |key: &str| -> Result<Option<String>, DiscoveryError> {
        match doc.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                urls::parse_secure(s)?;
                Ok(Some(s.clone()))
            }
            Some(_) => Err(malformed(&format!("`{key}` is not a string"))),
        }
    };
    let authorization_endpoint = endpoint("authorization_endpoint")?
        .ok_or_else(|| malformed("`authorization_endpoint` is missing"))?;
    let token_endpoint =
        endpoint("token_endpoint")?.ok_or_else(|| malformed("`token_endpoint` is missing"))?;
    let methods = string_list(doc.get("code_challenge_methods_supported")).unwrap_or_default();
    if !methods.iter().any(|m| m == "S256") {
        return Err(DiscoveryError::NoPkce(issuer));
    }
    Ok(AuthServer {
        metadata_url: Some(url.to_owned()),
        authorization_endpoint,
        token_endpoint,
        registration_endpoint: endpoint("registration_endpoint")?,
        revocation_endpoint: endpoint("revocation_endpoint")?,
        scopes_supported: string_list(doc.get("scopes_supported")),
        token_endpoint_auth_methods_supported: string_list(
            doc.get("token_endpoint_auth_methods_supported"),
        ),
        revocation_endpoint_auth_methods_supported: string_list(
            doc.get("revocation_endpoint_auth_methods_supported"),
        ),
        iss_parameter_supported: doc.get("authorization_response_iss_parameter_supported")
            == Some(&Value::Bool(true)),
        client_id_metadata_document_supported: doc.get("client_id_metadata_document_supported")
            == Some(&Value::Bool(true)),
        issuer,
    })
}

/// Whether `a` and `b` differ only by the `/` of an empty path:
/// `scheme://authority` against `scheme://authority/`, compared as strings.
///
/// RFC 3986 §6.2.3 makes the two the same URL, and URL libraries serialise
/// a bare origin either way (pydantic adds the slash: the MCP Python SDK's
/// protected-resource metadata names `https://as.example/` for the issuer
/// `https://as.example`). A path, query or fragment, or any other
/// difference, is still a mismatch.
pub fn same_but_root_slash(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() < b.len() { (a, b) } else { (b, a) };
    if long.strip_prefix(short) != Some("/") {
        return false;
    }
    let Some((scheme, authority)) = short.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        && !authority.is_empty()
        && !authority.contains(['/', '?', '#'])
}

fn string_list(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array().map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    })
}

/// `scheme://host[:port]` without a trailing slash.
fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_orders() {
        assert_eq!(
            prm_candidates("http://localhost:3000/mcp").unwrap(),
            vec![
                "http://localhost:3000/.well-known/oauth-protected-resource/mcp",
                "http://localhost:3000/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(
            prm_candidates("https://a.example/").unwrap(),
            vec!["https://a.example/.well-known/oauth-protected-resource"]
        );
        assert_eq!(
            as_candidates("https://as.example/tenant1").unwrap(),
            vec![
                "https://as.example/.well-known/oauth-authorization-server/tenant1",
                "https://as.example/.well-known/openid-configuration/tenant1",
                "https://as.example/tenant1/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            as_candidates("http://localhost:1").unwrap(),
            vec![
                "http://localhost:1/.well-known/oauth-authorization-server",
                "http://localhost:1/.well-known/openid-configuration"
            ]
        );
        assert!(as_candidates("http://as.example").is_err());
    }

    #[test]
    fn root_slash_equivalence() {
        let cases = [
            ("https://as.example", "https://as.example/", true),
            ("https://as.example/", "https://as.example", true),
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000/", true),
            ("http://[::1]:9000/", "http://[::1]:9000", true),
            ("https://user@as.example", "https://user@as.example/", true),
            // Identical strings are the exact rule's business.
            ("https://as.example", "https://as.example", false),
            ("https://as.example/", "https://as.example/", false),
            // A path's trailing slash is significant.
            (
                "https://as.example/tenant",
                "https://as.example/tenant/",
                false,
            ),
            ("https://as.example/", "https://as.example//", false),
            // Nothing else is normalised.
            ("https://as.example", "https://AS.example/", false),
            ("HTTPS://as.example", "https://as.example/", false),
            ("https://as.example:443", "https://as.example/", false),
            ("https://as.example", "https://as.example:443/", false),
            ("https://as.example?", "https://as.example?/", false),
            ("https://as.example#", "https://as.example#/", false),
            ("https://as.example", "https://as.example.evil/", false),
            ("https://as.example", "https://as.example./", false),
            ("as.example", "as.example/", false),
            ("https://", "https:///", false),
            ("://as.example", "://as.example/", false),
            ("", "/", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(same_but_root_slash(a, b), want, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn resource_coverage() {
        assert!(resource_covers(
            "http://localhost:1/mcp",
            "http://localhost:1/mcp"
        ));
        assert!(resource_covers(
            "http://localhost:1",
            "http://localhost:1/mcp"
        ));
        assert!(resource_covers(
            "https://a.example/",
            "https://a.example/x/y"
        ));
        assert!(resource_covers(
            "https://a.example/x",
            "https://a.example/x/y"
        ));
        assert!(!resource_covers(
            "https://a.example/xy",
            "https://a.example/x"
        ));
        assert!(!resource_covers(
            "https://evil.example.com/mcp",
            "http://localhost:1/mcp"
        ));
        assert!(!resource_covers(
            "https://a.example:444/mcp",
            "https://a.example/mcp"
        ));
        assert!(!resource_covers("not a url", "https://a.example/mcp"));
    }

    #[test]
    fn as_metadata_validation() {
        let doc = |v: serde_json::Value| v.as_object().unwrap().clone();
        let ok = doc(serde_json::json!({
            "issuer": "http://localhost:1",
            "authorization_endpoint": "http://localhost:1/authorize",
            "token_endpoint": "http://localhost:1/token",
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true
        }));
        let a = parse_as("u", &ok, Some("http://localhost:1")).unwrap();
        assert!(a.iss_parameter_supported);
        // The PRM's `http://localhost:1/` names this issuer; the metadata's
        // spelling is the one kept.
        let slash = parse_as("u", &ok, Some("http://localhost:1/")).unwrap();
        assert_eq!(slash.issuer, "http://localhost:1");
        let mut with_slash = ok.clone();
        with_slash.insert("issuer".into(), "http://localhost:1/".into());
        let a = parse_as("u", &with_slash, Some("http://localhost:1")).unwrap();
        assert_eq!(a.issuer, "http://localhost:1/");
        for expected in [
            "http://localhost:1//",
            "http://localhost:2",
            "http://LOCALHOST:1",
            "https://attacker.example.com",
        ] {
            assert!(
                matches!(
                    parse_as("u", &ok, Some(expected)),
                    Err(DiscoveryError::IssuerMismatch { .. })
                ),
                "{expected}"
            );
        }
        let mut no_pkce = ok.clone();
        no_pkce.remove("code_challenge_methods_supported");
        assert!(matches!(
            parse_as("u", &no_pkce, None),
            Err(DiscoveryError::NoPkce(_))
        ));
        let mut js = ok.clone();
        js.insert(
            "authorization_endpoint".into(),
            "javascript:alert(1)".into(),
        );
        assert!(matches!(
            parse_as("u", &js, None),
            Err(DiscoveryError::Insecure(_))
        ));
    }
}
