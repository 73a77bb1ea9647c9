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

#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
use super::decode_key;
use super::sealed::DataKey;
use super::{StoreError, encode_key};
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
    let result = tokio::time::timeout(timeout, key_call(account)).await;
    // The call has really ended (or its helper process was killed) before
    // the lock goes: a call stuck behind an unlock prompt cannot race
    // another instance into creating a second key.
    drop(held);
    match result {
        Ok(result) => result,
        Err(_) => Err(StoreError::KeyringUnavailable(format!(
            "the keyring did not answer within {}s (is it locked and waiting for an unlock prompt?)",
            timeout.as_secs()
        ))),
    }
}

/// On the Secret Service, the call runs in a short-lived copy of this
/// program (`keyring-helper`, hidden): zbus leaves threads behind in any
/// process that used it — the `blocking` crate's pool threads never retire
/// and wake twice a second — so an idle sidecar in `keyring` mode would
/// never be idle. The helper takes them with it when it exits.
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
async fn key_call(account: String) -> Result<DataKey, StoreError> {
    use tokio::io::AsyncReadExt;
    let failed = |why: String| StoreError::KeyringUnavailable(format!("keyring helper: {why}"));
    let mut child = tokio::process::Command::new(own_executable())
        .arg(HELPER_COMMAND)
        .arg(&account)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("cannot start: {e}")))?;
    let mut answer = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| failed(e.to_string()))?;
    }
    let status = child.wait().await.map_err(|e| failed(e.to_string()))?;
    read_answer(&String::from_utf8_lossy(&answer), status.success())
        .unwrap_or_else(|| Err(failed(format!("ended without an answer ({status})"))))
}

/// The helper's one line; `None` when it is none of its answers.
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
fn read_answer(answer: &str, succeeded: bool) -> Option<Result<DataKey, StoreError>> {
    let line = answer.trim_end();
    let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
    match (kind, succeeded) {
        ("ok", true) => Some(decode_key(rest.as_bytes())),
        ("bad-key", _) => Some(Err(StoreError::BadKey)),
        ("unavailable", _) => Some(Err(StoreError::KeyringUnavailable(rest.to_owned()))),
        _ => None,
    }
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")))]
async fn key_call(account: String) -> Result<DataKey, StoreError> {
    tokio::task::spawn_blocking(move || blocking_get_or_create(&account))
        .await
        .map_err(|join| StoreError::KeyringUnavailable(format!("keyring call failed: {join}")))?
}

/// The hidden subcommand that runs [`helper_main`].
pub const HELPER_COMMAND: &str = "keyring-helper";
/// The helper's answer is one short line.
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
const MAX_ANSWER: u64 = 4096;

/// Which program runs the helper, when it is not this one (a test binary
/// using the library): set once, before the store opens.
static HELPER_PROGRAM: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Makes `program` (an `mcp-auth-sidecar` binary) run the keyring helper.
/// For code that links the library into another program, such as tests.
pub fn use_helper_program(program: impl Into<std::path::PathBuf>) {
    let _ = HELPER_PROGRAM.set(program.into());
}

/// This very program, even if the file was replaced by an upgrade since it
/// started (Linux keeps the running image reachable through /proc).
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
fn own_executable() -> std::path::PathBuf {
    if let Some(program) = HELPER_PROGRAM.get() {
        return program.clone();
    }
    let proc_self = std::path::Path::new("/proc/self/exe");
    if proc_self.exists() {
        return proc_self.to_owned();
    }
    std::env::current_exe().unwrap_or_else(|_| proc_self.to_owned())
}

/// The helper process: one keyring call, one line on stdout (`ok <key>`,
/// `bad-key`, or `unavailable <why>`), then exit.
pub fn helper_main(account: &str) -> std::process::ExitCode {
    use std::io::Write;
    let line = match blocking_get_or_create(account) {
        Ok(key) => format!("ok {}", encode_key(&key)),
        Err(StoreError::BadKey) => "bad-key".to_owned(),
        Err(e) => format!("unavailable {}", e.to_string().replace('\n', " ")),
    };
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::FAILURE,
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

#[cfg(all(
    test,
    any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")
))]
mod tests {
    use super::*;

    #[test]
    fn every_answer_of_the_helper_is_understood() {
        let key = DataKey::generate().unwrap();
        let ok = format!("ok {}\n", encode_key(&key));
        assert!(matches!(read_answer(&ok, true), Some(Ok(_))));
        assert!(read_answer(&ok, false).is_none(), "ok from a failed helper");
        assert!(matches!(
            read_answer("bad-key\n", false),
            Some(Err(StoreError::BadKey))
        ));
        assert!(matches!(
            read_answer("unavailable the keyring is locked\n", false),
            Some(Err(StoreError::KeyringUnavailable(why))) if why == "the keyring is locked"
        ));
        assert!(matches!(
            read_answer("ok not-base64\n", true),
            Some(Err(StoreError::BadKey))
        ));
        for garbage in ["", "\n", "running 0 tests\n", "okay\n"] {
            assert!(read_answer(garbage, true).is_none(), "{garbage:?}");
        }
    }
}
