//! Credential storage (docs/protocol.md#storage-and-locking): one interface
//! over the `keyring`, `file` and `memory` modes, and the choice among them for
//! `auto`.
//!
//! The store is plain I/O: it keeps no cache. The in-memory view that status
//! and token requests are served from belongs to `servers`.

pub mod keyring;
pub mod record;
pub mod sealed;

use crate::home::{self, Home};
use crate::lock::FileLock;
use base64::Engine as _;
use record::{CredentialRecord, RecordProblem};
use sealed::{DataKey, SealedStore};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

/// How long `auto` waits for a keyring to answer before choosing `file`.
pub const KEYRING_PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an explicit `keyring` choice waits (a locked collection may be
/// waiting for the user to type a password into an unlock prompt).
pub const KEYRING_TIMEOUT: Duration = Duration::from_secs(20);
const KEY_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The `storage` option of `initializationOptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageChoice {
    #[default]
    Auto,
    Keyring,
    File,
    Memory,
}

/// The mode actually in use, shown in every `ServerStatus.storage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageMode {
    Keyring,
    File,
    Memory,
}

impl StorageMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keyring => "keyring",
            Self::File => "file",
            Self::Memory => "memory",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the OS keyring is unavailable: {0}")]
    KeyringUnavailable(String),
    #[error("storage I/O failed: {0}")]
    Io(io::Error),
    /// Something under the home another user could control (home.rs).
    #[error("refusing unsafe storage: {0}")]
    Untrusted(String),
    #[error("cannot take the storage lock: {0}")]
    Lock(#[from] crate::lock::LockError),
    #[error("the stored data key is damaged")]
    BadKey,
    #[error("encryption failed")]
    Crypto,
    #[error("{0}")]
    Record(RecordProblem),
    /// Under a credential's lock, a record must be read before anything is
    /// sent or written; this one could not be.
    #[error(
        "the stored credential {location} cannot be used ({problem}); nothing was sent or written — \
         if a newer mcp-auth-sidecar wrote it, use that version; otherwise remove the file and authorize again"
    )]
    Unreadable {
        location: String,
        problem: RecordProblem,
    },
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        match home::as_untrusted(&e) {
            Some(why) => StoreError::Untrusted(why.to_string()),
            None => StoreError::Io(e),
        }
    }
}

/// One stored record as read back.
#[derive(Debug, PartialEq)]
pub enum Loaded {
    Absent,
    Record(Box<CredentialRecord>),
    /// Present but unreadable by this build: logged and treated as absent,
    /// never deleted (it may belong to a newer build or another data key).
    Unusable {
        location: String,
        problem: RecordProblem,
    },
}

impl Loaded {
    pub fn into_record(self) -> Option<CredentialRecord> {
        match self {
            Loaded::Record(r) => Some(*r),
            Loaded::Absent => None,
            Loaded::Unusable { location, problem } => {
                tracing::warn!(%location, %problem, "ignoring a stored credential record");
                None
            }
        }
    }
}

pub enum Store {
    Memory(Mutex<HashMap<String, CredentialRecord>>),
    Sealed {
        mode: StorageMode,
        inner: SealedStore,
    },
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({})", self.mode().as_str())
    }
}

impl Store {
    pub fn memory() -> Self {
        Store::Memory(Mutex::new(HashMap::new()))
    }

    /// Opens the store for `choice`. For `auto`, a keyring that is missing,
    /// locked or slower than [`KEYRING_PROBE_TIMEOUT`] means `file`.
    pub async fn open(home: &Home, choice: StorageChoice) -> Result<Self, StoreError> {
        match choice {
            StorageChoice::Memory => Ok(Self::memory()),
            StorageChoice::File => Self::open_file(home).await,
            StorageChoice::Keyring => Self::open_keyring(home, KEYRING_TIMEOUT).await,
            StorageChoice::Auto => match Self::open_keyring(home, KEYRING_PROBE_TIMEOUT).await {
                Ok(store) => Ok(store),
                Err(StoreError::KeyringUnavailable(why)) => {
                    // Expected wherever no desktop session runs (SSH,
                    // containers, CI): `auto` means "the keyring when one
                    // answers", so this is information, not a warning —
                    // every CLI command would print it otherwise. Every
                    // status says `storage: file`; an explicit `keyring`
                    // fails with the reason instead.
                    tracing::info!(reason = %why, "keyring unavailable; using the file store");
                    Self::open_file(home).await
                }
                Err(other) => Err(other),
            },
        }
    }

