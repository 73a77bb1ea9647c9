//! The interactive flow's hostile cases (docs/protocol.md#mcpauthorize, issue 3): each gives
//! the specified error and leaves nothing half-stored. The authorization
//! server and MCP endpoint are a routing stub on loopback; `browser: "none"`
//! so the test plays the browser (paste or a GET to the listener).

mod common;

use common::Env;
use common::mock_as::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn paste_flow_authorizes_and_persists_and_a_wrong_state_is_refused() {
    let env = Env::new();
    let as_ = stub(|_, _| {}, None);
    let url = format!("{}/mcp", as_.base);
    let mut s = start(&env, &url, json!({}));
    let (id, auth) = begin(&mut s);
    assert_eq!(param(&auth, "code_challenge_method"), "S256");
    assert_eq!(param(&auth, "resource"), url);
    assert_eq!(param(&auth, "scope"), "mcp:read");
    assert_eq!(param(&auth, "client_id"), "dyn-client");

    let wrong = callback(
        &auth,
        &[
            ("code", "c"),
            ("state", "not-the-state"),
            ("iss", &as_.base),
        ],
    );
    let e = s.err(
        "mcp/completeAuthorization",
        json!({"server": "srv", "callbackUrl": wrong}),
    );
    assert_eq!(e["code"], 1002, "{e}");
    assert_eq!(e["data"]["error"], "invalid_state");
    assert_eq!(as_.count("POST /token"), 0);

    let right = approved(&auth, &as_.base);
    let status = s.ok(
        "mcp/completeAuthorization",
        json!({"server": "srv", "callbackUrl": right}),
    );
    assert_eq!(status["state"], "authorized");
    let r = s.wait_response(&json!(id));
    common::schemas::assert_valid("authorize.result.json", &r["result"]);
    assert_eq!(r["result"]["state"], "authorized");
    let t = s.ok("mcp/accessToken", json!({"server": "srv"}));
    assert_eq!(t["accessToken"], "at-from-stub");
    assert_eq!(t["scopes"], json!(["mcp:read"]));
    s.shutdown();

    // Persisted: a new instance sees it, and its registration is reused.
    let mut s = start(&env, &url, json!({}));
    assert_eq!(
        s.ok("mcp/authStatus", json!({}))["servers"][0]["state"],
        "authorized"
    );
    s.shutdown();
}

#[test]
fn wrong_iss_fails_without_a_token_request() {
    let env = Env::new();
    let as_ = stub(|_, _| {}, None);
    let mut s = start(&env, &format!("{}/mcp", as_.base), json!({}));
    let (id, auth) = begin(&mut s);
    // The browser lands on the listener with a foreign issuer.
    let cb = callback(
        &auth,
        &[
            ("code", "c"),
            ("state", &param(&auth, "state")),
            ("iss", "https://evil.example.com"),
            ("error", "access_denied"),
        ],
    );
    let page = reqwest_get(&cb);
    assert!(
        page.contains("Authorization failed") && !page.contains("<script"),
        "{page}"
    );
    let r = s.wait_response(&json!(id));
    assert_eq!(r["error"]["code"], 1002, "{r}");
    assert_eq!(r["error"]["data"]["error"], "invalid_issuer");
    assert_eq!(as_.count("POST /token"), 0);
    assert_eq!(stored_files(&env), 0);
    s.shutdown();
}

#[test]
fn discovery_refusals_happen_before_any_registration() {
    for (name, case) in [
        ("resource mismatch", 0),
        ("issuer mismatch", 1),
        ("no S256", 2),
        ("javascript authorization endpoint", 3),
    ] {
        let env = Env::new();
        let as_ = match case {
            0 => stub(|_, _| {}, Some("https://evil.example.com/mcp")),
            1 => stub(
                |m, _| m["issuer"] = json!("https://other.example.com"),
                None,
            ),
            2 => stub(
                |m, _| m["code_challenge_methods_supported"] = json!(["plain"]),
                None,
            ),
            _ => stub(
                |m, _| m["authorization_endpoint"] = json!("javascript:alert(1)"),
                None,
            ),
        };
        let mut s = start(&env, &format!("{}/mcp", as_.base), json!({}));
        let e = s.err("mcp/authorize", json!({"server": "srv"}));
        let code = if case == 3 { 1006 } else { 1003 };
        assert_eq!(e["code"], code, "{name}: {e}");
        assert_eq!(as_.count("POST /register"), 0, "{name}");
        assert_eq!(stored_files(&env), 0, "{name}");
        let st = s.ok("mcp/authStatus", json!({}));
        assert_eq!(st["servers"][0]["state"], "error", "{name}: {st}");
        s.shutdown();
    }
}

