//! The `LanguageServer` implementation: turns JSON-RPC requests into calls on
//! [`App`] and status changes into notifications.

use super::errors::{invalid_params, to_rpc};
use super::protocol::{
    AuthStatusChanged, AuthStatusParams, AuthStatusResult, InitializationOptions, ServerStatus,
    parse_params,
};
use crate::app::App;
use crate::config::{ConfigSet, Inputs};
use crate::error::Error;
use crate::home::Home;
use crate::store::Store;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tower_lsp_server::jsonrpc::{Error as RpcError, Result};
use tower_lsp_server::ls_types::{
    InitializeParams, InitializeResult, ServerCapabilities, ServerInfo,
};
use tower_lsp_server::{Client, LanguageServer};

pub struct Backend {
    client: Client,
    app: OnceLock<Arc<App>>,
    /// Editor facts later flows need (SPEC §3.1).
    session: OnceLock<Session>,
}

/// What `initialize` told us about the editor.
#[derive(Debug)]
#[allow(
    dead_code,
    reason = "read by the authorization flow (browser, callback host)"
)]
pub struct Session {
    pub show_document: bool,
    pub options: InitializationOptions,
}

impl Backend {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            app: OnceLock::new(),
            session: OnceLock::new(),
        }
    }

    fn app(&self) -> Result<&Arc<App>> {
        // tower-lsp-server rejects requests before `initialize` with -32002;
        // this only guards the window of a failed `initialize`.
        self.app.get().ok_or_else(|| RpcError {
            code: tower_lsp_server::jsonrpc::ErrorCode::ServerError(-32002),
            message: "the sidecar is not initialized".into(),
            data: None,
        })
    }

    pub async fn auth_status(&self, params: Value) -> Result<AuthStatusResult> {
        let params: AuthStatusParams = parse_params(params).map_err(invalid_params)?;
        let app = self.app()?;
        let only = match &params.server {
            Some(server) => Some(app.resolve(server).map_err(|e| to_rpc(&e))?),
            None => None,
        };
        if params.probe == Some(true) {
            let names = match &only {
                Some(name) => vec![name.clone()],
                None => app.server_names(),
            };
            app.probe_unknown(&names).await;
        }
        Ok(AuthStatusResult {
            servers: app
                .statuses(only.as_deref())
                .iter()
                .map(ServerStatus::from)
                .collect(),
            config_problems: app.config_problems(),
        })
    }

    async fn start(&self, params: &InitializeParams) -> std::result::Result<Arc<App>, RpcError> {
        let options: InitializationOptions = match params.initialization_options.clone() {
            None | Some(Value::Null) => InitializationOptions::default(),
            Some(v) => parse_params(v)
                .map_err(|e| invalid_params(format!("initializationOptions: {e}")))?,
        };
        if !options.unknown.is_empty() {
            let keys: Vec<&String> = options.unknown.keys().collect();
            tracing::warn!(?keys, "ignoring unknown initializationOptions");
        }
        let storage = options.storage.unwrap_or_default();
        let home = Home::from_env().map_err(|e| {
            to_rpc(&Error::StorageUnavailable(
                std::io::Error::other(e.to_string()).into(),
            ))
        })?;
        let store = Store::open(&home, storage)
            .await
            .map_err(|e| to_rpc(&Error::StorageUnavailable(e)))?;
        tracing::info!(storage = store.mode().as_str(), "store opened");

        let inputs = Inputs {
            user_home: dirs::home_dir(),
            sidecar_home: Some(home.root().to_owned()),
            workspace_folders: workspace_folders(params),
            discover: options.discover_config_files.unwrap_or(true),
            extra_files: options
                .config_files
                .iter()
                .flatten()
                .map(PathBuf::from)
                .collect(),
            inline: options.servers.clone().unwrap_or_default(),
        };
        let config = ConfigSet::load(&inputs);

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let client = self.client.clone();
        tokio::spawn(async move {
            while let Some(status) = rx.recv().await {
                client
                    .send_notification::<AuthStatusChanged>(ServerStatus::from(&status))
                    .await;
            }
        });
        let app = App::new(Arc::new(store), config, Some(tx))
            .await
            .map_err(|e| to_rpc(&e))?;

        let show_document = params
            .capabilities
            .window
            .as_ref()
            .and_then(|w| w.show_document.as_ref())
            .is_some_and(|s| s.support);
        let _ = self.session.set(Session {
            show_document,
            options,
        });
        Ok(app)
    }
}

/// Workspace folders, else the deprecated `rootUri`, as local paths.
#[allow(deprecated)]
fn workspace_folders(params: &InitializeParams) -> Vec<PathBuf> {
    let uris: Vec<String> = match &params.workspace_folders {
        Some(folders) if !folders.is_empty() => folders.iter().map(|f| f.uri.to_string()).collect(),
        _ => params.root_uri.iter().map(|u| u.to_string()).collect(),
    };
    uris.iter()
        .filter_map(|u| url::Url::parse(u).ok()?.to_file_path().ok())
        .collect()
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        if let Some(info) = &params.client_info {
            tracing::info!(client = %info.name, version = ?info.version, "initialize");
        }
        let app = self.start(&params).await?;
        let _ = self.app.set(app);
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                experimental: Some(json!({ "mcpAuth": { "version": 1 } })),
                ..ServerCapabilities::default()
            },
            server_info: Some(ServerInfo {
                name: "mcp-auth-sidecar".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            ..InitializeResult::default()
        })
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }
}
