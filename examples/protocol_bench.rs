//! The protocol benchmark driver behind `scripts/bench-protocol.sh` (issue 9,
//! "Fast and small"). It prints figures; it never fails on a goal.
//!
//! It spawns each program given (the sidecar, older builds of it, and the
//! `frame_limit` example as the physical limit), speaks LSP-framed JSON-RPC
//! to it on stdin/stdout, and measures, with `--servers` ad-hoc servers
//! (`https://s0.example/mcp` …) in memory storage and no config discovery:
//!
//! 1. pipelined `mcp/authStatus` throughput: one thread writes `--requests`
//!    framed requests as fast as the pipe takes them while another reads and
//!    parses every response; the best of `--rounds` runs is reported;
//! 2. single-request latency: one request, wait for its response, repeat
//!    `--latency` times after `--warmup` requests; p50 and p99;
//! 3. spawn → `initialize` answered, median of `--spawns` runs (each then
//!    ends with `shutdown` and `exit`);
//! 4. idle RSS: `VmRSS` 1 s after `initialize` and one `mcp/authStatus`;
//! 5. idle wake-ups: context switches of all the process's threads during
//!    `--idle-secs` seconds after that;
//! 6. a flood of `--flood-mib` MiB of small garbage frames (`{}`, each
//!    answered with an error) written as fast as the program reads them
//!    while its answers are read and dropped, then one `mcp/authStatus`:
//!    peak RSS (`VmHWM`) and the time until that answer. A program over
//!    `FLOOD_RSS_CAP` is stopped there. The limit program is not flooded
//!    (it answers every frame with a full-size body).
//!
//! Measures 4 to 6 read `/proc` (Linux); elsewhere they show `n/a`.
//!
//! ```sh
//! cargo run --release --example protocol_bench -- \
//!     --program current=target/release/mcp-auth-sidecar \
//!     --limit limit=target/release/examples/frame_limit
//! ```
//!
//! The limit program is started with `--body-bytes N`, N being the size of
//! the first program's `mcp/authStatus` answer, so it writes as many bytes.

use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::HashMap;
use std::error::Error;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const AUTH_STATUS: &str = "mcp/authStatus";
/// A phase that takes longer than this has hung: the program is killed.
const PHASE_LIMIT: Duration = Duration::from_secs(120);
/// A flood that takes longer than this has hung: the program is killed.
const FLOOD_LIMIT: Duration = Duration::from_secs(300);
/// A flooded program using more memory than this is stopped, MiB.
const FLOOD_RSS_CAP: u64 = 2048;
/// How long a program may take to exit after `exit`.
const EXIT_WAIT: Duration = Duration::from_secs(10);

const USAGE: &str = "\
usage: protocol_bench --program LABEL=PATH [--program LABEL=PATH ...]
                      [--limit LABEL=PATH] [options]
options (defaults in brackets):
  --servers N      configured servers [10]
  --requests N     pipelined requests per throughput run [20000]
  --rounds N       throughput runs per program, best reported [3]
  --latency N      timed single requests [2000]
  --warmup N       untimed single requests first [200]
  --spawns N       spawn -> initialize runs [50]
  --idle-secs S    idle window for wake-ups [3]
  --flood-mib N    garbage frames for the flood, MiB; 0 skips it [1024]";

#[derive(Clone)]
struct Program {
    label: String,
    path: PathBuf,
    args: Vec<String>,
}

