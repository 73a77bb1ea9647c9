//! The data key in the OS keyring (`keyring` mode, docs/protocol.md#storage-and-locking).
//!
//! Only one small item per store lives in the keyring (a base64 256-bit key,
//! 44 bytes: far below the 2.5 KB Windows limit); records are sealed files.
//! The keyring is touched once, when the store opens — never per request.
//!
//! The keyring is the Secret Service on Linux and the BSDs, the login
//! Keychain on macOS and the Credential Manager on Windows ([`Backend`]),
//! all through `keyring-core` 1 stores.
//!
//! Every keyring call blocks (D-Bus I/O, possibly an unlock prompt or the
//! Keychain's "allow access" dialog that waits for a human), so it runs in
//! a helper process under a timeout ([`key_call`]). A locked collection on
//! a machine with a display can wait forever for its prompt; the timeout is
//! what turns that into "unavailable".
//!
//! Only Linux runs these calls in tests; the macOS and Windows stores are
//! type-checked and linted here but their runtime behaviour is untested.

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
    let result = tokio::time::timeout(timeout, key_call(account)).await;
    // The call has really ended (or its helper process was killed) before
    // the lock goes: a call stuck behind an unlock prompt cannot race
    // another instance into creating a second key.
    drop(held);
    match result {
        Ok(result) => result,
        Err(_) => Err(StoreError::KeyringUnavailable(format!(
            "the keyring did not answer within {}s (is it locked, or waiting for an answer to an unlock or access prompt?)",
            timeout.as_secs()
        ))),
    }
}

/// The keyring behind `keyring` mode on each platform: one item per home
/// (service [`SERVICE`], the account named in `store/keyring/key-id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Linux and the BSDs: the Secret Service over D-Bus
    /// (`zbus-secret-service-keyring-store`).
    SecretService,
    /// macOS: the login keychain (`apple-native-keyring-store`, feature
    /// `keychain`).
    MacKeychain,
    /// Windows: the Credential Manager, a generic credential
    /// (`windows-native-keyring-store`).
    WindowsCredentialManager,
}

impl Backend {
    /// This build's keyring, if it has one.
    pub const fn native() -> Option<Backend> {
        if cfg!(any(
            target_os = "linux",
            target_os = "freebsd",
            target_os = "openbsd"
        )) {
            Some(Backend::SecretService)
        } else if cfg!(target_os = "macos") {
            Some(Backend::MacKeychain)
        } else if cfg!(windows) {
            Some(Backend::WindowsCredentialManager)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::SecretService => "the Secret Service",
            Backend::MacKeychain => "the macOS Keychain",
            Backend::WindowsCredentialManager => "the Windows Credential Manager",
        }
    }

    /// The entry modifiers given to the store's `build`. Each store refuses
    /// a key it does not know (`Invalid("label", "unknown key")`), so each
    /// gets only its own:
    /// - Secret Service: `label`, what seahorse and `secret-tool` show;
    /// - Keychain: nothing (its one modifier, `keychain`, defaults to the
    ///   login keychain, which is the right one);
    /// - Credential Manager: `persistence` `Local`: the records live in
    ///   `%LOCALAPPDATA%`, which does not roam, so neither should their key
    ///   (the store's default, `Enterprise`, copies it to every machine a
    ///   roaming profile reaches, where it opens nothing).
    pub fn modifiers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Backend::SecretService => &[("label", "mcp-auth-sidecar storage key")],
            Backend::MacKeychain => &[],
            Backend::WindowsCredentialManager => &[("persistence", "Local")],
        }
    }

    /// Whether reading an item this program made may stop for a dialog
    /// that waits for the user: the Keychain asks again whenever the binary
    /// changed (an upgrade, an unsigned rebuild), before it answers.
    pub fn may_prompt_for_known_item(self) -> bool {
        matches!(self, Backend::MacKeychain)
    }
}

