//! Test harness: spawns the real `mcp-auth-sidecar` binary, speaks LSP
//! framing to it, and validates every response and notification against the
//! JSON Schemas in `schemas/`.

#![allow(dead_code)]

pub mod mock_as;
pub mod schemas;

use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mcp-auth-sidecar");
pub const WAIT: Duration = Duration::from_secs(20);

/// An isolated environment: its own sidecar home, user home and XDG dirs.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["sidecar", "home", "data", "config", "runtime", "ws"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        // The sidecar refuses a home others can write to (a umask of 002
        // would make one).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.path().join("sidecar"),
                std::fs::Permissions::from_mode(0o700),
            )
            .expect("chmod");
        }
        Self { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn sidecar_home(&self) -> PathBuf {
        self.path("sidecar")
    }

    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, contents).expect("write");
        p
    }

    /// A command for the binary with this environment. Keeps the session
    /// bus only when `keep_bus` (keyring tests); everything else is cut off
    /// from the user's real keyring and files.
    pub fn command(&self, keep_bus: bool) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env("MCP_AUTH_SIDECAR_HOME", self.sidecar_home())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env_remove("MCP_AUTH_SIDECAR_LOG");
        if !keep_bus {
            cmd.env("XDG_DATA_HOME", self.path("data"))
                .env("XDG_RUNTIME_DIR", self.path("runtime"))
                .env_remove("DBUS_SESSION_BUS_ADDRESS");
        }
        cmd
    }

    pub fn spawn(&self) -> Sidecar {
        Sidecar::spawn(self.command(false), &self.path("stderr.log"))
    }
}

pub struct Sidecar {
    pub child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    next_id: i64,
    /// Notifications (and responses to other ids) received while waiting.
    pub backlog: VecDeque<Value>,
    pub stderr_path: PathBuf,
}

impl Sidecar {
    pub fn spawn(mut cmd: Command, stderr_path: &Path) -> Self {
        let stderr = std::fs::File::create(stderr_path).expect("stderr file");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn sidecar");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(msg) = read_frame(&mut reader) {
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            rx,
            next_id: 1,
            backlog: VecDeque::new(),
            stderr_path: stderr_path.to_owned(),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write");
        stdin.flush().expect("flush");
    }

    pub fn send(&mut self, msg: &Value) {
        let body = serde_json::to_vec(msg).expect("json");
        let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        frame.extend(body);
        self.send_raw(&frame);
    }

