//! `keyring` storage against a real Secret Service (gnome-keyring). These
//! need a session bus with an unlocked keyring, which `scripts/test.sh`
//! provides by running this file under `scripts/with-keyring.sh`; plain
//! `cargo test` lists them as ignored.

mod common;

use common::{Env, Sidecar, record_with_tokens, seed};
use mcp_auth_sidecar::store::StorageChoice;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const GATE: &str =
    "needs a Secret Service session: run by scripts/test.sh via scripts/with-keyring.sh";

fn require_session() {
    assert_eq!(
        std::env::var("MCP_AUTH_SIDECAR_TEST_KEYRING").as_deref(),
        Ok("1"),
        "run under scripts/with-keyring.sh (dbus-run-session + gnome-keyring)"
    );
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The keyring account named in the home, and the item's value as
/// `secret-tool` (libsecret, a separate client) reads it.
fn keyring_item(env: &Env) -> (String, Vec<u8>) {
    let account = std::fs::read_to_string(env.sidecar_home().join("store/keyring/key-id")).unwrap();
    let out = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "mcp-auth-sidecar",
            "username",
            account.trim(),
        ])
        .output()
        .expect("secret-tool (apt package libsecret-tools)");
    assert!(out.status.success(), "secret-tool lookup failed: {out:?}");
    (account, out.stdout)
}

#[test]
#[ignore = "needs a Secret Service session: run by scripts/test.sh via scripts/with-keyring.sh"]
fn keyring_mode_keeps_every_secret_out_of_files_and_items_small() {
    require_session();
    let env = Env::new();
    let url = "https://big.example/mcp";
    // A 4 KB access token, like a large JWT.
    let access = format!("eyJ{}", "A".repeat(4093));
    seed(
        &env.sidecar_home(),
        StorageChoice::Keyring,
        &record_with_tokens(
            url,
            &access,
            Some("refresh-token-DO-NOT-LOG"),
            Some(common::now_ms() + 600_000),
        ),
    );

    let mut s = Sidecar::spawn(env.command(true), &env.path("stderr.log"));
    s.initialize(json!({"storage": "keyring", "discoverConfigFiles": false, "servers": {"big": {"url": url}}}));
    let r = s.ok("mcp/authStatus", json!({}));
    assert_eq!(r["servers"][0]["state"], "authorized", "{r}");
    assert_eq!(r["servers"][0]["storage"], "keyring");
    s.shutdown();

    let secrets: [&[u8]; 3] = [
        access.as_bytes(),
        b"refresh-token-DO-NOT-LOG",
        b"client-secret-DO-NOT-LOG",
    ];
    let files = files_under(&env.sidecar_home());
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "rec")),
        "{files:?}"
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for secret in secrets {
            let probe = &secret[..secret.len().min(24)];
            assert!(
                !bytes.windows(probe.len()).any(|w| w == probe),
                "plaintext secret in {}",
                f.display()
            );
        }
    }

    // The one keyring item is the data key: small, and really in the keyring.
    let (_, key) = keyring_item(&env);
    assert_eq!(key.len(), 44, "a base64 256-bit key");
    assert!(key.len() <= 2560);
}

#[test]
#[ignore = "needs a Secret Service session: run by scripts/test.sh via scripts/with-keyring.sh"]
fn auto_prefers_a_working_keyring_and_reuses_its_key() {
    require_session();
    let env = Env::new();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let mut s = Sidecar::spawn(env.command(true), &env.path("stderr.log"));
        s.initialize(json!({"discoverConfigFiles": false, "servers": {"x": {"url": "https://x.example/mcp"}}}));
        let r = s.ok("mcp/authStatus", json!({}));
        assert_eq!(r["servers"][0]["storage"], "keyring", "{}", s.stderr());
        s.shutdown();
        let item = keyring_item(&env);
        assert_eq!(item.1.len(), 44);
        keys.push(item);
    }
    assert_eq!(
        keys[0], keys[1],
        "the second start must reuse the first start's key"
    );
    let _ = GATE;
}

/// `dbus-run-session` with scripts/with-keyring.sh's bus configuration, so
/// this bus's socket lands in its scratch folder, not in /tmp.
fn dbus_run_session() -> Command {
    let mut cmd = Command::new("dbus-run-session");
    if let Some(config) = std::env::var_os("MCP_AUTH_TEST_DBUS_CONFIG") {
        let mut arg = std::ffi::OsString::from("--config-file=");
        arg.push(config);
        cmd.arg(arg);
    }
    cmd
}

/// A keyring whose collection exists but is locked (no display, so no
/// prompt can unlock it): `auto` falls back to `file` quickly, an explicit
/// `keyring` gets error 1004.
#[test]
#[ignore = "needs a Secret Service session: run by scripts/test.sh via scripts/with-keyring.sh"]
fn a_locked_keyring_means_file_for_auto_and_1004_for_keyring() {
    require_session();
    let env = Env::new();
    let data = env.path("locked-data");
    std::fs::create_dir_all(&data).unwrap();
    // Session 1 creates a password-protected "login" collection.
    let created = dbus_run_session()
        .args([
            "--",
            "sh",
            "-c",
            "printf pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null",
        ])
        .env("XDG_DATA_HOME", &data)
        .env_remove("DISPLAY")
        .status()
        .expect("dbus-run-session");
    assert!(created.success());
    let keyring_file = data.join("keyrings/login.keyring");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !keyring_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        keyring_file.exists(),
        "gnome-keyring created no login keyring"
    );

    for (storage, expect_ok) in [("auto", true), ("keyring", false)] {
        // Session 2 starts the daemon without unlocking it, then the sidecar.
        let mut cmd = dbus_run_session();
        cmd.args([
            "--",
            "sh",
            "-c",
            "gnome-keyring-daemon --start --components=secrets >/dev/null; exec \"$0\"",
            common::BIN,
        ]);
        cmd.env("MCP_AUTH_SIDECAR_HOME", env.sidecar_home())
            .env("HOME", env.path("home"))
            .env("XDG_DATA_HOME", &data)
            .env("XDG_RUNTIME_DIR", env.path("runtime"))
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("MCP_AUTH_SIDECAR_LOG", "info");
        let mut s = Sidecar::spawn(cmd, &env.path(&format!("stderr-{storage}.log")));
        let init = json!({
            "capabilities": {},
            "initializationOptions": {"storage": storage, "discoverConfigFiles": false,
                "servers": {"x": {"url": "https://x.example/mcp"}}}
        });
        if expect_ok {
            s.ok("initialize", init);
            s.notify("initialized", json!({}));
            let r = s.ok("mcp/authStatus", json!({}));
            assert_eq!(r["servers"][0]["storage"], "file", "{}", s.stderr());
            let log = s.shutdown();
            assert!(log.contains("keyring unavailable"), "{log}");
        } else {
            let e = s.err("initialize", init);
            assert_eq!(e["code"], 1004, "{e}");
            assert!(e["message"].as_str().unwrap().contains("keyring"), "{e}");
        }
    }
}
