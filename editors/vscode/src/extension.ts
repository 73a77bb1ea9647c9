// VS Code integration of mcp-auth-sidecar (README.md; docs/protocol.md#integrating-an-editor): starts the sidecar
// through the vscode-free SidecarClient, keeps a status cache for the
// status bar, registers the commands and returns the API (api.ts).

import * as os from 'node:os';
import * as vscode from 'vscode';
import type { AuthorizeOptions, GetAccessTokenOptions, McpAuthApi } from './api';
import { BrowserBridge } from './browser';
import { SidecarClient, SidecarError, type ClientState } from './client';
import { registerCommands } from './commands';
import { describeError } from './errors';
import {
  ClientErrorCodes,
  type BrowserOption,
  type HandleChallengeResult,
  type InitializeParams,
  type InitializationOptions,
  type ServerConfig,
  type ServerStatus,
} from './protocol';
import { MCP_PROVIDER_ID, registerMcpServerProvider } from './mcpProvider';
import { resolveSidecarHere, type SidecarResolution } from './sidecarPath';
import { StatusBar } from './statusBar';

export { describeError } from './errors';

/** SecretStorage key of a server's client secret: prefix + server name. */
export const SECRET_PREFIX = 'mcpAuth.clientSecret/';

export interface Settings {
  sidecarPath: string;
  servers: Record<string, ServerConfig>;
  storage: 'auto' | 'keyring' | 'file' | 'memory';
  browser: BrowserOption;
  callbackHost: string;
  discoverConfigFiles: boolean;
  configFiles: string[];
  logLevel: string;
}

export function readSettings(): Settings {
  const c = vscode.workspace.getConfiguration('mcpAuth');
  return {
    // Empty (the default): the bundled binary, else PATH (sidecarPath.ts).
    sidecarPath: c.get<string>('sidecarPath', '') ?? '',
    servers: c.get<Record<string, ServerConfig>>('servers', {}) ?? {},
    storage: c.get<Settings['storage']>('storage', 'auto'),
    browser: c.get<BrowserOption>('browser', 'auto'),
    callbackHost: c.get<string>('callbackHost', '127.0.0.1'),
    discoverConfigFiles: c.get<boolean>('discoverConfigFiles', true),
    configFiles: c.get<string[]>('configFiles', []) ?? [],
    logLevel: c.get<string>('logLevel', 'info') || 'info',
  };
}

