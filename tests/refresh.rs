//! Refresh failure handling
//! (ARCHITECTURE.md#the-refresh-transaction-and-locking) against a loopback
//! stand-in authorization server whose token endpoint changes its answer after
//! the authorization: what a real server does only when something goes wrong.
//! (Rotation, locking and the herd are tested against oidc-provider in
//! tests/peers/oidc.)

mod common;

use common::mock_as::*;
use common::{Env, HANG_UP, Route};
use serde_json::json;
use std::time::Duration;

const REJECTED: &str = r#"Bearer error="invalid_token""#;

fn tokens() -> serde_json::Value {
    json!({"access_token": "at-{n}", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-{n}", "scope": "mcp:read"})
}

#[test]
fn transient_failures_are_retried_then_reported_and_tokens_are_kept() {
    let env = Env::new();
    let as_ = stub_with_token(
        |_, _| {},
        None,
        Route::json("POST", "/token", 200, tokens()).after(1, 503, json!({})),
    );
    let mut s = start(&env, &format!("{}/mcp", as_.base), json!({}));
    authorize_by_paste(&mut s, &as_);

    let r = s.ok(
        "mcp/handleChallenge",
        json!({"server": "srv", "status": 401, "wwwAuthenticate": REJECTED}),
    );
    assert_eq!(r["action"], "fail", "{r}");
    assert_eq!(r["status"]["state"], "error");
    assert!(
        r["status"]["message"].as_str().unwrap().contains("refresh"),
        "{r}"
    );
    // One refresh attempt and three retries with backoff.
    assert_eq!(as_.count("POST /token"), 1 + 4);
    // The tokens are kept: a later success needs no new authorization.
    let st = s.ok("mcp/authStatus", json!({}));
    assert!(st["servers"][0]["expiresAt"].is_i64(), "{st}");
    s.shutdown();
    let mut s = start(&env, &format!("{}/mcp", as_.base), json!({}));
    assert_eq!(
        s.ok("mcp/authStatus", json!({}))["servers"][0]["state"],
        "authorized"
    );
    s.shutdown();
}

/// Some servers answer HTTP 200 with an error body; that is the OAuth error
/// it names, here a dead refresh token: tokens dropped (registration kept),
/// `unauthenticated` with the reason.
#[test]
fn an_http_200_error_body_is_the_oauth_error_it_names() {
    let env = Env::new();
    let as_ = stub_with_token(
        |_, _| {},
        None,
        Route::json("POST", "/token", 200, tokens()).after(
            1,
            200,
            json!({"ok": false, "error": "invalid_refresh_token"}),
        ),
    );
    let mut s = start(&env, &format!("{}/mcp", as_.base), json!({}));
    authorize_by_paste(&mut s, &as_);
    let r = s.ok(
        "mcp/handleChallenge",
        json!({"server": "srv", "status": 401, "wwwAuthenticate": REJECTED}),
    );
    assert_eq!(r["action"], "authorize", "{r}");
    assert_eq!(r["status"]["state"], "unauthenticated");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid_refresh_token"),
        "{r}"
    );
    assert_eq!(as_.count("POST /token"), 2, "a dead grant is not retried");
    let e = s.err("mcp/accessToken", json!({"server": "srv"}));
    assert_eq!(e["code"], 1001);
    assert_eq!(e["data"]["state"], "unauthenticated");
    s.shutdown();
}

/// ARCHITECTURE.md#credentials-on-disk: a refresh that returns no new refresh
/// token keeps the old one, and the next refresh still works.
#[test]
fn a_refresh_without_a_new_refresh_token_keeps_the_old_one() {
    let env = Env::new();
    let as_ = stub_with_token(
        |_, _| {},
        None,
        Route::json("POST", "/token", 200, tokens()).after(
            1,
            200,
            json!({"access_token": "at-refreshed", "token_type": "Bearer", "expires_in": 3600}),
        ),
    );
    let mut s = start(&env, &format!("{}/mcp", as_.base), json!({}));
    authorize_by_paste(&mut s, &as_);
    for _ in 0..2 {
        let r = s.ok(
            "mcp/handleChallenge",
            json!({"server": "srv", "status": 401, "wwwAuthenticate": REJECTED}),
        );
        assert_eq!(r["action"], "retry", "{r}");
    }
    assert_eq!(as_.count("POST /token"), 3);
    s.shutdown();
}

/// Tokens that expire a second after they are issued.
fn short_tokens() -> serde_json::Value {
    json!({"access_token": "at-{n}", "token_type": "Bearer", "expires_in": 1, "refresh_token": "rt-{n}", "scope": "mcp:read"})
}

/// Authorizes against `as_`, then waits until the access token expired.
fn authorized_then_expired(env: &Env, as_: &common::RouteStub) -> common::Sidecar {
    let mut s = start(env, &format!("{}/mcp", as_.base), json!({}));
    authorize_by_paste(&mut s, as_);
    std::thread::sleep(Duration::from_millis(1500));
    s
}

/// The one sealed record file of the sidecar's file store.
fn record_file(env: &Env) -> std::path::PathBuf {
    let dir = env.sidecar_home().join("store/file/records");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "rec"))
        .expect("a record file")
}