    /// `file` mode: the data key sits in a 0600 file beside the records. This
    /// protects against nothing a same-user process could not read anyway; it
    /// keeps one record format for both modes and tokens out of grep's reach.
    async fn open_file(home: &Home) -> Result<Self, StoreError> {
        let dir = home.dir("store/file/records")?;
        let key_path = home.dir("store/file")?.join("data.key");
        let lock_path = home.dir("locks")?.join("store-key.lock");
        let _lock = FileLock::acquire(&lock_path, KEY_LOCK_TIMEOUT).await?;
        let key = match home::read_file(&key_path, home::Secrecy::Key) {
            Ok(text) => decode_key(&text)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = DataKey::generate()?;
                home::write_atomic(&key_path, encode_key(&key).as_bytes())?;
                key
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Store::Sealed {
            mode: StorageMode::File,
            inner: SealedStore::new(dir, &key),
        })
    }

    /// `keyring` mode: the data key lives in the OS keyring under an account
    /// name kept (not secret) in the home, so homes do not share keys.
    async fn open_keyring(home: &Home, timeout: Duration) -> Result<Self, StoreError> {
        let dir = home.dir("store/keyring/records")?;
        let id_path = home.dir("store/keyring")?.join("key-id");
        let lock_path = home.dir("locks")?.join("store-key.lock");
        let lock = FileLock::acquire(&lock_path, KEY_LOCK_TIMEOUT).await?;
        let (account, known) = match home::read_file(&id_path, home::Secrecy::Plain) {
            Ok(id) => match std::str::from_utf8(&id).map(str::trim) {
                Ok(id) if !id.is_empty() => (id.to_owned(), true),
                _ => return Err(StoreError::BadKey),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut raw = [0u8; 12];
                getrandom::fill(&mut raw).map_err(io::Error::other)?;
                let id = format!("data-key-{}", home::hex(&raw));
                home::write_atomic(&id_path, id.as_bytes())?;
                (id, false)
            }
            Err(e) => return Err(e.into()),
        };
        let timeout = keyring_wait(timeout, known, keyring::Backend::native());
        // The lock moves into the keyring call: it is released when that
        // call really ends, not when we stop waiting for it, so a call stuck
        // behind an unlock prompt cannot race another instance into
        // creating a second key.
        let key = keyring::get_or_create_key(account, timeout, lock).await?;
        Ok(Store::Sealed {
            mode: StorageMode::Keyring,
            inner: SealedStore::new(dir, &key),
        })
    }

    /// The directory other processes write records to, if any.
    pub fn records_dir(&self) -> Option<std::path::PathBuf> {
        match self {
            Store::Memory(_) => None,
            Store::Sealed { inner, .. } => Some(inner.dir().to_owned()),
        }
    }

    pub fn mode(&self) -> StorageMode {
        match self {
            Store::Memory(_) => StorageMode::Memory,
            Store::Sealed { mode, .. } => *mode,
        }
    }

    pub fn load(&self, server_url: &str) -> Result<Loaded, StoreError> {
        match self {
            Store::Memory(map) => Ok(lock(map)
                .get(server_url)
                .cloned()
                .map_or(Loaded::Absent, |r| Loaded::Record(Box::new(r)))),
            Store::Sealed { inner, .. } => inner.load(server_url),
        }
    }

    pub fn save(&self, record: &CredentialRecord) -> Result<(), StoreError> {
        match self {
            Store::Memory(map) => {
                lock(map).insert(record.server_url.clone(), record.clone());
                Ok(())
            }
            Store::Sealed { inner, .. } => inner.save(record),
        }
    }

    pub fn delete(&self, server_url: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(map) => {
                lock(map).remove(server_url);
                Ok(())
            }
            Store::Sealed { inner, .. } => inner.delete(server_url),
        }
    }

    /// Every readable record; unreadable ones are logged and skipped.
    pub fn list(&self) -> Result<Vec<CredentialRecord>, StoreError> {
        match self {
            Store::Memory(map) => Ok(lock(map).values().cloned().collect()),
            Store::Sealed { inner, .. } => Ok(inner
                .list()?
                .into_iter()
                .filter_map(Loaded::into_record)
                .collect()),
        }
    }
}

