//! `mcp/authStatus` (docs/protocol.md#mcpauthstatus, #serverstatus) and
//! configuration sources (#server-configuration-sources) against the real
//! binary, real files and real HTTP peers on loopback.

mod common;

use common::{Env, by_name, http_stub, now_ms, record_with_tokens, seed};
use mcp_auth_sidecar::store::StorageChoice;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[test]
fn status_comes_from_stored_credentials() {
    let env = Env::new();
    let soon = now_ms() + 3_600_000;
    seed(
        &env.sidecar_home(),
        StorageChoice::File,
        &record_with_tokens("https://fresh.example/mcp", "at-1", None, Some(soon)),
    );
    seed(
        &env.sidecar_home(),
        StorageChoice::File,
        &record_with_tokens(
            "https://refreshable.example/mcp",
            "at-2",
            Some("rt-2"),
            Some(1_000),
        ),
    );
    seed(
        &env.sidecar_home(),
        StorageChoice::File,
        &record_with_tokens("https://dead.example/mcp", "at-3", None, Some(1_000)),
    );
    let mut s = env.spawn();
    s.initialize(json!({
        "storage": "file",
        "discoverConfigFiles": false,
        "servers": {
            "fresh": {"url": "https://fresh.example/mcp"},
            "refreshable": {"url": "https://refreshable.example/mcp"},
            "dead": {"url": "https://dead.example/mcp"},
            "never": {"url": "https://never.example/mcp"}
        }
    }));
    let r = s.ok("mcp/authStatus", json!({}));
    let fresh = by_name(&r, "fresh");
    assert_eq!(fresh["state"], "authorized");
    assert_eq!(fresh["expiresAt"], soon);
    assert_eq!(fresh["scopes"], json!(["mcp:read", "mcp:write"]));
    assert_eq!(fresh["issuer"], "https://as.example.com");
    assert_eq!(fresh["storage"], "file");
    assert_eq!(fresh["url"], "https://fresh.example/mcp");
    assert_eq!(by_name(&r, "refreshable")["state"], "authorized");
    let dead = by_name(&r, "dead");
    assert_eq!(dead["state"], "unauthenticated");
    assert!(
        dead["message"]
            .as_str()
            .unwrap()
            .contains("authorize again"),
        "{dead}"
    );
    assert_eq!(by_name(&r, "never")["state"], "unknown");
    assert_eq!(r["servers"].as_array().unwrap().len(), 4);

    // One server by name, and the same server by its URL.
    let one = s.ok("mcp/authStatus", json!({"server": "fresh"}));
    assert_eq!(one["servers"].as_array().unwrap().len(), 1);
    let by_url = s.ok(
        "mcp/authStatus",
        json!({"server": "https://fresh.example/mcp"}),
    );
    assert_eq!(by_url["servers"][0]["server"], "fresh");
    s.shutdown();
}

#[test]
fn stored_credentials_of_unconfigured_urls_are_listed_and_ad_hoc_urls_work() {
    let env = Env::new();
    seed(
        &env.sidecar_home(),
        StorageChoice::File,
        &record_with_tokens("https://orphan.example/mcp", "at", Some("rt"), None),
    );
    let mut s = env.spawn();
    s.initialize(json!({"storage": "file", "discoverConfigFiles": false}));
    let r = s.ok("mcp/authStatus", json!({}));
    let orphan = by_name(&r, "https://orphan.example/mcp");
    assert_eq!(orphan["state"], "authorized");
    assert!(orphan.get("expiresAt").is_none());
    let adhoc = s.ok(
        "mcp/authStatus",
        json!({"server": "http://127.0.0.1:9/mcp"}),
    );
    assert_eq!(adhoc["servers"][0]["state"], "unknown");
    assert_eq!(adhoc["servers"][0]["server"], "http://127.0.0.1:9/mcp");
    s.shutdown();
}