    /// Reserves a request id for a hand-built message.
    pub fn next_id_for_test(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends a request and returns its id without waiting.
    pub fn start(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Next message from the sidecar, or None on timeout / EOF.
    pub fn next_message(&mut self, timeout: Duration) -> Option<Value> {
        match self.rx.recv_timeout(timeout) {
            Ok(v) => Some(v),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Waits for the response with `id` (a number or null), keeping
    /// everything else in the backlog.
    pub fn wait_response(&mut self, id: &Value) -> Value {
        self.wait_response_within(id, WAIT)
    }

    /// [`wait_response`](Self::wait_response) for an answer that may take
    /// longer than [`WAIT`].
    pub fn wait_response_within(&mut self, id: &Value, wait: Duration) -> Value {
        if let Some(pos) = self
            .backlog
            .iter()
            .position(|m| m.get("id") == Some(id) && m.get("method").is_none())
        {
            return self.backlog.remove(pos).expect("backlog entry");
        }
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self.next_message(left).unwrap_or_else(|| {
                panic!(
                    "no response to id {id} within {wait:?}; stderr:\n{}",
                    self.stderr()
                )
            });
            if msg.get("id") == Some(id) && msg.get("method").is_none() {
                return msg;
            }
            self.backlog.push_back(msg);
        }
    }

    /// Sends a request and waits for its whole response object.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.start(method, params);
        self.wait_response(&json!(id))
    }

    /// A request that must succeed; returns `result`, validated against the
    /// method's result schema.
    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        let resp = self.call(method, params);
        let result = resp
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{method} failed: {resp}"));
        if let Some(schema) = schemas::result_schema(method) {
            schemas::assert_valid(schema, &result);
        }
        result
    }

    /// A request that must fail; returns the validated `error` object.
    pub fn err(&mut self, method: &str, params: Value) -> Value {
        let resp = self.call(method, params);
        let error = resp
            .get("error")
            .cloned()
            .unwrap_or_else(|| panic!("{method} unexpectedly succeeded: {resp}"));
        schemas::assert_valid("error.json", &error);
        error
    }

    pub fn initialize(&mut self, options: Value) -> Value {
        let result = self.ok(
            "initialize",
            json!({
                "processId": null,
                "clientInfo": {"name": "harness", "version": "1"},
                "rootUri": null,
                "capabilities": {},
                "initializationOptions": options,
            }),
        );
        self.notify("initialized", json!({}));
        result
    }

    /// Waits for the next notification with `method`, validated against its
    /// schema.
    pub fn wait_notification(&mut self, method: &str, timeout: Duration) -> Option<Value> {
        if let Some(pos) = self.backlog.iter().position(|m| m["method"] == method) {
            let m = self.backlog.remove(pos).expect("backlog entry");
            return Some(validated_notification(method, m));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self.next_message(left)?;
            if msg["method"] == method {
                return Some(validated_notification(method, msg));
            }
            self.backlog.push_back(msg);
        }
    }

    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_for_exit(&mut self.child, timeout)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn shutdown(mut self) -> String {
        let _ = self.call("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let status = self.wait_exit(WAIT).expect("sidecar exits after exit");
        assert!(status.success(), "exit status {status:?}");
        self.stderr()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn validated_notification(method: &str, msg: Value) -> Value {
    if let Some(schema) = schemas::notification_schema(method) {
        schemas::assert_valid(schema, &msg["params"]);
    }
    msg
}

/// Reads one `Content-Length` framed message.
pub fn read_frame(reader: &mut impl BufRead) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// A TCP server on loopback that accepts connections and never answers:
/// makes probes slow without any timing assumption.
pub fn silent_server() -> (String, std::net::TcpListener) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().expect("addr").port()
    );
    (url, listener)
}

/// A minimal HTTP/1.1 server on loopback answering every request with
/// `status` and `headers`; counts requests. Stands in for an MCP server's
/// unauthenticated answer (the probe only reads the status line and
/// `WWW-Authenticate`).
pub struct HttpStub {
    pub url: String,
    pub hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

pub fn http_stub(status: u16, headers: &[(&str, &str)]) -> HttpStub {
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().expect("addr").port()
    );
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let head = {
        let mut h = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n");
        for (k, v) in headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        h.push_str("\r\n{}");
        h
    };
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(head.as_bytes());
        }
    });
    HttpStub { url, hits }
}

/// Writes `record` into the store at `home` in `choice` mode, through the
/// sidecar's own library (the same code the binary uses).
pub fn seed(
    home: &Path,
    choice: mcp_auth_sidecar::store::StorageChoice,
    record: &mcp_auth_sidecar::store::record::CredentialRecord,
) {
    // The keyring is read by a helper process: the sidecar binary, not
    // this test binary.
    mcp_auth_sidecar::store::keyring::use_helper_program(BIN);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store =
            mcp_auth_sidecar::store::Store::open(&mcp_auth_sidecar::home::Home::at(home), choice)
                .await
                .expect("open store");
        store.save(record).expect("save record");
    });
}

/// A record with tokens for `url`.
pub fn record_with_tokens(
    url: &str,
    access: &str,
    refresh: Option<&str>,
    expires_at: Option<i64>,
) -> mcp_auth_sidecar::store::record::CredentialRecord {
    use mcp_auth_sidecar::secret::Secret;
    use mcp_auth_sidecar::store::record::*;
    let mut r = CredentialRecord::new(url);
    r.registrations.insert(
        "https://as.example.com".into(),
        ClientRegistration {
            kind: RegistrationKind::Dynamic,
            client_id: "client-123".into(),
            client_secret: Some(Secret::new("client-secret-DO-NOT-LOG")),
            token_endpoint_auth_method: Some("client_secret_basic".into()),
            redirect_uris: vec!["http://127.0.0.1:33418/callback".into()],
            registered_at: 0,
        },
    );
    r.tokens = Some(TokenSet {
        access_token: Secret::new(access),
        token_type: "Bearer".into(),
        refresh_token: refresh.map(Secret::new),
        expires_at,
        scopes: vec!["mcp:read".into(), "mcp:write".into()],
        issuer: "https://as.example.com".into(),
        resource: Some(url.into()),
        obtained_at: 0,
        token_endpoint: None,
        revocation_endpoint: None,
        revocation_auth_methods: None,
        via_refresh: false,
    });
    r
}

