//! What is stored per credential (ARCHITECTURE.md#credentials-on-disk), and how
//! older or newer record formats are treated.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The record format this build writes. A record with a higher version was
/// written by a newer build: it is never overwritten by this one.
pub const RECORD_VERSION: u32 = 1;

/// Everything the sidecar keeps for one MCP server URL.
///
/// Identity (ARCHITECTURE.md#credentials-on-disk): a record belongs to exactly
/// one server URL (the file name is derived from it), and inside it tokens are
/// bound to the resource and issuer they were issued for, registrations to
/// their issuer, so a server that moves to another authorization server never
/// sees another issuer's client or tokens (MCP 2026-07-28, SEP-2352).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialRecord {
    pub version: u32,
    /// The server URL exactly as configured.
    pub server_url: String,
    /// Increases on every write; lets an instance tell "someone else wrote
    /// this" apart from its own last write.
    pub revision: u64,
    /// Client registrations by issuer (exact issuer string).
    #[serde(default)]
    pub registrations: BTreeMap<String, ClientRegistration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenSet>,
}

impl CredentialRecord {
    pub fn new(server_url: impl Into<String>) -> Self {
        Self {
            version: RECORD_VERSION,
            server_url: server_url.into(),
            revision: 0,
            registrations: BTreeMap::new(),
            tokens: None,
        }
    }
}

/// How the client was registered with an authorization server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationKind {
    /// `clientId` from the configuration.
    Preregistered,
    /// A Client ID Metadata Document URL used as `client_id`.
    MetadataDocument,
    /// RFC 7591 dynamic client registration.
    Dynamic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientRegistration {
    pub kind: RegistrationKind,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// RFC 7591 §2 `token_endpoint_auth_method`; `none` for public clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Milliseconds since the epoch.
    pub registered_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSet {
    pub access_token: Secret,
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// Absolute expiry, ms since the epoch; `None` when the AS did not say
    /// (unknown, refreshed on the first 401: ARCHITECTURE.md#credentials-on-disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The issuer that minted these tokens (exact string).
    pub issuer: String,
    /// The RFC 8707 resource they were requested for (exact string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Milliseconds since the epoch.
    pub obtained_at: i64,
    /// Where to refresh and revoke, from the issuer's metadata at
    /// authorization time: refresh and logout need no discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// RFC 8414 `revocation_endpoint_auth_methods_supported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_auth_methods: Option<Vec<String>>,
    /// Obtained by a refresh rather than an interactive authorization: a
    /// waiting `mcp/authorize` must not take a refresh for a flow it joined.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub via_refresh: bool,
}

impl TokenSet {
    /// Whether the access token is still usable `margin_ms` from `now_ms`.
    /// Unknown expiry counts as usable until a server rejects it. When even
    /// a fresh token could not last `margin_ms` (a server issuing 60-second
    /// tokens, asked for 60 seconds), the margin becomes half the token's
    /// lifetime, or every request would refresh.
    pub fn access_valid_at(&self, now_ms: i64, margin_ms: i64) -> bool {
        match self.expires_at {
            Some(at) => {
                let lifetime = at.saturating_sub(self.obtained_at).max(0);
                let margin = if lifetime > margin_ms {
                    margin_ms
                } else {
                    lifetime / 2
                };
                at > now_ms.saturating_add(margin)
            }
            None => true,
        }
    }
}

/// Why a stored record could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordProblem {
    #[error("record format version {0} is newer than this build understands ({RECORD_VERSION})")]
    Newer(u32),
    #[error("record format version {0} is no longer supported")]
    Older(u32),
    #[error("record is not valid: {0}")]
    Invalid(String),
}

/// Decodes a record's plaintext JSON, upgrading older formats where a
/// migration exists and refusing unknown ones without guessing.
pub fn decode(json: &[u8]) -> Result<CredentialRecord, RecordProblem> {
    #[derive(Deserialize)]
    struct Probe {
        version: u32,
    }
    let probe: Probe =
        serde_json::from_slice(json).map_err(|e| RecordProblem::Invalid(e.to_string()))?;
    match probe.version {
        RECORD_VERSION => serde_json::from_slice(json)
            // serde_json's messages name positions and fields, never values.
            .map_err(|e| RecordProblem::Invalid(e.to_string())),
        v if v > RECORD_VERSION => Err(RecordProblem::Newer(v)),
        v => Err(RecordProblem::Older(v)),
    }
}

pub fn encode(record: &CredentialRecord) -> Vec<u8> {
    // Serialising plain data structures to a Vec cannot fail.
    serde_json::to_vec(record).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CredentialRecord {
        let mut r = CredentialRecord::new("https://mcp.example.com/mcp");
        r.tokens = Some(TokenSet {
            access_token: Secret::new("a".repeat(4096)),
            token_type: "Bearer".into(),
            refresh_token: Some(Secret::new("r")),
            expires_at: Some(1),
            scopes: vec!["s".into()],
            issuer: "https://as.example.com".into(),
            resource: Some("https://mcp.example.com/mcp".into()),
            obtained_at: 0,
            token_endpoint: None,
            revocation_endpoint: None,
            revocation_auth_methods: None,
            via_refresh: false,
        });
        r
    }

    #[test]
    fn round_trip() {
        let r = sample();
        assert_eq!(decode(&encode(&r)).unwrap(), r);
    }

    #[test]
    fn other_versions_are_refused_not_guessed() {
        assert_eq!(
            decode(br#"{"version":0,"serverUrl":"x"}"#),
            Err(RecordProblem::Older(0))
        );
        assert_eq!(decode(br#"{"version":7}"#), Err(RecordProblem::Newer(7)));
        assert!(matches!(decode(b"{"), Err(RecordProblem::Invalid(_))));
        assert!(matches!(
            decode(br#"{"version":1,"serverUrl":5}"#),
            Err(RecordProblem::Invalid(_))
        ));
    }

    #[test]
    fn expiry() {
        let mut t = sample().tokens.unwrap();
        t.expires_at = Some(10_000);
        assert!(t.access_valid_at(0, 5_000));
        assert!(!t.access_valid_at(6_000, 5_000));
        // A 10 s token asked to last 60 s: the margin is capped at 5 s.
        assert!(t.access_valid_at(4_000, 60_000));
        assert!(!t.access_valid_at(5_000, 60_000));
        // A 10 s token asked to last 6 s: the window holds as asked.
        assert!(t.access_valid_at(3_999, 6_000));
        assert!(!t.access_valid_at(4_000, 6_000));
        t.expires_at = None;
        assert!(t.access_valid_at(i64::MAX, 60_000));
    }
}