#[test]
fn a_busy_fixed_callback_port_is_a_clear_error() {
    let env = Env::new();
    let as_ = stub(|_, _| {}, None);
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let mut s = start(
        &env,
        &format!("{}/mcp", as_.base),
        json!({"clientId": "pre", "callbackPort": port}),
    );
    let e = s.err("mcp/authorize", json!({"server": "srv"}));
    assert_eq!(e["code"], 1002, "{e}");
    assert_eq!(e["data"]["error"], "redirect_port_unavailable");
    assert!(
        e["message"].as_str().unwrap().contains(&port.to_string()),
        "{e}"
    );
    s.ok("mcp/authStatus", json!({}));
    s.shutdown();
}

#[test]
fn cancel_and_timeout_close_the_listener() {
    let env = Env::new();
    let as_ = stub(|_, _| {}, None);
    let mut s = start(&env, &format!("{}/mcp", as_.base), json!({}));
    let (id, auth) = begin(&mut s);
    let port = url::Url::parse(&param(&auth, "redirect_uri"))
        .unwrap()
        .port()
        .unwrap();
    s.notify("$/cancelRequest", json!({"id": id}));
    let r = s.wait_response(&json!(id));
    assert_eq!(r["error"]["code"], -32800, "{r}");
    wait_closed(port);
    assert_ne!(
        s.ok("mcp/authStatus", json!({}))["servers"][0]["state"],
        "authorizing"
    );
    s.shutdown();

    let mut s = env.spawn();
    s.initialize(
        json!({"storage": "file", "discoverConfigFiles": false, "browser": "none",
        "authorizationTimeout": 1, "servers": {"srv": {"url": format!("{}/mcp", as_.base)}}}),
    );
    let (id, auth) = begin(&mut s);
    let port = url::Url::parse(&param(&auth, "redirect_uri"))
        .unwrap()
        .port()
        .unwrap();
    let r = s.wait_response(&json!(id));
    assert_eq!(r["error"]["code"], 1005, "{r}");
    wait_closed(port);
    assert_eq!(stored_files(&env), 0);
    s.shutdown();
}

fn wait_closed(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the loopback listener on {port} is still open");
}