/** The extension's state: one sidecar, the status cache, the UI hooks. */
export class McpAuthExtension implements vscode.Disposable {
  readonly output: vscode.LogOutputChannel;
  readonly client: SidecarClient;
  readonly browser: BrowserBridge;
  /** Last known status per server (from notifications and results). */
  readonly statuses = new Map<string, ServerStatus>();
  /** True once `statuses` holds a full mcp/authStatus answer of the running sidecar. */
  statusesLoaded = false;
  /** Authorization URL of the flow in progress, per server. */
  readonly pending = new Map<string, string>();
  /** Authorizations started from this window, to join and to cancel. */
  private readonly flows = new Map<string, { promise: Promise<ServerStatus>; abort: AbortController }>();
  private readonly statusEmitter = new vscode.EventEmitter<ServerStatus>();
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  /** A server's status changed (API: onDidChangeStatus). */
  readonly onDidChangeStatus: vscode.Event<ServerStatus> = this.statusEmitter.event;
  /** Anything the status bar shows changed. */
  readonly onDidChange: vscode.Event<void> = this.changeEmitter.event;
  private settings: Settings;
  private readonly disposables: vscode.Disposable[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  private lastFailureShown: string | undefined;
  private disposed = false;
  private outputClosed = false;
  /** Client secrets from SecretStorage, by server name (read before each start). */
  private clientSecrets = new Map<string, string>();
  private warnedSecretsInSettings = '';

  constructor(
    private readonly version: string,
    /** The extension's folder: a platform-specific VSIX has the binary under bin/. */
    private readonly extensionPath: string,
    /** Where client secrets live (context.secrets), instead of settings.json. */
    private readonly secrets?: vscode.SecretStorage,
  ) {
    this.output = vscode.window.createOutputChannel('MCP Auth', { log: true });
    this.settings = readSettings();
    this.browser = new BrowserBridge({
      log: (m) => this.log(m),
      browserSetting: () => this.settings.browser,
      setPending: (server, url) => {
        this.pending.set(server, url);
        this.changeEmitter.fire();
      },
    });
    this.client = new SidecarClient({
      command: this.sidecarCommand(),
      env: this.sidecarEnv(),
      initializeParams: () => this.initializeParams(),
      onShowDocument: (params) => this.browser.showDocument(params),
      log: (m) => this.log(m),
      onStderr: (line) => this.sidecarLine(line),
    });
    this.disposables.push(
      this.client.onDidChangeStatus((s) => this.applyStatus(s)),
      this.client.onAuthorizationPending((p) => void this.browser.authorizationPending(p)),
      this.client.onDidChangeState((e) => this.onClientState(e.state, e.error)),
      this.client.onDidRestart(() => {
        this.log('the sidecar was restarted');
        void this.refresh().catch(() => undefined);
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('mcpAuth')) this.scheduleRestart('settings changed');
      }),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.scheduleRestart('workspace folders changed')),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.scheduleRestart('workspace trusted')),
    );
    if (secrets) {
      this.disposables.push(
        secrets.onDidChange((e) => {
          if (e.key.startsWith(SECRET_PREFIX)) this.scheduleRestart('a client secret changed');
        }),
      );
    }
  }

  log(message: string, level: 'info' | 'warn' | 'error' = 'info'): void {
    // The sidecar may still write while it shuts down after dispose().
    if (!this.outputClosed) this.output[level](message);
  }

  /** A line of the sidecar's stderr (its tracing log), at the level it names. */
  private sidecarLine(line: string): void {
    if (this.outputClosed) return;
    const level = /^\S*\s*(TRACE|DEBUG|INFO|WARN|ERROR)\b/.exec(line)?.[1];
    const text = `[sidecar] ${line}`;
    if (level === 'ERROR') this.output.error(text);
    else if (level === 'WARN') this.output.warn(text);
    else if (level === 'DEBUG') this.output.debug(text);
    else if (level === 'TRACE') this.output.trace(text);
    else this.output.info(text);
  }

  /** The names of the servers in the `mcpAuth.servers` setting (those a client secret can be set for). */
  settingsServers(): string[] {
    return Object.keys(this.settings.servers);
  }

  /** Stores (or, with an empty value, deletes) a server's client secret; the sidecar restarts with it. */
  async setClientSecret(server: string, secret: string | undefined): Promise<void> {
    if (!this.secrets) throw new Error('no SecretStorage in this VS Code');
    if (secret) await this.secrets.store(SECRET_PREFIX + server, secret);
    else await this.secrets.delete(SECRET_PREFIX + server);
    this.log(`client secret for ${server} ${secret ? 'stored in VS Code\'s secret storage' : 'deleted'}`);
  }

  /** Reads the client secrets of the configured servers from SecretStorage. */
  private async loadSecrets(): Promise<void> {
    const found = new Map<string, string>();
    if (this.secrets) {
      for (const name of this.settingsServers()) {
        try {
          const value = await this.secrets.get(SECRET_PREFIX + name);
          if (value) found.set(name, value);
        } catch (e) {
          this.log(`could not read the client secret of ${name}: ${describeError(e)}`, 'warn');
        }
      }
    }
    this.clientSecrets = found;
    // settings.json is synced by Settings Sync: say so, without the value.
    const inSettings = Object.entries(this.settings.servers)
      .filter(([, c]) => typeof c?.clientSecret === 'string' && c.clientSecret !== '')
      .map(([name]) => name);
    const key = inSettings.join(',');
    if (inSettings.length && key !== this.warnedSecretsInSettings) {
      this.warnedSecretsInSettings = key;
      const text =
        `MCP Auth: a client secret in settings (mcpAuth.servers: ${inSettings.join(', ')}) is deprecated: settings.json is uploaded by Settings Sync. ` +
        'Run “MCP Auth: Set Client Secret…” to keep it in VS Code\'s secret storage, then remove clientSecret from the setting.';
      this.log(text, 'warn');
      void vscode.window.showWarningMessage(text, 'Set Client Secret…').then((choice) => {
        if (choice) void vscode.commands.executeCommand('mcpAuth.setClientSecret', inSettings[0]);
      });
    }
  }

  /** The executable to start: mcpAuth.sidecarPath when set, else the bundled binary, else PATH. */
  private sidecarCommand(): string {
    const r: SidecarResolution = resolveSidecarHere(this.settings.sidecarPath, this.extensionPath, os.homedir());
    const from = { setting: 'mcpAuth.sidecarPath', bundled: 'bundled with the extension', PATH: 'on PATH', none: 'not found' }[r.source];
    this.log(`sidecar: ${r.command} (${from})`);
    return r.command;
  }

  private sidecarEnv(): NodeJS.ProcessEnv {
    return { ...process.env, MCP_AUTH_SIDECAR_LOG: this.settings.logLevel };
  }

  initializationOptions(): InitializationOptions {
    const s = this.settings;
    // A secret from SecretStorage wins over a (deprecated) one in settings.
    const servers: Record<string, ServerConfig> = {};
    for (const [name, config] of Object.entries(s.servers)) {
      const secret = this.clientSecrets.get(name);
      servers[name] = secret ? { ...config, clientSecret: secret } : config;
    }
    return {
      servers,
      configFiles: s.configFiles,
      discoverConfigFiles: s.discoverConfigFiles,
      storage: s.storage,
      browser: s.browser,
      callbackHost: s.callbackHost,
    };
  }

  initializeParams(): InitializeParams {
    // Project config files (.vscode/mcp.json, .mcp.json, …) are read from
    // the workspace folders on disk, and only in a trusted workspace.
    const folders = vscode.workspace.isTrusted
      ? (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file')
      : [];
    return {
      processId: process.pid,
      clientInfo: { name: `${vscode.env.appName} (mcp-auth-sidecar extension ${this.version})`, version: vscode.version },
      rootUri: folders[0]?.uri.toString() ?? null,
      workspaceFolders: folders.length ? folders.map((f) => ({ uri: f.uri.toString(), name: f.name })) : null,
      capabilities: {}, // window.showDocument is added by the client (onShowDocument)
      initializationOptions: this.initializationOptions(),
    };
  }

  /** Starts the sidecar and loads the statuses; failures are shown, not thrown. */
  async start(): Promise<void> {
    try {
      await this.loadSecrets();
      await this.client.start();
      await this.refresh();
    } catch (e) {
      this.log(`could not start the sidecar: ${describeError(e)}`);
    }
  }

  private reloadSettings(): void {
    this.settings = readSettings();
    // A new executable or log level needs a new process.
    this.client.setLaunch({ command: this.sidecarCommand(), env: this.sidecarEnv() });
  }

  /** Makes sure the sidecar runs (a command after a failure tries again). */
  async ensureStarted(): Promise<void> {
    if (this.disposed) throw new SidecarError('start', ClientErrorCodes.NotRunning, 'the extension is shutting down', undefined, true);
    if (this.client.state === 'failed' || this.client.state === 'stopped') {
      this.reloadSettings();
      await this.loadSecrets();
      await this.client.start();
      await this.refresh().catch(() => undefined);
    }
  }

  private scheduleRestart(why: string): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => void this.restart(why), 300);
  }

  /** Restarts with the current settings (the sidecar reads them only at initialize). */
  async restart(why: string): Promise<void> {
    if (this.disposed) return;
    this.log(`restarting the sidecar: ${why}`);
    this.reloadSettings();
    this.lastFailureShown = undefined;
    for (const f of this.flows.values()) f.abort.abort();
    await this.client.stop();
    this.statusesLoaded = false;
    this.statuses.clear();
    this.pending.clear();
    this.changeEmitter.fire();
    await this.start();
  }

  private onClientState(state: ClientState, error?: Error): void {
    this.changeEmitter.fire();
    if (state === 'failed' && error && !this.disposed) {
      const text = describeError(error);
      if (text === this.lastFailureShown) return;
      this.lastFailureShown = text;
      void vscode.window
        .showErrorMessage(`MCP Auth: mcp-auth-sidecar is not running. ${text}`, 'Open Settings', 'Show Log')
        .then((choice) => {
          if (choice === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'mcpAuth.sidecarPath');
          else if (choice === 'Show Log') this.output.show(true);
        });
    } else if (state === 'running') {
      this.lastFailureShown = undefined;
    }
  }

  /** Records a status; fires onDidChangeStatus when it differs from the cached one. */
  applyStatus(status: ServerStatus): void {
    const before = this.statuses.get(status.server);
    this.statuses.set(status.server, status);
    if (status.state !== 'authorizing') this.pending.delete(status.server);
    if (JSON.stringify(before) !== JSON.stringify(status)) {
      this.statusEmitter.fire(status);
    }
    this.changeEmitter.fire();
  }

  /** Reloads all statuses (`probe` asks servers in state unknown). */
  async refresh(probe = false): Promise<ServerStatus[]> {
    const result = await this.client.authStatus(probe ? { probe: true } : {});
    const seen = new Set(result.servers.map((s) => s.server));
    for (const name of [...this.statuses.keys()]) if (!seen.has(name)) this.statuses.delete(name);
    this.statusesLoaded = true;
    for (const s of result.servers) this.applyStatus(s);
    for (const problem of result.configProblems ?? []) this.log(`configuration problem: ${problem}`);
    this.changeEmitter.fire();
    return result.servers;
  }

  /** A flow started from this window for `server`, if any. */
  flow(server: string): { promise: Promise<ServerStatus>; abort: AbortController } | undefined {
    return this.flows.get(server);
  }

  /**
   * The interactive sign-in with a cancellable progress notification
   * (cancel → `$/cancelRequest`). Joins this window's flow for the same server.
   */
  authorize(server: string, options: AuthorizeOptions = {}): Promise<ServerStatus> {
    const running = this.flows.get(server);
    if (running) return running.promise;
    const abort = new AbortController();
    const promise = (async () => {
      await this.ensureStarted();
      return vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `MCP Auth: signing in to ${server}`, cancellable: true },
        async (progress, token) => {
          const sub = token.onCancellationRequested(() => abort.abort());
          progress.report({
            message: 'waiting for the browser… If it cannot reach this machine, run “MCP Auth: Paste Callback URL…”.',
          });
          try {
            const status = await this.client.authorize({ server, ...options }, { signal: abort.signal });
            this.applyStatus(status);
            return status;
          } finally {
            sub.dispose();
          }
        },
      );
    })();
    const entry = { promise, abort };
    this.flows.set(server, entry);
    const cleanup = () => {
      if (this.flows.get(server) === entry) this.flows.delete(server);
      this.pending.delete(server);
      this.changeEmitter.fire();
    };
    promise.then(cleanup, cleanup);
    return promise;
  }

  /** Cancels this window's sign-in for `server` (the sidecar answers -32800). */
  cancelAuthorization(server: string): boolean {
    const running = this.flows.get(server);
    running?.abort.abort();
    return !!running;
  }

  async completeAuthorization(server: string, callbackUrl: string): Promise<ServerStatus> {
    await this.ensureStarted();
    const status = await this.client.completeAuthorization({ server, callbackUrl: callbackUrl.trim() });
    this.applyStatus(status);
    return status;
  }

  async signOut(server: string, revoke = true): Promise<{ revoked: boolean; status: ServerStatus }> {
    await this.ensureStarted();
    // The sidecar finishes a pending sign-in before it logs out; do not
    // make the user wait for a browser they gave up on.
    if (this.cancelAuthorization(server)) {
      await this.flows.get(server)?.promise.catch(() => undefined);
    }
    const result = await this.client.logout({ server, revoke });
    this.applyStatus(result.status);
    return result;
  }

  async accessToken(server: string, options: GetAccessTokenOptions = {}): Promise<string> {
    await this.ensureStarted();
    try {
      const result = await this.client.accessToken({ server, ...options });
      return result.accessToken;
    } catch (e) {
      if (e instanceof SidecarError && e.status) this.applyStatus(e.status);
      throw e;
    }
  }

  async handleChallenge(server: string, status: number, wwwAuthenticate?: string): Promise<HandleChallengeResult> {
    await this.ensureStarted();
    const result = await this.client.handleChallenge(
      wwwAuthenticate === undefined ? { server, status } : { server, status, wwwAuthenticate },
    );
    this.applyStatus(result.status);
    return result;
  }

  async stop(): Promise<void> {
    clearTimeout(this.restartTimer);
    for (const f of this.flows.values()) f.abort.abort();
    await this.client.stop();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    void this.stop().finally(() => void this.client.dispose());
    for (const d of this.disposables) d.dispose();
    this.statusEmitter.dispose();
    this.changeEmitter.dispose();
    this.outputClosed = true;
    this.output.dispose();
  }
}