#[test]
fn status_without_probe_never_touches_the_network() {
    let env = Env::new();
    let stub = http_stub(401, &[]);
    let mut s = env.spawn();
    s.initialize(json!({"storage": "memory", "discoverConfigFiles": false, "servers": {"x": {"url": stub.url}}}));
    for _ in 0..5 {
        let r = s.ok("mcp/authStatus", json!({}));
        assert_eq!(r["servers"][0]["state"], "unknown");
    }
    assert_eq!(stub.hits.load(Ordering::SeqCst), 0);
    s.shutdown();
}

#[test]
fn probe_classifies_servers_and_notifies_changes() {
    let env = Env::new();
    let needs = http_stub(
        401,
        &[(
            "WWW-Authenticate",
            r#"Bearer resource_metadata="http://127.0.0.1:1/.well-known/oauth-protected-resource""#,
        )],
    );
    let open = http_stub(200, &[("Content-Type", "application/json")]);
    let broken = http_stub(500, &[]);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/mcp", l.local_addr().unwrap().port())
    }; // listener dropped: connection refused
    let mut s = env.spawn();
    s.initialize(
        json!({"storage": "memory", "discoverConfigFiles": false, "servers": {
            "needs": {"url": needs.url}, "open": {"url": open.url},
            "broken": {"url": broken.url}, "closed": {"url": closed}
        }}),
    );
    let r = s.ok("mcp/authStatus", json!({"probe": true}));
    assert_eq!(by_name(&r, "needs")["state"], "unauthenticated");
    assert!(
        by_name(&r, "needs")["message"]
            .as_str()
            .unwrap()
            .contains("authorize")
    );
    assert_eq!(by_name(&r, "open")["state"], "not_required");
    let broken_s = by_name(&r, "broken");
    assert_eq!(broken_s["state"], "error");
    assert!(
        broken_s["message"].as_str().unwrap().contains("500"),
        "{broken_s}"
    );
    let closed_s = by_name(&r, "closed");
    assert_eq!(closed_s["state"], "error");
    assert!(
        closed_s["message"].as_str().unwrap().contains("reach"),
        "{closed_s}"
    );

    // Every change was announced, each exactly once.
    let mut changed = std::collections::BTreeMap::new();
    while let Some(n) = s.wait_notification("mcp/authStatusChanged", Duration::from_millis(500)) {
        *changed
            .entry(n["params"]["server"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(
        changed.into_iter().collect::<Vec<_>>(),
        vec![
            ("broken".into(), 1),
            ("closed".into(), 1),
            ("needs".into(), 1),
            ("open".into(), 1)
        ]
    );

    // Known states are not probed again.
    let hits = needs.hits.load(Ordering::SeqCst);
    s.ok("mcp/authStatus", json!({"probe": true}));
    assert_eq!(needs.hits.load(Ordering::SeqCst), hits);
    s.shutdown();
}

#[test]
fn configuration_files_follow_their_precedence() {
    let env = Env::new();
    let ws = env.path("ws");
    env.write(
        "home/.cursor/mcp.json",
        r#"{"mcpServers": {
        "a": {"url": "https://user-cursor/a"},
        "u": {"url": "https://user-cursor/u"},
        "local": {"command": "npx", "args": ["some-stdio-server"]}}}"#,
    );
    env.write(
        "home/.config/mcphub/servers.json",
        r#"{"mcpServers": {"b": {"url": "https://mcphub/b"}}}"#,
    );
    env.write(
        "sidecar/servers.json",
        r#"{"servers": {"c": {"url": "https://sidecar/c"}, "a": {"url": "https://sidecar/a"}}}"#,
    );
    env.write(
        "ws/.mcp.json",
        r#"{"mcpServers": {"b": {"type": "http", "url": "https://project-mcp/b"}}}"#,
    );
    env.write("ws/.vscode/mcp.json", r#"{"servers": {"c": {"type": "http", "url": "https://vscode/c"}, "d": {"type": "stdio", "command": "x"}}}"#);
    env.write(
        "ws/.cursor/mcp.json",
        r#"{"mcpServers": {"e": {"url": "https://project-cursor/e"}}}"#,
    );
    let extra = env.write(
        "extra.json",
        r#"{"mcpServers": {"e": {"url": "https://extra/e"}, "f": {"url": "https://extra/f"}}}"#,
    );
    let mut s = env.spawn();
    let ws_uri = url::Url::from_directory_path(&ws).unwrap().to_string();
    s.ok(
        "initialize",
        json!({
            "capabilities": {},
            "workspaceFolders": [{"uri": ws_uri, "name": "ws"}],
            "initializationOptions": {
                "storage": "memory",
                "configFiles": [extra],
                "servers": {"f": {"url": "https://inline/f"}}
            }
        }),
    );
    s.notify("initialized", json!({}));
    let r = s.ok("mcp/authStatus", json!({}));
    let urls: Vec<(String, String)> = r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["server"].as_str().unwrap().into(),
                s["url"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect = [
        ("a", "https://sidecar/a"),
        ("b", "https://project-mcp/b"),
        ("c", "https://vscode/c"),
        ("e", "https://extra/e"),
        ("f", "https://inline/f"),
        ("u", "https://user-cursor/u"),
    ];
    assert_eq!(
        urls,
        expect
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
    assert!(r.get("configProblems").is_none(), "{r}");
    s.shutdown();
}

#[test]
fn a_broken_config_file_is_reported_not_fatal() {
    let env = Env::new();
    env.write(
        "home/.cursor/mcp.json",
        r#"{"mcpServers": {"a": {"url": "https://a"}}"#,
    );
    env.write(
        "sidecar/servers.json",
        r#"{"servers": {"ok": {"url": "https://ok.example/mcp"}, "bad": {"url": 5}}}"#,
    );
    let mut s = env.spawn();
    s.initialize(
        json!({"storage": "memory", "servers": {"insecure": {"url": "http://plain.example/mcp"}}}),
    );
    let r = s.ok("mcp/authStatus", json!({}));
    let problems = r["configProblems"].as_array().expect("problems reported");
    assert_eq!(problems.len(), 2, "{r}");
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .contains(".cursor/mcp.json: is not valid JSON"),
        "{r}"
    );
    assert!(
        problems[1]
            .as_str()
            .unwrap()
            .contains("server \"bad\": `url`"),
        "{r}"
    );
    let ok = by_name(&r, "ok");
    assert_eq!(ok["state"], "unknown");
    assert!(
        ok["message"]
            .as_str()
            .unwrap()
            .contains("is not valid JSON"),
        "{ok}"
    );
    let insecure = by_name(&r, "insecure");
    assert_eq!(insecure["state"], "error");
    assert!(
        insecure["message"].as_str().unwrap().contains("not https"),
        "{insecure}"
    );
    let log = s.shutdown();
    assert!(log.contains("configuration problem"), "{log}");
}

#[test]
fn auto_storage_without_a_session_bus_uses_the_file_store() {
    let env = Env::new();
    let mut s = env.spawn(); // no DBUS_SESSION_BUS_ADDRESS, empty XDG_RUNTIME_DIR
    s.initialize(
        json!({"discoverConfigFiles": false, "servers": {"x": {"url": "https://x.example/mcp"}}}),
    );
    let r = s.ok("mcp/authStatus", json!({}));
    assert_eq!(r["servers"][0]["storage"], "file");
    s.shutdown();
    assert!(env.sidecar_home().join("store/file/data.key").exists());
}

#[test]
fn concurrent_probes_of_one_server_share_one_request() {
    let env = Env::new();
    let stub = http_stub(401, &[]);
    let mut s = env.spawn();
    s.initialize(json!({"storage": "memory", "discoverConfigFiles": false, "servers": {"x": {"url": stub.url}}}));
    let ids: Vec<i64> = (0..5)
        .map(|_| s.start("mcp/authStatus", json!({"probe": true})))
        .collect();
    for id in ids {
        let r = s.wait_response(&json!(id));
        assert_eq!(r["result"]["servers"][0]["state"], "unauthenticated", "{r}");
    }
    assert_eq!(stub.hits.load(Ordering::SeqCst), 1);
    s.shutdown();
}
