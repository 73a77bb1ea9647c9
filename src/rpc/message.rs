//! One frame body → one JSON-RPC message, decoded exactly once.
//!
//! The body is parsed once into a `serde_json::Value`, which validates all
//! of it (UTF-8 everywhere, surrogate pairs, number ranges, nesting at most
//! 128 deep), and the message is then taken apart from that tree. Anything
//! that is not a complete, valid message becomes the error answer to send
//! back: -32700 for a body that is not JSON, -32600 for JSON that is not a
//! JSON-RPC 2.0 message, with the `id` whenever it can be recovered (JSON-RPC
//! 2.0 §5.1).

use serde::Deserialize;
use serde_json::{Map, Value, json};
use tower_lsp_server::jsonrpc::{Request, Response};

/// A decoded incoming message.
#[derive(Debug)]
pub enum Incoming {
    /// A request or a notification from the editor.
    Request(Request),
    /// The editor's answer to a request of ours (`window/showDocument`).
    Response(Response),
}

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;

/// Decodes `body`, or returns the error response (a JSON value) to send.
pub fn decode(body: &[u8]) -> Result<Incoming, Value> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| error(recover_id(body), PARSE_ERROR, &format!("parse error: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(error(
            Value::Null,
            INVALID_REQUEST,
            "invalid request: a message must be a JSON object (batches are not supported)",
        ));
    };
    let id = if map.contains_key("method") {
        usable_id(map.get("id"))
    } else {
        Value::Null
    };
    let invalid = |why: &str| {
        error(
            id.clone(),
            INVALID_REQUEST,
            &format!("invalid request: {why}"),
        )
    };
    if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("`jsonrpc` must be \"2.0\""));
    }
    if map.contains_key("method") {
        let Some(method) = map.get("method").and_then(Value::as_str) else {
            return Err(invalid("`method` must be a string"));
        };
        if method.starts_with("mcp/") {
            default_params(&mut map);
        }
        return serde_json::from_value(Value::Object(map))
            .map(Incoming::Request)
            .map_err(|e| invalid(&e.to_string()));
    }
    if map.contains_key("result") || map.contains_key("error") {
        // The id of a response is the editor's own numbering of *our*
        // requests: echoing it would resolve an unrelated request of the
        // editor's with our error. A bad response gets id null.
        return serde_json::from_value(Value::Object(map))
            .map(Incoming::Response)
            .map_err(|e| {
                error(
                    Value::Null,
                    INVALID_REQUEST,
                    &format!("invalid response: {e}"),
                )
            });
    }
    Err(invalid("neither a request nor a response"))
}

/// Every `mcp/*` request's params are an object whose fields are all
/// optional or named in the error (docs/protocol.md#requests), so absent or `null` params
/// mean `{}`: clients such as Neovim's send none for `mcp/authStatus`.
fn default_params(map: &mut Map<String, Value>) {
    if map.get("params").is_none_or(Value::is_null) {
        map.insert("params".into(), Value::Object(Map::new()));
    }
}

/// The id of a request whose body is not valid JSON, if its `id` and
/// `method` members still read: everything else is skipped without being
/// looked at. (Not of a response: see [`decode`].)
fn recover_id(body: &[u8]) -> Value {
    #[derive(Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: Option<Value>,
        #[serde(default)]
        method: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<IdOnly>(body)
        .ok()
        .filter(|m| m.method.is_some())
        .map(|m| usable_id(m.id.as_ref()))
        .unwrap_or(Value::Null)
}

/// An id we can echo: an integer or a string (JSON-RPC 2.0 §4; LSP ids).
fn usable_id(id: Option<&Value>) -> Value {
    match id {
        Some(Value::Number(n)) if n.is_i64() => Value::Number(n.clone()),
        Some(Value::String(s)) => Value::String(s.clone()),
        _ => Value::Null,
    }
}

/// A JSON-RPC error response.
pub fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &[u8]) -> (i64, Value) {
        match decode(body) {
            Ok(m) => panic!("decoded {m:?} from {:?}", String::from_utf8_lossy(body)),
            Err(e) => (e["error"]["code"].as_i64().unwrap_or(0), e["id"].clone()),
        }
    }

    #[test]
    fn everything_that_is_not_a_whole_valid_message_is_answered() {
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"x","params":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let table: Vec<(&[u8], i64, Value)> = vec![
            (b"{oops", PARSE_ERROR, Value::Null),
            (b"", PARSE_ERROR, Value::Null),
            (b"[1,2]", INVALID_REQUEST, Value::Null),
            (b"42", INVALID_REQUEST, Value::Null),
            (br#"{"id":5,"method":3}"#, INVALID_REQUEST, json!(5)),
            (
                br#"{"jsonrpc":"1.0","id":5,"method":"x"}"#,
                INVALID_REQUEST,
                json!(5),
            ),
            (
                br#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            (
                br#"{"jsonrpc":"2.0","id":"s","x":1}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            // Never the editor's own id back for a bad response of its.
            (
                br#"{"id":3,"result":{"success":true}}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            (
                br#"{"jsonrpc":"2.0","id":3,"error":{"code":1.5,"message":"x"}}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            (
                br#"{"jsonrpc":"2.0","id":3,"result":1e999}"#,
                PARSE_ERROR,
                Value::Null,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            // Valid JSON text that serde cannot hold: each would have ended
            // the session when a second decoder met it.
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"x\",\"junk\":\"\xff\xfe\"}",
                PARSE_ERROR,
                json!(3),
            ),
            (
                br#"{"jsonrpc":"2.0","id":3,"method":"x","params":{"s":"\ud800"}}"#,
                PARSE_ERROR,
                json!(3),
            ),
            (
                br#"{"jsonrpc":"2.0","id":3,"method":"x","junk":1e999}"#,
                PARSE_ERROR,
                json!(3),
            ),
            (deep.as_bytes(), PARSE_ERROR, json!(7)),
        ];
        for (body, code, id) in table {
            assert_eq!(
                refused(body),
                (code, id),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn requests_notifications_and_responses_decode() {
        let Ok(Incoming::Request(r)) =
            decode(br#"{"jsonrpc":"2.0","id":1,"method":"mcp/authStatus"}"#)
        else {
            panic!("not a request");
        };
        assert_eq!(r.method(), "mcp/authStatus");
        assert_eq!(
            r.params(),
            Some(&json!({})),
            "absent mcp/* params mean {{}}"
        );
        let Ok(Incoming::Request(n)) =
            decode(br#"{"jsonrpc":"2.0","method":"exit","params":null}"#)
        else {
            panic!("not a notification");
        };
        assert!(n.id().is_none());
        assert!(matches!(
            decode(br#"{"jsonrpc":"2.0","id":4,"result":{"success":true}}"#),
            Ok(Incoming::Response(_))
        ));
    }
}
