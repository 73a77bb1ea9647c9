//! The `LanguageServer` implementation: turns JSON-RPC requests into calls on
//! [`App`] and app events into notifications.

use super::errors::{invalid_params, to_rpc};
use super::protocol::{
    AccessTokenParams, AccessTokenResult, AuthStatusChanged, AuthStatusParams, AuthStatusResult,
    AuthorizationPending, AuthorizationPendingParams, AuthorizeParams, BrowserName, BrowserOption,
    CompleteAuthorizationParams, HandleChallengeParams, HandleChallengeResult,
    InitializationOptions, LogoutParams, LogoutResult, ServerStatus, parse_params,
};
use crate::app::{Action, App, Event, Events, Options};
use crate::browser::{Browser, Opener};
use crate::config::{ConfigSet, Inputs};
use crate::error::Error;
use crate::home::Home;
use crate::store::{StorageMode, Store};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// The longest browser flow an editor may ask for: a day. Bounds every
/// deadline derived from it (issue 8: 2^64 seconds overflowed one).
const MAX_AUTHORIZATION_TIMEOUT: u64 = 86_400;
/// `minValiditySeconds` beyond a year asks for no token anyone issues.
const MAX_MIN_VALIDITY_SECONDS: f64 = 366.0 * 86_400.0;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower_lsp_server::jsonrpc::{Error as RpcError, Result};
use tower_lsp_server::ls_types::{
    InitializeParams, InitializeResult, ServerCapabilities, ServerInfo, ShowDocumentParams, Uri,
};
use tower_lsp_server::{Client, LanguageServer};

pub struct Backend {
    client: Client,
    /// Shared with `rpc::serve`, which drains the app before the process
    /// ends (the backend itself is gone by then).
    app: Arc<OnceLock<Arc<App>>>,
    /// The dispatcher's budget of requests that wait on the network: a
    /// token request takes from it only when it must refresh.
    waiting: Arc<tokio::sync::Semaphore>,
}

/// Opens authorization URLs: through the editor (`window/showDocument`,
/// which also works when the editor's browser is on another machine) when
/// it supports that and `browser` is `auto`, else through [`Browser`].
struct EditorOpener {
    client: Client,
    show_document: bool,
    browser: Browser,
}

impl Opener for EditorOpener {
    fn open<'a>(&'a self, url: &'a str) -> BoxFuture<'a, std::result::Result<(), String>> {
        Box::pin(async move {
            if self.show_document {
                crate::urls::parse_secure(url).map_err(|e| e.to_string())?;
                let uri: Uri = url
                    .parse()
                    .map_err(|_| "the authorization URL is not a valid URI".to_owned())?;
                let params = ShowDocumentParams {
                    uri,
                    external: Some(true),
                    take_focus: None,
                    selection: None,
                };
                return match self.client.show_document(params).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err("the editor could not open the URL".into()),
                    Err(e) => Err(format!("window/showDocument failed: {}", e.message)),
                };
            }
            self.browser.open(url).await
        })
    }
}

fn rpc_err(e: Error) -> RpcError {
    to_rpc(&e)
}