struct Options {
    programs: Vec<Program>,
    limit: Option<Program>,
    servers: usize,
    requests: usize,
    rounds: usize,
    latency: usize,
    warmup: usize,
    spawns: usize,
    idle: Duration,
    flood_mib: usize,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("protocol_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let opts = parse_args()?;
    let init = init_params(opts.servers);

    println!("# protocol benchmark (figures, not a test)");
    println!(
        "cpus: {}, load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    for p in opts.programs.iter().chain(&opts.limit) {
        println!("{:>12}: {}", p.label, p.path.display());
    }

    // The limit writes answers as large as the first program's.
    let body_bytes = status_body_bytes(&opts.programs[0], &init, opts.servers)?;
    println!(
        "mcp/authStatus answer of {} with {} servers: {body_bytes} bytes of body",
        opts.programs[0].label, opts.servers
    );
    let mut all = opts.programs.clone();
    if let Some(limit) = &opts.limit {
        let mut limit = limit.clone();
        limit.args = vec!["--body-bytes".into(), body_bytes.to_string()];
        all.push(limit);
    }

    let mut errors = Vec::new();
    let mut rows = Vec::new();

    eprintln!("throughput ...");
    let cells = throughput_all(&all, &init, &opts);
    rows.push(Row::new(
        format!(
            "authStatus throughput, req/s (best of {} x {})",
            opts.rounds, opts.requests
        ),
        ">= 50000",
        0,
        cells,
        &all,
        &mut errors,
    ));

    eprintln!("latency ...");
    let (p50, p99) = latency_all(&all, &init, &opts);
    rows.push(Row::new(
        format!("latency p50, ms ({} requests)", opts.latency),
        "-",
        3,
        p50,
        &all,
        &mut errors,
    ));
    rows.push(Row::new(
        format!("latency p99, ms ({} requests)", opts.latency),
        "<= 0.3",
        3,
        p99,
        &all,
        &mut errors,
    ));

    eprintln!("spawn -> initialize ...");
    let cells = spawn_all(&all, &init, &opts);
    rows.push(Row::new(
        format!("spawn -> initialize, ms (median of {})", opts.spawns),
        "<= 3",
        2,
        cells,
        &all,
        &mut errors,
    ));

    eprintln!("idle ...");
    let (rss, wakeups) = idle_all(&all, &init, &opts);
    rows.push(Row::new(
        "idle RSS, MB".into(),
        "<= 10",
        1,
        rss,
        &all,
        &mut errors,
    ));
    rows.push(Row::new(
        format!("idle wake-ups in {} s", opts.idle.as_secs_f64()),
        "0",
        0,
        wakeups,
        &all,
        &mut errors,
    ));

    if opts.flood_mib > 0 {
        eprintln!("flood ...");
        let (peak, secs) = flood_all(&all, &init, &opts);
        rows.push(Row::new(
            format!(
                "flood of {} MiB of {{}} frames: peak RSS, MB",
                opts.flood_mib
            ),
            "< 64",
            1,
            peak,
            &all,
            &mut errors,
        ));
        rows.push(Row::new(
            "flood: until the next request is answered, s".into(),
            "-",
            1,
            secs,
            &all,
            &mut errors,
        ));
    }

    println!("load average at end: {}", load_average());
    println!();
    print_table(&rows, &all, opts.limit.is_some());
    if !errors.is_empty() {
        println!();
        for e in &errors {
            println!("error: {e}");
        }
    }
    Ok(())
}

fn parse_args() -> Result<Options> {
    let mut opts = Options {
        programs: Vec::new(),
        limit: None,
        servers: 10,
        requests: 20_000,
        rounds: 3,
        latency: 2_000,
        warmup: 200,
        spawns: 50,
        idle: Duration::from_secs(3),
        flood_mib: 1024,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?;
        let number = || -> Result<usize> {
            value
                .parse()
                .map_err(|_| format!("{arg}: not a number: {value:?}").into())
        };
        match arg.as_str() {
            "--program" => opts.programs.push(program(&value)?),
            "--limit" => opts.limit = Some(program(&value)?),
            "--servers" => opts.servers = number()?,
            "--requests" => opts.requests = number()?.max(1),
            "--rounds" => opts.rounds = number()?.max(1),
            "--latency" => opts.latency = number()?.max(1),
            "--warmup" => opts.warmup = number()?,
            "--spawns" => opts.spawns = number()?.max(1),
            "--idle-secs" => opts.idle = Duration::from_secs(number()? as u64),
            "--flood-mib" => opts.flood_mib = number()?,
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}").into()),
        }
    }
    if opts.programs.is_empty() {
        return Err(format!("no --program given\n{USAGE}").into());
    }
    Ok(opts)
}