/// How long to wait for the keyring. A key this home already keeps in a
/// keyring that shows a dialog before reading it (the Keychain, after the
/// binary changed) gets the time a person needs to answer, even in `auto`:
/// giving up after the probe's 3 s would kill the dialog and switch to the
/// separate `file` store, where none of the user's credentials are.
fn keyring_wait(asked: Duration, known_key: bool, backend: Option<keyring::Backend>) -> Duration {
    if known_key && backend.is_some_and(keyring::Backend::may_prompt_for_known_item) {
        asked.max(KEYRING_TIMEOUT)
    } else {
        asked
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the map inconsistent
    // (every operation is a single insert/remove/clone).
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn encode_key(key: &DataKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
}

pub(crate) fn decode_key(text: &[u8]) -> Result<DataKey, StoreError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim_ascii())
        .map_err(|_| StoreError::BadKey)?;
    DataKey::from_bytes(&raw).ok_or(StoreError::BadKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_mode_reuses_its_key_across_opens() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path());
        let a = Store::open(&home, StorageChoice::File).await.unwrap();
        assert_eq!(a.mode(), StorageMode::File);
        a.save(&CredentialRecord::new("https://x.example/mcp"))
            .unwrap();
        let b = Store::open(&home, StorageChoice::File).await.unwrap();
        assert!(matches!(
            b.load("https://x.example/mcp").unwrap(),
            Loaded::Record(_)
        ));
        assert_eq!(b.list().unwrap().len(), 1);
        b.delete("https://x.example/mcp").unwrap();
        assert_eq!(a.load("https://x.example/mcp").unwrap(), Loaded::Absent);
    }

    #[test]
    fn only_a_known_key_behind_a_dialog_gets_the_long_wait() {
        use keyring::Backend::{MacKeychain, SecretService, WindowsCredentialManager};
        let probe = KEYRING_PROBE_TIMEOUT;
        let table = [
            (probe, true, Some(MacKeychain), KEYRING_TIMEOUT),
            (probe, false, Some(MacKeychain), probe),
            (probe, true, Some(SecretService), probe),
            (probe, true, Some(WindowsCredentialManager), probe),
            (probe, true, None, probe),
            (KEYRING_TIMEOUT, true, Some(MacKeychain), KEYRING_TIMEOUT),
            (KEYRING_TIMEOUT, false, Some(SecretService), KEYRING_TIMEOUT),
        ];
        for (asked, known, backend, expected) in table {
            assert_eq!(
                keyring_wait(asked, known, backend),
                expected,
                "{asked:?} {known} {backend:?}"
            );
        }
    }

    /// Issue 8: a key or records directory another user linked is refused,
    /// never used (they would decrypt every token).
    #[cfg(unix)]
    #[tokio::test]
    async fn linked_keys_and_records_are_refused() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path().join("home"));
        let theirs = tempfile::tempdir().unwrap();
        std::fs::write(
            theirs.path().join("key"),
            encode_key(&DataKey::generate().unwrap()),
        )
        .unwrap();
        let file_dir = home.dir("store/file").unwrap();
        symlink(theirs.path().join("key"), file_dir.join("data.key")).unwrap();
        let err = Store::open(&home, StorageChoice::File).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Untrusted(m) if m.contains("remove the symlink")),
            "{err}"
        );
        std::fs::remove_file(file_dir.join("data.key")).unwrap();
        std::fs::remove_dir(file_dir.join("records")).unwrap();
        symlink(theirs.path(), file_dir.join("records")).unwrap();
        let err = Store::open(&home, StorageChoice::File).await.unwrap_err();
        assert!(matches!(err, StoreError::Untrusted(_)), "{err}");
        // The key-id of keyring mode: refused before any keyring call.
        let keyring_dir = home.dir("store/keyring/records").unwrap();
        let id = keyring_dir.parent().unwrap().join("key-id");
        symlink(theirs.path().join("key"), &id).unwrap();
        let err = Store::open(&home, StorageChoice::Keyring)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Untrusted(_)), "{err}");
    }
}
