//! Server configuration sources (SPEC §4) and their precedence.
//!
//! Sources, lowest precedence first: user files, project files of each
//! workspace folder, `initializationOptions.configFiles`, then
//! `initializationOptions.servers`. A later entry with the same name
//! replaces the earlier one whole (fields are not merged, so a project file
//! can never silently inherit a user file's `clientSecret`). A file that
//! cannot be read or parsed becomes a [`ConfigProblem`], never a failure.

use crate::secret::Secret;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One remote MCP server as configured (`ServerConfig` of SPEC §3.1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerConfig {
    pub url: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    #[serde(default)]
    pub client_metadata_url: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub callback_port: Option<u16>,
    #[serde(default)]
    pub auth_server_metadata_url: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
}

impl ServerConfig {
    pub fn for_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            client_id: None,
            client_secret: None,
            client_metadata_url: None,
            scopes: None,
            callback_port: None,
            auth_server_metadata_url: None,
            resource: None,
        }
    }
}

/// Where a server entry came from, for messages and `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    InitializationOptions,
    /// A URL named directly in a request.
    AdHoc,
    /// Known only from a stored credential.
    Stored,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::InitializationOptions => f.write_str("initializationOptions.servers"),
            Source::AdHoc => f.write_str("ad-hoc URL"),
            Source::Stored => f.write_str("stored credential"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfiguredServer {
    pub name: String,
    pub config: ServerConfig,
    pub source: Source,
}

/// A file or entry that could not be used, reported in the log and in
/// status messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub source: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

/// Which top-level key holds the servers in a given file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    McpServers,
    Servers,
    /// `$MCP_AUTH_SIDECAR_HOME/servers.json` and explicit `configFiles`.
    Either,
}

/// Everything `load` needs to know, gathered by the caller.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// The user's home directory (`~`), if known.
    pub user_home: Option<PathBuf>,
    /// `MCP_AUTH_SIDECAR_HOME`.
    pub sidecar_home: Option<PathBuf>,
    pub workspace_folders: Vec<PathBuf>,
    /// `initializationOptions.discoverConfigFiles` (default true).
    pub discover: bool,
    pub extra_files: Vec<PathBuf>,
    /// `initializationOptions.servers`, still as JSON so a bad entry is a
    /// problem for that entry only.
    pub inline: Map<String, Value>,
}

#[derive(Debug, Default, Clone)]
pub struct ConfigSet {
    pub servers: BTreeMap<String, ConfiguredServer>,
    pub problems: Vec<ConfigProblem>,
}

impl ConfigSet {
    /// The well-known files of SPEC §4, lowest precedence first.
    fn well_known(inputs: &Inputs) -> Vec<(PathBuf, Shape)> {
        let mut files = Vec::new();
        if let Some(home) = &inputs.user_home {
            files.push((home.join(".cursor/mcp.json"), Shape::McpServers));
            files.push((home.join(".config/mcphub/servers.json"), Shape::McpServers));
        }
        if let Some(sidecar) = &inputs.sidecar_home {
            files.push((sidecar.join("servers.json"), Shape::Either));
        }
        for folder in &inputs.workspace_folders {
            files.push((folder.join(".mcp.json"), Shape::McpServers));
            files.push((folder.join(".vscode/mcp.json"), Shape::Servers));
            files.push((folder.join(".cursor/mcp.json"), Shape::McpServers));
        }
        files
    }

    pub fn load(inputs: &Inputs) -> Self {
        let mut set = ConfigSet::default();
        if inputs.discover {
            for (path, shape) in Self::well_known(inputs) {
                set.read_file(&path, shape, false, inputs.sidecar_home.as_deref());
            }
        }
        for path in &inputs.extra_files {
            set.read_file(path, Shape::Either, true, inputs.sidecar_home.as_deref());
        }
        set.add_entries(&inputs.inline, &Source::InitializationOptions);
        for problem in &set.problems {
            tracing::warn!(%problem, "configuration problem");
        }
        set
    }

