//! The command line (docs/protocol.md#command-line): `serve` (the default) speaks the protocol;
//! the rest are for terminals and scripts, in the spirit of `gh auth`.

use crate::app::{App, Event, Events, Options};
use crate::browser::Browser;
use crate::config::{ConfigSet, Inputs};
use crate::home::Home;
use crate::rpc::protocol::ServerStatus;
use crate::store::{StorageChoice, StorageMode, Store};
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::sync::Arc;

/// Writes a line to stdout; a closed pipe (`status | head -1`) is fine.
fn out_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

macro_rules! out {
    ($($arg:tt)*) => { out_line(&format!($($arg)*)) };
}
/// `--version`: `mcp-auth-sidecar 0.1.0 (protocol 1)`. The protocol number
/// is [`crate::rpc::protocol::PROTOCOL_VERSION`], for integrations that
/// check the binary without starting it.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (protocol ",
    crate::rpc::protocol::protocol_version!(),
    ")"
);

#[derive(Parser)]
#[command(
    name = "mcp-auth-sidecar",
    version = VERSION,
    about = "OAuth 2.1 for remote MCP servers, shared by every editor"
)]
struct Cli {
    /// Accepted and ignored: stdio is the only transport (language-client
    /// libraries add this flag).
    #[arg(long, global = true, hide = true)]
    stdio: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Speak the JSON-RPC protocol on stdin/stdout (the default).
    Serve,
    /// Show every configured or stored server and its authorization state.
    Status {
        /// Print JSON (the same objects as `mcp/authStatus`) instead of a table.
        #[arg(long)]
        json: bool,
        /// Probe servers whose state is unknown.
        #[arg(long)]
        probe: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Authorize a server: prints the URL, opens the browser, and also
    /// accepts the callback URL pasted on stdin (for SSH sessions).
    Login {
        /// A configured server name, or the server's URL.
        server: String,
        /// Scopes to request instead of the automatic choice.
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
        /// Authorize again even if the stored token is still good.
        #[arg(long)]
        force: bool,
        /// Do not open a browser; only print the URL.
        #[arg(long)]
        no_browser: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Sign out of a server: revoke its tokens at the authorization server
    /// (RFC 7009) and delete them here and in every running editor.
    Logout {
        /// A configured server name, or the server's URL.
        server: String,
        /// Only delete the local tokens; do not revoke them.
        #[arg(long)]
        no_revoke: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Internal: one keyring call in a process of its own (see
    /// `store::keyring`).
    #[command(name = "keyring-helper", hide = true)]
    KeyringHelper { account: String },
    /// Print a valid access token for a server (for scripts and header
    /// commands).
    Token {
        /// A configured server name, or the server's URL.
        server: String,
        /// Minimum remaining validity, in seconds.
        #[arg(long, default_value_t = 60)]
        min_validity: u64,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(clap::Args)]
struct Common {
    /// Storage mode: auto, keyring, file or memory.
    #[arg(long, default_value = "auto", value_parser = parse_storage)]
    storage: StorageChoice,
}

fn parse_storage(s: &str) -> Result<StorageChoice, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| "expected one of: auto, keyring, file, memory".to_owned())
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::KeyringHelper { account }) = &cli.command {
        return crate::store::keyring::helper_main(account);
    }
    // One thread does all the async work: the sidecar waits on I/O, never
    // computes for long, and a second worker thread would cost memory and
    // wake-ups for nothing. Blocking work (files, locks, the keyring
    // helper) runs on the blocking pool, whose idle threads retire.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcp-auth-sidecar: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            runtime.block_on(crate::rpc::serve());
            // The stdin reader may still be blocked in a read that will
            // never return (the editor kept stdin open); exiting the process
            // is the only way to honour "after `exit` the process ends at
            // once" (docs/protocol.md#transport-and-lifecycle).
            std::process::exit(0);
        }
        Command::Status {
            json,
            probe,
            common,
        } => runtime.block_on(status(json, probe, common)),
        Command::Login {
            server,
            scopes,
            force,
            no_browser,
            common,
        } => runtime.block_on(until_signal(login(
            server, scopes, force, no_browser, common,
        ))),
        Command::Logout {
            server,
            no_revoke,
            common,
        } => runtime.block_on(until_signal(logout(server, !no_revoke, common))),
        Command::Token {
            server,
            min_validity,
            common,
        } => runtime.block_on(until_signal(token(server, min_validity, common))),
        Command::KeyringHelper { .. } => ExitCode::FAILURE, // handled above
    };
    // A keyring call stuck behind an unlock prompt must not keep a finished
    // command alive: do not wait for blocking threads.
    runtime.shutdown_background();
    code
}

