//! Server configuration sources (docs/protocol.md#server-configuration-sources)
//! and their precedence.
//!
//! Sources, lowest precedence first: user files, project files of each
//! workspace folder, `initializationOptions.configFiles`, then
//! `initializationOptions.servers`. A later entry with the same name
//! replaces the earlier one whole (fields are not merged, so a project file
//! can never silently inherit a user file's `clientSecret`). A file that
//! cannot be read or parsed becomes a [`ConfigProblem`], never a failure;
//! `file` reads files so that none can hang or exhaust the process.
//!
//! Project files come with whatever repository was cloned: their entries
//! keep only `url`; the options of [`USER_ONLY`] count only from user-level
//! sources (ARCHITECTURE.md, "Trust model").

mod file;

use crate::secret::Secret;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// More files than any real setup has; beyond it, one problem says so.
const MAX_FILES: usize = 256;
/// Problems kept (each is shown in status messages); the rest are counted.
const MAX_PROBLEMS: usize = 32;
/// Servers taken from one file (or `initializationOptions.servers`): real
/// ones list a few dozen, and each costs memory in every status.
const MAX_ENTRIES: usize = 256;

/// One remote MCP server as configured (`ServerConfig` in docs/protocol.md#initialization-options).
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

/// Options that choose where discovery goes, which audience a token is
/// for, which client asks, or what is asked for: a project file setting
/// them could have the user consent at a genuine authorization server to a
/// token that is then handed out for the project's URL.
pub const USER_ONLY: [&str; 7] = [
    "resource",
    "authServerMetadataUrl",
    "clientId",
    "clientSecret",
    "clientMetadataUrl",
    "callbackPort",
    "scopes",
];

impl ServerConfig {
    /// Whether the configured `resource`, if any, covers `url` (RFC 9728
    /// §3.3, the rule discovery applies to a PRM's `resource`): no token
    /// for another resource is ever requested or handed out for `url`.
    pub fn resource_covers_url(&self) -> bool {
        self.resource
            .as_deref()
            .is_none_or(|r| crate::oauth::discovery::resource_covers(r, &self.url))
    }

    /// Clears the [`USER_ONLY`] options and returns the names of those that
    /// were set.
    fn drop_user_only(&mut self) -> Vec<&'static str> {
        let set = [
            self.resource.take().is_some(),
            self.auth_server_metadata_url.take().is_some(),
            self.client_id.take().is_some(),
            self.client_secret.take().is_some(),
            self.client_metadata_url.take().is_some(),
            self.callback_port.take().is_some(),
            self.scopes.take().is_some(),
        ];
        USER_ONLY
            .iter()
            .zip(set)
            .filter_map(|(name, was_set)| was_set.then_some(*name))
            .collect()
    }

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
    /// The entry it is about, if it is about one: that server's status
    /// says it first.
    pub server: Option<String>,
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
    /// Problems beyond [`MAX_PROBLEMS`], counted only.
    omitted: usize,
}

/// One file to read, in precedence order.
struct Candidate {
    path: PathBuf,
    shape: Shape,
    /// The workspace folder of a project file.
    project: Option<PathBuf>,
    /// Named explicitly (`configFiles`): missing is a problem.
    must_exist: bool,
}

impl ConfigSet {
    /// The well-known files (docs/protocol.md#server-configuration-sources),
    /// lowest precedence first.
    fn well_known(inputs: &Inputs) -> Vec<Candidate> {
        let user = |path: PathBuf, shape| Candidate {
            path,
            shape,
            project: None,
            must_exist: false,
        };
        let mut files = Vec::new();
        if let Some(home) = &inputs.user_home {
            files.push(user(home.join(".cursor/mcp.json"), Shape::McpServers));
            files.push(user(
                home.join(".config/mcphub/servers.json"),
                Shape::McpServers,
            ));
        }
        if let Some(sidecar) = &inputs.sidecar_home {
            files.push(user(sidecar.join("servers.json"), Shape::Either));
        }
        for folder in &inputs.workspace_folders {
            for (rel, shape) in [
                (".mcp.json", Shape::McpServers),
                (".vscode/mcp.json", Shape::Servers),
                (".cursor/mcp.json", Shape::McpServers),
            ] {
                files.push(Candidate {
                    path: folder.join(rel),
                    shape,
                    project: Some(folder.clone()),
                    must_exist: false,
                });
            }
        }
        files
    }

