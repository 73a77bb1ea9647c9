//! docs/protocol.md#logging: logs go to stderr only, and no secret appears at any level.

mod common;

use common::{Env, Sidecar, http_stub, now_ms, record_with_tokens, seed};
use mcp_auth_sidecar::store::StorageChoice;
use serde_json::json;

#[test]
fn trace_logging_never_prints_a_secret() {
    let env = Env::new();
    let url = "https://stored.example/mcp";
    seed(
        &env.sidecar_home(),
        StorageChoice::File,
        &record_with_tokens(
            url,
            "access-token-DO-NOT-LOG",
            Some("refresh-token-DO-NOT-LOG"),
            Some(now_ms() + 600_000),
        ),
    );
    let stub = http_stub(
        401,
        &[("WWW-Authenticate", "Bearer error=\"invalid_token\"")],
    );
    let mut cmd = env.command(false);
    cmd.env("MCP_AUTH_SIDECAR_LOG", "trace");
    let mut s = Sidecar::spawn(cmd, &env.path("stderr.log"));
    s.initialize(json!({
        "storage": "file",
        "discoverConfigFiles": false,
        "servers": {
            "stored": {"url": url},
            "confidential": {"url": stub.url, "clientId": "cid", "clientSecret": "inline-secret-DO-NOT-LOG"}
        }
    }));
    s.ok("mcp/authStatus", json!({"probe": true}));
    s.err(
        "mcp/authStatus",
        json!({"server": 5, "probe": "inline-secret-DO-NOT-LOG"}),
    );
    let log = s.shutdown();

    // The filter really was at trace for our own code …
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "nothing below INFO was logged:\n{log}"
    );
    assert!(log.contains("probed"), "{log}");
    // … and none of these is anywhere in it.
    let key = std::fs::read_to_string(env.sidecar_home().join("store/file/data.key")).unwrap();
    for secret in [
        "access-token-DO-NOT-LOG",
        "refresh-token-DO-NOT-LOG",
        "client-secret-DO-NOT-LOG",
        "inline-secret-DO-NOT-LOG",
        key.trim(),
    ] {
        assert!(
            !log.contains(secret),
            "secret {secret:?} leaked into the log"
        );
    }
}