/// The `App` this command opened, for the drain when a signal ends it
/// (one command, one `App`, per process).
static OPENED: std::sync::OnceLock<Arc<App>> = std::sync::OnceLock::new();

/// Runs a command that may refresh, revoke or wait for a browser until it
/// ends or the OS asks the process to end (SIGTERM, SIGHUP, SIGINT; Ctrl-C,
/// Ctrl-Break, console close). Then the command stops where it is (a
/// browser flow is abandoned, its listener closed) but a refresh or logout
/// already begun finishes first, as in the protocol's `exit`.
async fn until_signal(command: impl Future<Output = ExitCode>) -> ExitCode {
    tokio::select! {
        code = command => code,
        signal = crate::signals::termination() => {
            if let Some(app) = OPENED.get() {
                app.drain(crate::rpc::DRAIN_BOUND).await;
            }
            fail(&format!("stopped by {signal}"))
        }
    }
}

/// Where the commands look for servers: the user's files, and the project
/// files of the current directory.
fn inputs(home: &Home) -> Inputs {
    Inputs {
        user_home: dirs::home_dir(),
        sidecar_home: Some(home.root().to_owned()),
        workspace_folders: std::env::current_dir().into_iter().collect(),
        discover: true,
        ..Inputs::default()
    }
}

/// The same `App` the protocol builds, configured from the user's files
/// with the current directory as the workspace.
async fn open_app(
    common: &Common,
    events: Option<Arc<Events>>,
    browser: Browser,
) -> Result<Arc<App>, String> {
    let home = Home::from_env().map_err(|e| e.to_string())?;
    let store = Store::open(&home, common.storage)
        .await
        .map_err(|e| e.to_string())?;
    let inputs = inputs(&home);
    let options = Options {
        opener: Arc::new(browser),
        ..Options::default()
    };
    let home = (store.mode() != StorageMode::Memory).then_some(home);
    let app = App::new(
        home,
        Arc::new(store),
        ConfigSet::load_off_runtime(inputs).await,
        events,
        options,
    )
    .await
    .map_err(|e| e.to_string())?;
    let _ = OPENED.set(app.clone());
    Ok(app)
}

