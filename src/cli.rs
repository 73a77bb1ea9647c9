//! The command line (SPEC §8): `serve` (the default) speaks the protocol;
//! the rest are for terminals and scripts, in the spirit of `gh auth`.

use crate::app::App;
use crate::config::{ConfigSet, Inputs};
use crate::home::Home;
use crate::rpc::protocol::ServerStatus;
use crate::store::{StorageChoice, Store};
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "mcp-auth-sidecar",
    version,
    about = "OAuth 2.1 for remote MCP servers, shared by every editor"
)]
struct Cli {
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
        /// Storage mode: auto, keyring, file or memory.
        #[arg(long, default_value = "auto", value_parser = parse_storage)]
        storage: StorageChoice,
    },
}

fn parse_storage(s: &str) -> Result<StorageChoice, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| "expected one of: auto, keyring, file, memory".to_owned())
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
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
            // once" (SPEC §3.1).
            std::process::exit(0);
        }
        Command::Status {
            json,
            probe,
            storage,
        } => runtime.block_on(status(json, probe, storage)),
    };
    // A keyring call stuck behind an unlock prompt must not keep a finished
    // command alive: do not wait for blocking threads.
    runtime.shutdown_background();
    code
}

async fn status(json: bool, probe: bool, storage: StorageChoice) -> ExitCode {
    let home = match Home::from_env() {
        Ok(h) => h,
        Err(e) => return fail(&e.to_string()),
    };
    let store = match Store::open(&home, storage).await {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let inputs = Inputs {
        user_home: dirs::home_dir(),
        sidecar_home: Some(home.root().to_owned()),
        workspace_folders: std::env::current_dir().into_iter().collect(),
        discover: true,
        ..Inputs::default()
    };
    let app = match App::new(Arc::new(store), ConfigSet::load(&inputs), None).await {
        Ok(a) => a,
        Err(e) => return fail(&e.to_string()),
    };
    if probe {
        app.probe_unknown(&app.server_names()).await;
    }
    let statuses: Vec<ServerStatus> = app.statuses(None).iter().map(ServerStatus::from).collect();
    if json {
        let out =
            serde_json::json!({ "servers": statuses, "configProblems": app.config_problems() });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print_table(&statuses, app.storage_mode().as_str());
        for problem in app.config_problems() {
            eprintln!("warning: {problem}");
        }
    }
    ExitCode::SUCCESS
}

fn print_table(statuses: &[ServerStatus], storage: &str) {
    if statuses.is_empty() {
        println!("No remote MCP servers configured (storage: {storage}).");
        return;
    }
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
    println!("{:<name_w$}  {:<state_w$}  DETAILS", "SERVER", "STATE");
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
        println!(
            "{:<name_w$}  {:<state_w$}  {}",
            s.server,
            s.state,
            details.join("; ")
        );
    }
    println!("(storage: {storage})");
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
