//! The OS asking the sidecar to end (SIGTERM, SIGHUP, SIGINT) takes the
//! same path as `exit`: a refresh already sent finishes and its rotated
//! refresh token is stored before the process ends with status 0. (Ctrl-C
//! and console close on Windows go the same way; they are not tested here.)
#![cfg(unix)]

mod common;

use common::mock_as::*;
use common::{Env, Route};
use serde_json::json;
use std::time::{Duration, Instant};

fn signal(s: &common::Sidecar, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(s.child.id()).unwrap();
    // SAFETY: kill(2) only sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

#[test]
fn an_idle_sidecar_ends_cleanly_on_each_signal() {
    for (name, number) in [
        ("SIGTERM", libc::SIGTERM),
        ("SIGHUP", libc::SIGHUP),
        ("SIGINT", libc::SIGINT),
    ] {
        let env = Env::new();
        let mut s = env.spawn();
        s.initialize(json!({"storage": "file", "discoverConfigFiles": false}));
        s.ok("mcp/authStatus", json!({}));
        signal(&s, number);
        let status = s.wait_exit(Duration::from_secs(10)).expect(name);
        assert!(status.success(), "{name}: {status:?}");
    }
}

/// How long the token endpoint takes to answer a refresh.
const SLOW: Duration = Duration::from_secs(2);

/// A stand-in server whose refreshes take [`SLOW`] and rotate to
/// `at-refreshed`/`rt-rotated`; `env`'s store holds its expired `at-first`.
fn authorized_and_expired(env: &Env) -> (common::RouteStub, String) {
    let refreshed = json!({"access_token": "at-refreshed", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-rotated", "scope": "mcp:read"});
    let as_ = stub_with_token(
        |_, _| {},
        None,
        Route::json(
            "POST",
            "/token",
            200,
            json!({"access_token": "at-first", "token_type": "Bearer", "expires_in": 1, "refresh_token": "rt-first", "scope": "mcp:read"}),
        )
        .after(1, 200, refreshed)
        .slow_after(1, SLOW),
    );
    let url = format!("{}/mcp", as_.base);
    let mut s = start(env, &url, json!({}));
    authorize_by_paste(&mut s, &as_);
    s.shutdown();
    std::thread::sleep(Duration::from_millis(1500)); // at-first expired
    (as_, url)
}

/// Waits until the refresh reached the (slow) server.
fn refresh_sent(as_: &common::RouteStub) -> Instant {
    let deadline = Instant::now() + common::WAIT;
    while as_.count("POST /token") < 2 {
        assert!(
            Instant::now() < deadline,
            "the refresh never reached the server"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Instant::now()
}

/// The refresh happened and was stored: the next sidecar hands out its
/// token without asking the server again.
fn assert_refresh_stored(env: &Env, as_: &common::RouteStub, url: &str, sent: Instant) {
    assert!(
        sent.elapsed() >= SLOW - Duration::from_millis(300),
        "ended before the refresh was answered ({:?})",
        sent.elapsed()
    );
    let mut next = start(env, url, json!({}));
    let r = next.ok("mcp/accessToken", json!({"server": "srv"}));
    assert_eq!(r["accessToken"], "at-refreshed", "{r}");
    assert_eq!(as_.count("POST /token"), 2, "no second refresh");
    next.shutdown();
}

/// The refresh is at the token endpoint when SIGTERM arrives: the sidecar
/// waits for the answer, stores it, exits 0.
#[test]
fn sigterm_during_a_refresh_drains_it_and_exits_zero() {
    let env = Env::new();
    let (as_, url) = authorized_and_expired(&env);
    let mut s = start(&env, &url, json!({}));
    s.start("mcp/accessToken", json!({"server": "srv"}));
    let sent = refresh_sent(&as_);
    signal(&s, libc::SIGTERM);
    let status = s.wait_exit(common::WAIT).expect("exits after the drain");
    assert!(status.success(), "{status:?}\n{}", s.stderr());
    assert_refresh_stored(&env, &as_, &url, sent);
}

/// The CLI's `token`, interrupted (SIGINT, as by Ctrl-C) mid-refresh: the
/// refresh is stored, then it reports the signal and exits 1.
#[test]
fn the_cli_drains_a_refresh_before_it_obeys_a_signal() {
    let env = Env::new();
    let (as_, url) = authorized_and_expired(&env);
    let mut child = env
        .command(false)
        .args(["token", &url, "--storage", "file"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let sent = refresh_sent(&as_);
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) only sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = common::wait_for_exit(&mut child, common::WAIT).expect("exits after the drain");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stopped by SIGINT"), "{stderr}");
    assert!(out.stdout.is_empty(), "no token printed after the signal");
    assert_refresh_stored(&env, &as_, &url, sent);
}
