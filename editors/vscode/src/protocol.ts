// Types of the mcp-auth-sidecar wire protocol (docs/protocol.md, schemas/*.json).
// No `vscode` import: shared by the client, the extension and the tests.

/** `state`: docs/protocol.md#state-machine. */
export type AuthState =
  | 'unknown'
  | 'not_required'
  | 'unauthenticated'
  | 'authorizing'
  | 'authorized'
  | 'refreshing'
  | 'step_up_required'
  | 'error';

export const AUTH_STATES: readonly AuthState[] = [
  'unknown',
  'not_required',
  'unauthenticated',
  'authorizing',
  'authorized',
  'refreshing',
  'step_up_required',
  'error',
];

export type StorageMode = 'keyring' | 'file' | 'memory';

/** docs/protocol.md#serverstatus, schemas/server-status.json. */
export interface ServerStatus {
  /** Configured name, or the URL of an ad-hoc server. */
  server: string;
  url: string;
  state: AuthState;
  /** Access-token expiry, ms since the epoch, when known. */
  expiresAt?: number;
  scopes: string[];
  issuer?: string;
  storage: StorageMode;
  /** What to do, when the state needs action. */
  message?: string;
}

/** docs/protocol.md#initialization-options, schemas/server-config.json. */
export interface ServerConfig {
  url: string;
  clientId?: string;
  clientSecret?: string;
  clientMetadataUrl?: string;
  scopes?: string[];
  callbackPort?: number;
  authServerMetadataUrl?: string;
  resource?: string;
}

export type BrowserOption = 'auto' | 'none' | string[];

/** docs/protocol.md#initialization-options, schemas/initialization-options.json. */
export interface InitializationOptions {
  servers?: Record<string, ServerConfig>;
  configFiles?: string[];
  discoverConfigFiles?: boolean;
  storage?: 'auto' | StorageMode;
  browser?: BrowserOption;
  callbackHost?: string;
  /** Seconds a browser flow may take before error 1005 (default 300). */
  authorizationTimeout?: number;
}

/** The parts of LSP `InitializeParams` the sidecar reads. */
export interface InitializeParams {
  processId: number | null;
  clientInfo?: { name: string; version?: string };
  rootUri?: string | null;
  workspaceFolders?: { uri: string; name: string }[] | null;
  capabilities: {
    window?: { showDocument?: { support: boolean } };
    [key: string]: unknown;
  };
  initializationOptions?: InitializationOptions;
}

/** schemas/initialize-result.json. */
export interface InitializeResult {
  capabilities: {
    experimental?: { mcpAuth?: { version: number } };
    [key: string]: unknown;
  };
  serverInfo?: { name: string; version?: string };
}

export interface AuthStatusParams {
  server?: string;
  probe?: boolean;
}
export interface AuthStatusResult {
  servers: ServerStatus[];
  /** Config files or entries that could not be used; absent when none. */
  configProblems?: string[];
}

export interface AuthorizeParams {
  server: string;
  scopes?: string[];
  force?: boolean;
}

export interface CompleteAuthorizationParams {
  server: string;
  callbackUrl: string;
}

export interface AccessTokenParams {
  server: string;
  minValiditySeconds?: number;
}
export interface AccessTokenResult {
  server: string;
  accessToken: string;
  tokenType: 'Bearer';
  expiresAt?: number;
  scopes: string[];
}

export interface HandleChallengeParams {
  server: string;
  status: number;
  wwwAuthenticate?: string;
}
export interface HandleChallengeResult {
  action: 'retry' | 'authorize' | 'fail';
  status: ServerStatus;
  scopes?: string[];
}

export interface LogoutParams {
  server: string;
  revoke?: boolean;
}
export interface LogoutResult {
  server: string;
  revoked: boolean;
  status: ServerStatus;
}

/** `mcp/authorizationPending` params. */
export interface AuthorizationPendingParams {
  server: string;
  url: string;
}

/** LSP `window/showDocument` params and result. */
export interface ShowDocumentParams {
  uri: string;
  external?: boolean;
  takeFocus?: boolean;
  selection?: unknown;
}
export interface ShowDocumentResult {
  success: boolean;
}

/** Method names (docs/protocol.md#requests, #notifications). */
export const Methods = {
  initialize: 'initialize',
  initialized: 'initialized',
  shutdown: 'shutdown',
  exit: 'exit',
  cancelRequest: '$/cancelRequest',
  authStatus: 'mcp/authStatus',
  authorize: 'mcp/authorize',
  completeAuthorization: 'mcp/completeAuthorization',
  accessToken: 'mcp/accessToken',
  handleChallenge: 'mcp/handleChallenge',
  logout: 'mcp/logout',
  authStatusChanged: 'mcp/authStatusChanged',
  authorizationPending: 'mcp/authorizationPending',
  showDocument: 'window/showDocument',
  logMessage: 'window/logMessage',
} as const;

/** JSON-RPC / LSP and sidecar error codes answered by the sidecar (docs/protocol.md#errors). */
export const ErrorCodes = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  ServerNotInitialized: -32002,
  RequestCancelled: -32800,
  AuthorizationRequired: 1001,
  AuthorizationFailed: 1002,
  DiscoveryFailed: 1003,
  StorageUnavailable: 1004,
  Timeout: 1005,
  InsecureUrl: 1006,
  Unavailable: 1007,
} as const;

/**
 * Codes this client gives errors it makes itself (`SidecarError.local`),
 * never sent by the sidecar. Inside the JSON-RPC implementation-defined
 * range, below what LSP uses.
 */
export const ClientErrorCodes = {
  /** The sidecar process exited (or was stopped) with the request pending. */
  ConnectionClosed: -32097,
  /** No answer within the request's `timeoutMs`; `$/cancelRequest` was sent. */
  RequestTimeout: -32098,
  /** The sidecar is not running and could not be (re)started. */
  NotRunning: -32099,
} as const;

/** Type guard: a structurally valid ServerStatus (used on error `data`). */
export function isServerStatus(value: unknown): value is ServerStatus {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.server === 'string' &&
    typeof v.url === 'string' &&
    typeof v.state === 'string' &&
    (AUTH_STATES as readonly string[]).includes(v.state) &&
    Array.isArray(v.scopes)
  );
}