/// The call runs in a short-lived copy of this program (`keyring-helper`,
/// hidden), on every platform:
/// - a call blocked in the OS (an unlock prompt on Linux, the Keychain's
///   "allow access" dialog on macOS) can be ended at the timeout by killing
///   the helper, and the store-key lock is held until it really ended, so a
///   slow call cannot race another instance into creating a second key; a
///   thread of ours could only be abandoned, still holding the call;
/// - whatever the OS library leaves in a process (zbus's `blocking` pool
///   threads never retire and wake twice a second; the Security framework
///   and the Credential Manager client have threads and state of their
///   own) leaves with the helper, so an idle sidecar stays idle;
/// - one code path for every platform, tested on Linux.
///
/// It costs one process start per store open (once per sidecar process);
/// the key comes back over a pipe.
async fn key_call(account: String) -> Result<DataKey, StoreError> {
    use tokio::io::AsyncReadExt;
    let failed = |why: String| StoreError::KeyringUnavailable(format!("keyring helper: {why}"));
    let mut command = tokio::process::Command::new(own_executable());
    command
        .arg(HELPER_COMMAND)
        .arg(&account)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    // An editor may start the sidecar without a console; a console program
    // started from it would open a console window of its own.
    #[cfg(windows)]
    command.creation_flags(CREATE_NO_WINDOW);
    let mut child = command
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

/// `CREATE_NO_WINDOW` of `CreateProcessW`.
#[cfg(windows)]
const CREATE_NO_WINDOW: u32 = 0x0800_0000;

/// The helper's one line; `None` when it is none of its answers.
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

/// The hidden subcommand that runs [`helper_main`].
pub const HELPER_COMMAND: &str = "keyring-helper";
/// The helper's answer is one short line.
const MAX_ANSWER: u64 = 4096;

/// Which program runs the helper, when it is not this one (a test binary
/// using the library): set once, before the store opens.
static HELPER_PROGRAM: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Makes `program` (an `mcp-auth-sidecar` binary) run the keyring helper.
/// For code that links the library into another program, such as tests.
pub fn use_helper_program(program: impl Into<std::path::PathBuf>) {
    let _ = HELPER_PROGRAM.set(program.into());
}

/// This very program. Linux keeps the running image reachable through
/// /proc even if an upgrade replaced the file; elsewhere it is the file at
/// the path we were started from (after an upgrade, the new version, which
/// answers the same way).
fn own_executable() -> std::path::PathBuf {
    if let Some(program) = HELPER_PROGRAM.get() {
        return program.clone();
    }
    let proc_self = std::path::Path::new("/proc/self/exe");
    if cfg!(target_os = "linux") && proc_self.exists() {
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

fn blocking_get_or_create(account: &str) -> Result<DataKey, StoreError> {
    let Some(backend) = Backend::native() else {
        return Err(StoreError::KeyringUnavailable(
            "this build has no keyring backend for this platform".into(),
        ));
    };
    let store = native_store().map_err(|e| unavailable(backend, e))?;
    get_or_create_in(&*store, backend.modifiers(), account).map_err(|e| match e {
        Failure::Keyring(e) => unavailable(backend, e),
        Failure::Store(e) => e,
    })
}

#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
fn native_store() -> keyring_core::Result<std::sync::Arc<keyring_core::api::CredentialStore>> {
    Ok(zbus_secret_service_keyring_store::Store::new()?)
}

#[cfg(target_os = "macos")]
fn native_store() -> keyring_core::Result<std::sync::Arc<keyring_core::api::CredentialStore>> {
    Ok(apple_native_keyring_store::keychain::Store::new()?)
}

#[cfg(windows)]
fn native_store() -> keyring_core::Result<std::sync::Arc<keyring_core::api::CredentialStore>> {
    Ok(windows_native_keyring_store::Store::new()?)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "macos",
    windows
)))]
fn native_store() -> keyring_core::Result<std::sync::Arc<keyring_core::api::CredentialStore>> {
    Err(keyring_core::Error::NoDefaultStore)
}

/// What went wrong in [`get_or_create_in`]: the keyring, or the key.
#[derive(Debug)]
enum Failure {
    Keyring(keyring_core::Error),
    Store(StoreError),
}

/// Reads the data key under `account` in `store`, creating it when the
/// store says there is none. Platform-free, so it is tested on Linux with
/// keyring-core's mock store.
fn get_or_create_in(
    store: &keyring_core::api::CredentialStore,
    modifiers: &[(&str, &str)],
    account: &str,
) -> Result<DataKey, Failure> {
    use keyring_core::Error as KeyringError;
    let modifiers: std::collections::HashMap<&str, &str> = modifiers.iter().copied().collect();
    let entry = store
        .build(
            SERVICE,
            account,
            (!modifiers.is_empty()).then_some(&modifiers),
        )
        .map_err(Failure::Keyring)?;
    match entry.get_password() {
        Ok(text) => decode_key(text.as_bytes()).map_err(Failure::Store),
        Err(KeyringError::BadEncoding(_)) => Err(Failure::Store(StoreError::BadKey)),
        Err(KeyringError::NoEntry) => {
            let key = DataKey::generate().map_err(Failure::Store)?;
            entry
                .set_password(&encode_key(&key))
                .map_err(Failure::Keyring)?;
            tracing::info!("created a new storage key in the keyring");
            Ok(key)
        }
        Err(e) => Err(Failure::Keyring(e)),
    }
}

/// "No store", "locked", "too long" and every other keyring failure mean the
/// same thing to the caller: this keyring cannot be used now. The text never
/// contains secret material (`BadEncoding`, the one variant that carries
/// data, is handled before this).
fn unavailable(backend: Backend, e: keyring_core::Error) -> StoreError {
    use keyring_core::Error as E;
    let why = match &e {
        E::NoStorageAccess(inner) => {
            format!("{} is locked or refused access ({inner})", backend.name())
        }
        E::PlatformFailure(inner) => {
            format!("{} failed or is not reachable ({inner})", backend.name())
        }
        E::TooLong(what, limit) => format!("{what} is longer than the keyring allows ({limit})"),
        E::BadEncoding(_) => "the stored key is not text".into(),
        other => format!("{}: {other}", backend.name()),
    };
    StoreError::KeyringUnavailable(why)
}

