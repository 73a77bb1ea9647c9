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

/// The method for a client that holds `has_secret`, from what the AS
/// supports (RFC 8414 §2: absent means `client_secret_basic`).
pub fn auth_method(server: &AuthServer, has_secret: bool) -> String {
    let supported = server
        .token_endpoint_auth_methods_supported
        .clone()
        .unwrap_or_else(|| vec!["client_secret_basic".into()]);
    let pick = |m: &str| supported.iter().any(|s| s == m).then(|| m.to_owned());
    if has_secret {
        pick("client_secret_basic")
            .or_else(|| pick("client_secret_post"))
            .unwrap_or_else(|| "client_secret_basic".into())
    } else {
        "none".into()
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
    // Prefer a public client; accept a secret if the AS insists on one.
    let supported = server
        .token_endpoint_auth_methods_supported
        .as_deref()
        .unwrap_or(&[]);
    let method = if supported.is_empty() || supported.iter().any(|m| m == "none") {
        "none".to_owned()
    } else {
        auth_method(server, true)
    };
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
            if secret.is_some() {
                auth_method(server, true)
            } else {
                method.clone()
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