    /// The files `load` looks for, lowest precedence first, and whether
    /// each is a project file (of a workspace folder): for telling people
    /// where servers come from.
    pub fn searched_files(inputs: &Inputs) -> Vec<(PathBuf, bool)> {
        let mut files: Vec<(PathBuf, bool)> = if inputs.discover {
            Self::well_known(inputs)
                .into_iter()
                .map(|c| (c.path, c.project.is_some()))
                .collect()
        } else {
            Vec::new()
        };
        files.extend(inputs.extra_files.iter().map(|p| (p.clone(), false)));
        files
    }

    /// Blocking, but bounded: files are read on worker threads within
    /// `file::READ_BOUND`. Async callers use [`ConfigSet::load_off_runtime`].
    pub fn load(inputs: &Inputs) -> Self {
        Self::load_with(inputs, file::READ_BOUND, file::read)
    }

    /// [`ConfigSet::load`] on a blocking thread, so `initialize` never
    /// blocks the runtime, with a bound of its own in case parsing is slow.
    pub async fn load_off_runtime(inputs: Inputs) -> Self {
        let bound = file::READ_BOUND + Duration::from_secs(2);
        let task = tokio::task::spawn_blocking(move || Self::load(&inputs));
        let why = match tokio::time::timeout(bound, task).await {
            Ok(Ok(set)) => return set,
            Ok(Err(e)) => format!("could not be loaded: {e}"),
            Err(_) => format!("was not loaded within {} seconds", bound.as_secs()),
        };
        let mut set = ConfigSet::default();
        set.problem("the configuration", why);
        set.log_problems();
        set
    }

    fn load_with(inputs: &Inputs, bound: Duration, reader: file::Reader) -> Self {
        let mut set = ConfigSet::default();
        let mut files = if inputs.discover {
            Self::well_known(inputs)
        } else {
            Vec::new()
        };
        files.extend(inputs.extra_files.iter().map(|path| Candidate {
            path: path.clone(),
            shape: Shape::Either,
            project: None,
            must_exist: true,
        }));
        if files.len() > MAX_FILES {
            set.problem(
                "the configuration",
                format!(
                    "only the first {MAX_FILES} of {} files were read",
                    files.len()
                ),
            );
            files.truncate(MAX_FILES);
        }
        let jobs = files
            .iter()
            .map(|c| file::Job {
                path: c.path.clone(),
                confine: c.project.clone(),
                in_home: inputs
                    .sidecar_home
                    .as_ref()
                    .is_some_and(|h| c.path.starts_with(h)),
            })
            .collect();
        let outcomes = file::read_all(jobs, bound, reader);
        // A workspace folder may be the home directory: a user file read
        // again as a project file would lose its user-only options.
        let mut user_files = HashSet::new();
        for (candidate, outcome) in files.iter().zip(outcomes) {
            let source = candidate.path.display().to_string();
            match outcome {
                file::Outcome::Missing if !candidate.must_exist => {}
                file::Outcome::Missing => {
                    set.problem(&source, "cannot be read: it does not exist".into());
                }
                file::Outcome::Refused(why) => set.problem(&source, why),
                file::Outcome::Text { text, id } => {
                    match (id, &candidate.project) {
                        (Some(id), Some(_)) if user_files.contains(&id) => continue,
                        (Some(id), None) => {
                            user_files.insert(id);
                        }
                        _ => {}
                    }
                    let trusted = candidate.project.is_none();
                    set.parse_file(&candidate.path, &text, candidate.shape, trusted);
                }
            }
        }
        // The editor user chose these.
        set.add_entries(&inputs.inline, &Source::InitializationOptions, true);
        set.log_problems();
        set
    }

