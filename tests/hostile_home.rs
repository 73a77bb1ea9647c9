//! Issue 8, defect 5: files under `MCP_AUTH_SIDECAR_HOME` are trusted only
//! if no other user could have made them. Another local user who pre-creates
//! the home (world-writable), links `data.key` to a key they know or
//! `records` to a directory they read, or plants a lock file that is a link,
//! must get a refusal (1004, saying what to fix), never the user's tokens.
//! Unix only: Windows has no POSIX modes (see ARCHITECTURE.md).
#![cfg(unix)]

mod common;

use common::{Env, Sidecar};
use serde_json::{Value, json};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

const URL: &str = "https://files.example/mcp";

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `initialize` with the file store: the error object, or None if it worked.
fn initialize_error(env: &Env) -> Option<Value> {
    let mut s: Sidecar = env.spawn();
    let resp = s.call(
        "initialize",
        json!({"capabilities": {}, "initializationOptions": {
            "storage": "file", "discoverConfigFiles": false,
            "servers": {"srv": {"url": URL}}}}),
    );
    let error = resp.get("error").cloned();
    if let Some(e) = &error {
        common::schemas::assert_valid("error.json", e);
    }
    error
}

/// `mcp-auth-sidecar status --storage file`: (success, stderr).
fn cli_status(env: &Env) -> (bool, String) {
    let out = env
        .command(false)
        .args(["status", "--storage", "file"])
        .current_dir(env.path("ws"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Both front ends refuse, with error 1004 and a message naming `fix`.
fn assert_refused(env: &Env, fix: &str) {
    let e = initialize_error(env).expect("initialize must fail");
    assert_eq!(e["code"], 1004, "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains(fix), "{message:?} should say {fix:?}");
    let (ok, stderr) = cli_status(env);
    assert!(!ok, "status succeeded; stderr: {stderr}");
    assert!(stderr.contains(fix), "{stderr:?} should say {fix:?}");
}

/// A directory made 0700 whatever the umask, as the sidecar makes them.
fn mkdir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    chmod(path, 0o700);
}

/// Whether the tests run as root (CI does): only root can chown.
fn is_root(env: &Env) -> bool {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(env.path("ws")).unwrap()) == 0
}

#[test]
fn a_world_writable_home_is_refused() {
    let env = Env::new();
    let home = env.sidecar_home();
    chmod(&home, 0o777);
    assert_refused(&env, &format!("chmod 700 {}", home.display()));
    // Nothing was created in it.
    assert_eq!(std::fs::read_dir(&home).unwrap().count(), 0);
}

#[test]
fn a_home_owned_by_another_user_is_refused() {
    let env = Env::new();
    if !is_root(&env) {
        eprintln!("skipped: chown to another uid needs root");
        return;
    }
    let home = env.sidecar_home();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    assert_refused(&env, "owned by uid 65534");
}

#[test]
fn a_store_directory_owned_by_another_user_or_group_writable_is_refused() {
    let env = Env::new();
    let store = env.sidecar_home().join("store");
    mkdir(&store);
    chmod(&store, 0o770);
    assert_refused(&env, &format!("chmod 700 {}", store.display()));
    if is_root(&env) {
        chmod(&store, 0o700);
        std::os::unix::fs::chown(&store, Some(65534), None).unwrap();
        assert_refused(&env, "owned by uid 65534");
    }
}

/// The attack: `data.key` linked to a key the other user knows.
#[test]
fn a_data_key_that_is_a_symlink_is_refused() {
    let env = Env::new();
    let dir = env.sidecar_home().join("store/file");
    mkdir(&dir);
    let known = env.path("attacker-key");
    std::fs::write(&known, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    symlink(&known, dir.join("data.key")).unwrap();
    assert_refused(
        &env,
        &format!("remove the symlink {}", dir.join("data.key").display()),
    );
    // A dangling link (the other user's key not there yet) too.
    std::fs::remove_file(&known).unwrap();
    assert_refused(&env, "remove the symlink");
    assert!(!known.exists(), "a key was written through the link");
}

#[test]
fn a_data_key_readable_by_others_is_refused() {
    let env = Env::new();
    common::seed(
        &env.sidecar_home(),
        mcp_auth_sidecar::store::StorageChoice::File,
        &mcp_auth_sidecar::store::record::CredentialRecord::new(URL),
    );
    let key = env.sidecar_home().join("store/file/data.key");
    chmod(&key, 0o644);
    assert_refused(&env, &format!("chmod 600 {}", key.display()));
    chmod(&key, 0o600);
    assert!(initialize_error(&env).is_none(), "a 0600 key is fine");
}

/// The attack: `records` linked to a directory the other user reads.
#[test]
fn a_records_directory_that_is_a_symlink_is_refused() {
    let env = Env::new();
    let dir = env.sidecar_home().join("store/file");
    mkdir(&dir);
    let theirs = env.path("attacker-records");
    std::fs::create_dir(&theirs).unwrap();
    symlink(&theirs, dir.join("records")).unwrap();
    assert_refused(
        &env,
        &format!("remove the symlink {}", dir.join("records").display()),
    );
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0);
}

/// A lock file that is a link is not followed: nothing is created at its
/// target, and the open fails saying why.
#[test]
fn a_lock_file_that_is_a_symlink_is_not_followed() {
    let env = Env::new();
    let locks = env.sidecar_home().join("locks");
    mkdir(&locks);
    let target = env.path("created-through-the-link");
    let lock = locks.join("store-key.lock");
    symlink(&target, &lock).unwrap();
    assert_refused(&env, &format!("remove the symlink {}", lock.display()));
    assert!(
        !target.exists(),
        "the lock file was created at the link's target"
    );
}

/// With everything in order, the same home works (and nothing above is a
/// false alarm on a home the sidecar made itself).
#[test]
fn a_home_the_sidecar_made_itself_is_accepted() {
    let env = Env::new();
    std::fs::remove_dir(env.sidecar_home()).unwrap();
    assert!(initialize_error(&env).is_none());
    let (ok, stderr) = cli_status(&env);
    assert!(ok, "{stderr}");
    let mode = std::fs::metadata(env.sidecar_home())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

/// `servers.json` in the home is not read through a link either: the entry
/// becomes a configuration problem that says what to fix.
#[test]
fn servers_json_in_the_home_is_not_read_through_a_symlink() {
    let env = Env::new();
    let elsewhere = env.write(
        "elsewhere/servers.json",
        r#"{"servers": {"planted": {"url": "https://planted.example/mcp"}}}"#,
    );
    let link = env.sidecar_home().join("servers.json");
    symlink(&elsewhere, &link).unwrap();
    let mut s = env.spawn();
    s.initialize(json!({"storage": "file"}));
    let r = s.ok("mcp/authStatus", json!({}));
    assert_eq!(r["servers"], json!([]), "{r}");
    let problems = r["configProblems"].to_string();
    assert!(
        problems.contains(&format!("remove the symlink {}", link.display())),
        "{r}"
    );
    s.shutdown();
}
