//! Numbers and tokens that come from outside (issue 8, defects 8 and 9):
//! out-of-range options and parameters get -32602 instead of a panic later,
//! and an access token that could inject into a header is never accepted.

mod common;

use common::mock_as::*;
use common::{Env, Route};
use serde_json::json;

/// `authorizationTimeout` near 2^64 once panicked on the first
/// `mcp/authorize` ("overflow when adding durations").
#[test]
fn out_of_range_numbers_are_invalid_params() {
    let env = Env::new();
    for timeout in [json!(0), json!(u64::MAX), json!(86_401)] {
        let mut s = env.spawn();
        let id = s.start(
            "initialize",
            json!({"processId": null, "capabilities": {}, "initializationOptions": {
                "storage": "memory", "discoverConfigFiles": false,
                "authorizationTimeout": timeout}}),
        );
        let r = s.wait_response(&json!(id));
        assert_eq!(r["error"]["code"], -32602, "{timeout}: {r}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.contains("`authorizationTimeout`"), "{message}");
        s.shutdown();
    }

    let mut s = env.spawn();
    s.initialize(
        json!({"storage": "memory", "discoverConfigFiles": false, "browser": "none",
        "authorizationTimeout": 86_400,
        "servers": {"x": {"url": "https://x.example/mcp"}}}),
    );
    for min in [json!(-1), json!(1e300), json!(31_622_401)] {
        let e = s.err(
            "mcp/accessToken",
            json!({"server": "x", "minValiditySeconds": min}),
        );
        assert_eq!(e["code"], -32602, "{min}: {e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("minValiditySeconds"),
            "{e}"
        );
    }
    for status in [0, 99, 600, 65_535] {
        let e = s.err(
            "mcp/handleChallenge",
            json!({"server": "x", "status": status}),
        );
        assert_eq!(e["code"], -32602, "{status}: {e}");
        assert!(e["message"].as_str().unwrap().contains("`status`"), "{e}");
    }
    // Still serving.
    let st = s.ok("mcp/authStatus", json!({}));
    assert_eq!(st["servers"][0]["state"], "unknown");
    s.shutdown();
}

/// RFC 6750 §2.1: an access token is a b64token. One with a quote, a blank
/// or a line break would be handed to the editor and injected into its
/// `Authorization` header; an empty one would count as authorized.
#[test]
fn a_token_that_is_not_a_b64token_is_a_malformed_response() {
    for token in ["", "abc def", "abc\"def", "abc\r\nX-Injected: 1", "a=b"] {
        let env = Env::new();
        let as_ = stub_with_token(
            |_, _| {},
            None,
            Route::json(
                "POST",
                "/token",
                200,
                json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}),
            ),
        );
        let mut s = start(&env, &format!("{}/mcp", as_.base), json!({}));
        let (id, auth) = begin(&mut s);
        let cb = approved(&auth, &as_.base);
        let _ = s.call(
            "mcp/completeAuthorization",
            json!({"server": "srv", "callbackUrl": cb}),
        );
        let r = s.wait_response(&json!(id));
        let e = &r["error"];
        assert_eq!(e["code"], 1002, "{token:?}: {r}");
        assert_eq!(e["data"]["error"], "invalid_response", "{token:?}: {r}");
        assert!(e["message"].as_str().unwrap().contains("b64token"), "{r}");
        let t = s.err("mcp/accessToken", json!({"server": "srv"}));
        assert_eq!(t["code"], 1001, "{token:?}: nothing usable was stored");
        s.shutdown();
    }
}

/// editors/shell/mcp-auth-header prints nothing but a well-formed header or
/// JSON object, whatever the token command printed.
#[test]
#[cfg(unix)] // the helper is a POSIX shell script
fn the_header_helper_refuses_a_token_that_would_inject() {
    let env = Env::new();
    let helper =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/shell/mcp-auth-header");
    for printed in ["x\", \"Injected\": \"1", "x\\ny", "x y", ""] {
        let fake = env.write(
            "fake-sidecar",
            &format!(
                "#!/bin/sh\nprintf '%s\\n' '{}'\n",
                printed.replace('\'', "")
            ),
        );
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for args in [&["srv"][..], &["--json", "srv"][..]] {
            let out = std::process::Command::new(&helper)
                .args(args)
                .env("MCP_AUTH_SIDECAR", &fake)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{printed:?} {args:?}: {out:?}");
            assert!(out.stdout.is_empty(), "{printed:?} {args:?}: {out:?}");
        }
    }
}

/// Issue 11: a bad `initializationOptions` field is named with what it
/// accepts, never with a Rust type ("untagged enum BrowserOption") and
/// never with the value, which may be a secret.
#[test]
fn bad_initialization_options_name_the_field_and_the_accepted_values() {
    let env = Env::new();
    let secret = "sk-live-0123456789";
    let cases = [
        (
            json!({"browser": secret}),
            "`browser`",
            "\"auto\", \"none\", or a command",
        ),
        (
            json!({"browser": [secret, 7]}),
            "`browser`",
            "\"auto\", \"none\", or a command",
        ),
        (
            json!({"storage": secret}),
            "`storage`",
            "\"auto\", \"keyring\", \"file\" or \"memory\"",
        ),
        (
            json!({"discoverConfigFiles": secret}),
            "`discoverConfigFiles`",
            "true or false",
        ),
        (
            json!({"configFiles": [secret, 7]}),
            "`configFiles[1]`",
            "`configFiles` accepts an array",
        ),
        (
            json!({"authorizationTimeout": secret}),
            "`authorizationTimeout`",
            "from 1 to 86400",
        ),
        (
            json!({"callbackHost": secret}),
            "`callbackHost`",
            "\"127.0.0.1\", \"::1\" or \"localhost\"",
        ),
        (
            json!({"servers": [secret]}),
            "`servers`",
            "an object of server names",
        ),
        (json!(secret), "must be an object", "browser"),
    ];
    for (options, field, accepted) in cases {
        let mut s = env.spawn();
        let e = s.err(
            "initialize",
            json!({"processId": null, "capabilities": {}, "initializationOptions": options}),
        );
        assert_eq!(e["code"], -32602, "{options}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(message.starts_with("initializationOptions: "), "{message}");
        assert!(message.contains(field), "{options}: {message}");
        assert!(message.contains(accepted), "{options}: {message}");
        for leak in [
            secret,
            "enum",
            "BrowserOption",
            "StorageChoice",
            "variant",
            "u64",
        ] {
            assert!(!message.contains(leak), "{options}: {message}");
        }
        assert!(!s.stderr().contains(secret), "{}", s.stderr());
    }
}
