//! docs/protocol.md#command-line `status [--json]`: the same view as `mcp/authStatus`.

mod common;

use common::{Env, now_ms, record_with_tokens, seed};
use mcp_auth_sidecar::store::StorageChoice;
use serde_json::Value;

fn setup() -> Env {
    let env = Env::new();
    env.write(
        "home/.cursor/mcp.json",
        r#"{"mcpServers": {
        "github": {"url": "https://github.example/mcp"},
        "linear": {"url": "https://linear.example/mcp"}}}"#,
    );
    seed(
        &env.sidecar_home(),
        StorageChoice::File,
        &record_with_tokens(
            "https://github.example/mcp",
            "at",
            Some("rt"),
            Some(now_ms() + 7_200_000),
        ),
    );
    env
}

#[test]
fn status_json_matches_the_protocol_view() {
    let env = setup();
    let out = env
        .command(false)
        .args(["status", "--json"])
        .current_dir(env.path("ws"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    common::schemas::assert_valid("auth-status.result.json", &v);
    let servers = v["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2);
    assert_eq!(servers[0]["server"], "github");
    assert_eq!(servers[0]["state"], "authorized");
    assert_eq!(servers[0]["storage"], "file");
    assert_eq!(servers[1]["server"], "linear");
    assert_eq!(servers[1]["state"], "unknown");
}

#[test]
fn status_table_for_people() {
    let env = setup();
    env.write("ws/.mcp.json", "{ broken");
    let out = env
        .command(false)
        .arg("status")
        .current_dir(env.path("ws"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("SERVER"), "{text}");
    assert!(
        lines[1].starts_with("github")
            && lines[1].contains("authorized")
            && lines[1].contains("expires in 1h"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("linear") && lines[2].contains("unknown"),
        "{text}"
    );
    assert!(text.contains("(storage: file)"), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(".mcp.json: is not valid JSON"), "{err}");
}

#[test]
fn bad_arguments_get_a_usage_error() {
    let env = Env::new();
    let out = env
        .command(false)
        .args(["status", "--storage", "floppy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected one of"));
}

/// `--version` names the crate version and the protocol version of the
/// `initialize` result, which `:checkhealth mcp_auth` compares with the
/// plugin's own before starting the sidecar.
#[test]
fn version_names_the_protocol() {
    let env = Env::new();
    let out = env.command(false).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "mcp-auth-sidecar {} (protocol {})\n",
            env!("CARGO_PKG_VERSION"),
            mcp_auth_sidecar::rpc::protocol::PROTOCOL_VERSION
        )
    );
    assert_eq!(mcp_auth_sidecar::rpc::protocol::PROTOCOL_VERSION, 1);
}

/// docs/protocol.md#command-line `login` over SSH: the URL is printed, the browser is elsewhere,
/// the callback URL is pasted on stdin; then `token` prints the token.
#[test]
fn login_accepts_a_pasted_callback_and_token_prints_it() {
    use common::{Route, RouteStub};
    use serde_json::json;
    use std::io::{BufRead, BufReader, Write};
    let env = Env::new();
    let stub = RouteStub::start(|base| {
        vec![
            Route::json(
                "GET",
                "/.well-known/oauth-protected-resource/mcp",
                200,
                json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
            ),
            Route::json(
                "GET",
                "/.well-known/oauth-authorization-server",
                200,
                json!({
                "issuer": base, "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"), "registration_endpoint": format!("{base}/register"),
                "code_challenge_methods_supported": ["S256"]}),
            ),
            Route::json("POST", "/register", 201, json!({"client_id": "cli-client"})),
            Route::json(
                "POST",
                "/token",
                200,
                json!({"access_token": "cli-token", "token_type": "bearer", "expires_in": 600}),
            ),
        ]
    });
    let url = format!("{}/mcp", stub.base);
    let mut child = env
        .command(false)
        .args(["login", &url, "--no-browser", "--storage", "file"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let auth = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "login ended before printing a URL"
        );
        if let Some(u) = line
            .trim()
            .strip_prefix("http")
            .map(|rest| format!("http{rest}"))
        {
            break url::Url::parse(&u).unwrap();
        }
    };
    let get = |k: &str| {
        auth.query_pairs()
            .find(|(key, _)| key == k)
            .unwrap()
            .1
            .into_owned()
    };
    let mut cb = url::Url::parse(&get("redirect_uri")).unwrap();
    cb.query_pairs_mut()
        .append_pair("code", "x")
        .append_pair("state", &get("state"));
    writeln!(child.stdin.as_mut().unwrap(), "{cb}").unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    assert!(status.success(), "{rest}");
    assert!(rest.contains("authorized"), "{rest}");

    let out = env
        .command(false)
        .args(["token", &url, "--storage", "file"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "cli-token");
    let out = env
        .command(false)
        .args(["logout", &url, "--storage", "file"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("signed out"));
    let out = env
        .command(false)
        .args(["token", &url, "--storage", "file"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "no token after logout");
    let out = env
        .command(false)
        .args(["token", "https://other.example/mcp", "--storage", "file"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("login"));
}

/// editors/shell/mcp-auth-header, the helper for tools that take a header
/// command (editors/OTHER-EDITORS.md).
#[test]
fn the_header_helper_prints_a_header() {
    let env = setup();
    let helper =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/shell/mcp-auth-header");
    let run = |args: &[&str]| {
        std::process::Command::new(&helper)
            .args(args)
            .env("MCP_AUTH_SIDECAR", common::BIN)
            .env("MCP_AUTH_SIDECAR_HOME", env.sidecar_home())
            .env("HOME", env.path("home"))
            .env("XDG_RUNTIME_DIR", env.path("runtime"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .current_dir(env.path("ws"))
            .output()
            .unwrap()
    };
    let out = run(&["github"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Authorization: Bearer at\n"
    );
    let out = run(&["--json", "github"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Authorization"], "Bearer at");
    let out = run(&["linear"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("login"));
}

/// Issue 11: `status` with nothing configured says where servers come from
/// and how to add one; no keyring warning where no desktop session runs.
#[test]
fn status_with_nothing_configured_says_where_servers_come_from() {
    let env = Env::new();
    let out = env
        .command(false)
        .arg("status")
        .current_dir(env.path("ws"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let home = env.path("home");
    let servers_json = env.sidecar_home().join("servers.json");
    for expected in [
        "No remote MCP servers configured".to_owned(),
        home.join(".cursor/mcp.json").display().to_string(),
        servers_json.display().to_string(),
        env.path("ws/.vscode/mcp.json").display().to_string(),
        env.path("ws/.mcp.json").display().to_string(),
        "initializationOptions".to_owned(),
        format!("write it to {}", servers_json.display()),
        "mcp-auth-sidecar login https://".to_owned(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    // `auto` storage without a session bus is the file store, quietly.
    assert!(text.contains("(storage: file)"), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        !err.contains("keyring") && !err.contains("zbus") && !err.contains("WARN"),
        "stderr: {err}"
    );
}

/// Issue 11: an unknown name says what is configured and that a URL works,
/// without the protocol's field prefix.
#[test]
fn an_unknown_server_name_suggests_a_url() {
    let env = setup();
    for command in ["login", "logout", "token"] {
        let out = env
            .command(false)
            .args([command, "gitlab", "--storage", "file"])
            .current_dir(env.path("ws"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{command}: {out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.starts_with(
                "mcp-auth-sidecar: unknown server \"gitlab\"; configured: github, linear;"
            ),
            "{command}: {err}"
        );
        assert!(err.contains("URL works too (https://"), "{command}: {err}");
        assert!(!err.contains('`'), "{command}: {err}");
    }
    let empty = Env::new();
    let out = empty
        .command(false)
        .args(["token", "gitlab"])
        .current_dir(empty.path("ws"))
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no servers are configured"), "{err}");
    assert!(err.contains("URL works too"), "{err}");
}

/// Issue 11: `logout` with nothing stored says so; with tokens it says they
/// were deleted (and that `--no-revoke` did not revoke them).
#[test]
fn logout_says_whether_anything_was_signed_out() {
    let env = setup();
    let logout = |server: &str| {
        let out = env
            .command(false)
            .args(["logout", server, "--no-revoke"])
            .current_dir(env.path("ws"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    let err = logout("linear");
    assert!(
        err.contains("linear: not signed in (no tokens stored in file storage)"),
        "{err}"
    );
    assert!(!err.contains("signed out"), "{err}");
    let err = logout("github");
    assert!(
        err.contains("github: signed out (tokens deleted; not revoked (--no-revoke))"),
        "{err}"
    );
    let err = logout("github");
    assert!(err.contains("github: not signed in"), "{err}");
}