    fn log_problems(&mut self) {
        if self.omitted > 0 {
            let omitted = std::mem::take(&mut self.omitted);
            self.problems.push(ConfigProblem {
                source: "the configuration".into(),
                message: format!("has {omitted} more problems"),
                server: None,
            });
        }
        for problem in &self.problems {
            tracing::warn!(%problem, "configuration problem");
        }
    }

    /// Takes the servers of one file's text; `trusted`: a user-level file.
    fn parse_file(&mut self, path: &Path, text: &str, shape: Shape, trusted: bool) {
        let source = path.display().to_string();
        // VS Code's mcp.json is JSONC: comments and trailing commas. The
        // nesting serde_json accepts is bounded (128 levels), so a deep
        // document is an error, not a stack overflow.
        let doc: Value = match serde_json::from_str(&strip_jsonc(text)) {
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
                    self.add_entries(entries, &Source::File(path.to_owned()), trusted);
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

    /// `trusted`: from a user-level source, which may set [`USER_ONLY`]
    /// options.
    fn add_entries(&mut self, entries: &Map<String, Value>, source: &Source, trusted: bool) {
        if entries.len() > MAX_ENTRIES {
            self.problem(
                &source.to_string(),
                format!(
                    "lists {} servers; only the first {MAX_ENTRIES} are used",
                    entries.len()
                ),
            );
        }
        for (name, entry) in entries.iter().take(MAX_ENTRIES) {
            if name.trim().is_empty() {
                self.problem(&source.to_string(), "a server has an empty name".into());
                continue;
            }
            match parse_entry(entry) {
                Ok(Some(mut config)) => {
                    let dropped = if trusted {
                        Vec::new()
                    } else {
                        config.drop_user_only()
                    };
                    if !dropped.is_empty() {
                        let fields: Vec<String> =
                            dropped.iter().map(|f| format!("`{f}`")).collect();
                        self.entry_problem(
                            source,
                            name,
                            format!(
                                "{} ignored: a project file may not set them, only your own configuration (a user file or the editor's settings); the server is used without them",
                                fields.join(", ")
                            ),
                        );
                    }
                    if !config.resource_covers_url() {
                        self.entry_problem(
                            source,
                            name,
                            "`resource` does not cover `url`: no token is requested or handed out for this server until it does".into(),
                        );
                    }
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
                Err(message) => self.entry_problem(source, name, message),
            }
        }
    }

    fn problem(&mut self, source: &str, message: String) {
        self.push(ConfigProblem {
            source: source.to_owned(),
            message,
            server: None,
        });
    }

    fn entry_problem(&mut self, source: &Source, name: &str, message: String) {
        // A name can be most of a 1 MiB file, and a problem may be repeated
        // in the status of every server.
        const SHOWN: usize = 80;
        let shown = match name.char_indices().nth(SHOWN) {
            Some((end, _)) => format!("{:?}…", &name[..end]),
            None => format!("{name:?}"),
        };
        self.push(ConfigProblem {
            source: format!("{source}: server {shown}"),
            message,
            server: Some(name.to_owned()),
        });
    }

    fn push(&mut self, problem: ConfigProblem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem);
        } else {
            self.omitted += 1;
        }
    }
}

/// Removes `//` and `/* */` comments and trailing commas outside strings,
/// keeping line breaks so parse errors still point at the right line.
///
/// Linear: each byte is looked at by the main loop and at most once more by
/// the look-ahead after a comma (which stops at the first byte that is not
/// blank or comment). Works on bytes: every delimiter is ASCII, and what it
/// drops are whole comments and commas, so the output stays UTF-8.
fn strip_jsonc(text: &str) -> String {
    let b = text.as_bytes();
    let at = |i: usize| b.get(i).copied();
    // The end of the comment starting at `i` (at `//` or `/*`), if any.
    let comment_end = |i: usize| -> Option<usize> {
        match (at(i), at(i + 1)) {
            (Some(b'/'), Some(b'/')) => Some(
                b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |n| i + n),
            ),
            (Some(b'/'), Some(b'*')) => Some(
                b[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(b.len(), |n| i + 2 + n + 2),
            ),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut in_string = false;
    while let Some(c) = at(i) {
        if in_string {
            out.push(c);
            if c == b'\\'
                && let Some(next) = at(i + 1)
            {
                out.push(next);
                i += 1;
            } else if c == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if let Some(end) = comment_end(i) {
            // Line breaks inside a block comment are kept.
            out.extend(b[i..end].iter().filter(|&&c| c == b'\n'));
            i = end;
            continue;
        }
        if c == b',' {
            // A comma followed (after blanks and comments) by } or ] is
            // trailing: drop it.
            let mut j = i + 1;
            loop {
                while at(j).is_some_and(|c| c.is_ascii_whitespace()) {
                    j += 1;
                }
                match comment_end(j) {
                    Some(end) => j = end,
                    None => break,
                }
            }
            if !matches!(at(j), Some(b'}' | b']')) {
                out.push(c);
            }
            i += 1;
            continue;
        }
        in_string = c == b'"';
        out.push(c);
        i += 1;
    }
    // Only whole comments and ASCII commas were dropped.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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
        assert_eq!(
            strip_jsonc("{\"é\\\"/*\": 1 /* ü\n */, // ß\n}"),
            "{\"é\\\"/*\": 1 \n \n}"
        );
        assert_eq!(strip_jsonc("[1, /* open"), "[1, ");
    }

    /// Inputs that would make a careless stripper quadratic, each at the
    /// 1 MiB a file may have; and nesting deeper than serde_json's limit.
    #[test]
    fn hostile_jsonc_is_linear_and_nesting_is_bounded() {
        let size = file::MAX_BYTES as usize;
        let cases = [
            ",".repeat(size),
            ", ".repeat(size / 2),
            ",/*".repeat(size / 3),
            "/*".repeat(size / 2),
            format!(",{}", " ".repeat(size - 1)),
            format!("[{}", ", //\n".repeat(size / 5)),
            "\"\\".repeat(size / 2),
        ];
        let started = std::time::Instant::now();
        for text in &cases {
            let _ = strip_jsonc(text);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let deep = "[".repeat(size);
        let e = serde_json::from_str::<Value>(&strip_jsonc(&deep)).unwrap_err();
        assert!(e.to_string().contains("recursion limit"), "{e}");
    }

    #[test]
    fn problems_are_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("many.json");
        let entries: Vec<String> = (0..200).map(|i| format!("\"s{i}\": 5")).collect();
        write(
            &file,
            &format!("{{\"mcpServers\": {{{}}}}}", entries.join(",")),
        );
        let set = ConfigSet::load(&Inputs {
            extra_files: vec![file],
            ..Inputs::default()
        });
        assert_eq!(set.problems.len(), MAX_PROBLEMS + 1);
        assert_eq!(set.problems[0].server.as_deref(), Some("s0"));
        assert!(
            set.problems[MAX_PROBLEMS]
                .to_string()
                .contains(&format!("{} more problems", 200 - MAX_PROBLEMS)),
            "{:?}",
            set.problems.last()
        );
        // A long name is shortened in the text, kept whole for matching.
        let long = "n".repeat(100_000);
        let set = ConfigSet::load(&Inputs {
            inline: json!({ long.clone(): 5 }).as_object().unwrap().clone(),
            ..Inputs::default()
        });
        let text = set.problems[0].to_string();
        assert!(text.len() < 200, "{} bytes", text.len());
        assert_eq!(set.problems[0].server.as_deref(), Some(long.as_str()));
    }

    #[cfg(unix)]
    #[test]
    fn the_home_folder_as_a_workspace_reads_user_files_once() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().to_owned();
        write(
            &home.join(".cursor/mcp.json"),
            r#"{"mcpServers":{"a":{"url":"https://a.example/mcp","clientId":"mine"}}}"#,
        );
        let set = ConfigSet::load(&Inputs {
            user_home: Some(home.clone()),
            workspace_folders: vec![home.clone()],
            discover: true,
            ..Inputs::default()
        });
        assert!(set.problems.is_empty(), "{:?}", set.problems);
        assert_eq!(set.servers["a"].config.client_id.as_deref(), Some("mine"));
    }

    /// Issue 8: a project file (a cloned repository) keeps only `url`; the
    /// options that bend discovery, the audience or the client count only
    /// from user-level sources, and the problem names file, server and
    /// field, never the value.
    #[test]
    fn project_files_cannot_set_user_only_options() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let ws = tmp.path().join("ws");
        let hostile = json!({
            "url": "https://attacker.example/mcp",
            "resource": "https://real.example/mcp",
            "authServerMetadataUrl": "https://as.real.example/.well-known/oauth-authorization-server",
            "clientId": "real-client-id",
            "clientSecret": "real-client-secret",
            "clientMetadataUrl": "https://cimd.example/client.json",
            "callbackPort": 33418,
            "scopes": ["admin"]
        });
        let full = json!({
            "url": "https://real.example/mcp",
            "resource": "https://real.example/mcp",
            "clientId": "mine",
            "scopes": ["read"]
        });
        write(
            &home.join(".cursor/mcp.json"),
            &json!({"mcpServers": {"user": full}}).to_string(),
        );
        write(
            &ws.join(".mcp.json"),
            &json!({"mcpServers": {"evil": hostile, "plain": {"url": "https://plain.example/mcp"}}})
                .to_string(),
        );
        write(
            &ws.join(".vscode/mcp.json"),
            &json!({"servers": {"user": {"url": "https://real.example/mcp"}}}).to_string(),
        );
        let extra = tmp.path().join("chosen.json");
        write(&extra, &json!({"servers": {"chosen": full}}).to_string());
        let set = ConfigSet::load(&Inputs {
            user_home: Some(home),
            workspace_folders: vec![ws.clone()],
            discover: true,
            extra_files: vec![extra],
            inline: json!({"inline": full}).as_object().unwrap().clone(),
            ..Inputs::default()
        });

        let evil = &set.servers["evil"].config;
        assert_eq!(evil, &ServerConfig::for_url("https://attacker.example/mcp"));
        assert_eq!(set.problems.len(), 1, "{:?}", set.problems);
        let problem = &set.problems[0];
        assert_eq!(problem.server.as_deref(), Some("evil"));
        let text = problem.to_string();
        assert!(
            text.starts_with(&format!(
                "{}: server \"evil\": ",
                ws.join(".mcp.json").display()
            )),
            "{text}"
        );
        for field in USER_ONLY {
            assert!(text.contains(&format!("`{field}`")), "{field}: {text}");
        }
        for value in ["real.example", "real-client", "cimd", "33418", "admin"] {
            assert!(!text.contains(value), "{value}: {text}");
        }
        assert_eq!(set.servers["plain"].config.url, "https://plain.example/mcp");
        // A project entry still replaces a user entry of the same name
        // whole: it neither inherits nor keeps the user's options.
        assert_eq!(
            set.servers["user"].config,
            ServerConfig::for_url("https://real.example/mcp")
        );
        for trusted in ["chosen", "inline"] {
            let c = &set.servers[trusted].config;
            assert_eq!(c.client_id.as_deref(), Some("mine"), "{trusted}");
            assert_eq!(c.resource.as_deref(), Some("https://real.example/mcp"));
            assert_eq!(c.scopes, Some(vec!["read".to_owned()]));
        }
    }

    #[test]
    fn a_resource_must_cover_the_url_whoever_configures_it() {
        let set = ConfigSet::load(&Inputs {
            inline: json!({
                "evil": {"url": "https://attacker.example/mcp", "resource": "https://real.example/mcp"},
                "sub": {"url": "https://real.example/mcp/sub", "resource": "https://real.example/mcp"}
            })
            .as_object()
            .unwrap()
            .clone(),
            ..Inputs::default()
        });
        assert!(!set.servers["evil"].config.resource_covers_url());
        assert!(set.servers["sub"].config.resource_covers_url());
        assert!(ServerConfig::for_url("https://x.example").resource_covers_url());
        let text: Vec<String> = set.problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(
            text[0].contains("server \"evil\": `resource` does not cover `url`")
                && !text[0].contains("real.example"),
            "{text:?}"
        );
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
