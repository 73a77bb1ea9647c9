//! Loads `schemas/*.json` and validates messages against them.

use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;

const BASE: &str = "https://mcp-auth-sidecar.invalid/schemas/";

fn all() -> &'static Vec<(String, Value)> {
    static ALL: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).expect("schemas dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).expect("read schema");
                let value: Value = serde_json::from_str(&text).expect("schema is JSON");
                let name = path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                assert_eq!(value["$id"], format!("{BASE}{name}"), "$id of {name}");
                out.push((name, value));
            }
        }
        out
    })
}

pub fn validator(name: &str) -> jsonschema::Validator {
    let (_, schema) = all()
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no schema {name}"));
    let resources = all().iter().map(|(n, v)| {
        (
            format!("{BASE}{n}"),
            jsonschema::Resource::from_contents(v.clone()).expect("resource"),
        )
    });
    jsonschema::options()
        .with_resources(resources)
        .build(schema)
        .unwrap_or_else(|e| panic!("schema {name} does not compile: {e}"))
}

pub fn assert_valid(name: &str, instance: &Value) {
    let v = validator(name);
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{instance} does not match {name}: {errors:#?}"
    );
}

pub fn result_schema(method: &str) -> Option<&'static str> {
    Some(match method {
        "initialize" => "initialize-result.json",
        "mcp/authStatus" => "auth-status.result.json",
        "mcp/authorize" => "authorize.result.json",
        "mcp/completeAuthorization" => "complete-authorization.result.json",
        "mcp/accessToken" => "access-token.result.json",
        "mcp/handleChallenge" => "handle-challenge.result.json",
        "mcp/logout" => "logout.result.json",
        _ => return None,
    })
}

pub fn notification_schema(method: &str) -> Option<&'static str> {
    Some(match method {
        "mcp/authStatusChanged" => "auth-status-changed.params.json",
        "mcp/authorizationPending" => "authorization-pending.params.json",
        _ => return None,
    })
}
