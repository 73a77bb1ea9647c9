//! SPEC §6 failure handling against a loopback stand-in authorization server
//! whose token endpoint changes its answer after the authorization: what a
//! real server does only when something goes wrong. (Rotation, locking and
//! the herd are tested against oidc-provider in tests/peers/oidc.)

mod common;

use common::mock_as::*;
use common::{Env, Route};
use serde_json::json;

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

/// SPEC §5: a refresh that returns no new refresh token keeps the old one,
/// and the next refresh still works.
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
