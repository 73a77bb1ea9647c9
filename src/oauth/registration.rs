//! Client registration: RFC 7591 dynamic registration, and the choice of
//! token-endpoint authentication method.

use super::OAuthError;
use super::discovery::AuthServer;
use super::token::oauth_error_of;
use crate::http::send_json;
use crate::secret::Secret;
use crate::status::now_ms;
use crate::store::record::{ClientRegistration, RegistrationKind};
use serde_json::{Value, json};

/// The method for a configured client that holds `has_secret`, from what
/// the AS supports (RFC 8414 §2: absent means `client_secret_basic`, the one
/// method RFC 6749 §2.3.1 requires every server to support).
pub fn auth_method(server: &AuthServer, has_secret: bool) -> String {
    preregistered_auth_method(
        server.token_endpoint_auth_methods_supported.as_deref(),
        has_secret,
    )
    .into()
}

fn preregistered_auth_method(supported: Option<&[String]>, has_secret: bool) -> &'static str {
    let listed = |m: &str| supported.is_none_or(|list| list.iter().any(|s| s == m));
    match has_secret {
        false => "none",
        true if !listed("client_secret_basic") && listed("client_secret_post") => {
            "client_secret_post"
        }
        true => "client_secret_basic",
    }
}

/// The method to ask for in a dynamic registration: a public client when the
/// AS allows one (or does not say), else a secret sent in the body when the
/// AS lists `client_secret_post` — some servers (the MCP Python SDK) accept
/// Basic at the token endpoint but want the secret in the body at their
/// revocation endpoint — else Basic.
fn dynamic_auth_method(supported: Option<&[String]>) -> &'static str {
    let list = supported.unwrap_or(&[]);
    let listed = |m: &str| list.iter().any(|s| s == m);
    if list.is_empty() || listed("none") {
        "none"
    } else if listed("client_secret_post") {
        "client_secret_post"
    } else {
        "client_secret_basic"
    }
}

/// RFC 7591 §3: registers a native public client for `redirect_uri`.
///
/// Some servers want the scopes at registration, others (oidc-provider)
/// accept only their own scopes there and answer `invalid_client_metadata`;
/// `scope` is optional in RFC 7591 §2, so that answer gets one retry
/// without it.
pub async fn register(
    http: &reqwest::Client,
    server: &AuthServer,
    redirect_uri: &str,
    scope: Option<&str>,
) -> Result<ClientRegistration, OAuthError> {
    match register_once(http, server, redirect_uri, scope).await {
        Err(OAuthError::Refused { error, .. })
            if error == "invalid_client_metadata" && scope.is_some() =>
        {
            tracing::info!(issuer = %server.issuer, "registration refused the scopes; registering without them");
            register_once(http, server, redirect_uri, None).await
        }
        other => other,
    }
}

async fn register_once(
    http: &reqwest::Client,
    server: &AuthServer,
    redirect_uri: &str,
    scope: Option<&str>,
) -> Result<ClientRegistration, OAuthError> {
    let Some(endpoint) = &server.registration_endpoint else {
        return Err(OAuthError::Malformed(format!(
            "the authorization server {} offers no dynamic client registration; configure a clientId",
            server.issuer
        )));
    };
    let method = dynamic_auth_method(server.token_endpoint_auth_methods_supported.as_deref());
    let mut body = json!({
        "client_name": "mcp-auth-sidecar",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        // MCP 2026-07-28 (SEP-837); RFC 8252 native app.
        "application_type": "native",
    });
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    let (status, doc) = send_json(endpoint, http.post(endpoint).json(&body)).await?;
    if !status.is_success() {
        return Err(oauth_error_of(&doc).unwrap_or_else(|| OAuthError::Refused {
            error: "registration_failed".into(),
            description: Some(format!("HTTP {status}")),
        }));
    }
    let client_id = doc
        .get("client_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            OAuthError::Malformed("the registration response has no client_id".into())
        })?;
    let secret = doc
        .get("client_secret")
        .and_then(Value::as_str)
        .map(Secret::new);
    let method = doc
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            // Registered metadata left out of the answer is what we sent
            // (RFC 7591 §3.2.1), unless a secret came for a public client.
            if secret.is_some() && method == "none" {
                auth_method(server, true)
            } else {
                method.to_owned()
            }
        });
    Ok(ClientRegistration {
        kind: RegistrationKind::Dynamic,
        client_id: client_id.to_owned(),
        client_secret: secret,
        token_endpoint_auth_method: Some(method),
        redirect_uris: vec![redirect_uri.to_owned()],
        registered_at: now_ms(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(methods: &[&str]) -> Vec<String> {
        methods.iter().map(|m| (*m).to_owned()).collect()
    }

    #[test]
    fn dynamic_registration_method() {
        let cases: &[(Option<&[&str]>, &str)] = &[
            (None, "none"),
            (Some(&[]), "none"),
            (Some(&["none", "client_secret_basic"]), "none"),
            // The MCP Python SDK's metadata.
            (
                Some(&["client_secret_post", "client_secret_basic"]),
                "client_secret_post",
            ),
            (
                Some(&["client_secret_basic", "client_secret_post"]),
                "client_secret_post",
            ),
            (Some(&["client_secret_basic"]), "client_secret_basic"),
            (Some(&["client_secret_post"]), "client_secret_post"),
            (Some(&["private_key_jwt"]), "client_secret_basic"),
        ];
        for (supported, want) in cases {
            let supported = supported.map(list);
            assert_eq!(
                dynamic_auth_method(supported.as_deref()),
                *want,
                "{supported:?}"
            );
        }
    }

    #[test]
    fn preregistered_client_method() {
        let cases: &[(Option<&[&str]>, bool, &str)] = &[
            (None, true, "client_secret_basic"),
            (None, false, "none"),
            (
                Some(&["client_secret_post", "client_secret_basic"]),
                true,
                "client_secret_basic",
            ),
            (Some(&["client_secret_post"]), true, "client_secret_post"),
            (Some(&["client_secret_basic"]), true, "client_secret_basic"),
            (Some(&["private_key_jwt"]), true, "client_secret_basic"),
            (Some(&["client_secret_post"]), false, "none"),
        ];
        for (supported, secret, want) in cases {
            let supported = supported.map(list);
            assert_eq!(
                preregistered_auth_method(supported.as_deref(), *secret),
                *want,
                "{supported:?} {secret}"
            );
        }
    }
}