/// An I/O error: the name now leads to a directory. Renamed into place, as
/// a write by another process would be.
#[cfg(unix)]
fn replace_with_a_link_to_its_directory(file: &std::path::Path) {
    let link = file.with_extension("tmp-link");
    std::os::unix::fs::symlink(file.parent().unwrap(), &link).unwrap();
    std::fs::rename(&link, file).unwrap();
}

#[cfg(not(unix))]
fn replace_with_a_link_to_its_directory(_: &std::path::Path) {
    unreachable!("the directory damage is only done on Unix");
}

/// Issue 8 (6): under the credential lock, a record that cannot be read
/// (another data key, a newer build, an I/O error) must stop the refresh:
/// memory may lag another instance's rotation, so presenting its refresh
/// token could replay a spent one, and writing would destroy that record.
#[test]
fn an_unreadable_record_is_never_refreshed_from_memory_nor_overwritten() {
    // Turning the name into a link to a directory needs a Unix symlink.
    let damages: &[&str] = if cfg!(unix) {
        &["garbage", "directory"]
    } else {
        &["garbage"]
    };
    for &damage in damages {
        let env = Env::new();
        let as_ = stub_with_token(
            |_, _| {},
            None,
            Route::json("POST", "/token", 200, short_tokens()),
        );
        let mut s = authorized_then_expired(&env, &as_);
        let file = record_file(&env);
        match damage {
            "garbage" => std::fs::write(&file, b"sealed by someone else").unwrap(),
            _ => replace_with_a_link_to_its_directory(&file),
        }
        let e = s.err("mcp/accessToken", json!({"server": "srv"}));
        assert_eq!(e["code"], 1004, "{damage}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains("cannot be used"), "{damage}: {message}");
        assert_eq!(as_.count("POST /token"), 1, "{damage}: no refresh was sent");
        match damage {
            "garbage" => assert_eq!(std::fs::read(&file).unwrap(), b"sealed by someone else"),
            _ => assert!(
                file.symlink_metadata().unwrap().is_symlink(),
                "{damage}: nothing was written"
            ),
        }
        s.shutdown();
    }
}

/// Issue 8 (7): a token endpoint that took the request and never answered
/// (a crash, a proxy's timeout) is a transient failure — state `error`,
/// tokens kept, error 1007 — never "the authorization server refused"
/// (1002). And it is not sent again: the AS may have rotated the token.
#[test]
fn a_lost_answer_is_transient_and_not_sent_again() {
    let env = Env::new();
    let as_ = stub_with_token(
        |_, _| {},
        None,
        Route::json("POST", "/token", 200, short_tokens()).after(1, HANG_UP, json!({})),
    );
    let mut s = authorized_then_expired(&env, &as_);
    let e = s.err("mcp/accessToken", json!({"server": "srv"}));
    assert_eq!(e["code"], 1007, "{e}");
    assert!(!e["message"].as_str().unwrap().contains("refused"), "{e}");
    assert_eq!(as_.count("POST /token"), 2, "one refresh, no retry");
    let st = s.ok("mcp/authStatus", json!({"server": "srv"}))["servers"][0].clone();
    assert_eq!(st["state"], "error", "{st}");
    assert!(st["message"].as_str().unwrap().contains("kept"), "{st}");
    s.shutdown();
}

/// Issue 8 (6): a 502 or 504 from a gateway may follow a rotation the AS
/// already made: reported, not retried (a 503 is, see above).
#[test]
fn a_gateway_error_is_reported_without_a_retry() {
    for status in [502, 504] {
        let env = Env::new();
        let as_ = stub_with_token(
            |_, _| {},
            None,
            Route::json("POST", "/token", 200, short_tokens()).after(1, status, json!({})),
        );
        let mut s = authorized_then_expired(&env, &as_);
        let e = s.err("mcp/accessToken", json!({"server": "srv"}));
        assert_eq!(e["code"], 1007, "{status}: {e}");
        assert_eq!(as_.count("POST /token"), 2, "{status}: no retry");
        s.shutdown();
    }
}

/// Options with browser flows of up to 5 minutes, file storage.
fn held_options(url: &str) -> serde_json::Value {
    json!({
        "storage": "file", "discoverConfigFiles": false, "browser": "none",
        "authorizationTimeout": 300, "servers": {"srv": {"url": url}}
    })
}

/// Instance A, authorized with a token that has expired, then holding the
/// credential's lock for a new browser flow (up to 5 minutes); and the id
/// of that flow's request.
fn expired_and_held_by_a_browser_flow(
    env: &Env,
    as_: &common::RouteStub,
) -> (common::Sidecar, i64) {
    let mut a = env.spawn();
    a.initialize(held_options(&format!("{}/mcp", as_.base)));
    authorize_by_paste(&mut a, as_);
    std::thread::sleep(Duration::from_millis(1500));
    let flow = a.start("mcp/authorize", json!({"server": "srv", "force": true}));
    a.wait_notification("mcp/authorizationPending", common::WAIT)
        .expect("A's flow started");
    (a, flow)
}

/// Issue 8 (7): a refresh that waited too long for another instance's
/// browser flow says so (1007), not "storage unavailable" (1004).
#[test]
fn waiting_too_long_for_another_instance_is_transient_not_storage() {
    let env = Env::new();
    let as_ = stub_with_token(
        |_, _| {},
        None,
        Route::json("POST", "/token", 200, short_tokens()),
    );
    let url = format!("{}/mcp", as_.base);
    let (mut a, flow) = expired_and_held_by_a_browser_flow(&env, &as_);
    // B gives up after its own 1-second flow timeout and the margin.
    let mut b = env.spawn();
    b.initialize(json!({
        "storage": "file", "discoverConfigFiles": false, "browser": "none",
        "authorizationTimeout": 1, "servers": {"srv": {"url": url}}
    }));
    let id = b.start("mcp/accessToken", json!({"server": "srv"}));
    let r = b.wait_response_within(&json!(id), Duration::from_secs(90));
    let e = r["error"].clone();
    assert_eq!(e["code"], 1007, "{r}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("another mcp-auth-sidecar process"),
        "{message}"
    );
    assert_eq!(as_.count("POST /token"), 1, "B sent nothing");
    a.send(&json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": flow}}));
    let _ = a.wait_response(&json!(flow));
    b.shutdown();
    a.shutdown();
}

/// A 200 whose access token cannot be handed out (here it would inject into
/// the editor's header) may still carry a rotated refresh token; the one
/// sent may be revoked now, so the new one is kept and presented next.
#[test]
fn an_unusable_access_token_does_not_lose_the_rotated_refresh_token() {
    let env = Env::new();
    let as_ = stub_with_token(
        |_, _| {},
        None,
        Route::json("POST", "/token", 200, short_tokens())
            .after(
                1,
                200,
                json!({"access_token": "at\r\nX-Injected: 1", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-rotated"}),
            )
            .after(2, 200, tokens()),
    );
    let mut s = authorized_then_expired(&env, &as_);
    let e = s.err("mcp/accessToken", json!({"server": "srv"}));
    assert!(
        e["message"].as_str().unwrap().contains("b64token"),
        "the error says why: {e}"
    );
    let r = s.ok("mcp/accessToken", json!({"server": "srv"}));
    assert_eq!(r["accessToken"], "at-3", "{r}");
    let sent: Vec<String> = as_
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(what, _)| what == "POST /token")
        .map(|(_, body)| body.clone())
        .collect();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent[1].contains("refresh_token=rt-1"), "{}", sent[1]);
    assert!(
        sent[2].contains("refresh_token=rt-rotated"),
        "the rotated token was presented: {}",
        sent[2]
    );
    s.shutdown();
}

/// A refresh that is still waiting for another instance's lock has sent
/// nothing: `exit` must not wait for it (only for transactions under way).
#[test]
fn exit_does_not_wait_for_a_refresh_queued_behind_another_instance() {
    let env = Env::new();
    let as_ = stub_with_token(
        |_, _| {},
        None,
        Route::json("POST", "/token", 200, short_tokens()),
    );
    let (a, _flow) = expired_and_held_by_a_browser_flow(&env, &as_);
    let options = held_options(&format!("{}/mcp", as_.base));
    let mut cmd = env.command(false);
    cmd.env("MCP_AUTH_SIDECAR_LOG", "mcp_auth_sidecar=debug");
    let mut b = common::Sidecar::spawn(cmd, &env.path("b.log"));
    b.initialize(options);
    let _queued = b.start("mcp/accessToken", json!({"server": "srv"}));
    // B's refresh is queued behind A's lock.
    let deadline = std::time::Instant::now() + common::WAIT;
    while !b.stderr().contains("refresh transaction starts") {
        assert!(std::time::Instant::now() < deadline, "{}", b.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    b.close_stdin();
    // Well under the 40-second drain bound of a transaction under way.
    let status = b.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "B exited at once: {status:?}"
    );
    assert_eq!(as_.count("POST /token"), 1, "B sent no refresh");
    a.shutdown();
}