    /// Reads one file. Missing well-known files are normal; a missing file
    /// the editor named explicitly is a problem.
    fn read_file(&mut self, path: &Path, shape: Shape, must_exist: bool, home: Option<&Path>) {
        let source = path.display().to_string();
        let text = match crate::home::read_config(path, home) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return,
            Err(e) => {
                self.problem(&source, format!("cannot be read: {e}"));
                return;
            }
        };
        // VS Code's mcp.json is JSONC: comments and trailing commas.
        let doc: Value = match serde_json::from_str(&strip_jsonc(&text)) {
            Ok(v) => v,
            Err(e) => {
                // serde_json reports line and column, never file contents.
                self.problem(&source, format!("is not valid JSON: {e}"));
                return;
            }
        };
        let keys: &[&str] = match shape {
            Shape::McpServers => &["mcpServers"],
            Shape::Servers => &["servers"],
            Shape::Either => &["mcpServers", "servers"],
        };
        let mut found = false;
        for key in keys {
            match doc.get(key) {
                Some(Value::Object(entries)) => {
                    found = true;
                    self.add_entries(entries, &Source::File(path.to_owned()));
                }
                Some(_) => {
                    found = true;
                    self.problem(&source, format!("`{key}` must be an object"));
                }
                None => {}
            }
        }
        if !found && !doc.is_object() {
            self.problem(&source, "must be a JSON object".into());
        }
    }

    fn add_entries(&mut self, entries: &Map<String, Value>, source: &Source) {
        for (name, entry) in entries {
            if name.trim().is_empty() {
                self.problem(&source.to_string(), "a server has an empty name".into());
                continue;
            }
            match parse_entry(entry) {
                Ok(Some(config)) => {
                    self.servers.insert(
                        name.clone(),
                        ConfiguredServer {
                            name: name.clone(),
                            config,
                            source: source.clone(),
                        },
                    );
                }
                // A stdio server is not ours, but it still replaces an
                // earlier remote entry of the same name.
                Ok(None) => {
                    self.servers.remove(name);
                }
                Err(message) => self.problem(&format!("{source}: server {name:?}"), message),
            }
        }
    }

    fn problem(&mut self, source: &str, message: String) {
        self.problems.push(ConfigProblem {
            source: source.to_owned(),
            message,
        });
    }
}

/// Removes `//` and `/* */` comments and trailing commas outside strings,
/// keeping line breaks so parse errors still point at the right line.
fn strip_jsonc(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut in_string = false;
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 1;
            } else if c == '"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match (c, chars.get(i + 1)) {
            ('"', _) => {
                in_string = true;
                out.push(c);
                i += 1;
            }
            ('/', Some('/')) => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    if chars[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
                i += 2;
            }
            (',', _) => {
                // A comma followed (after blanks and comments) by } or ] is
                // trailing: drop it.
                let mut j = i + 1;
                loop {
                    while j < chars.len() && chars[j].is_whitespace() {
                        j += 1;
                    }
                    if chars.get(j) == Some(&'/') && chars.get(j + 1) == Some(&'/') {
                        while j < chars.len() && chars[j] != '\n' {
                            j += 1;
                        }
                    } else if chars.get(j) == Some(&'/') && chars.get(j + 1) == Some(&'*') {
                        j += 2;
                        while j < chars.len()
                            && !(chars[j] == '*' && chars.get(j + 1) == Some(&'/'))
                        {
                            j += 1;
                        }
                        j += 2;
                    } else {
                        break;
                    }
                }
                if !matches!(chars.get(j), Some('}') | Some(']')) {
                    out.push(c);
                }
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `Ok(None)` for stdio entries (a `command`, or `type: "stdio"`), which
/// this sidecar ignores.
fn parse_entry(entry: &Value) -> Result<Option<ServerConfig>, String> {
    let Some(obj) = entry.as_object() else {
        return Err("must be an object".into());
    };
    let is_stdio =
        obj.contains_key("command") || obj.get("type").and_then(Value::as_str) == Some("stdio");
    if is_stdio && !obj.contains_key("url") {
        return Ok(None);
    }
    if !obj.contains_key("url") {
        return Err("has neither `url` nor `command`".into());
    }
    serde_path_to_error::deserialize(entry)
        .map(Some)
        .map_err(|e| describe_serde_error(&e))
}

/// "`scopes[1]`: invalid type: …" — names the field, never echoes a value
/// that might be a secret.
pub fn describe_serde_error(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    // serde quotes the offending value ("invalid type: string \"…\"",
    // "invalid value: integer `5`"); keep only what was expected.
    let inner = redact_value(&inner);
    if path == "." || path.is_empty() {
        inner
    } else {
        format!("`{path}`: {inner}")
    }
}

fn redact_value(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(start) = message.find(prefix) {
            let rest = &message[start + prefix.len()..];
            let tail = rest.find(", expected").map(|i| &rest[i..]).unwrap_or("");
            return format!("{}{prefix}…{tail}", &message[..start]);
        }
    }
    redact_quoted(message)
}

fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_quote = false;
    for c in message.chars() {
        if c == '"' {
            if !in_quote {
                out.push_str("\"…");
            }
            in_quote = !in_quote;
            if !in_quote {
                out.push('"');
            }
        } else if !in_quote {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(path: &Path, v: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, v).unwrap();
    }

    #[test]
    fn precedence_stdio_and_broken_files() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let ws = tmp.path().join("ws");
        let sidecar = tmp.path().join("sidecar");
        write(
            &home.join(".cursor/mcp.json"),
            r#"{"mcpServers":{"a":{"url":"https://user/a"},"local":{"command":"npx"}}}"#,
        );
        write(&home.join(".config/mcphub/servers.json"), "{ not json");
        write(
            &sidecar.join("servers.json"),
            r#"{"servers":{"b":{"url":"https://side/b"}}}"#,
        );
        write(
            &ws.join(".mcp.json"),
            r#"{"mcpServers":{"a":{"type":"http","url":"https://proj/a"}}}"#,
        );
        write(
            &ws.join(".vscode/mcp.json"),
            r#"{"servers":{"c":{"type":"http","url":"https://vs/c","scopes":[1]}}}"#,
        );
        let extra = tmp.path().join("extra.json");
        write(&extra, r#"{"mcpServers":{"b":{"url":"https://extra/b"}}}"#);
        let inputs = Inputs {
            user_home: Some(home),
            sidecar_home: Some(sidecar),
            workspace_folders: vec![ws],
            discover: true,
            extra_files: vec![extra, tmp.path().join("missing.json")],
            inline: json!({"d": {"url": "https://inline/d", "clientSecret": "s3cret"}})
                .as_object()
                .unwrap()
                .clone(),
        };
        let set = ConfigSet::load(&inputs);
        let urls: Vec<_> = set
            .servers
            .values()
            .map(|s| (s.name.as_str(), s.config.url.as_str()))
            .collect();
        assert_eq!(
            urls,
            vec![
                ("a", "https://proj/a"),
                ("b", "https://extra/b"),
                ("d", "https://inline/d")
            ]
        );
        let text: Vec<String> = set.problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text[0].contains("mcphub/servers.json: is not valid JSON"),
            "{text:?}"
        );
        assert!(
            text[1].contains("server \"c\": `scopes[0]`: invalid type"),
            "{text:?}"
        );
        assert!(text[2].contains("missing.json: cannot be read"), "{text:?}");

        let quiet = ConfigSet::load(&Inputs {
            discover: false,
            ..inputs
        });
        assert_eq!(quiet.servers.keys().collect::<Vec<_>>(), vec!["b", "d"]);
    }

    #[test]
    fn jsonc_is_accepted() {
        let text =
            "{\n  // servers\n  \"servers\": { /* x */ \"a\": {\"url\": \"https://a//b\",}, },\n}";
        let v: Value = serde_json::from_str(&strip_jsonc(text)).unwrap();
        assert_eq!(v["servers"]["a"]["url"], "https://a//b");
        assert_eq!(strip_jsonc("[\"a,]\", 1,]"), "[\"a,]\", 1]");
    }

    #[test]
    fn errors_name_the_field_but_not_the_value() {
        let e = parse_entry(&json!({"url": "https://x", "clientSecret": 987654321})).unwrap_err();
        assert!(e.starts_with("`clientSecret`: invalid type"), "{e}");
        assert!(!e.contains("987654321"), "{e}");
        let e = parse_entry(&json!({"url": "https://x", "callbackPort": "hunter2"})).unwrap_err();
        assert!(
            e.contains("`callbackPort`") && !e.contains("hunter2"),
            "{e}"
        );
    }
}
