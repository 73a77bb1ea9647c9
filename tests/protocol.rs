//! The lifecycle and errors of docs/protocol.md (#transport-and-lifecycle,
//! #errors), against the real binary.

mod common;

use common::{Env, WAIT};
use serde_json::{Value, json};
use std::time::Duration;

fn memory() -> Value {
    json!({"storage": "memory", "discoverConfigFiles": false})
}

#[test]
fn initialize_announces_the_protocol() {
    let env = Env::new();
    let mut s = env.spawn();
    let result = s.initialize(memory());
    assert_eq!(
        result["capabilities"]["experimental"]["mcpAuth"]["version"],
        1
    );
    assert_eq!(result["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
    s.shutdown();
}

#[test]
fn requests_before_initialize_are_refused_with_32002() {
    let env = Env::new();
    let mut s = env.spawn();
    let e = s.err("mcp/authStatus", json!({}));
    assert_eq!(e["code"], -32002, "{e}");
    s.initialize(memory());
    s.ok("mcp/authStatus", json!({}));
    s.shutdown();
}

#[test]
fn unknown_methods_and_bad_params_name_the_problem() {
    let env = Env::new();
    let mut s = env.spawn();
    s.initialize(memory());
    let e = s.err("mcp/noSuchThing", json!({}));
    assert_eq!(e["code"], -32601, "{e}");

    // Absent or null params mean {}: every field is optional or named.
    let id = s.next_id_for_test();
    s.send(&json!({"jsonrpc": "2.0", "id": id, "method": "mcp/authStatus"}));
    let r = s.wait_response(&json!(id));
    common::schemas::assert_valid("auth-status.result.json", &r["result"]);
    let r = s.call("mcp/authStatus", Value::Null);
    common::schemas::assert_valid("auth-status.result.json", &r["result"]);
    let e = s.err("mcp/accessToken", Value::Null);
    assert_eq!(e["code"], -32602, "{e}");
    assert!(e["message"].as_str().unwrap().contains("server"), "{e}");

    let e = s.err("mcp/authStatus", json!({"probe": "yes"}));
    assert_eq!(e["code"], -32602, "{e}");
    assert!(e["message"].as_str().unwrap().contains("`probe`"), "{e}");

    let e = s.err("mcp/authStatus", json!({"server": 7}));
    assert_eq!(e["code"], -32602, "{e}");
    assert!(e["message"].as_str().unwrap().contains("`server`"), "{e}");

    let e = s.err("mcp/authStatus", json!({"sever": "x"}));
    assert_eq!(e["code"], -32602, "{e}");
    assert!(e["message"].as_str().unwrap().contains("sever"), "{e}");

    let e = s.err("mcp/authStatus", json!({"server": "nope"}));
    assert_eq!(e["code"], -32602, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("unknown server \"nope\""),
        "{e}"
    );

    let e = s.err(
        "mcp/authStatus",
        json!({"server": "http://mcp.example.com/mcp"}),
    );
    assert_eq!(e["code"], 1006, "{e}");
    let e = s.err("mcp/authStatus", json!({"server": "https://"}));
    assert_eq!(e["code"], -32602, "{e}");
    s.shutdown();
}

#[test]
fn bad_initialization_options_name_the_field() {
    let env = Env::new();
    let mut s = env.spawn();
    let e = s.err(
        "initialize",
        json!({"capabilities": {}, "initializationOptions": {"storage": "floppy"}}),
    );
    assert_eq!(e["code"], -32602, "{e}");
    assert!(e["message"].as_str().unwrap().contains("`storage`"), "{e}");
}

#[test]
fn malformed_json_gets_32700_and_the_sidecar_keeps_serving() {
    let env = Env::new();
    let mut s = env.spawn();
    s.initialize(memory());
    s.send_raw(b"Content-Length: 9\r\n\r\n{not json");
    let e = s.wait_response(&Value::Null);
    assert_eq!(e["error"]["code"], -32700, "{e}");
    common::schemas::assert_valid("error.json", &e["error"]);
    s.ok("mcp/authStatus", json!({}));
    s.shutdown();
}

/// Peak resident set size of a process, in KiB (Linux).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn an_oversized_message_is_refused_without_being_buffered() {
    let env = Env::new();
    let mut s = env.spawn();
    s.initialize(memory());
    s.ok("mcp/authStatus", json!({}));
    let before = peak_rss_kib(s.child.id());
    let len = 24 * 1024 * 1024;
    s.send_raw(format!("Content-Length: {len}\r\n\r\n").as_bytes());
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..24 {
        s.send_raw(&chunk);
    }
    let e = s.wait_response(&Value::Null);
    assert_eq!(e["error"]["code"], -32600, "{e}");
    s.ok("mcp/authStatus", json!({}));
    let after = peak_rss_kib(s.child.id());
    // Buffering the body would raise the peak by at least 24 MiB.
    assert!(
        after < before + 8 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
    assert!(s.stderr().contains("refusing an oversized message"));
    s.shutdown();
}

#[test]
fn exit_ends_the_process_even_while_stdin_stays_open() {
    let env = Env::new();
    let mut s = env.spawn();
    s.initialize(memory());
    let r = s.call("shutdown", Value::Null);
    assert_eq!(r["result"], Value::Null, "{r}");
    s.notify("exit", Value::Null);
    // stdin is still open here.
    let status = s.wait_exit(WAIT).expect("process ended after exit");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn exit_without_shutdown_also_ends_with_status_0() {
    let env = Env::new();
    let mut s = env.spawn();
    s.initialize(memory());
    s.notify("exit", Value::Null);
    let status = s.wait_exit(WAIT).expect("process ended after exit");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn stdin_eof_ends_the_process() {
    let env = Env::new();
    let mut s = env.spawn();
    s.initialize(memory());
    s.close_stdin();
    let status = s.wait_exit(WAIT).expect("process ended on EOF");
    assert_eq!(status.code(), Some(0));
}

/// Twenty probes of a server that never answers are in flight; a plain
/// status request is still answered before any of them.
#[test]
fn slow_requests_never_delay_a_status_request() {
    let env = Env::new();
    let (url, _listener) = common::silent_server();
    let mut s = env.spawn();
    s.initialize(json!({"storage": "memory", "discoverConfigFiles": false, "servers": {"slow": {"url": url}}}));
    let slow: Vec<i64> = (0..20)
        .map(|_| s.start("mcp/authStatus", json!({"server": "slow", "probe": true})))
        .collect();
    let fast = s.start("mcp/authStatus", json!({"server": "slow"}));
    let first = loop {
        let msg = s.next_message(WAIT).expect("a message");
        if msg.get("id").is_some() && msg.get("method").is_none() {
            break msg;
        }
    };
    assert_eq!(
        first["id"], fast,
        "the status request was answered after a probe: {first}"
    );
    assert_eq!(first["result"]["servers"][0]["state"], "unknown");
    // The probes finish (timeout) with state error and a message.
    for id in slow {
        let r = s.wait_response(&json!(id));
        assert_eq!(r["result"]["servers"][0]["state"], "error", "{r}");
    }
    drop(s);
    let _ = Duration::ZERO;
}

/// Context switches of every thread of `pid` (Linux).
fn context_switches(pid: u32) -> std::collections::HashMap<String, u64> {
    let mut out = std::collections::HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let task = task.expect("task").path();
        let Ok(status) = std::fs::read_to_string(task.join("status")) else {
            continue;
        };
        let count: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split(':').nth(1)?.trim().parse::<u64>().ok())
            .sum();
        out.insert(task.display().to_string(), count);
    }
    out
}

/// docs/protocol.md#storage-and-locking: no refresh timers — an idle sidecar
/// makes no periodic wake-ups (the store watcher sleeps in the kernel). Counts
/// events, not time: any timer at 1 Hz or faster would show here.
#[test]
fn an_idle_sidecar_never_wakes_up() {
    let env = Env::new();
    let mut s = env.spawn();
    s.initialize(json!({"storage": "file", "discoverConfigFiles": false,
        "servers": {"x": {"url": "https://x.example/mcp"}}}));
    s.ok("mcp/authStatus", json!({}));
    std::thread::sleep(Duration::from_millis(500));
    let before = context_switches(s.child.id());
    std::thread::sleep(Duration::from_secs(3));
    let after = context_switches(s.child.id());
    let woke: Vec<_> = after
        .iter()
        .filter(|(k, v)| before.get(*k).copied().unwrap_or(0) < **v)
        .collect();
    assert!(woke.is_empty(), "threads woke while idle: {woke:?}");
    s.shutdown();
}

/// A request followed, in the same write, by the start of a frame whose
/// headers name two lengths is answered at once: the reader must not
/// mistake the partial frame for a whole one (the first length) and block
/// on it with the request still unsent to the dispatcher.
#[test]
fn a_request_before_a_partial_frame_with_two_lengths_is_answered_at_once() {
    let env = Env::new();
    let mut s = env.spawn();
    s.initialize(memory());
    let id = s.next_id_for_test();
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "mcp/authStatus"}).to_string();
    let mut bytes = format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes();
    bytes.extend_from_slice(b"Content-Length: 2\r\nContent-Length: 60\r\n\r\n{}");
    s.send_raw(&bytes);
    let r = s.wait_response_within(&json!(id), Duration::from_secs(10));
    assert!(r["result"]["servers"].is_array(), "{r}");
    // The rest of the 60-byte body; then the session goes on.
    s.send_raw(&[b' '; 58]);
    let e = s.wait_response(&Value::Null);
    assert_eq!(e["error"]["code"], -32600, "{e}");
    s.ok("mcp/authStatus", json!({}));
    s.shutdown();
}
