//! Records as AEAD-encrypted files, one per server URL (ARCHITECTURE.md#credentials-on-disk).
//!
//! This is the Chromium / VS Code "safe storage" pattern: the keyring holds
//! one random data key (a few dozen bytes, far below the 2.5 KB Windows item
//! limit), the records — whose access tokens can be 4 KB JWTs — live in
//! files sealed with XChaCha20-Poly1305. The additional data binds a
//! ciphertext to its file name, so records cannot be swapped between servers.

use super::record::{self, CredentialRecord, RecordProblem};
use super::{Loaded, StoreError};
use crate::home::{self, hex};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 5] = b"MASR\x01";
const NONCE_LEN: usize = 24;
const EXTENSION: &str = "rec";

/// The 256-bit data key. Never printed.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl DataKey {
    pub fn generate() -> Result<Self, StoreError> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|e| StoreError::Io(io::Error::other(e)))?;
        Ok(Self(k))
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

pub struct SealedStore {
    dir: PathBuf,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for SealedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedStore")
            .field("dir", &self.dir)
            .finish()
    }
}

/// The file stem for a server URL: not secret, just stable and filesystem-safe.
pub fn file_stem(server_url: &str) -> String {
    hex(&Sha256::digest(server_url.as_bytes())[..16])
}

impl SealedStore {
    /// `dir` must already exist with mode 0700.
    pub fn new(dir: PathBuf, key: &DataKey) -> Self {
        home::sweep_stale_temps(&dir, std::time::Duration::from_secs(600));
        Self {
            dir,
            cipher: XChaCha20Poly1305::new(key.as_bytes().into()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_for(&self, server_url: &str) -> PathBuf {
        self.dir
            .join(format!("{}.{EXTENSION}", file_stem(server_url)))
    }

    fn aad(stem: &str) -> Vec<u8> {
        format!("mcp-auth-sidecar record:{stem}").into_bytes()
    }

    fn seal(&self, stem: &str, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| StoreError::Io(io::Error::other(e)))?;
        let aad = Self::aad(stem);
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Crypto)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + ct.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open_bytes(&self, stem: &str, bytes: &[u8]) -> Result<CredentialRecord, RecordProblem> {
        let body = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| RecordProblem::Invalid("not a sealed record".into()))?;
        if body.len() < NONCE_LEN {
            return Err(RecordProblem::Invalid("truncated".into()));
        }
        let (nonce, ct) = body.split_at(NONCE_LEN);
        let aad = Self::aad(stem);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| {
                RecordProblem::Invalid("cannot be decrypted with the current data key".into())
            })?;
        record::decode(&plain)
    }

