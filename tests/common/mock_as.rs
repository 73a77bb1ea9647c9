//! A stand-in resource + authorization server on loopback (a
//! [`RouteStub`]) and the steps of driving a flow against it: the test plays
//! the browser (`browser: "none"`), by paste or by a GET to the listener.

use super::{Env, Route, RouteStub, Sidecar};
use serde_json::{Value, json};

/// A resource + authorization server on one origin. `tweak` edits the AS
/// metadata, `resource` is what the PRM claims.
pub fn stub(tweak: impl FnOnce(&mut Value, &str), resource: Option<&str>) -> RouteStub {
    stub_issuing(
        tweak,
        resource,
        json!({"access_token": "at-from-stub", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-from-stub", "scope": "mcp:read"}),
    )
}

/// Like [`stub`], with the token endpoint answering `token`.
pub fn stub_issuing(
    tweak: impl FnOnce(&mut Value, &str),
    resource: Option<&str>,
    token: Value,
) -> RouteStub {
    stub_with_token(tweak, resource, Route::json("POST", "/token", 200, token))
}

/// Like [`stub`], with `token` as the token endpoint's route.
pub fn stub_with_token(
    tweak: impl FnOnce(&mut Value, &str),
    resource: Option<&str>,
    token: Route,
) -> RouteStub {
    let resource = resource.map(str::to_owned);
    RouteStub::start(move |base| {
        let mut meta = json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "registration_endpoint": format!("{base}/register"),
            "revocation_endpoint": format!("{base}/revoke"),
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "token_endpoint_auth_methods_supported": ["none"]
        });
        tweak(&mut meta, base);
        vec![
            Route {
                method: "POST",
                path: "/mcp".into(),
                status: 401,
                headers: vec![(
                    "WWW-Authenticate".into(),
                    format!(
                        r#"Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp", scope="mcp:read""#
                    ),
                )],
                body: String::new(),
                later: Vec::new(),
                slow: None,
            },
            Route::json(
                "GET",
                "/.well-known/oauth-protected-resource/mcp",
                200,
                json!({
                    "resource": resource.unwrap_or(format!("{base}/mcp")),
                    "authorization_servers": [base],
                }),
            ),
            Route::json("GET", "/.well-known/oauth-authorization-server", 200, meta),
            Route::json(
                "POST",
                "/register",
                201,
                json!({"client_id": "dyn-client", "token_endpoint_auth_method": "none"}),
            ),
            Route::json("POST", "/revoke", 200, json!({})),
            token,
        ]
    })
}

pub fn start(env: &Env, url: &str, extra: Value) -> Sidecar {
    let mut s = env.spawn();
    let mut server = json!({"url": url});
    if let (Some(obj), Some(more)) = (server.as_object_mut(), extra.as_object()) {
        obj.extend(more.clone());
    }
    s.initialize(json!({
        "storage": "file", "discoverConfigFiles": false, "browser": "none",
        "authorizationTimeout": 30, "servers": {"srv": server}
    }));
    s
}

/// Starts `mcp/authorize` and returns its id and the authorization URL.
pub fn begin(s: &mut Sidecar) -> (i64, url::Url) {
    let id = s.start("mcp/authorize", json!({"server": "srv"}));
    let pending = s
        .wait_notification("mcp/authorizationPending", super::WAIT)
        .expect("authorizationPending");
    (
        id,
        url::Url::parse(pending["params"]["url"].as_str().unwrap()).unwrap(),
    )
}

pub fn param(url: &url::Url, key: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

pub fn callback(auth: &url::Url, extra: &[(&str, &str)]) -> String {
    let mut cb = url::Url::parse(&param(auth, "redirect_uri")).unwrap();
    {
        let mut q = cb.query_pairs_mut();
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    cb.to_string()
}

pub fn stored_files(env: &Env) -> usize {
    std::fs::read_dir(env.sidecar_home().join("store/file/records"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The callback URL of `auth` as a server at `issuer` approving it.
pub fn approved(auth: &url::Url, issuer: &str) -> String {
    callback(
        auth,
        &[
            ("code", "c"),
            ("state", &param(auth, "state")),
            ("iss", issuer),
        ],
    )
}

pub fn authorize_by_paste(s: &mut Sidecar, as_: &RouteStub) {
    let (id, auth) = begin(s);
    let cb = approved(&auth, &as_.base);
    s.ok(
        "mcp/completeAuthorization",
        json!({"server": "srv", "callbackUrl": cb}),
    );
    assert_eq!(s.wait_response(&json!(id))["result"]["state"], "authorized");
}
