//! Which certificates the sidecar trusts, and how a refused certificate is
//! told to the user (issue 10: TLS the way users' machines are configured).
//!
//! Trust is the operating system's, through `rustls-platform-verifier`:
//! Security.framework on macOS and the CryptoAPI chain engine on Windows (so
//! roots an administrator or MDM deployed, and the OS's own policy, apply),
//! and on Linux and the BSDs the system bundle found by `rustls-native-certs`.
//! `SSL_CERT_FILE`/`SSL_CERT_DIR` work everywhere: on Linux they replace the
//! system bundle (OpenSSL's rule, which `rustls-native-certs` follows); on
//! macOS and Windows, whose verifiers ignore them, their certificates are
//! added to the OS's roots. Mozilla's roots (`webpki-roots`) are used only
//! when no verifier can be built from the machine (a container without a CA
//! bundle). docs/DECISIONS.md says why.
//!
//! Everything here runs when the HTTP client is first built, never at start.

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, ClientConfig};
use std::sync::Arc;

/// The TLS configuration of the one HTTP client (`http::client`).
pub fn client_config() -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = verifier(provider.clone())?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // What reqwest offers when it builds the config itself (no HTTP/2 here).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn verifier(provider: Arc<CryptoProvider>) -> Result<Arc<dyn ServerCertVerifier>, rustls::Error> {
    use rustls_platform_verifier::Verifier;
    let extra = extra_roots();
    let platform = if extra.is_empty() {
        Verifier::new_with_extra_roots([], provider.clone())
    } else {
        // One bad certificate in the user's file must not cost the OS's roots.
        Verifier::new_with_extra_roots(extra, provider.clone()).or_else(|e| {
            tracing::warn!("the certificates of SSL_CERT_FILE/SSL_CERT_DIR are not usable: {e}");
            Verifier::new_with_extra_roots([], provider.clone())
        })
    };
    match platform {
        Ok(v) => Ok(Arc::new(v)),
        Err(e) => {
            if std::env::var_os("SSL_CERT_FILE").is_some()
                || std::env::var_os("SSL_CERT_DIR").is_some()
            {
                tracing::warn!(
                    "SSL_CERT_FILE/SSL_CERT_DIR gave no usable certificate ({e}); trusting \
                     Mozilla's roots built into mcp-auth-sidecar"
                );
            } else {
                tracing::warn!(
                    "no certificate store on this machine ({e}); trusting Mozilla's roots \
                     built into mcp-auth-sidecar (set SSL_CERT_FILE to use your own)"
                );
            }
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let v = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
            Ok(v)
        }
    }
}

/// `SSL_CERT_FILE`/`SSL_CERT_DIR` on macOS and Windows, whose OS verifiers
/// would not read them. `rustls-native-certs` reads only these locations
/// when either is set, with the same rules as on Linux.
#[cfg(any(windows, target_vendor = "apple"))]
fn extra_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    if std::env::var_os("SSL_CERT_FILE").is_none() && std::env::var_os("SSL_CERT_DIR").is_none() {
        return Vec::new();
    }
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!("SSL_CERT_FILE/SSL_CERT_DIR: {e}");
    }
    found.certs
}

/// On Linux and the BSDs the platform verifier reads `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` itself (they replace the system bundle).
#[cfg(not(any(windows, target_vendor = "apple")))]
fn extra_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    Vec::new()
}

/// Why a server's certificate was refused, in the user's words, or `None`
/// when `e` is not about the certificate (a protocol or network failure).
pub fn untrusted_reason(e: &rustls::Error) -> Option<String> {
    let rustls::Error::InvalidCertificate(cert) = e else {
        return None;
    };
    Some(match cert {
        CertificateError::UnknownIssuer => "unknown issuer".into(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired".into(),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "not valid yet".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "issued for another name".into()
        }
        CertificateError::Revoked => "revoked".into(),
        CertificateError::BadSignature => "bad signature".into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "not issued for TLS servers".into()
        }
        other => other.to_string(),
    })
}

