//! Token endpoint requests (RFC 6749 §4.1.3, §6) with client
//! authentication (RFC 6749 §2.3.1) and RFC 8707 `resource`.

use super::OAuthError;
use crate::http::{FetchError, send_json};
use crate::secret::Secret;
use crate::status::now_ms;
use crate::store::record::ClientRegistration;
use base64::Engine as _;
use serde_json::Value;

/// A successful token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: Secret,
    pub token_type: String,
    pub refresh_token: Option<Secret>,
    /// Absolute, ms since the epoch; `None` when the AS did not say.
    pub expires_at: Option<i64>,
    /// The granted scope, when the AS said (RFC 6749 §5.1).
    pub scope: Option<String>,
}

/// The OAuth error in a response body, if there is one: the RFC 6749 §5.2
/// shape, and the `{"ok": false, "error": …}` shape some servers send with
/// HTTP 200.
pub fn oauth_error_of(doc: &Value) -> Option<OAuthError> {
    let error = doc.get("error").and_then(Value::as_str)?;
    Some(OAuthError::Refused {
        error: error.to_owned(),
        description: doc
            .get("error_description")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// A form POST to an AS endpoint, authenticated as `client` with `method`.
fn authenticated_post(
    http: &reqwest::Client,
    endpoint: &str,
    client: &ClientRegistration,
    method: &str,
    mut form: Vec<(&'static str, String)>,
) -> reqwest::RequestBuilder {
    let mut req = http.post(endpoint);
    let (authorization, params) = client_authentication(client, method);
    if let Some(value) = authorization {
        req = req.header("Authorization", value);
    }
    form.extend(params);
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    req.header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
}

/// The `Authorization` header and body parameters that authenticate
/// `client` with `method` (RFC 6749 §2.3.1; `none` sends only `client_id`).
///
/// `client_id` is in the body with every method: RFC 6749 §2.3.1 allows it
/// beside Basic (it identifies, it does not authenticate), and some servers
/// (the MCP Python SDK) look the client up by it before reading the header.
fn client_authentication(
    client: &ClientRegistration,
    method: &str,
) -> (Option<String>, Vec<(&'static str, String)>) {
    let mut params = vec![("client_id", client.client_id.clone())];
    let header = match (method, &client.client_secret) {
        ("client_secret_basic", Some(secret)) => {
            // RFC 6749 §2.3.1: form-encode both parts before Base64.
            let user = form_encode(&client.client_id);
            let pass = form_encode(secret.expose());
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            Some(format!("Basic {basic}"))
        }
        ("client_secret_post", Some(secret)) => {
            params.push(("client_secret", secret.expose().to_owned()));
            None
        }
        _ => None,
    };
    (header, params)
}

/// The token-endpoint method of a registration.
fn token_auth_method(client: &ClientRegistration) -> &str {
    client
        .token_endpoint_auth_method
        .as_deref()
        .unwrap_or(if client.client_secret.is_some() {
            "client_secret_basic"
        } else {
            "none"
        })
}

/// RFC 6749 §6 with RFC 8707 `resource`: a new access token (and maybe a
/// rotated refresh token) for `refresh_token`.
pub async fn refresh(
    http: &reqwest::Client,
    endpoint: &str,
    client: &ClientRegistration,
    refresh_token: &Secret,
    resource: Option<&str>,
) -> Result<Tokens, OAuthError> {
    let mut form = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.expose().to_owned()),
    ];
    if let Some(resource) = resource {
        form.push(("resource", resource.to_owned()));
    }
    request(http, endpoint, client, form).await
}

/// RFC 7009 §2.1: revokes one token. The method follows the AS's
/// `revocation_endpoint_auth_methods_supported` when it says, else the
/// token endpoint's.
pub async fn revoke(
    http: &reqwest::Client,
    endpoint: &str,
    client: &ClientRegistration,
    supported: Option<&[String]>,
    token: &Secret,
    hint: &'static str,
) -> Result<(), OAuthError> {
    let preferred = token_auth_method(client);
    let method = match supported {
        Some(list) if !list.iter().any(|m| m == preferred) => {
            ["client_secret_basic", "client_secret_post", "none"]
                .into_iter()
                .find(|m| {
                    list.iter().any(|s| s == m) && (*m == "none" || client.client_secret.is_some())
                })
                .unwrap_or(preferred)
        }
        _ => preferred,
    };
    let form = vec![
        ("token", token.expose().to_owned()),
        ("token_type_hint", hint.to_owned()),
    ];
    let (status, doc) = send_json(
        endpoint,
        authenticated_post(http, endpoint, client, method, form),
    )
    .await?;
    if status.is_success() {
        return Ok(());
    }
    Err(oauth_error_of(&doc).unwrap_or_else(|| {
        if status.is_server_error() {
            OAuthError::Fetch(FetchError::ServerError {
                url: endpoint.to_owned(),
                status: status.as_u16(),
            })
        } else {
            OAuthError::Malformed(format!("the revocation endpoint answered HTTP {status}"))
        }
    }))
}

/// Sends a token request with `form`, authenticating as `client`.
pub async fn request(
    http: &reqwest::Client,
    endpoint: &str,
    client: &ClientRegistration,
    form: Vec<(&'static str, String)>,
) -> Result<Tokens, OAuthError> {
    let request = authenticated_post(http, endpoint, client, token_auth_method(client), form);
    let (status, doc) = send_json(endpoint, request).await?;
    if let Some(access) = doc
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|_| status.is_success())
    {
        let refresh_token = doc
            .get("refresh_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        let token_type = doc
            .get("token_type")
            .and_then(Value::as_str)
            .unwrap_or("Bearer");
        let unusable = if !token_type.eq_ignore_ascii_case("bearer") {
            Some("the token response's token_type is not Bearer")
        } else if !is_b64token(access) {
            // RFC 6750 §2.1: the editor puts this into a header as it is; a
            // token with quotes, blanks or line breaks would inject into it.
            Some("the access token is empty or not RFC 6750 b64token syntax")
        } else {
            None
        };
        if let Some(message) = unusable {
            return Err(OAuthError::UnusableTokens {
                message: message.into(),
                refresh_token,
            });
        }
        let expires_at = match doc.get("expires_in") {
            Some(Value::Number(n)) => n
                .as_f64()
                .map(|secs| now_ms().saturating_add((secs.max(0.0) * 1000.0) as i64)),
            Some(Value::String(s)) => s
                .parse::<i64>()
                .ok()
                .map(|secs| now_ms().saturating_add(secs.max(0).saturating_mul(1000))),
            _ => None,
        };
        return Ok(Tokens {
            access_token: Secret::new(access),
            token_type: "Bearer".into(),
            refresh_token,
            expires_at,
            scope: doc.get("scope").and_then(Value::as_str).map(str::to_owned),
        });
    }
    Err(oauth_error_of(&doc).unwrap_or_else(|| {
        if status.is_server_error() {
            OAuthError::Fetch(FetchError::ServerError {
                url: endpoint.to_owned(),
                status: status.as_u16(),
            })
        } else {
            OAuthError::Malformed(format!(
                "the token endpoint answered HTTP {status} without an access token"
            ))
        }
    }))
}

/// RFC 6750 §2.1 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
/// "+" / "/" ) *"="`.
pub fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// `application/x-www-form-urlencoded` for one value.
pub fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::RegistrationKind;

    #[test]
    fn only_b64token_access_tokens_are_accepted() {
        let table = [
            ("eyJhbGciOi.eyJzdWIi.c2ln", true),
            ("gho_16C7e42F292c6912E7710c838347Ae178B4a", true),
            ("a-b.c_d~e+f/g", true),
            ("YWJj==", true),
            ("", false),
            ("==", false),
            ("a b", false),
            ("a\"b", false),
            ("abc\r\nX-Injected: 1", false),
            ("a=b", false),
            ("tok\u{e9}n", false),
            ("a,b", false),
        ];
        for (token, ok) in table {
            assert_eq!(is_b64token(token), ok, "{token:?}");
        }
    }

    fn client(secret: Option<&str>) -> ClientRegistration {
        ClientRegistration {
            kind: RegistrationKind::Dynamic,
            client_id: "id:1".into(),
            client_secret: secret.map(Secret::new),
            token_endpoint_auth_method: None,
            redirect_uris: vec![],
            registered_at: 0,
        }
    }

    #[test]
    fn client_id_is_in_the_body_with_every_method() {
        let with_secret = client(Some("s&cret"));
        let (header, params) = client_authentication(&with_secret, "client_secret_basic");
        // "id%3A1:s%26cret", form-encoded then Base64.
        assert_eq!(header.as_deref(), Some("Basic aWQlM0ExOnMlMjZjcmV0"));
        assert_eq!(params, vec![("client_id", "id:1".to_owned())]);

        let (header, params) = client_authentication(&with_secret, "client_secret_post");
        assert_eq!(header, None);
        assert_eq!(
            params,
            vec![
                ("client_id", "id:1".to_owned()),
                ("client_secret", "s&cret".to_owned())
            ]
        );

        for (c, method) in [
            (client(None), "none"),
            (client(None), "client_secret_basic"),
            (client(None), "client_secret_post"),
            (with_secret, "none"),
        ] {
            let (header, params) = client_authentication(&c, method);
            assert_eq!(header, None, "{method}");
            assert_eq!(params, vec![("client_id", "id:1".to_owned())], "{method}");
        }
    }
}
