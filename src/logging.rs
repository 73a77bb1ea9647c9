//! Logs go to stderr only (stdout is the protocol), filtered by
//! `MCP_AUTH_SIDECAR_LOG` (docs/protocol.md#logging).
//!
//! Dependencies log raw traffic at debug/trace level: tower-lsp-server every
//! JSON-RPC message (tokens, client secrets), hyper and zbus their payloads.
//! Whatever the filter says, targets outside this crate are capped at INFO,
//! so no level setting can print a secret.

use tracing::Metadata;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::prelude::*;

pub const LOG_ENV: &str = "MCP_AUTH_SIDECAR_LOG";

fn allowed(meta: &Metadata<'_>) -> bool {
    meta.target().starts_with("mcp_auth_sidecar") || *meta.level() <= tracing::Level::INFO
}

pub fn init() {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .with_env_var(LOG_ENV)
        .from_env_lossy();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(filter)
        .with_filter(filter_fn(allowed));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}