/// A plain GET with std only (the test plays the browser).
fn reqwest_get(url: &str) -> String {
    use std::io::{Read, Write};
    let u = url::Url::parse(url).unwrap();
    let mut stream =
        std::net::TcpStream::connect((u.host_str().unwrap(), u.port().unwrap())).unwrap();
    let target = format!("{}?{}", u.path(), u.query().unwrap_or(""));
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

/// docs/protocol.md#mcpauthorize: a second `mcp/authorize` in another running instance joins
/// the flow in progress: no second browser tab, one token request, and the
/// callback pasted into either instance completes it.
#[test]
fn a_second_instance_joins_the_flow_in_progress() {
    let env = Env::new();
    let as_ = stub(|_, _| {}, None);
    let url = format!("{}/mcp", as_.base);
    let mut a = start(&env, &url, json!({}));
    let mut b = start(&env, &url, json!({}));
    let (a_id, auth) = begin(&mut a);
    let b_id = b.start("mcp/authorize", json!({"server": "srv"}));
    let waiting = b
        .wait_notification("mcp/authStatusChanged", common::WAIT)
        .expect("B reports");
    assert_eq!(waiting["params"]["state"], "authorizing");

    // The user pastes the callback into B; it reaches A's listener.
    let cb = approved(&auth, &as_.base);
    let pasted = b.ok(
        "mcp/completeAuthorization",
        json!({"server": "srv", "callbackUrl": cb}),
    );
    assert_eq!(pasted["state"], "authorized", "{pasted}");
    assert_eq!(
        a.wait_response(&json!(a_id))["result"]["state"],
        "authorized"
    );
    assert_eq!(
        b.wait_response(&json!(b_id))["result"]["state"],
        "authorized"
    );
    assert!(
        b.wait_notification("mcp/authorizationPending", Duration::from_millis(300))
            .is_none(),
        "B opened a second flow"
    );
    assert_eq!(as_.count("POST /token"), 1);
    assert_eq!(as_.count("POST /register"), 1);
    let ta = a.ok("mcp/accessToken", json!({"server": "srv"}));
    let tb = b.ok("mcp/accessToken", json!({"server": "srv"}));
    assert_eq!(ta["accessToken"], tb["accessToken"]);
    a.shutdown();
    b.shutdown();
}

#[test]
fn challenges_reject_tokens_step_up_and_fail() {
    let env = Env::new();
    let as_ = stub(|_, _| {}, None);
    let mut s = start(&env, &format!("{}/mcp", as_.base), json!({}));
    authorize_by_paste(&mut s, &as_);

    // 403 insufficient_scope: step up to the union of held and asked.
    let r = s.ok(
        "mcp/handleChallenge",
        json!({"server": "srv", "status": 403,
        "wwwAuthenticate": r#"Bearer error="insufficient_scope", scope="mcp:write""#}),
    );
    assert_eq!(r["action"], "authorize");
    assert_eq!(r["scopes"], json!(["mcp:read", "mcp:write"]));
    assert_eq!(r["status"]["state"], "step_up_required");
    // The challenged token is never handed out again.
    let e = s.err("mcp/accessToken", json!({"server": "srv"}));
    assert_eq!(e["code"], 1001, "{e}");
    assert_eq!(e["data"]["server"], "srv");

    // A 403 that is not about scopes: authorizing again would not help.
    let r = s.ok(
        "mcp/handleChallenge",
        json!({"server": "srv", "status": 403,
        "wwwAuthenticate": r#"Bearer error="forbidden""#}),
    );
    assert_eq!(r["action"], "fail");
    assert_eq!(r["status"]["state"], "error");
    assert!(r["status"]["message"].as_str().unwrap().contains("403"));

    let e = s.err(
        "mcp/handleChallenge",
        json!({"server": "srv", "status": 500}),
    );
    assert_eq!(e["code"], -32602, "{e}");

    // A 401 with a refresh token: refresh without the user, then retry.
    let refreshes = as_.count("POST /token");
    let r = s.ok(
        "mcp/handleChallenge",
        json!({"server": "srv", "status": 401,
        "wwwAuthenticate": r#"Bearer error="invalid_token""#}),
    );
    assert_eq!(r["action"], "retry", "{r}");
    assert_eq!(as_.count("POST /token"), refreshes + 1);
    s.shutdown();
}

/// docs/protocol.md#initialize: with `browser: "auto"` and an editor that supports
/// `window/showDocument`, the editor opens the URL (external), which also
/// works when the editor's browser is on another machine.
#[test]
fn the_editor_opens_the_url_when_it_can() {
    let env = Env::new();
    let as_ = stub(|_, _| {}, None);
    let mut s = env.spawn();
    s.ok(
        "initialize",
        json!({
            "capabilities": {"window": {"showDocument": {"support": true}}},
            "initializationOptions": {"storage": "memory", "discoverConfigFiles": false,
                "servers": {"srv": {"url": format!("{}/mcp", as_.base)}}}
        }),
    );
    s.notify("initialized", json!({}));
    let id = s.start("mcp/authorize", json!({"server": "srv"}));
    let pending = s
        .wait_notification("mcp/authorizationPending", common::WAIT)
        .unwrap();
    let queued = s
        .backlog
        .iter()
        .position(|m| m["method"] == "window/showDocument");
    let request = loop {
        if let Some(i) = queued {
            break s.backlog.remove(i).unwrap();
        }
        let m = s.next_message(common::WAIT).expect("window/showDocument");
        if m["method"] == "window/showDocument" {
            break m;
        }
        s.backlog.push_back(m);
    };
    assert_eq!(request["params"]["uri"], pending["params"]["url"]);
    assert_eq!(request["params"]["external"], true);
    s.send(&json!({"jsonrpc": "2.0", "id": request["id"], "result": {"success": true}}));
    let auth = url::Url::parse(pending["params"]["url"].as_str().unwrap()).unwrap();
    let cb = approved(&auth, &as_.base);
    s.ok(
        "mcp/completeAuthorization",
        json!({"server": "srv", "callbackUrl": cb}),
    );
    assert_eq!(s.wait_response(&json!(id))["result"]["state"], "authorized");
    s.shutdown();
}

/// docs/protocol.md#mcpauthstatuschanged: what one instance does, every other
/// running instance shows (the store watcher); §3.2 logout revokes refresh then
/// access token and deletes locally everywhere.
#[test]
fn other_instances_see_authorization_and_logout() {
    let env = Env::new();
    let as_ = stub(|_, _| {}, None);
    let url = format!("{}/mcp", as_.base);
    let mut a = start(&env, &url, json!({}));
    let mut watcher = start(&env, &url, json!({}));
    authorize_by_paste(&mut a, &as_);

    let started = std::time::Instant::now();
    let seen = loop {
        let n = watcher
            .wait_notification("mcp/authStatusChanged", common::WAIT)
            .expect("a change in the other instance");
        if n["params"]["state"] == "authorized" {
            break n;
        }
    };
    eprintln!(
        "authorization visible in the other instance after {:?}",
        started.elapsed()
    );
    assert_eq!(seen["params"]["scopes"], json!(["mcp:read"]));
    let t = watcher.ok("mcp/accessToken", json!({"server": "srv"}));
    assert_eq!(t["accessToken"], "at-from-stub");

    let out = a.ok("mcp/logout", json!({"server": "srv"}));
    assert_eq!(out["revoked"], true, "{out}");
    assert_eq!(out["status"]["state"], "unauthenticated");
    assert_eq!(
        as_.count("POST /revoke"),
        2,
        "refresh token, then access token"
    );
    let started = std::time::Instant::now();
    loop {
        let n = watcher
            .wait_notification("mcp/authStatusChanged", common::WAIT)
            .expect("logout seen");
        if n["params"]["state"] == "unauthenticated" {
            break;
        }
    }
    eprintln!(
        "logout visible in the other instance after {:?}",
        started.elapsed()
    );
    let e = watcher.err("mcp/accessToken", json!({"server": "srv"}));
    assert_eq!(e["code"], 1001, "{e}");
    // The registration stays: signing in again registers nothing new.
    authorize_by_paste(&mut a, &as_);
    assert_eq!(as_.count("POST /register"), 1);
    a.shutdown();
    watcher.shutdown();
}

/// docs/protocol.md#mcphandlechallenge: after 3 authorizations that did not
/// produce an accepted token (the first one counts), the answer is `fail` with
/// state `error`.
#[test]
fn three_authorizations_without_an_accepted_token_then_fail() {
    let env = Env::new();
    let as_ = stub_issuing(
        |_, _| {},
        None,
        json!({"access_token": "short-lived-{n}", "token_type": "Bearer", "expires_in": 3600}),
    );
    let mut s = start(&env, &format!("{}/mcp", as_.base), json!({}));
    for round in 1..=3 {
        authorize_by_paste(&mut s, &as_);
        let r = s.ok(
            "mcp/handleChallenge",
            json!({"server": "srv", "status": 401,
            "wwwAuthenticate": r#"Bearer error="invalid_token""#}),
        );
        let expect = if round < 3 { "authorize" } else { "fail" };
        assert_eq!(r["action"], expect, "round {round}: {r}");
        if round == 3 {
            assert_eq!(r["status"]["state"], "error");
            assert!(
                r["status"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("3 authorizations"),
                "{r}"
            );
        }
    }
    s.shutdown();
}

/// docs/protocol.md#serverstatus: `authorizing` "in this or another instance": an instance that
/// is not involved shows the flow another instance runs, and its end.
#[test]
fn a_flow_in_another_instance_shows_as_authorizing() {
    let env = Env::new();
    let as_ = stub(|_, _| {}, None);
    let url = format!("{}/mcp", as_.base);
    let mut bystander = start(&env, &url, json!({}));
    let mut a = start(&env, &url, json!({}));
    let (id, auth) = begin(&mut a);
    let n = loop {
        let n = bystander
            .wait_notification("mcp/authStatusChanged", common::WAIT)
            .expect("the bystander sees the flow");
        if n["params"]["state"] == "authorizing" {
            break n;
        }
    };
    assert!(
        n["params"]["message"]
            .as_str()
            .unwrap()
            .contains("another editor"),
        "{n}"
    );
    let cb = approved(&auth, &as_.base);
    a.ok(
        "mcp/completeAuthorization",
        json!({"server": "srv", "callbackUrl": cb}),
    );
    assert_eq!(a.wait_response(&json!(id))["result"]["state"], "authorized");
    loop {
        let n = bystander
            .wait_notification("mcp/authStatusChanged", common::WAIT)
            .expect("the bystander sees the end");
        if n["params"]["state"] == "authorized" {
            break;
        }
    }
    let st = bystander.ok("mcp/authStatus", json!({}));
    assert_eq!(st["servers"][0]["state"], "authorized", "{st}");

    // A marker left by a killed instance is not mistaken for a live flow.
    a.start("mcp/authorize", json!({"server": "srv", "force": true}));
    a.wait_notification("mcp/authorizationPending", common::WAIT)
        .expect("a second flow");
    loop {
        let n = bystander
            .wait_notification("mcp/authStatusChanged", common::WAIT)
            .expect("the bystander sees the second flow");
        if n["params"]["state"] == "authorizing" {
            break;
        }
    }
    let _ = a.child.kill();
    let _ = a.child.wait();
    // The killed flow leaves no file event; the bystander notices anyway.
    loop {
        let n = bystander
            .wait_notification("mcp/authStatusChanged", common::WAIT)
            .expect("the bystander notices the killed flow");
        if n["params"]["state"] == "authorized" {
            break;
        }
    }
    let mut late = start(&env, &url, json!({}));
    let st = late.ok("mcp/authStatus", json!({}));
    assert_eq!(st["servers"][0]["state"], "authorized", "{st}");
    late.shutdown();
    bystander.shutdown();
}

/// A sign-out ends this instance's waiting flow instead of queueing behind
/// it for minutes.
#[test]
fn logout_ends_a_waiting_authorization() {
    let env = Env::new();
    let as_ = stub(|_, _| {}, None);
    let mut s = start(&env, &format!("{}/mcp", as_.base), json!({}));
    let (id, _) = begin(&mut s);
    let out = s.ok("mcp/logout", json!({"server": "srv"}));
    assert_eq!(out["revoked"], false);
    let r = s.wait_response(&json!(id));
    assert_eq!(r["error"]["code"], 1002, "{r}");
    assert_eq!(r["error"]["data"]["error"], "cancelled");
    assert_ne!(
        s.ok("mcp/authStatus", json!({}))["servers"][0]["state"],
        "authorizing"
    );
    s.shutdown();
}

/// An editor that never answers `window/showDocument` does not hold the
/// flow past its timeout.
#[test]
fn an_unanswered_show_document_does_not_block_the_timeout() {
    let env = Env::new();
    let as_ = stub(|_, _| {}, None);
    let mut s = env.spawn();
    s.ok("initialize", json!({
        "capabilities": {"window": {"showDocument": {"support": true}}},
        "initializationOptions": {"storage": "memory", "discoverConfigFiles": false, "authorizationTimeout": 1,
            "servers": {"srv": {"url": format!("{}/mcp", as_.base)}}}
    }));
    s.notify("initialized", json!({}));
    let id = s.start("mcp/authorize", json!({"server": "srv"}));
    let r = s.wait_response(&json!(id)); // window/showDocument stays unanswered
    assert_eq!(r["error"]["code"], 1005, "{r}");
    s.shutdown();
}

/// A callback repeating `state` (one wrong, one right) is refused by the
/// listener, the sidecar keeps running, and the real callback still works.
#[test]
fn a_callback_with_a_repeated_state_is_refused_without_a_crash() {
    let env = Env::new();
    let as_ = stub(|_, _| {}, None);
    let mut s = start(&env, &format!("{}/mcp", as_.base), json!({}));
    let (id, auth) = begin(&mut s);
    let crafted = callback(
        &auth,
        &[
            ("state", "x"),
            ("state", &param(&auth, "state")),
            ("code", "c"),
        ],
    );
    let page = reqwest_get(&crafted);
    assert!(page.starts_with("HTTP/1.1 400"), "{page}");
    let st = s.ok("mcp/authStatus", json!({}));
    assert_eq!(
        st["servers"][0]["state"],
        "authorizing",
        "{st}\n{:?}\n{}",
        s.backlog,
        s.stderr()
    );
    s.ok(
        "mcp/completeAuthorization",
        json!({"server": "srv", "callbackUrl": approved(&auth, &as_.base)}),
    );
    assert_eq!(s.wait_response(&json!(id))["result"]["state"], "authorized");
    s.shutdown();
}

/// docs/protocol.md#mcplogout: after a logout anywhere, every instance reports
/// `unauthenticated` — also one that had concluded `step_up_required`.
#[test]
fn a_logout_elsewhere_clears_a_stale_step_up() {
    let env = Env::new();
    let as_ = stub(|_, _| {}, None);
    let url = format!("{}/mcp", as_.base);
    let mut a = start(&env, &url, json!({}));
    authorize_by_paste(&mut a, &as_);
    let r = a.ok(
        "mcp/handleChallenge",
        json!({"server": "srv", "status": 403,
        "wwwAuthenticate": r#"Bearer error="insufficient_scope", scope="mcp:write""#}),
    );
    assert_eq!(r["status"]["state"], "step_up_required");
    let mut b = start(&env, &url, json!({}));
    b.ok("mcp/logout", json!({"server": "srv"}));
    loop {
        let n = a
            .wait_notification("mcp/authStatusChanged", common::WAIT)
            .expect("A follows the logout");
        if n["params"]["state"] == "unauthenticated" {
            break;
        }
    }
    a.shutdown();
    b.shutdown();
}

/// docs/protocol.md#mcpaccesstoken: token requests never wait for an authorization. With a
/// browser flow running, a token inside the refresh window but not expired
/// is handed out at once instead of queueing behind the flow.
#[test]
fn a_token_request_does_not_wait_for_a_browser_flow() {
    let env = Env::new();
    let as_ = stub_issuing(
        |_, _| {},
        None,
        json!({"access_token": "at-{n}", "token_type": "Bearer", "expires_in": 100, "refresh_token": "rt"}),
    );
    let mut s = start(&env, &format!("{}/mcp", as_.base), json!({}));
    authorize_by_paste(&mut s, &as_);
    std::thread::sleep(Duration::from_secs(1)); // now less than 99.5 s are left
    let flow = s.start("mcp/authorize", json!({"server": "srv", "force": true}));
    s.wait_notification("mcp/authorizationPending", common::WAIT)
        .expect("a flow waits for the browser");
    let t = s.ok(
        "mcp/accessToken",
        json!({"server": "srv", "minValiditySeconds": 99.5}),
    );
    assert_eq!(t["accessToken"], "at-1");
    assert_eq!(
        as_.count("POST /token"),
        1,
        "no refresh queued behind the flow"
    );
    s.notify("$/cancelRequest", json!({"id": flow}));
    s.shutdown();
}