impl Backend {
    pub fn new(
        client: Client,
        app: Arc<OnceLock<Arc<App>>>,
        waiting: Arc<tokio::sync::Semaphore>,
    ) -> Self {
        Self {
            client,
            app,
            waiting,
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
            Some(server) => Some(app.resolve(server).map_err(rpc_err)?),
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

    pub async fn authorize(&self, params: Value) -> Result<ServerStatus> {
        let params: AuthorizeParams = parse_params(params).map_err(invalid_params)?;
        let app = self.app()?;
        let name = app.resolve(&params.server).map_err(rpc_err)?;
        let status = app
            .authorize(&name, params.scopes, params.force.unwrap_or(false))
            .await
            .map_err(rpc_err)?;
        Ok(ServerStatus::from(&status))
    }

    pub async fn complete_authorization(&self, params: Value) -> Result<ServerStatus> {
        let params: CompleteAuthorizationParams = parse_params(params).map_err(invalid_params)?;
        let app = self.app()?;
        let name = app.resolve(&params.server).map_err(rpc_err)?;
        let status = app
            .complete_authorization(&name, &params.callback_url)
            .await
            .map_err(rpc_err)?;
        Ok(ServerStatus::from(&status))
    }

    pub async fn access_token(&self, params: Value) -> Result<AccessTokenResult> {
        let params: AccessTokenParams = parse_params(params).map_err(invalid_params)?;
        let app = self.app()?;
        let name = app.resolve(&params.server).map_err(rpc_err)?;
        let min = params.min_validity_seconds.unwrap_or(60.0);
        if !(0.0..=MAX_MIN_VALIDITY_SECONDS).contains(&min) {
            return Err(invalid_params(format!(
                "`minValiditySeconds`: must be a number from 0 to {MAX_MIN_VALIDITY_SECONDS}"
            )));
        }
        let min = Duration::from_secs_f64(min);
        // From memory whenever it can be
        // (docs/protocol.md#transport-and-lifecycle: never behind anything that
        // waits); only a refresh counts as waiting on the network.
        let token = match app.access_token(&name, min) {
            Ok(token) => token,
            Err(e) if !app.refreshable(&name) => return Err(rpc_err(e)),
            Err(_) => {
                let _permit = self
                    .waiting
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| super::errors::too_many_waiting())?;
                app.fresh_token(&name, min).await.map_err(rpc_err)?
            }
        };
        Ok(AccessTokenResult {
            server: name,
            access_token: token.token.expose().to_owned(),
            token_type: "Bearer",
            expires_at: token.expires_at,
            scopes: token.scopes,
        })
    }

    pub async fn handle_challenge(&self, params: Value) -> Result<HandleChallengeResult> {
        let params: HandleChallengeParams = parse_params(params).map_err(invalid_params)?;
        if !(100..=599).contains(&params.status) {
            return Err(invalid_params(
                "`status`: must be an HTTP status code (100 to 599)",
            ));
        }
        let app = self.app()?;
        let name = app.resolve(&params.server).map_err(rpc_err)?;
        let outcome = app
            .handle_challenge(&name, params.status, params.www_authenticate.as_deref())
            .await
            .map_err(rpc_err)?;
        Ok(HandleChallengeResult {
            action: match outcome.action {
                Action::Retry => "retry",
                Action::Authorize => "authorize",
                Action::Fail => "fail",
            },
            status: ServerStatus::from(&outcome.status),
            scopes: outcome.scopes,
        })
    }

    pub async fn logout(&self, params: Value) -> Result<LogoutResult> {
        let params: LogoutParams = parse_params(params).map_err(invalid_params)?;
        let app = self.app()?;
        let name = app.resolve(&params.server).map_err(rpc_err)?;
        // Revocation may already have happened when the request is
        // cancelled (or the editor shuts down): finish, so the local
        // deletion is never skipped (docs/protocol.md#mcplogout).
        let task_app = app.clone();
        let revoke = params.revoke.unwrap_or(true);
        let task_name = name.clone();
        let out = tokio::spawn(async move { task_app.logout(&task_name, revoke).await })
            .await
            .map_err(|e| {
                rpc_err(Error::StorageUnavailable(
                    std::io::Error::other(e.to_string()).into(),
                ))
            })?
            .map_err(rpc_err)?;
        Ok(LogoutResult {
            server: name,
            revoked: out.revoked,
            status: ServerStatus::from(&out.status),
        })
    }

    async fn start(&self, params: &InitializeParams) -> std::result::Result<Arc<App>, RpcError> {
        let options: InitializationOptions = match params.initialization_options.clone() {
            None | Some(Value::Null) => InitializationOptions::default(),
            Some(v) => parse_initialization_options(v).map_err(invalid_params)?,
        };
        if !options.unknown.is_empty() {
            let keys: Vec<&String> = options.unknown.keys().collect();
            tracing::warn!(?keys, "ignoring unknown initializationOptions");
        }
        let callback_host = options
            .callback_host
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into());
        if !crate::oauth::loopback::is_loopback_name(&callback_host) {
            return Err(invalid_params(format!(
                "initializationOptions: `callbackHost` is not a loopback host; it accepts {}",
                accepted_values("callbackHost").unwrap_or_default()
            )));
        }
        if let Some(t) = options.authorization_timeout
            && !(1..=MAX_AUTHORIZATION_TIMEOUT).contains(&t)
        {
            return Err(invalid_params(format!(
                "initializationOptions: `authorizationTimeout`: must be from 1 to {MAX_AUTHORIZATION_TIMEOUT} seconds"
            )));
        }
        let browser = match &options.browser {
            None | Some(BrowserOption::Named(BrowserName::Auto)) => Browser::System,
            Some(BrowserOption::Named(BrowserName::None)) => Browser::None,
            Some(BrowserOption::Command(argv)) if !argv.is_empty() => {
                Browser::Command(argv.clone())
            }
            Some(BrowserOption::Command(_)) => {
                return Err(invalid_params(
                    "initializationOptions: `browser`: the command is empty",
                ));
            }
        };
        let supports_show_document = params
            .capabilities
            .window
            .as_ref()
            .and_then(|w| w.show_document.as_ref())
            .is_some_and(|s| s.support);
        let auto = matches!(
            options.browser,
            None | Some(BrowserOption::Named(BrowserName::Auto))
        );

        let storage = options.storage.unwrap_or_default();
        let home = Home::from_env().map_err(|e| {
            rpc_err(Error::StorageUnavailable(
                std::io::Error::other(e.to_string()).into(),
            ))
        })?;
        let store = Store::open(&home, storage)
            .await
            .map_err(|e| rpc_err(Error::StorageUnavailable(e)))?;
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
        let config = ConfigSet::load_off_runtime(inputs).await;

        let events = Arc::new(Events::default());
        let client = self.client.clone();
        let queue = events.clone();
        tokio::spawn(async move {
            loop {
                match queue.next().await {
                    Event::Status(status) => {
                        client
                            .send_notification::<AuthStatusChanged>(ServerStatus::from(&status))
                            .await;
                    }
                    Event::AuthorizationPending { server, url } => {
                        client
                            .send_notification::<AuthorizationPending>(AuthorizationPendingParams {
                                server,
                                url,
                            })
                            .await;
                    }
                }
            }
        });
        let app_options = Options {
            callback_host,
            flow_timeout: Duration::from_secs(options.authorization_timeout.unwrap_or(300)),
            opener: Arc::new(EditorOpener {
                client: self.client.clone(),
                show_document: auto && supports_show_document,
                browser,
            }),
        };
        // A memory store shares nothing with other instances: no locks.
        let home = (store.mode() != StorageMode::Memory).then_some(home);
        let app = App::new(home, Arc::new(store), config, Some(events), app_options)
            .await
            .map_err(rpc_err)?;
        app.watch_store();
        Ok(app)
    }
}

