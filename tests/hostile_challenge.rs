//! Issue 8, defect 2: a `WWW-Authenticate` value is input from any MCP
//! server the user configured. Pathological values (60,000 stray `=`, 1 MB)
//! reach the challenge parser through `mcp/handleChallenge`, the probe and
//! `mcp/authorize`; each gets an answer and the process keeps serving.

mod common;

use common::{Env, Sidecar, http_stub};
use serde_json::{Value, json};

fn start(env: &Env, url: &str) -> Sidecar {
    let mut s = env.spawn();
    s.initialize(json!({
        "storage": "memory",
        "discoverConfigFiles": false,
        "browser": "none",
        "servers": {"srv": {"url": url}}
    }));
    s
}

/// The process still answers, and is still running.
fn assert_serving(s: &mut Sidecar) {
    let r = s.ok("mcp/authStatus", json!({}));
    assert_eq!(r["servers"][0]["server"], "srv", "{r}");
    assert!(
        s.child.try_wait().expect("try_wait").is_none(),
        "the sidecar exited; stderr:\n{}",
        s.stderr()
    );
}

/// Headers as large as a message may carry (the protocol refuses messages
/// over 1 MiB; the JSON text of `\"` is twice its length).
fn hostile_headers() -> Vec<(&'static str, String)> {
    const NEAR_MIB: usize = (1 << 20) - 4096;
    vec![
        ("60,000 `=`", format!("Bearer {}", "=".repeat(60_000))),
        ("~1 MB of `=`", format!("Bearer {}", "=".repeat(NEAR_MIB))),
        (
            "~1 MB of `=,`",
            format!("Bearer {}", "=,".repeat(NEAR_MIB / 2)),
        ),
        (
            "an unterminated quoted-string of ~1 MB as JSON",
            format!("Bearer scope=\"{}", "\\\"".repeat(NEAR_MIB / 4)),
        ),
    ]
}

#[test]
fn handle_challenge_answers_pathological_headers_and_keeps_serving() {
    let env = Env::new();
    let mut s = start(&env, "https://hostile.example/mcp");
    for (what, header) in hostile_headers() {
        let r = s.call(
            "mcp/handleChallenge",
            json!({"server": "srv", "status": 401, "wwwAuthenticate": header}),
        );
        let result = r
            .get("result")
            .unwrap_or_else(|| panic!("{what}: no result: {r}"));
        common::schemas::assert_valid("handle-challenge.result.json", result);
        assert_eq!(result["action"], "authorize", "{what}: {result}");
        assert_serving(&mut s);
    }
    s.shutdown();
}

/// A server whose 401 carries 60,000 `=` (HTTP clients cap header blocks
/// well below 1 MB, so this is the largest that reaches the parser).
#[test]
fn probe_and_authorize_survive_a_hostile_server_header() {
    let env = Env::new();
    let header = format!("Bearer {}", "=".repeat(60_000));
    let server = http_stub(401, &[("WWW-Authenticate", &header)]);
    let mut s = start(&env, &server.url);

    let r = s.ok("mcp/authStatus", json!({"probe": true}));
    let srv: &Value = &r["servers"][0];
    assert_eq!(srv["state"], "unauthenticated", "{r}");
    assert_serving(&mut s);
    s.shutdown();

    // `mcp/authorize` without a known challenge asks the server for one
    // first. The stub answers 401 to everything, so the flow fails later
    // (registration), but the process answers.
    let mut s = start(&env, &server.url);
    let e = s.err("mcp/authorize", json!({"server": "srv"}));
    assert!(e["code"] == 1002 || e["code"] == 1003, "{e}");
    assert_serving(&mut s);
    s.shutdown();
}
