// Offers the servers the sidecar knows to VS Code's own MCP client (Copilot
// agent mode) through `vscode.lm.registerMcpServerDefinitionProvider`
// (VS Code >= 1.101) and, when VS Code starts one, resolves it with an
// `Authorization` header from the sidecar: VS Code's agent then shares the
// sign-in and the refresh with every other editor and CLI instead of running
// its own OAuth.
//
// @types/vscode stays at 1.90 (engines ^1.90, and vsce refuses types newer
// than the engine), so the API is typed here and feature-detected: on older
// hosts nothing is registered (docs/DECISIONS.md).

import * as vscode from 'vscode';
import { SidecarError } from './client';
import { describeError } from './errors';
import type { McpAuthExtension } from './extension';
import { ErrorCodes, type ServerStatus } from './protocol';

/** The provider id, also in package.json `contributes.mcpServerDefinitionProviders`. */
export const MCP_PROVIDER_ID = 'mcpAuth.servers';

/** `vscode.McpHttpServerDefinition` (1.101). */
export interface McpHttpServerDefinition {
  label: string;
  uri: vscode.Uri;
  headers: Record<string, string>;
  version?: string;
}
type McpHttpServerDefinitionCtor = new (
  label: string,
  uri: vscode.Uri,
  headers?: Record<string, string>,
  version?: string,
) => McpHttpServerDefinition;

/** `vscode.McpServerDefinitionProvider<McpHttpServerDefinition>` (1.101). */
export interface McpServerDefinitionProvider {
  readonly onDidChangeMcpServerDefinitions?: vscode.Event<void>;
  provideMcpServerDefinitions(token: vscode.CancellationToken): Promise<McpHttpServerDefinition[]>;
  resolveMcpServerDefinition(server: McpHttpServerDefinition, token: vscode.CancellationToken): Promise<McpHttpServerDefinition>;
}

interface McpApi {
  lm?: {
    registerMcpServerDefinitionProvider?: (id: string, provider: McpServerDefinitionProvider) => vscode.Disposable;
  };
  McpHttpServerDefinition?: McpHttpServerDefinitionCtor;
}

/** http(s) servers only: the MCP client connects to them by URL. */
function offered(s: ServerStatus): boolean {
  return /^https?:\/\//i.test(s.url);
}

/** The set VS Code is offered, as a comparable key (name and URL of each). */
function setKey(statuses: Iterable<ServerStatus>): string {
  return JSON.stringify(
    [...statuses]
      .filter(offered)
      .map((s) => [s.server, s.url])
      .sort(),
  );
}

export class McpServerProvider implements McpServerDefinitionProvider, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChangeMcpServerDefinitions: vscode.Event<void> = this.emitter.event;
  private readonly subscription: vscode.Disposable;
  private lastKey: string | undefined;

  constructor(
    private readonly ext: McpAuthExtension,
    private readonly Definition: McpHttpServerDefinitionCtor,
  ) {
    // authStatusChanged and every refresh land in ext.statuses; tell VS Code
    // when the set of servers (not merely a state) changed.
    this.subscription = ext.onDidChange(() => {
      // Not while (re)starting: the cache is empty until the first answer.
      if (!ext.statusesLoaded || ext.client.state !== 'running') return;
      const key = setKey(ext.statuses.values());
      if (this.lastKey !== undefined && key !== this.lastKey) {
        this.lastKey = key;
        ext.log(`MCP server definitions changed; telling VS Code`);
        this.emitter.fire();
      }
    });
  }

  async provideMcpServerDefinitions(_token: vscode.CancellationToken): Promise<McpHttpServerDefinition[]> {
    let statuses: ServerStatus[];
    try {
      await this.ext.ensureStarted();
      statuses = await this.ext.refresh();
    } catch (e) {
      this.ext.log(`MCP server definitions: the sidecar did not answer: ${describeError(e)}`);
      statuses = [...this.ext.statuses.values()];
    }
    this.lastKey = setKey(statuses);
    return statuses.filter(offered).map((s) => new this.Definition(s.server, vscode.Uri.parse(s.url), {}));
  }

  /**
   * Called by VS Code before it connects: a fresh access token (refreshed by
   * the sidecar when needed; the browser sign-in first when there is none).
   */
  async resolveMcpServerDefinition(
    server: McpHttpServerDefinition,
    token: vscode.CancellationToken,
  ): Promise<McpHttpServerDefinition> {
    const name = server.label;
    const cancelled = () => new Error(`MCP Auth: connecting to ${name} was cancelled`);
    const onCancel = token.onCancellationRequested(() => this.ext.cancelAuthorization(name));
    try {
      if (token.isCancellationRequested) throw cancelled();
      await this.ext.ensureStarted();
      if (this.ext.statuses.get(name)?.state === 'not_required') return server;
      let accessToken: string;
      try {
        accessToken = await this.ext.accessToken(name);
      } catch (e) {
        if (!(e instanceof SidecarError && e.code === ErrorCodes.AuthorizationRequired)) throw e;
        if (token.isCancellationRequested) throw cancelled();
        this.ext.log(`${name}: VS Code's MCP client is connecting and no token is held; signing in`);
        await this.ext.authorize(name, e.status?.state === 'step_up_required' ? { force: true } : {});
        if (token.isCancellationRequested) throw cancelled();
        accessToken = await this.ext.accessToken(name);
      }
      if (token.isCancellationRequested) throw cancelled();
      server.headers = { ...server.headers, Authorization: `Bearer ${accessToken}` };
      this.ext.log(`${name}: gave VS Code's MCP client an access token`);
      return server;
    } catch (e) {
      if (token.isCancellationRequested || (e instanceof SidecarError && e.isCancelled)) {
        const err = cancelled();
        this.ext.log(err.message);
        throw err;
      }
      const err = new Error(`MCP Auth: no access token for ${name}: ${describeError(e)}`);
      this.ext.log(err.message);
      throw err;
    } finally {
      onCancel.dispose();
    }
  }

  dispose(): void {
    this.subscription.dispose();
    this.emitter.dispose();
  }
}

/**
 * Registers the provider when the host has the API (VS Code >= 1.101).
 * Returns its disposables, or none on an older host.
 */
export function registerMcpServerProvider(ext: McpAuthExtension): { registered: boolean; disposables: vscode.Disposable[] } {
  const api = vscode as unknown as McpApi;
  const register = api.lm?.registerMcpServerDefinitionProvider;
  const Definition = api.McpHttpServerDefinition;
  if (typeof register !== 'function' || typeof Definition !== 'function') {
    ext.log(`VS Code ${vscode.version} has no MCP server definition provider API (1.101+): not offering servers to its MCP client`);
    return { registered: false, disposables: [] };
  }
  const provider = new McpServerProvider(ext, Definition);
  const registration = register.call(api.lm, MCP_PROVIDER_ID, provider);
  ext.log(`offering the configured servers to VS Code's MCP client (provider ${MCP_PROVIDER_ID})`);
  return { registered: true, disposables: [registration, provider] };
}