/// What each `initializationOptions` field accepts
/// (docs/protocol.md#initialization-options), for errors
/// that name the field and what it takes — never the value, which may hold
/// a secret, and never a Rust type.
const OPTION_VALUES: [(&str, &str); 7] = [
    (
        "servers",
        "an object of server names to server entries ({\"url\": \"https://…\", …})",
    ),
    (
        "configFiles",
        "an array of absolute paths of MCP config files",
    ),
    ("discoverConfigFiles", "true or false"),
    ("storage", "\"auto\", \"keyring\", \"file\" or \"memory\""),
    (
        "browser",
        "\"auto\", \"none\", or a command as an array of strings ([\"firefox\", \"--new-window\"]; the URL is appended)",
    ),
    (
        "callbackHost",
        "a loopback host: \"127.0.0.1\", \"::1\" or \"localhost\"",
    ),
    (
        "authorizationTimeout",
        "a whole number of seconds from 1 to 86400",
    ),
];

fn accepted_values(field: &str) -> Option<&'static str> {
    OPTION_VALUES
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, accepted)| *accepted)
}

/// `initializationOptions`, with errors a person can act on: "`browser`
/// is not valid; it accepts …".
fn parse_initialization_options(v: Value) -> std::result::Result<InitializationOptions, String> {
    if !v.is_object() {
        let fields: Vec<&str> = OPTION_VALUES.iter().map(|(name, _)| *name).collect();
        return Err(format!(
            "initializationOptions: must be an object (or null) with any of the fields {}",
            fields.join(", ")
        ));
    }
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let field = path.split(['.', '[']).next().unwrap_or_default();
        match accepted_values(field) {
            Some(accepted) if path == field => {
                format!("initializationOptions: `{field}` is not valid; it accepts {accepted}")
            }
            Some(accepted) => format!(
                "initializationOptions: `{path}` is not valid; `{field}` accepts {accepted}"
            ),
            None => format!(
                "initializationOptions: {}",
                crate::config::describe_serde_error(&e)
            ),
        }
    })
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
                experimental: Some(
                    json!({ "mcpAuth": { "version": super::protocol::PROTOCOL_VERSION } }),
                ),
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
        // Let refreshes and logouts in flight finish before `exit`.
        if let Some(app) = self.app.get() {
            app.drain(super::DRAIN_BOUND).await;
        }
        Ok(())
    }
}
