//! The authorization request and its callback (OAuth 2.1 §4.1, PKCE,
//! RFC 8707 `resource`, RFC 9207 `iss`).

use super::OAuthError;
use super::discovery::AuthServer;
use super::pkce;
use super::token::{self, Tokens};
use crate::secret::Secret;
use crate::store::record::ClientRegistration;
use crate::urls;

/// One authorization in progress: what the callback and the token request
/// need. Lives only in memory.
#[derive(Debug)]
pub struct PendingAuthorization {
    pub url: String,
    pub state: Secret,
    pub verifier: Secret,
    pub redirect_uri: String,
    pub resource: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("the callback's state does not match the authorization in progress")]
    StateMismatch,
    /// RFC 9207 §2.4: a mix-up attack or a misconfigured server; the error
    /// fields of such a response are neither used nor shown.
    #[error("the callback's issuer ({found:?}) is not the authorization server's ({expected:?})")]
    IssuerMismatch { expected: String, found: String },
    #[error("the authorization server advertises the iss parameter but the callback has none")]
    IssuerMissing,
    #[error("the authorization server refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        error: String,
        description: Option<String>,
    },
    #[error("the callback carries no authorization code")]
    NoCode,
    /// Two values for one parameter: which one would be checked and which
    /// one used is exactly what an attacker would like to choose.
    #[error("the callback repeats the `{0}` parameter")]
    Repeated(&'static str),
}

/// Builds the authorization URL with a fresh PKCE verifier and state.
pub fn start(
    server: &AuthServer,
    client_id: &str,
    redirect_uri: &str,
    scope: Option<&str>,
    resource: &str,
) -> Result<PendingAuthorization, crate::error::Error> {
    let mut url = urls::parse_secure(&server.authorization_endpoint)?;
    let verifier =
        pkce::verifier().map_err(|e| crate::error::Error::InvalidParams(e.to_string()))?;
    let state = pkce::state().map_err(|e| crate::error::Error::InvalidParams(e.to_string()))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code");
        q.append_pair("client_id", client_id);
        q.append_pair("redirect_uri", redirect_uri);
        q.append_pair("code_challenge", &pkce::challenge(&verifier));
        q.append_pair("code_challenge_method", "S256");
        q.append_pair("state", state.expose());
        q.append_pair("resource", resource);
        if let Some(scope) = scope.filter(|s| !s.is_empty()) {
            q.append_pair("scope", scope);
            // OpenID Connect Core §11: servers ignore offline_access
            // without prompt=consent, and then issue no refresh token.
            if scope.split(' ').any(|s| s == "offline_access") {
                q.append_pair("prompt", "consent");
            }
        }
    }
    Ok(PendingAuthorization {
        url: url.into(),
        state,
        verifier,
        redirect_uri: redirect_uri.to_owned(),
        resource: resource.to_owned(),
    })
}

/// Checks a callback in the order that keeps attacker-controlled fields
/// unused: `state`, then `iss` (2026-07-28 table: advertised+present →
/// compare; advertised+absent → reject; unadvertised+present → compare;
/// both absent → proceed), then `error`, then `code`.
pub fn validate_callback(
    params: &[(String, String)],
    pending: &PendingAuthorization,
    server: &AuthServer,
) -> Result<Secret, CallbackError> {
    for key in ["state", "code", "iss", "error"] {
        if params.iter().filter(|(k, _)| k == key).count() > 1 {
            return Err(CallbackError::Repeated(key));
        }
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    if get("state") != Some(pending.state.expose()) {
        return Err(CallbackError::StateMismatch);
    }
    match get("iss") {
        Some(iss) if iss != server.issuer => {
            return Err(CallbackError::IssuerMismatch {
                expected: server.issuer.clone(),
                found: iss.to_owned(),
            });
        }
        None if server.iss_parameter_supported => return Err(CallbackError::IssuerMissing),
        _ => {}
    }
    if let Some(error) = get("error") {
        return Err(CallbackError::Denied {
            error: error.to_owned(),
            description: get("error_description").map(str::to_owned),
        });
    }
    get("code")
        .filter(|c| !c.is_empty())
        .map(Secret::new)
        .ok_or(CallbackError::NoCode)
}

/// Exchanges the code (RFC 6749 §4.1.3 with PKCE and RFC 8707 `resource`).
pub async fn exchange(
    http: &reqwest::Client,
    server: &AuthServer,
    client: &ClientRegistration,
    code: &Secret,
    pending: &PendingAuthorization,
) -> Result<Tokens, OAuthError> {
    token::request(
        http,
        &server.token_endpoint,
        client,
        vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.expose().to_owned()),
            ("redirect_uri", pending.redirect_uri.clone()),
            ("code_verifier", pending.verifier.expose().to_owned()),
            ("resource", pending.resource.clone()),
        ],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(iss_supported: bool) -> AuthServer {
        AuthServer {
            issuer: "http://localhost:9".into(),
            metadata_url: None,
            authorization_endpoint: "http://localhost:9/authorize".into(),
            token_endpoint: "http://localhost:9/token".into(),
            registration_endpoint: None,
            revocation_endpoint: None,
            scopes_supported: None,
            token_endpoint_auth_methods_supported: None,
            revocation_endpoint_auth_methods_supported: None,
            iss_parameter_supported: iss_supported,
            client_id_metadata_document_supported: false,
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn iss_table_of_2026_07_28() {
        let s = server(true);
        let p = start(
            &s,
            "c",
            "http://127.0.0.1:1/callback",
            Some("a b"),
            "http://localhost:9",
        )
        .unwrap();
        assert!(
            p.url.contains("code_challenge_method=S256")
                && p.url.contains("resource=http%3A%2F%2Flocalhost%3A9")
        );
        let st = p.state.expose().to_owned();
        let ok = |iss: Option<&str>, adv: bool| {
            let mut v = vec![("state", st.as_str()), ("code", "x")];
            if let Some(i) = iss {
                v.push(("iss", i));
            }
            validate_callback(&params(&v), &p, &server(adv))
        };
        assert!(ok(Some("http://localhost:9"), true).is_ok());
        assert_eq!(ok(None, true).unwrap_err(), CallbackError::IssuerMissing);
        assert!(matches!(
            ok(Some("http://localhost:9/"), true),
            Err(CallbackError::IssuerMismatch { .. })
        ));
        assert!(matches!(
            ok(Some("https://evil.example.com"), false),
            Err(CallbackError::IssuerMismatch { .. })
        ));
        assert!(ok(None, false).is_ok());
        assert_eq!(
            validate_callback(&params(&[("state", "nope"), ("code", "x")]), &p, &s).unwrap_err(),
            CallbackError::StateMismatch
        );
        let twice = params(&[
            ("state", "x"),
            ("state", &st),
            ("code", "c"),
            ("iss", "http://localhost:9"),
        ]);
        assert_eq!(
            validate_callback(&twice, &p, &s).unwrap_err(),
            CallbackError::Repeated("state")
        );
        // A wrong issuer wins over the error fields, which stay unused.
        let denied = params(&[
            ("state", &st),
            ("iss", "https://evil"),
            ("error", "access_denied"),
        ]);
        assert!(matches!(
            validate_callback(&denied, &p, &s),
            Err(CallbackError::IssuerMismatch { .. })
        ));
        let denied = params(&[
            ("state", &st),
            ("iss", "http://localhost:9"),
            ("error", "access_denied"),
        ]);
        assert!(matches!(
            validate_callback(&denied, &p, &s),
            Err(CallbackError::Denied { .. })
        ));
    }
}
