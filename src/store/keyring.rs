//! The data key in the OS keyring (SPEC §5 `keyring` mode).
//!
//! Only one small item per store lives in the keyring (a base64 256-bit key,
//! 44 bytes: far below the 2.5 KB Windows limit); records are sealed files.
//! The keyring is touched once, when the store opens — never per request.
//!
//! Every keyring call blocks (D-Bus I/O, possibly an unlock prompt that
//! waits for a human), so it runs on a blocking thread under a timeout. A
//! locked collection on a machine with a display can wait forever for its
//! prompt; the timeout is what turns that into "unavailable".

use super::sealed::DataKey;
use super::{StoreError, decode_key, encode_key};
use std::time::Duration;

pub const SERVICE: &str = "mcp-auth-sidecar";

/// Reads the data key stored under `account`, creating it when the keyring
/// says there is none. The caller holds the store-key file lock, so two
/// instances never create two different keys.
pub async fn get_or_create_key(
    account: String,
    timeout: Duration,
    held: crate::lock::FileLock,
) -> Result<DataKey, StoreError> {
    let work = tokio::task::spawn_blocking(move || {
        let result = blocking_get_or_create(&account);
        drop(held);
        result
    });
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(StoreError::KeyringUnavailable(format!(
            "keyring call failed: {join}"
        ))),
        Err(_) => Err(StoreError::KeyringUnavailable(format!(
            "the keyring did not answer within {}s (is it locked and waiting for an unlock prompt?)",
            timeout.as_secs()
        ))),
    }
}

#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
fn blocking_get_or_create(account: &str) -> Result<DataKey, StoreError> {
    use keyring_core::Error as KeyringError;
    use keyring_core::api::CredentialStoreApi;
    use std::collections::HashMap;

    let store = zbus_secret_service_keyring_store::Store::new().map_err(unavailable)?;
    let modifiers = HashMap::from([("label", "mcp-auth-sidecar storage key")]);
    let entry = store
        .build(SERVICE, account, Some(&modifiers))
        .map_err(unavailable)?;
    match entry.get_password() {
        Ok(text) => decode_key(text.as_bytes()),
        Err(KeyringError::BadEncoding(_)) => Err(StoreError::BadKey),
        Err(KeyringError::NoEntry) => {
            let key = DataKey::generate()?;
            entry.set_password(&encode_key(&key)).map_err(unavailable)?;
            tracing::info!("created a new storage key in the keyring");
            Ok(key)
        }
        Err(e) => Err(unavailable(e)),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")))]
fn blocking_get_or_create(_account: &str) -> Result<DataKey, StoreError> {
    Err(StoreError::KeyringUnavailable(
        "this build has no keyring backend for this platform".into(),
    ))
}

/// "No store", "locked", "too long" and every other keyring failure mean the
/// same thing to the caller: this keyring cannot be used now. The text never
/// contains secret material (`BadEncoding`, the one variant that carries
/// data, is handled before this).
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
fn unavailable(e: keyring_core::Error) -> StoreError {
    use keyring_core::Error as E;
    let why = match &e {
        E::NoStorageAccess(inner) => format!("the keyring is locked or refused access ({inner})"),
        E::PlatformFailure(inner) => format!("no Secret Service is reachable ({inner})"),
        E::TooLong(what, limit) => format!("{what} is longer than the keyring allows ({limit})"),
        E::BadEncoding(_) => "the stored key is not text".into(),
        other => other.to_string(),
    };
    StoreError::KeyringUnavailable(why)
}