fn program(spec: &str) -> Result<Program> {
    let (label, path) = spec
        .split_once('=')
        .ok_or_else(|| format!("expected LABEL=PATH, got {spec:?}"))?;
    let path = PathBuf::from(path);
    if !path.is_file() {
        return Err(format!("{label}: no such program {}", path.display()).into());
    }
    Ok(Program {
        label: label.into(),
        path,
        args: Vec::new(),
    })
}

/// `initialize` params with `servers` ad-hoc servers, memory storage and no
/// configuration files.
fn init_params(servers: usize) -> String {
    let servers: Vec<String> = (0..servers)
        .map(|i| format!(r#""s{i}":{{"url":"https://s{i}.example/mcp"}}"#))
        .collect();
    format!(
        r#"{{"processId":null,"clientInfo":{{"name":"protocol-bench","version":"1"}},"rootUri":null,"capabilities":{{}},"initializationOptions":{{"storage":"memory","discoverConfigFiles":false,"servers":{{{}}}}}}}"#,
        servers.join(",")
    )
}

fn frame(body: &str) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn request(id: u64, method: &str, params: &str) -> Vec<u8> {
    frame(&format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#
    ))
}

/// What the driver reads of every message: enough to match it and to know
/// whether it succeeded. The rest is parsed and skipped.
#[derive(Deserialize)]
struct Reply {
    id: Option<serde_json::Value>,
    method: Option<IgnoredAny>,
    result: Option<IgnoredAny>,
    error: Option<serde_json::Value>,
}

/// Reads one framed message into `body`.
fn read_frame(input: &mut impl BufRead, line: &mut String, body: &mut Vec<u8>) -> Result<()> {
    let mut len = None;
    loop {
        line.clear();
        if input.read_line(line)? == 0 {
            return Err("the program closed its stdout".into());
        }
        let text = line.trim_end();
        if text.is_empty() {
            if len.is_some() {
                break;
            }
            continue;
        }
        if let Some((name, value)) = text.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            len = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        }
    }
    body.resize(len.unwrap_or(0), 0);
    input.read_exact(body)?;
    Ok(())
}