#[cfg(test)]
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

    /// The modifier keys each store's `build` accepts, as its source says
    /// (`parse_attributes(&[...], modifiers)` in zbus-secret-service-
    /// keyring-store 1.0.1 `store.rs`, apple-native-keyring-store 1.0.2
    /// `keychain.rs`, windows-native-keyring-store 1.1.0 `store.rs`).
    fn accepted(backend: Backend) -> &'static [&'static str] {
        match backend {
            Backend::SecretService => &["target", "label"],
            Backend::MacKeychain => &["keychain"],
            Backend::WindowsCredentialManager => &["target", "persistence"],
        }
    }

    /// Every store gets only modifiers it accepts, checked with the very
    /// function the stores check them with; the Secret Service's `label`
    /// is what the native stores refused.
    #[test]
    fn each_store_gets_only_the_modifiers_it_knows() {
        use keyring_core::attributes::parse_attributes;
        use std::collections::HashMap;
        let table = [
            (
                Backend::SecretService,
                vec![("label", "mcp-auth-sidecar storage key")],
            ),
            (Backend::MacKeychain, vec![]),
            (
                Backend::WindowsCredentialManager,
                vec![("persistence", "Local")],
            ),
        ];
        for (backend, expected) in table {
            assert_eq!(backend.modifiers(), expected.as_slice(), "{backend:?}");
            let mods: HashMap<&str, &str> = backend.modifiers().iter().copied().collect();
            parse_attributes(accepted(backend), Some(&mods))
                .unwrap_or_else(|e| panic!("{backend:?} refuses {mods:?}: {e}"));
        }
        let label = HashMap::from([("label", "x")]);
        for backend in [Backend::MacKeychain, Backend::WindowsCredentialManager] {
            assert!(
                matches!(
                    parse_attributes(accepted(backend), Some(&label)),
                    Err(keyring_core::Error::Invalid(key, why)) if key == "label" && why == "unknown key"
                ),
                "{backend:?}"
            );
        }
        // `Local` is a persistence the Windows store parses (case-insensitively).
        assert!(
            Backend::WindowsCredentialManager.modifiers()[0]
                .1
                .eq_ignore_ascii_case("local")
        );
    }

    #[test]
    fn this_build_has_the_keyring_of_its_platform() {
        let native = Backend::native();
        if cfg!(target_os = "linux") {
            assert_eq!(native, Some(Backend::SecretService));
        }
        if cfg!(target_os = "macos") {
            assert_eq!(native, Some(Backend::MacKeychain));
        }
        if cfg!(windows) {
            assert_eq!(native, Some(Backend::WindowsCredentialManager));
        }
        assert!(!Backend::SecretService.may_prompt_for_known_item());
        assert!(!Backend::WindowsCredentialManager.may_prompt_for_known_item());
        assert!(Backend::MacKeychain.may_prompt_for_known_item());
    }

    /// The key logic shared by every platform, against keyring-core's mock
    /// store (which, like the native ones, refuses modifiers it does not
    /// know: it knows none).
    #[test]
    fn the_key_is_created_once_then_read_and_failures_are_sorted() {
        use keyring_core::Error as E;
        let store = keyring_core::mock::Store::new().unwrap();
        let store: &keyring_core::api::CredentialStore = &*store;
        let first = get_or_create_in(store, &[], "data-key-1").unwrap();
        let again = get_or_create_in(store, &[], "data-key-1").unwrap();
        assert_eq!(first.as_bytes(), again.as_bytes());
        let other = get_or_create_in(store, &[], "data-key-2").unwrap();
        assert_ne!(first.as_bytes(), other.as_bytes());
        assert!(matches!(
            get_or_create_in(store, &[("label", "x")], "data-key-1"),
            Err(Failure::Keyring(E::NotSupportedByStore(_)))
        ));

        let entry = store.build(SERVICE, "data-key-3", None).unwrap();
        let mock = |entry: &keyring_core::Entry, error: E| {
            let cred: &keyring_core::mock::Cred = entry.as_any().downcast_ref().unwrap();
            cred.set_error(error);
        };
        entry.set_password("not a key").unwrap();
        assert!(matches!(
            get_or_create_in(store, &[], "data-key-3"),
            Err(Failure::Store(StoreError::BadKey))
        ));
        mock(&entry, E::BadEncoding(vec![0xff]));
        assert!(matches!(
            get_or_create_in(store, &[], "data-key-3"),
            Err(Failure::Store(StoreError::BadKey))
        ));
        mock(&entry, E::NoStorageAccess("locked".into()));
        let Err(Failure::Keyring(e)) = get_or_create_in(store, &[], "data-key-3") else {
            panic!("a locked keyring is a keyring failure");
        };
        let why = unavailable(Backend::MacKeychain, e).to_string();
        assert!(
            why.contains("the macOS Keychain is locked or refused access"),
            "{why}"
        );
    }
}
