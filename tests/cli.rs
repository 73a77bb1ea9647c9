//! SPEC §8 `status [--json]`: the same view as `mcp/authStatus`.

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
    let out = env.command(false).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}