/// Kills the program when a phase overruns [`PHASE_LIMIT`], so a program
/// that stops answering fails its measure instead of hanging the benchmark.
struct Watchdog {
    deadline: Arc<Mutex<Option<Instant>>>,
    stop: Arc<AtomicBool>,
    fired: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    fn new(child: Arc<Mutex<Child>>) -> Self {
        let deadline = Arc::new(Mutex::new(None::<Instant>));
        let stop = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let (d, s, f) = (deadline.clone(), stop.clone(), fired.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let due = d.lock().map(|d| d.is_some_and(|t| Instant::now() > t));
                if due.unwrap_or(false) {
                    f.store(true, Ordering::Relaxed);
                    if let Ok(mut c) = child.lock() {
                        let _ = c.kill();
                    }
                    return;
                }
            }
        });
        Self {
            deadline,
            stop,
            fired,
            thread: Some(thread),
        }
    }

    fn arm(&self) {
        if let Ok(mut d) = self.deadline.lock() {
            *d = Some(Instant::now() + PHASE_LIMIT);
        }
    }

    fn disarm(&self) {
        if let Ok(mut d) = self.deadline.lock() {
            *d = None;
        }
    }

    /// Turns an error of the phase into "timed out" when the watchdog ended it.
    fn explain<T>(&self, r: Result<T>) -> Result<T> {
        self.disarm();
        if self.fired.load(Ordering::Relaxed) {
            return Err(format!("no answer within {PHASE_LIMIT:?}; killed").into());
        }
        r
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One running program and its private environment.
struct Session {
    label: String,
    child: Arc<Mutex<Child>>,
    pid: u32,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    line: String,
    body: Vec<u8>,
    watchdog: Watchdog,
    /// When `spawn` was called.
    spawned_at: Instant,
    dir: tempfile::TempDir,
}

impl Session {
    /// Spawns `p` with its own sidecar home, user home and XDG directories,
    /// away from the session bus (memory storage needs none of them).
    fn spawn(p: &Program) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        for d in ["sidecar", "home", "config", "data", "runtime"] {
            std::fs::create_dir_all(dir.path().join(d))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.path().join("sidecar"),
                std::fs::Permissions::from_mode(0o700),
            )?;
        }
        let stderr = std::fs::File::create(dir.path().join("stderr.log"))?;
        let mut cmd = Command::new(&p.path);
        cmd.args(&p.args)
            .env("MCP_AUTH_SIDECAR_HOME", dir.path().join("sidecar"))
            .env("HOME", dir.path().join("home"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_RUNTIME_DIR", dir.path().join("runtime"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("MCP_AUTH_SIDECAR_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let spawned_at = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{}: cannot spawn {}: {e}", p.label, p.path.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let pid = child.id();
        let child = Arc::new(Mutex::new(child));
        Ok(Self {
            label: p.label.clone(),
            watchdog: Watchdog::new(child.clone()),
            child,
            pid,
            stdin: Some(stdin),
            stdout: BufReader::with_capacity(64 * 1024, stdout),
            next_id: 1,
            line: String::new(),
            body: Vec::new(),
            spawned_at,
            dir,
        })
    }

    /// Spawned and initialized, with one `mcp/authStatus` answered.
    fn ready(p: &Program, init: &str) -> Result<Self> {
        let mut s = Self::spawn(p)?;
        s.call("initialize", init)?;
        s.notify("initialized", "{}")?;
        s.call(AUTH_STATUS, "{}")?;
        Ok(s)
    }

    fn stdin(&mut self) -> Result<&mut ChildStdin> {
        Ok(self.stdin.as_mut().ok_or("stdin already closed")?)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let stdin = self.stdin()?;
        stdin.write_all(bytes)?;
        stdin.flush()?;
        Ok(())
    }

    fn notify(&mut self, method: &str, params: &str) -> Result<()> {
        self.write(&frame(&format!(
            r#"{{"jsonrpc":"2.0","method":"{method}","params":{params}}}"#
        )))
    }

    /// Sends a request; returns its id.
    fn start(&mut self, method: &str, params: &str) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.write(&request(id, method, params))?;
        Ok(id)
    }

    /// Reads until the response to `id`, skipping notifications and
    /// requests from the program; leaves its body in `self.body`.
    fn wait(&mut self, id: u64) -> Result<()> {
        loop {
            read_frame(&mut self.stdout, &mut self.line, &mut self.body)?;
            let reply: Reply = serde_json::from_slice(&self.body)?;
            if reply.method.is_some() {
                continue;
            }
            if reply.id.as_ref().and_then(serde_json::Value::as_u64) != Some(id) {
                return Err(format!(
                    "unexpected message while waiting for {id}: {}",
                    String::from_utf8_lossy(&self.body)
                )
                .into());
            }
            if let Some(e) = reply.error {
                return Err(format!("request {id} failed: {e}").into());
            }
            return Ok(());
        }
    }

    fn call(&mut self, method: &str, params: &str) -> Result<()> {
        self.watchdog.arm();
        let r = self.start(method, params).and_then(|id| self.wait(id));
        let r = self.watchdog.explain(r);
        r.map_err(|e| self.failed(method, e))
    }

    /// `e`, with the program's label and the end of its stderr.
    fn failed(&self, what: &str, e: Box<dyn Error>) -> Box<dyn Error> {
        let stderr =
            std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
        if tail.is_empty() {
            format!("{}: {what}: {e}", self.label).into()
        } else {
            format!("{}: {what}: {e}; stderr: {tail}", self.label).into()
        }
    }

    /// `shutdown`, `exit`, and the end of the process.
    fn close(mut self) -> Result<()> {
        self.call("shutdown", "null")?;
        self.notify("exit", "null")?;
        self.stdin.take();
        let deadline = Instant::now() + EXIT_WAIT;
        loop {
            let status = self
                .child
                .lock()
                .map_err(|_| "child lock poisoned")?
                .try_wait()?;
            if let Some(status) = status {
                if !status.success() {
                    return Err(self.failed("exit", format!("{status}").into()));
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.failed(
                    "exit",
                    format!("still running {EXIT_WAIT:?} after exit").into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The size of `p`'s `mcp/authStatus` body, checking it lists `servers`.
fn status_body_bytes(p: &Program, init: &str, servers: usize) -> Result<usize> {
    let mut s = Session::ready(p, init)?;
    s.call(AUTH_STATUS, "{}")?;
    let body: serde_json::Value = serde_json::from_slice(&s.body)?;
    let listed = body["result"]["servers"].as_array().map_or(0, Vec::len);
    if listed != servers {
        return Err(format!(
            "{}: mcp/authStatus lists {listed} servers, not {servers}",
            p.label
        )
        .into());
    }
    let len = s.body.len();
    s.close()?;
    Ok(len)
}

/// One pipelined run of `n` requests; requests per second.
fn throughput(s: &mut Session, n: usize) -> Result<f64> {
    let first = s.next_id;
    s.next_id += n as u64;
    let mut frames = Vec::with_capacity(n * 80);
    for i in 0..n as u64 {
        frames.extend_from_slice(&request(first + i, AUTH_STATUS, "{}"));
    }
    s.watchdog.arm();
    let Session {
        stdin,
        stdout,
        line,
        body,
        child,
        ..
    } = s;
    let stdin = stdin.as_mut().ok_or("stdin already closed")?;
    let start = Instant::now();
    let r = std::thread::scope(|scope| -> Result<Duration> {
        let writer = scope.spawn(move || -> io::Result<()> {
            stdin.write_all(&frames)?;
            stdin.flush()
        });
        let read = read_replies(stdout, line, body, first, n, start);
        if read.is_err() {
            // The writer may be blocked on a program that will never read.
            if let Ok(mut c) = child.lock() {
                let _ = c.kill();
            }
        }
        let wrote = writer.join().map_err(|_| "writer thread panicked")?;
        let elapsed = read?;
        wrote?;
        Ok(elapsed)
    });
    let elapsed = s
        .watchdog
        .explain(r)
        .map_err(|e| s.failed("throughput", e))?;
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// Reads the `n` replies of a pipelined run whose ids start at `first`;
/// the time from `start` to the last one.
fn read_replies(
    stdout: &mut BufReader<ChildStdout>,
    line: &mut String,
    body: &mut Vec<u8>,
    first: u64,
    n: usize,
    start: Instant,
) -> Result<Duration> {
    let mut seen = vec![false; n];
    let mut got = 0;
    while got < n {
        read_frame(stdout, line, body)?;
        let reply: Reply = serde_json::from_slice(body)?;
        if reply.method.is_some() {
            continue;
        }
        let k = reply
            .id
            .as_ref()
            .and_then(serde_json::Value::as_u64)
            .and_then(|id| id.checked_sub(first))
            .filter(|k| *k < n as u64)
            .ok_or_else(|| format!("unexpected reply {:?}", reply.id))? as usize;
        if let Some(e) = reply.error {
            return Err(format!("request {} failed: {e}", first + k as u64).into());
        }
        if reply.result.is_none() || seen[k] {
            return Err(format!("bad or repeated reply to {}", first + k as u64).into());
        }
        seen[k] = true;
        got += 1;
    }
    Ok(start.elapsed())
}

type Cells = Vec<Result<f64>>;

/// Throughput of every program, the runs interleaved (a, b, c, a, b, c …)
/// so a change in machine load spreads over all of them.
fn throughput_all(all: &[Program], init: &str, opts: &Options) -> Cells {
    let mut sessions: Vec<Result<Session>> = all
        .iter()
        .map(|p| {
            let mut s = Session::ready(p, init)?;
            throughput(&mut s, (opts.requests / 10).max(1))?; // warm-up
            Ok(s)
        })
        .collect();
    let mut best: Cells = (0..all.len()).map(|_| Ok(0.0)).collect();
    for _ in 0..opts.rounds {
        for (s, b) in sessions.iter_mut().zip(best.iter_mut()) {
            let (Ok(s), Ok(so_far)) = (s.as_mut(), b.as_mut()) else {
                continue;
            };
            match throughput(s, opts.requests) {
                Ok(rate) => *so_far = so_far.max(rate),
                Err(e) => *b = Err(e),
            }
        }
    }
    for (s, b) in sessions.into_iter().zip(best.iter_mut()) {
        match s {
            Err(e) => *b = Err(e),
            Ok(s) if b.is_ok() => {
                if let Err(e) = s.close() {
                    *b = Err(e);
                }
            }
            Ok(_) => {}
        }
    }
    best
}

/// p50 and p99 of single-request latency, in ms, one program at a time.
fn latency_all(all: &[Program], init: &str, opts: &Options) -> (Cells, Cells) {
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for p in all {
        match latency(p, init, opts) {
            Ok((a, b)) => {
                p50.push(Ok(a));
                p99.push(Ok(b));
            }
            Err(e) => {
                p50.push(Err(e.to_string().into()));
                p99.push(Err(e));
            }
        }
    }
    (p50, p99)
}

fn latency(p: &Program, init: &str, opts: &Options) -> Result<(f64, f64)> {
    let mut s = Session::ready(p, init)?;
    for _ in 0..opts.warmup {
        s.call(AUTH_STATUS, "{}")?;
    }
    let mut times = Vec::with_capacity(opts.latency);
    s.watchdog.arm();
    let r = timed_requests(&mut s, opts.latency, &mut times);
    s.watchdog.explain(r).map_err(|e| s.failed("latency", e))?;
    s.close()?;
    times.sort();
    Ok((ms(percentile(&times, 50.0)), ms(percentile(&times, 99.0))))
}

/// `n` requests one at a time, each timed from its write to its response.
fn timed_requests(s: &mut Session, n: usize, times: &mut Vec<Duration>) -> Result<()> {
    for _ in 0..n {
        let id = s.next_id;
        s.next_id += 1;
        let req = request(id, AUTH_STATUS, "{}");
        let t0 = Instant::now();
        s.write(&req)?;
        s.wait(id)?;
        times.push(t0.elapsed());
    }
    Ok(())
}

/// The nearest-rank percentile of sorted `times`.
fn percentile(times: &[Duration], pct: f64) -> Duration {
    let rank = ((pct / 100.0) * times.len() as f64).ceil() as usize;
    times[rank.clamp(1, times.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median spawn → `initialize` answered, in ms; the runs interleaved.
fn spawn_all(all: &[Program], init: &str, opts: &Options) -> Cells {
    let mut times: Vec<Result<Vec<Duration>>> = all.iter().map(|_| Ok(Vec::new())).collect();
    for _ in 0..opts.spawns {
        for (p, t) in all.iter().zip(times.iter_mut()) {
            let Ok(list) = t else { continue };
            match spawn_to_initialize(p, init) {
                Ok(d) => list.push(d),
                Err(e) => *t = Err(e),
            }
        }
    }
    times
        .into_iter()
        .map(|t| {
            let mut t = t?;
            t.sort();
            Ok(ms(t[t.len() / 2]))
        })
        .collect()
}

fn spawn_to_initialize(p: &Program, init: &str) -> Result<Duration> {
    let mut s = Session::spawn(p)?;
    s.call("initialize", init)?;
    let took = s.spawned_at.elapsed();
    s.notify("initialized", "{}")?;
    s.close()?;
    Ok(took)
}

/// Idle RSS (MB) and wake-ups of every program, all idle at the same time.
fn idle_all(all: &[Program], init: &str, opts: &Options) -> (Cells, Cells) {
    let sessions: Vec<Result<Session>> = all.iter().map(|p| Session::ready(p, init)).collect();
    std::thread::sleep(Duration::from_secs(1));
    let rss: Cells = sessions
        .iter()
        .map(|s| {
            let s = s.as_ref().map_err(|e| e.to_string())?;
            let kib = vm_rss_kib(s.pid).ok_or("n/a: no /proc/<pid>/status VmRSS")?;
            Ok(kib as f64 * 1024.0 / 1e6)
        })
        .collect();
    let before: Vec<_> = sessions
        .iter()
        .map(|s| s.as_ref().ok().and_then(|s| context_switches(s.pid)))
        .collect();
    std::thread::sleep(opts.idle);
    let wakeups: Cells = sessions
        .iter()
        .zip(before)
        .map(|(s, before)| {
            let s = s.as_ref().map_err(|e| e.to_string())?;
            let before = before.ok_or("n/a: no /proc/<pid>/task")?;
            let after = context_switches(s.pid).ok_or("n/a: no /proc/<pid>/task")?;
            let woke: u64 = after
                .iter()
                .map(|(task, n)| n.saturating_sub(before.get(task).copied().unwrap_or(0)))
                .sum();
            Ok(woke as f64)
        })
        .collect();
    let mut rss = rss;
    let mut wakeups = wakeups;
    for (i, s) in sessions.into_iter().enumerate() {
        if let Ok(s) = s
            && let Err(e) = s.close()
        {
            let msg = e.to_string();
            rss[i] = Err(msg.clone().into());
            wakeups[i] = Err(msg.into());
        }
    }
    (rss, wakeups)
}

/// Peak RSS in MB and seconds of each program's flood; the limit (last
/// when there is one) is not flooded.
fn flood_all(all: &[Program], init: &str, opts: &Options) -> (Cells, Cells) {
    let mut peak = Vec::new();
    let mut secs = Vec::new();
    for (i, p) in all.iter().enumerate() {
        if opts.limit.is_some() && i == all.len() - 1 {
            peak.push(Err(format!("{}: not flooded", p.label).into()));
            secs.push(Err(format!("{}: not flooded", p.label).into()));
            continue;
        }
        match flood(p, init, opts.flood_mib) {
            Ok((mb, s)) => {
                peak.push(Ok(mb));
                secs.push(Ok(s));
            }
            Err(e) => {
                secs.push(Err(e.to_string().into()));
                peak.push(Err(e));
            }
        }
    }
    (peak, secs)
}

/// Floods `p` with `mib` MiB of `{}` frames, then asks one
/// `mcp/authStatus`; peak RSS in MB and the seconds until its answer.
fn flood(p: &Program, init: &str, mib: usize) -> Result<(f64, f64)> {
    let mut s = Session::ready(p, init)?;
    let mut chunk = Vec::with_capacity(64 * 1024 + 32);
    while chunk.len() < 64 * 1024 {
        chunk.extend_from_slice(&frame("{}"));
    }
    let chunks = (mib * 1024 * 1024).div_ceil(chunk.len());
    let id = s.next_id;
    s.next_id += 1;
    let last = request(id, AUTH_STATUS, "{}");
    // Answers to garbage carry `"id":null`; no id after this one is used.
    let marker = format!("\"id\":{id}");
    let mut stdin = s.stdin.take().ok_or("stdin already closed")?;
    let (pid, child) = (s.pid, s.child.clone());
    let over = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let stdout = &mut s.stdout;
    let start = Instant::now();
    let r = std::thread::scope(|scope| -> Result<(Duration, u64)> {
        let writer = scope.spawn(|| -> io::Result<ChildStdin> {
            for _ in 0..chunks {
                if over.load(Ordering::Relaxed) {
                    break;
                }
                stdin.write_all(&chunk)?;
            }
            stdin.write_all(&last)?;
            stdin.flush()?;
            Ok(stdin)
        });
        let reader = scope.spawn(|| -> std::result::Result<Duration, String> {
            let found = find_in_stream(stdout, marker.as_bytes());
            done.store(true, Ordering::Relaxed);
            found.map_err(|e| e.to_string())?;
            Ok(start.elapsed())
        });
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            if vm_kib(pid, "VmRSS").is_some_and(|k| k > FLOOD_RSS_CAP * 1024) {
                over.store(true, Ordering::Relaxed);
                if let Ok(mut c) = child.lock() {
                    let _ = c.kill();
                }
                break;
            }
            if start.elapsed() > FLOOD_LIMIT {
                if let Ok(mut c) = child.lock() {
                    let _ = c.kill();
                }
                break;
            }
        }
        let peak = vm_kib(pid, "VmHWM");
        let elapsed = reader.join().map_err(|_| "reader thread panicked")?;
        if over.load(Ordering::Relaxed) {
            return Err(format!("RSS over {FLOOD_RSS_CAP} MiB; stopped").into());
        }
        let elapsed = elapsed?;
        let stdin = writer.join().map_err(|_| "writer thread panicked")??;
        drop(stdin);
        Ok((elapsed, peak.ok_or("no VmHWM in /proc")?))
    });
    let (elapsed, peak) = r.map_err(|e| s.failed("flood", e))?;
    Ok((peak as f64 * 1024.0 / 1e6, elapsed.as_secs_f64()))
}

/// Reads `input` until `marker` went by (it may span two reads).
fn find_in_stream(input: &mut impl BufRead, marker: &[u8]) -> Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Err("the program closed its stdout".into());
        }
        let n = buf.len();
        carry.extend_from_slice(buf);
        input.consume(n);
        if carry.windows(marker.len()).any(|w| w == marker) {
            return Ok(());
        }
        let keep = carry.len().min(marker.len());
        carry.drain(..carry.len() - keep);
    }
}

/// `VmRSS` of `pid` in KiB (Linux).
fn vm_rss_kib(pid: u32) -> Option<u64> {
    vm_kib(pid, "VmRSS")
}

/// A `Vm…` field of `/proc/<pid>/status` in KiB (Linux).
fn vm_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Voluntary plus involuntary context switches of each thread of `pid`
/// (Linux).
fn context_switches(pid: u32) -> Option<HashMap<String, u64>> {
    let mut out = HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path();
        let Ok(status) = std::fs::read_to_string(path.join("status")) else {
            continue; // the thread ended
        };
        let n = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split(':').nth(1)?.trim().parse::<u64>().ok())
            .sum();
        out.insert(path.display().to_string(), n);
    }
    Some(out)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

/// One measure: a cell per program, shown with `decimals`.
struct Row {
    name: String,
    goal: &'static str,
    decimals: usize,
    cells: Vec<Option<f64>>,
}

impl Row {
    fn new(
        name: String,
        goal: &'static str,
        decimals: usize,
        cells: Cells,
        all: &[Program],
        errors: &mut Vec<String>,
    ) -> Self {
        let cells = cells
            .into_iter()
            .zip(all)
            .map(|(c, p)| match c {
                Ok(v) => Some(v),
                Err(e) => {
                    let e = e.to_string();
                    let e = e.strip_prefix(&format!("{}: ", p.label)).unwrap_or(&e);
                    errors.push(format!("{name}, {}: {e}", p.label));
                    None
                }
            })
            .collect();
        Row {
            name,
            goal,
            decimals,
            cells,
        }
    }
}

/// Measures down, programs across, then each program's ratio to the limit
/// (the last program when `has_limit`).
fn print_table(rows: &[Row], all: &[Program], has_limit: bool) {
    let measured = if has_limit { all.len() - 1 } else { all.len() };
    let mut header = vec!["measure".to_owned(), "goal".to_owned()];
    header.extend(all.iter().map(|p| p.label.clone()));
    if has_limit {
        let limit = &all[all.len() - 1].label;
        header.extend(
            all[..measured]
                .iter()
                .map(|p| format!("{}/{limit}", p.label)),
        );
    }
    let mut table = vec![header];
    for row in rows {
        let mut line = vec![row.name.clone(), row.goal.to_owned()];
        line.extend(row.cells.iter().map(|c| match c {
            Some(v) => format!("{v:.prec$}", prec = row.decimals),
            None => "error".into(),
        }));
        if has_limit {
            let limit = row.cells[all.len() - 1];
            line.extend(row.cells[..measured].iter().map(|c| match (c, limit) {
                (Some(v), Some(l)) if l > 0.0 => format!("{:.2}x", v / l),
                _ => "-".into(),
            }));
        }
        table.push(line);
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|i| {
            table
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (n, line) in table.iter().enumerate() {
        let text: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        println!("{}", text.join("  ").trim_end());
        if n == 0 {
            let total = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            println!("{}", "-".repeat(total));
        }
    }
    if has_limit {
        println!();
        println!(
            "ratio = program / {}: below 1x is slower for throughput, above 1x is slower or bigger for the others.",
            all[all.len() - 1].label
        );
        println!(
            "Every column includes this driver's own cost (pipes, framing, JSON parsing), the limit's too."
        );
    }
}
