//! mcp-auth-sidecar: OAuth 2.1 for remote MCP servers, for every editor.
//! See ARCHITECTURE.md for the map.

pub mod app;
pub mod browser;
pub mod cli;
pub mod config;
pub mod error;
pub mod home;
pub mod http;
pub mod lock;
pub mod logging;
pub mod oauth;
pub mod probe;
pub mod rpc;
pub mod secret;
pub mod signals;
pub mod status;
pub mod store;
pub mod tls;
pub mod urls;