/// The rustls error somewhere in `e`'s chain. tokio-rustls wraps it in an
/// `io::Error`, which reqwest's connector wraps in another; the `source()`
/// of an `io::Error` skips the error it carries, so each is opened.
pub fn find_rustls_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        let mut layer = err;
        // io::Errors inside io::Errors: two in practice, a bound regardless.
        for _ in 0..8 {
            if let Some(found) = layer.downcast_ref::<rustls::Error>() {
                return Some(found);
            }
            match layer
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => layer = inner,
                None => break,
            }
        }
        cur = err.source();
    }
    None
}

/// What to tell a user whose certificate was refused: their organisation's
/// CA (or TLS-inspecting proxy) is the usual reason.
pub fn untrusted_hint(cert_file: Option<&str>) -> String {
    match cert_file {
        Some(path) => format!(
            "SSL_CERT_FILE is {path:?}: check that it holds the certificate of the \
             authority that issued this one"
        ),
        None => "if your organisation uses its own certificate authority (or a proxy that \
                 inspects TLS), add it to the system's certificates or set SSL_CERT_FILE to \
                 a PEM file that holds it"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_read_as_reasons() {
        let table: Vec<(rustls::Error, Option<&str>)> = vec![
            (
                CertificateError::UnknownIssuer.into(),
                Some("unknown issuer"),
            ),
            (CertificateError::Expired.into(), Some("expired")),
            (CertificateError::NotValidYet.into(), Some("not valid yet")),
            (
                CertificateError::NotValidForName.into(),
                Some("issued for another name"),
            ),
            (CertificateError::Revoked.into(), Some("revoked")),
            (CertificateError::BadSignature.into(), Some("bad signature")),
            (
                CertificateError::InvalidPurpose.into(),
                Some("not issued for TLS servers"),
            ),
            // Not about the certificate: a handshake or protocol failure.
            (
                rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
                None,
            ),
            (rustls::Error::General("boom".into()), None),
            (
                rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon),
                None,
            ),
        ];
        for (error, want) in table {
            assert_eq!(untrusted_reason(&error).as_deref(), want, "{error:?}");
        }
        // Errors the OS verifiers report in their own words keep them.
        let other = rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
            Arc::new(std::io::Error::other("CSSMERR_TP_NOT_TRUSTED")),
        )));
        assert!(
            untrusted_reason(&other)
                .unwrap_or_default()
                .contains("CSSMERR_TP_NOT_TRUSTED")
        );
    }

    /// An outer error whose source is `inner`, as reqwest and hyper nest them.
    #[derive(Debug)]
    struct Wrap(&'static str, Box<dyn std::error::Error + Send + Sync>);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Wrap {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(self.1.as_ref())
        }
    }

    #[test]
    fn the_rustls_error_is_found_however_it_is_wrapped() {
        let unknown = || rustls::Error::from(CertificateError::UnknownIssuer);
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let table: Vec<(Box<dyn std::error::Error + Send + Sync>, bool)> = vec![
            (Box::new(unknown()), true),
            (Box::new(io(unknown())), true),
            (
                Box::new(Wrap("client error (Connect)", Box::new(io(unknown())))),
                true,
            ),
            (
                Box::new(Wrap(
                    "error sending request",
                    Box::new(Wrap("client error (Connect)", Box::new(io(unknown())))),
                )),
                true,
            ),
            // reqwest's connector: an io::Error around tokio-rustls's.
            (
                Box::new(Wrap(
                    "client error (Connect)",
                    Box::new(std::io::Error::other(io(unknown()))),
                )),
                true,
            ),
            (Box::new(std::io::Error::other("connection refused")), false),
            (
                Box::new(Wrap(
                    "client error (Connect)",
                    Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                )),
                false,
            ),
        ];
        for (error, found) in table {
            let got = find_rustls_error(error.as_ref());
            assert_eq!(got.is_some(), found, "{error:?}");
            if found {
                assert_eq!(
                    got.and_then(untrusted_reason).as_deref(),
                    Some("unknown issuer")
                );
            }
        }
    }

    #[test]
    fn the_hint_names_the_file_in_use() {
        assert!(untrusted_hint(None).contains("set SSL_CERT_FILE"));
        assert!(untrusted_hint(Some("/etc/corp-ca.pem")).contains("\"/etc/corp-ca.pem\""));
    }

    #[test]
    fn a_client_config_is_built_from_this_machine() {
        assert!(client_config().is_ok());
    }
}