export function createApi(ext: McpAuthExtension, mcpProvider: boolean): McpAuthApi {
  return {
    apiVersion: 1,
    mcpServerDefinitionProvider: mcpProvider ? MCP_PROVIDER_ID : undefined,
    getAccessToken: (server, options) => ext.accessToken(server, options),
    onDidChangeStatus: ext.onDidChangeStatus,
    getStatus: async (server) => {
      await ext.ensureStarted();
      const result = await ext.client.authStatus(server === undefined ? {} : { server });
      return result.servers;
    },
    authorize: (server, options) => ext.authorize(server, options),
    handleChallenge: (server, status, wwwAuthenticate) => ext.handleChallenge(server, status, wwwAuthenticate),
  };
}

let current: McpAuthExtension | undefined;

export function activate(context: vscode.ExtensionContext): McpAuthApi {
  const version = (context.extension?.packageJSON as { version?: string } | undefined)?.version ?? '0';
  const ext = new McpAuthExtension(version, context.extensionPath, context.secrets);
  current = ext;
  context.subscriptions.push(ext, new StatusBar(ext), ...registerCommands(ext));
  const mcp = registerMcpServerProvider(ext);
  context.subscriptions.push(...mcp.disposables);
  void ext.start();
  return createApi(ext, mcp.registered);
}

export async function deactivate(): Promise<void> {
  const ext = current;
  current = undefined;
  await ext?.stop();
}