    fn read_path(&self, path: &Path) -> Result<Loaded, StoreError> {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match home::read_file(path, home::Secrecy::Plain) {
            Ok(bytes) => Ok(match self.open_bytes(&stem, &bytes) {
                Ok(r) => Loaded::Record(Box::new(r)),
                Err(problem) => Loaded::Unusable {
                    location: path.display().to_string(),
                    problem,
                },
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Loaded::Absent),
            Err(e) => Ok(Loaded::Unusable {
                location: path.display().to_string(),
                problem: RecordProblem::Invalid(format!("cannot be read: {e}")),
            }),
        }
    }

    pub fn load(&self, server_url: &str) -> Result<Loaded, StoreError> {
        let loaded = self.read_path(&self.path_for(server_url))?;
        // A hash collision or a hand-copied file must not hand one server
        // another server's record.
        Ok(match loaded {
            Loaded::Record(r) if r.server_url != server_url => Loaded::Absent,
            other => other,
        })
    }

    pub fn save(&self, record: &CredentialRecord) -> Result<(), StoreError> {
        let path = self.path_for(&record.server_url);
        if let Loaded::Unusable {
            problem: problem @ RecordProblem::Newer(_),
            ..
        } = self.read_path(&path)?
        {
            // Never destroy what a newer build wrote.
            return Err(StoreError::Record(problem));
        }
        let stem = file_stem(&record.server_url);
        let sealed = self.seal(&stem, &record::encode(record))?;
        home::write_atomic(&path, &sealed).map_err(StoreError::from)
    }

    pub fn delete(&self, server_url: &str) -> Result<(), StoreError> {
        home::remove_durably(&self.path_for(server_url)).map_err(StoreError::from)
    }

    pub fn list(&self) -> Result<Vec<Loaded>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::from(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(StoreError::from)?.path();
            if path.extension().is_some_and(|e| e == EXTENSION) {
                out.push(self.read_path(&path)?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::RECORD_VERSION;

    fn store(dir: &Path) -> SealedStore {
        SealedStore::new(dir.to_owned(), &DataKey::from_bytes(&[7u8; 32]).unwrap())
    }

    #[test]
    fn round_trip_and_no_plaintext_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let mut r = CredentialRecord::new("https://a.example/mcp");
        r.registrations.insert(
            "https://as.example".into(),
            record::ClientRegistration {
                kind: record::RegistrationKind::Dynamic,
                client_id: "cid".into(),
                client_secret: Some(crate::secret::Secret::new("very-secret-value")),
                token_endpoint_auth_method: None,
                redirect_uris: vec![],
                registered_at: 0,
            },
        );
        s.save(&r).unwrap();
        assert_eq!(
            s.load("https://a.example/mcp").unwrap(),
            Loaded::Record(Box::new(r))
        );
        assert_eq!(s.load("https://b.example/mcp").unwrap(), Loaded::Absent);
        let raw = fs::read(s.path_for("https://a.example/mcp")).unwrap();
        assert!(!raw.windows(17).any(|w| w == b"very-secret-value"));
    }

    #[test]
    fn wrong_key_or_swapped_file_is_unusable_not_a_crash() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        s.save(&CredentialRecord::new("https://a.example/mcp"))
            .unwrap();
        s.save(&CredentialRecord::new("https://b.example/mcp"))
            .unwrap();
        // Swap the files: AAD binds the ciphertext to its name.
        let a = s.path_for("https://a.example/mcp");
        let b = s.path_for("https://b.example/mcp");
        fs::copy(&b, &a).unwrap();
        assert!(matches!(
            s.load("https://a.example/mcp").unwrap(),
            Loaded::Unusable { .. }
        ));
        let other = SealedStore::new(
            tmp.path().to_owned(),
            &DataKey::from_bytes(&[8u8; 32]).unwrap(),
        );
        assert!(matches!(
            other.load("https://b.example/mcp").unwrap(),
            Loaded::Unusable { .. }
        ));
        fs::write(&b, b"garbage").unwrap();
        assert!(matches!(
            s.load("https://b.example/mcp").unwrap(),
            Loaded::Unusable { .. }
        ));
    }

    #[test]
    fn a_newer_record_is_never_overwritten_and_an_older_one_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let url = "https://a.example/mcp";
        let stem = file_stem(url);
        let newer = format!(
            r#"{{"version":{},"serverUrl":"{url}","future":true}}"#,
            RECORD_VERSION + 1
        );
        fs::write(s.path_for(url), s.seal(&stem, newer.as_bytes()).unwrap()).unwrap();
        assert!(matches!(
            s.load(url).unwrap(),
            Loaded::Unusable {
                problem: RecordProblem::Newer(_),
                ..
            }
        ));
        assert!(matches!(
            s.save(&CredentialRecord::new(url)),
            Err(StoreError::Record(RecordProblem::Newer(_)))
        ));
        let older = format!(r#"{{"version":0,"serverUrl":"{url}"}}"#);
        fs::write(s.path_for(url), s.seal(&stem, older.as_bytes()).unwrap()).unwrap();
        assert!(matches!(
            s.load(url).unwrap(),
            Loaded::Unusable {
                problem: RecordProblem::Older(0),
                ..
            }
        ));
        s.save(&CredentialRecord::new(url)).unwrap();
        assert!(matches!(s.load(url).unwrap(), Loaded::Record(_)));
    }

    /// A record that is a link is not read through (and a save replaces the
    /// link rather than writing through it).
    #[cfg(unix)]
    #[test]
    fn a_linked_record_is_unusable_and_replaced_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let url = "https://a.example/mcp";
        let elsewhere = tmp.path().join("elsewhere");
        s.save(&CredentialRecord::new(url)).unwrap();
        fs::rename(s.path_for(url), &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, s.path_for(url)).unwrap();
        let Loaded::Unusable { problem, .. } = s.load(url).unwrap() else {
            panic!("a linked record was read");
        };
        assert!(
            problem.to_string().contains("remove the symlink"),
            "{problem}"
        );
        let before = fs::read(&elsewhere).unwrap();
        s.save(&CredentialRecord::new(url)).unwrap();
        assert_eq!(fs::read(&elsewhere).unwrap(), before);
        assert!(matches!(s.load(url).unwrap(), Loaded::Record(_)));
    }
}