async fn status(json: bool, probe: bool, common: Common) -> ExitCode {
    let app = match open_app(&common, None, Browser::None).await {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    if probe {
        app.probe_unknown(&app.server_names()).await;
    }
    let statuses: Vec<ServerStatus> = app.statuses(None).iter().map(ServerStatus::from).collect();
    if json {
        let out =
            serde_json::json!({ "servers": statuses, "configProblems": app.config_problems() });
        out_line(&serde_json::to_string_pretty(&out).unwrap_or_default());
    } else if statuses.is_empty() {
        out!(
            "No remote MCP servers configured (storage: {}).",
            app.storage_mode().as_str()
        );
        print_where_servers_come_from();
    } else {
        print_table(&statuses, app.storage_mode().as_str());
    }
    if !json {
        for problem in app.config_problems() {
            eprintln!("warning: {problem}");
        }
    }
    ExitCode::SUCCESS
}

async fn login(
    server: String,
    scopes: Option<Vec<String>>,
    force: bool,
    no_browser: bool,
    common: Common,
) -> ExitCode {
    let events = Arc::new(Events::default());
    let browser = if no_browser {
        Browser::None
    } else {
        Browser::System
    };
    let app = match open_app(&common, Some(events.clone()), browser).await {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    let name = match app.resolve(&server) {
        Ok(n) => n,
        Err(e) => return fail(&e.to_string()),
    };
    // Print the URL when the flow starts; accept pasted callback URLs.
    tokio::spawn(async move {
        loop {
            if let Event::AuthorizationPending { url, .. } = events.next().await {
                eprintln!("Open this URL in a browser to authorize:\n\n  {url}\n");
                eprintln!(
                    "If the browser is on another machine, paste the address it ends on here."
                );
            }
        }
    });
    let paste_app = app.clone();
    let paste_name = name.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Err(e) = paste_app.complete_authorization(&paste_name, line).await {
                eprintln!("That callback URL was not accepted: {e}");
            }
        }
    });
    match app.authorize(&name, scopes, force).await {
        Ok(status) => {
            let scopes = if status.scopes.is_empty() {
                String::new()
            } else {
                format!(" (scopes: {})", status.scopes.join(" "))
            };
            eprintln!("{name}: {}{scopes}", status.state.as_str());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// The app without a browser, and `server` resolved in it.
async fn open_resolved(common: &Common, server: &str) -> Result<(Arc<App>, String), String> {
    let app = open_app(common, None, Browser::None).await?;
    let name = app.resolve(server).map_err(|e| e.to_string())?;
    Ok((app, name))
}

async fn logout(server: String, revoke: bool, common: Common) -> ExitCode {
    let (app, name) = match open_resolved(&common, &server).await {
        Ok(found) => found,
        Err(message) => return fail(&message),
    };
    // Like the protocol's logout: once begun, it finishes even if a signal
    // ends the command (`until_signal` drains it).
    let critical = app.critical_section().await;
    let task_app = app.clone();
    let task_name = name.clone();
    let done = tokio::spawn(async move {
        let result = task_app.logout(&task_name, revoke).await;
        drop(critical);
        result
    })
    .await;
    let result = match done {
        Ok(result) => result,
        Err(e) => return fail(&format!("logout failed: {e}")),
    };
    match result {
        Ok(out) if !out.deleted => {
            eprintln!(
                "{name}: not signed in (no tokens stored in {} storage); nothing to do",
                app.storage_mode().as_str()
            );
            ExitCode::SUCCESS
        }
        Ok(out) => {
            let how = if out.revoked {
                "tokens revoked and deleted"
            } else if revoke {
                "tokens deleted; not revoked: the authorization server has no revocation endpoint or did not accept it"
            } else {
                "tokens deleted; not revoked (--no-revoke)"
            };
            eprintln!("{name}: signed out ({how})");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

async fn token(server: String, min_validity: u64, common: Common) -> ExitCode {
    let (app, name) = match open_resolved(&common, &server).await {
        Ok(found) => found,
        Err(message) => return fail(&message),
    };
    match app
        .fresh_token(&name, std::time::Duration::from_secs(min_validity))
        .await
    {
        Ok(t) => {
            out_line(t.token.expose());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("{e} (run `mcp-auth-sidecar login {server}`)")),
    }
}

/// For `status` with nothing configured: which files were looked at, what
/// editors add, and how to add a server.
fn print_where_servers_come_from() {
    let Ok(home) = Home::from_env() else { return };
    let files = ConfigSet::searched_files(&inputs(&home));
    let list = |project: bool| {
        for (path, _) in files.iter().filter(|(_, p)| *p == project) {
            let absent = if path.exists() { "" } else { " (absent)" };
            out!("  {}{absent}", path.display());
        }
    };
    out!("");
    out!("Servers come from these files, none of which lists one:");
    out!(" your files:");
    list(false);
    out!(" project files, in the current directory:");
    list(true);
    out!(
        "Editors also pass servers and files of their own (initializationOptions \
         `servers` and `configFiles`); those are not seen here."
    );
    out!("");
    out!(
        "To add a server, write it to {}:",
        home.root().join("servers.json").display()
    );
    out!(r#"  {{"mcpServers": {{"example": {{"url": "https://mcp.example.com/mcp"}}}}}}"#);
    out!("or use its URL directly: mcp-auth-sidecar login https://mcp.example.com/mcp");
}

fn print_table(statuses: &[ServerStatus], storage: &str) {
    let name_w = statuses
        .iter()
        .map(|s| s.server.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let state_w = statuses
        .iter()
        .map(|s| s.state.len())
        .max()
        .unwrap_or(0)
        .max(5);
    out!("{:<name_w$}  {:<state_w$}  DETAILS", "SERVER", "STATE");
    for s in statuses {
        let mut details = Vec::new();
        if let Some(at) = s.expires_at {
            details.push(format!("expires {}", describe_expiry(at)));
        }
        if !s.scopes.is_empty() {
            details.push(format!("scopes {}", s.scopes.join(" ")));
        }
        if let Some(m) = &s.message {
            details.push(m.clone());
        }
        if details.is_empty() {
            details.push(s.url.clone());
        }
        out!(
            "{:<name_w$}  {:<state_w$}  {}",
            s.server,
            s.state,
            details.join("; ")
        );
    }
    out!("(storage: {storage})");
}

fn describe_expiry(at_ms: i64) -> String {
    let delta = (at_ms - crate::status::now_ms()) / 1000;
    match delta {
        d if d < 0 => format!("{} ago", human(-d)),
        d => format!("in {}", human(d)),
    }
}

fn human(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}d", s / 86_400),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("mcp-auth-sidecar: {message}");
    ExitCode::FAILURE
}
