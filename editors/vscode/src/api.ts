// The API this extension returns from activate(), for other extensions:
//
//   const ext = vscode.extensions.getExtension<McpAuthApi>('mcp-auth-sidecar.mcp-auth-sidecar');
//   const api = await ext?.activate();
//   const token = await api.getAccessToken('github');
//
// Types only (`import type`): this file has no runtime dependency on vscode.

import type * as vscode from 'vscode';
import type { HandleChallengeResult, ServerStatus } from './protocol';

export type {
  AuthState,
  HandleChallengeResult,
  ServerConfig,
  ServerStatus,
  StorageMode,
} from './protocol';
export { ErrorCodes } from './protocol';

export interface GetAccessTokenOptions {
  /**
   * Refresh first when the token expires within this many seconds
   * (default 60, the sidecar's default).
   */
  minValiditySeconds?: number;
}

export interface AuthorizeOptions {
  scopes?: string[];
  /** Authorize again even when a valid token is held. */
  force?: boolean;
}

export interface McpAuthApi {
  /** Bumped on incompatible changes. */
  readonly apiVersion: 1;

  /**
   * The id of the MCP server definition provider through which VS Code's
   * own MCP client gets the configured servers with the sidecar's tokens
   * (`mcpAuth.servers`), or `undefined` on a VS Code without that API
   * (older than 1.101).
   */
  readonly mcpServerDefinitionProvider: string | undefined;

  /**
   * A currently valid access token for `server` (a configured server name,
   * or an https URL of an ad-hoc server), to send as
   * `Authorization: Bearer <token>`. Refreshes first when needed. Never
   * opens a browser: when there is no usable credential it rejects with an
   * `Error` whose `code` is 1001 (AuthorizationRequired) and whose `data`
   * is the server's `ServerStatus`; call `authorize(server)` (or run the
   * command `mcpAuth.authorize`) and try again. Other codes: -32602
   * (unknown server / bad URL), 1004 (storage unavailable), -32099 (the
   * sidecar is not running).
   */
  getAccessToken(server: string, options?: GetAccessTokenOptions): Promise<string>;

  /**
   * Fires on every change of a server's authorization state (sign-in,
   * refresh, sign-out, errors — also when another editor instance of the
   * same user changed it).
   */
  readonly onDidChangeStatus: vscode.Event<ServerStatus>;

  /** The current status of all servers (or of one). Answered without network requests. */
  getStatus(server?: string): Promise<ServerStatus[]>;

  /**
   * Runs the interactive sign-in (browser) with a cancellable progress
   * notification; resolves with the new status. Joins a flow already in
   * progress for that server. Rejects with code -32800 when the user
   * cancels.
   */
  authorize(server: string, options?: AuthorizeOptions): Promise<ServerStatus>;

  /**
   * Report a 401/403 your MCP request got (`status`, and the
   * `WWW-Authenticate` header). `action` says what to do next: `retry`
   * (get a new token with getAccessToken and retry), `authorize` (call
   * authorize, with the returned `scopes` on a step-up), or `fail`.
   */
  handleChallenge(server: string, status: number, wwwAuthenticate?: string): Promise<HandleChallengeResult>;
}