pub fn now_ms() -> i64 {
    mcp_auth_sidecar::status::now_ms()
}

/// A [`Route`] status that closes the connection without an answer, as a
/// server that crashed (or a proxy that timed out) after reading the request.
pub const HANG_UP: u16 = 0;

/// One canned answer of a [`RouteStub`].
#[derive(Clone)]
pub struct Route {
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// After so many hits, answer with this status and JSON body instead
    /// (the last entry whose count is passed wins).
    pub later: Vec<(usize, u16, Value)>,
    /// After this many hits, wait this long before answering (a slow
    /// server; the stub answers nothing else meanwhile).
    pub slow: Option<(usize, Duration)>,
}

impl Route {
    pub fn json(method: &'static str, path: &str, status: u16, body: Value) -> Self {
        Route {
            method,
            path: path.into(),
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string(),
            later: Vec::new(),
            slow: None,
        }
    }

    /// From hit `n + 1` on, answer `status` with `body` (until a later
    /// `after` takes over).
    pub fn after(mut self, n: usize, status: u16, body: Value) -> Self {
        self.later.push((n, status, body));
        self
    }

    /// From hit `n + 1` on, answer only after `delay`.
    pub fn slow_after(mut self, n: usize, delay: Duration) -> Self {
        self.slow = Some((n, delay));
        self
    }
}

/// An HTTP/1.1 server on loopback answering by method and path (query
/// ignored), 404 otherwise; counts hits per path; `{n}` in a body becomes
/// the number of that route's hits so far. Stands in for an
/// authorization server and a protected MCP endpoint in hostile-case tests.
pub struct RouteStub {
    pub base: String,
    pub hits: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// `METHOD /path` and the body of every request, in order.
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl RouteStub {
    pub fn start(make_routes: impl FnOnce(&str) -> Vec<Route>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let routes = make_routes(&base);
        let hits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = hits.clone();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let bodies = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                    continue;
                }
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let mut parts = request_line.split_whitespace();
                let method = parts.next().unwrap_or("").to_owned();
                let path = parts
                    .next()
                    .unwrap_or("")
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let key = format!("{method} {path}");
                bodies
                    .lock()
                    .expect("bodies")
                    .push((key.clone(), String::from_utf8_lossy(&body).into_owned()));
                let n = {
                    let mut log = log.lock().expect("log");
                    log.push(key.clone());
                    log.iter().filter(|h| **h == key).count()
                };
                let route = routes.iter().find(|r| r.method == method && r.path == path);
                let (status, headers, body) = match route {
                    Some(r) => {
                        let (status, body) = r
                            .later
                            .iter()
                            .rev()
                            .find(|(after, _, _)| n > *after)
                            .map(|(_, status, body)| (*status, body.to_string()))
                            .unwrap_or((r.status, r.body.clone()));
                        // `{n}` numbers the answers of a route (distinct
                        // tokens).
                        (
                            status,
                            r.headers.clone(),
                            body.replace("{n}", &n.to_string()),
                        )
                    }
                    None => (404, vec![], String::new()),
                };
                if let Some(Route {
                    slow: Some((after, delay)),
                    ..
                }) = route
                    && n > *after
                {
                    std::thread::sleep(*delay);
                }
                if status == HANG_UP {
                    // Read the request, answer nothing: a lost answer.
                    continue;
                }
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body.as_bytes());
            }
        });
        RouteStub {
            base,
            hits,
            requests,
        }
    }

    pub fn count(&self, what: &str) -> usize {
        self.hits
            .lock()
            .expect("hits")
            .iter()
            .filter(|h| h.as_str() == what)
            .count()
    }
}

/// Waits at most `timeout` for `child` to exit.
pub fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The status of server `name` in an `mcp/authStatus` result.
pub fn by_name<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["server"] == name)
        .unwrap_or_else(|| panic!("no {name} in {result}"))
}
