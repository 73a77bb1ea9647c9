// The protocol client for mcp-auth-sidecar: spawns the binary, frames
// JSON-RPC over its stdio (LSP base protocol), matches responses to
// requests, dispatches notifications and the sidecar's own requests
// (`window/showDocument`), cancels with `$/cancelRequest`, restarts the
// process when it crashes, and offers one typed method per request of docs/protocol.md#requests.
//
// This module must not import `vscode`: it runs in plain Node under mocha
// against the real binary (test/client.test.ts checks that it loads without
// a `vscode` module). The extension adapts it in extension.ts.

import { spawn, type ChildProcess } from 'node:child_process';
import {
  CancellationTokenSource,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  createMessageConnection,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import { Emitter, SidecarError, type Event } from './jsonrpc';
import {
  ClientErrorCodes,
  ErrorCodes,
  Methods,
  type AccessTokenParams,
  type AccessTokenResult,
  type AuthStatusParams,
  type AuthStatusResult,
  type AuthorizationPendingParams,
  type AuthorizeParams,
  type CompleteAuthorizationParams,
  type HandleChallengeParams,
  type HandleChallengeResult,
  type InitializeParams,
  type InitializeResult,
  type LogoutParams,
  type LogoutResult,
  type ServerStatus,
  type ShowDocumentParams,
  type ShowDocumentResult,
} from './protocol';

export { SidecarError, Emitter, type Event, type Disposable } from './jsonrpc';
export * from './protocol';

export type ClientState = 'stopped' | 'starting' | 'running' | 'restarting' | 'failed';

export interface RestartPolicy {
  /** Crashes tolerated within `windowMs` before giving up (state `failed`). */
  maxRestarts: number;
  windowMs: number;
  /** Delay before the first restart; doubles per crash in the window. */
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  maxRestarts: 5,
  windowMs: 3 * 60_000,
  initialDelayMs: 250,
  maxDelayMs: 5_000,
};

export interface SidecarClientOptions {
  /** The executable (a name on PATH or a path). */
  command: string;
  args?: string[];
  /** Environment of the process; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Sent with every (re)start; a function is called again on each restart. */
  initializeParams: InitializeParams | (() => InitializeParams);
  /**
   * Handles the sidecar's `window/showDocument` request. When set, the
   * client advertises `capabilities.window.showDocument.support`, so the
   * sidecar (with `browser: "auto"`) asks the editor to open authorization
   * URLs instead of starting a browser itself. Answer promptly: the sidecar
   * waits for this answer before it serves the browser's callback.
   */
  onShowDocument?: (params: ShowDocumentParams) => Promise<ShowDocumentResult> | ShowDocumentResult;
  /** The client's own diagnostics (never contains tokens). */
  log?: (message: string) => void;
  /** Each line the sidecar writes to stderr (its log). */
  onStderr?: (line: string) => void;
  /** Restart after a crash; `false` disables. */
  restart?: Partial<RestartPolicy> | false;
  /** Bound on spawn + `initialize` (default 15 s). */
  initializeTimeoutMs?: number;
  /** Bound on each step of stop(): `shutdown` answer, exit after `exit` (default 3 s). */
  stopTimeoutMs?: number;
  /**
   * After `$/cancelRequest`, how long to wait for the sidecar's -32800
   * before rejecting locally (default 5 s).
   */
  cancelGraceMs?: number;
  /** Default bound for requests other than authorize (default 120 s; 0 = none). */
  requestTimeoutMs?: number;
}

export interface RequestOptions {
  /** Aborting sends `$/cancelRequest`; the promise rejects with -32800. */
  signal?: AbortSignal;
  /** Reject with ClientErrorCodes.RequestTimeout (and cancel) after this; 0 = none. */
  timeoutMs?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when stop() asked for it. */
  expected: boolean;
}

const STDERR_TAIL = 20;

interface Pending {
  method: string;
  fail(error: SidecarError): void;
}

/**
 * One spawned sidecar process and its JSON-RPC connection (vscode-jsonrpc:
 * LSP framing over the child's stdio, request ids, `$/cancelRequest` for a
 * cancelled token). This class adds what the sidecar protocol needs on
 * top: pending requests fail with ConnectionClosed when the process exits,
 * timeouts, and a bounded wait for the -32800 after a cancel.
 */
class Connection {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  private readonly rpc: MessageConnection;
  private readonly pending = new Set<Pending>();
  private closed = false;
  private stderrPartial = '';
  private resolveExited!: (info: ExitInfo) => void;
  expectedExit = false;
  spawnError: Error | undefined;

  constructor(
    options: SidecarClientOptions,
    private readonly handlers: {
      notification(method: string, params: unknown): void;
      request(method: string, params: unknown): Promise<unknown>;
      stderr(line: string): void;
      log(message: string): void;
      closed(info: ExitInfo): void;
    },
  ) {
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    this.child = spawn(options.command, options.args ?? [], {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const logger = {
      error: (m: string) => handlers.log(`jsonrpc: ${m}`),
      warn: (m: string) => handlers.log(`jsonrpc: ${m}`),
      info: () => {},
      log: () => {},
    };
    this.rpc = createMessageConnection(
      new StreamMessageReader(this.child.stdout!),
      new StreamMessageWriter(this.child.stdin!),
      logger,
    );
    this.rpc.onError(([error]) => handlers.log(`protocol error from the sidecar: ${error.message}`));
    this.rpc.onNotification((method, params) => handlers.notification(method, params));
    this.rpc.onRequest((method, params) => handlers.request(method, params));
    this.rpc.listen();
    this.child.on('error', (err) => {
      // spawn failure (ENOENT, EACCES) or a failed kill; `exit` may not follow.
      this.spawnError ??= err;
      this.close({ code: null, signal: null, expected: this.expectedExit });
    });
    this.child.on('exit', (code, signal) => {
      // Let stdout drain (a last response may still be buffered) without
      // waiting on 'close': a browser the sidecar started could hold the pipe.
      const stdout = this.child.stdout;
      const done = () => setImmediate(() => this.close({ code, signal, expected: this.expectedExit }));
      if (!stdout || stdout.readableEnded || stdout.destroyed) {
        done();
        return;
      }
      const timer = setTimeout(done, 200);
      stdout.once('end', () => {
        clearTimeout(timer);
        done();
      });
    });
    this.child.stdin?.on('error', (err) => handlers.log(`writing to the sidecar failed: ${err.message}`));
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (text: string) => {
      const lines = (this.stderrPartial + text).split(/\r?\n/);
      this.stderrPartial = lines.pop() ?? '';
      for (const line of lines) if (line.length > 0) handlers.stderr(line);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private close(info: ExitInfo): void {
    if (this.closed) return;
    this.closed = true;
    if (this.stderrPartial) this.handlers.stderr(this.stderrPartial);
    this.stderrPartial = '';
    const why = this.spawnError
      ? `could not start the sidecar: ${this.spawnError.message}`
      : `the sidecar exited (code ${info.code}, signal ${info.signal})`;
    for (const p of [...this.pending]) {
      p.fail(new SidecarError(p.method, ClientErrorCodes.ConnectionClosed, `${p.method}: ${why}`, undefined, true));
    }
    this.pending.clear();
    this.rpc.dispose();
    this.resolveExited(info);
    this.handlers.closed(info);
  }

  notify(method: string, params?: unknown): void {
    if (this.closed) return;
    try {
      const sent = params === undefined ? this.rpc.sendNotification(method) : this.rpc.sendNotification(method, params);
      sent.catch((e: Error) => this.handlers.log(`${method}: ${e.message}`));
    } catch (e) {
      this.handlers.log(`${method}: ${(e as Error).message}`);
    }
  }

  request(method: string, params: unknown, options: RequestOptions & { cancelGraceMs: number }): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (options.signal?.aborted) {
        reject(new SidecarError(method, ErrorCodes.RequestCancelled, `${method}: cancelled before it was sent`, undefined, true));
        return;
      }
      if (this.closed) {
        reject(new SidecarError(method, ClientErrorCodes.ConnectionClosed, `${method}: the sidecar is not running`, undefined, true));
        return;
      }
      const cancel = new CancellationTokenSource();
      let timer: NodeJS.Timeout | undefined;
      let graceTimer: NodeJS.Timeout | undefined;
      let settled = false;
      const entry: Pending = { method, fail: (error) => settle(() => reject(error)) };
      const settle = (how: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(graceTimer);
        options.signal?.removeEventListener('abort', onAbort);
        this.pending.delete(entry);
        cancel.dispose();
        how();
      };
      const onAbort = () => {
        // vscode-jsonrpc sends $/cancelRequest; the sidecar answers the
        // request with -32800 (docs/protocol.md#errors), which settles it.
        // Only if that answer never comes do we give up locally, and say so.
        cancel.cancel();
        graceTimer = setTimeout(() => {
          this.handlers.log(`${method}: no answer ${options.cancelGraceMs} ms after $/cancelRequest; giving up locally`);
          settle(() =>
            reject(new SidecarError(method, ErrorCodes.RequestCancelled, `${method}: cancelled (the sidecar did not confirm)`, undefined, true)),
          );
        }, options.cancelGraceMs);
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.timeoutMs && options.timeoutMs > 0) {
        timer = setTimeout(() => {
          cancel.cancel();
          settle(() =>
            reject(new SidecarError(method, ClientErrorCodes.RequestTimeout, `${method}: no answer within ${options.timeoutMs} ms`, undefined, true)),
          );
        }, options.timeoutMs);
      }
      this.pending.add(entry);
      let sent: Promise<unknown>;
      try {
        sent =
          params === undefined || params === null
            ? this.rpc.sendRequest(method, cancel.token)
            : this.rpc.sendRequest(method, params, cancel.token);
      } catch (e) {
        // vscode-jsonrpc throws when its streams closed before the exit event.
        entry.fail(new SidecarError(method, ClientErrorCodes.ConnectionClosed, `${method}: ${(e as Error).message}`, undefined, true));
        return;
      }
      sent.then(
        (result) => settle(() => resolve(result)),
        (e: unknown) =>
          settle(() =>
            reject(
              e instanceof ResponseError
                ? new SidecarError(method, e.code, e.message, e.data, false)
                : new SidecarError(method, ClientErrorCodes.ConnectionClosed, `${method}: ${(e as Error).message}`, undefined, true),
            ),
          ),
      );
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.closed) this.child.kill(signal);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * A client of one mcp-auth-sidecar process (restarted after crashes).
 *
 * Lifecycle: `start()` spawns and runs `initialize` / `initialized`;
 * requests made while (re)starting wait for it; `stop()` runs
 * `shutdown` / `exit`. After an unexpected exit, pending requests reject
 * with `ClientErrorCodes.ConnectionClosed` and the process is restarted
 * with backoff (`onDidRestart` fires), up to `RestartPolicy.maxRestarts`
 * crashes per window, after which the state is `failed` until `start()`.
 */
export class SidecarClient {
  private conn: Connection | undefined;
  private _state: ClientState = 'stopped';
  private ready: Promise<InitializeResult> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private abortRestart: ((e: Error) => void) | undefined;
  private crashes: number[] = [];
  private lastError: Error | undefined;
  private readonly stderrTail: string[] = [];
  private readonly restartPolicy: RestartPolicy | false;
  private _initializeResult: InitializeResult | undefined;

  private readonly statusEmitter = new Emitter<ServerStatus>();
  private readonly pendingEmitter = new Emitter<AuthorizationPendingParams>();
  private readonly stateEmitter = new Emitter<{ state: ClientState; error?: Error }>();
  private readonly restartEmitter = new Emitter<InitializeResult>();
  private readonly exitEmitter = new Emitter<ExitInfo>();
  private readonly notificationEmitter = new Emitter<{ method: string; params: unknown }>();

  /** `mcp/authStatusChanged`. */
  readonly onDidChangeStatus: Event<ServerStatus> = this.statusEmitter.event;
  /** `mcp/authorizationPending`. */
  readonly onAuthorizationPending: Event<AuthorizationPendingParams> = this.pendingEmitter.event;
  readonly onDidChangeState: Event<{ state: ClientState; error?: Error }> = this.stateEmitter.event;
  /** After a crash, the new process is initialized. */
  readonly onDidRestart: Event<InitializeResult> = this.restartEmitter.event;
  readonly onDidExit: Event<ExitInfo> = this.exitEmitter.event;
  /** Any other notification from the sidecar. */
  readonly onNotification: Event<{ method: string; params: unknown }> = this.notificationEmitter.event;

  private readonly options: SidecarClientOptions;

  constructor(options: SidecarClientOptions) {
    this.options = { ...options };
    this.restartPolicy = options.restart === false ? false : { ...DEFAULT_RESTART_POLICY, ...options.restart };
  }

  /** Changes how the next process is started (takes effect at the next start or restart). */
  setLaunch(launch: Partial<Pick<SidecarClientOptions, 'command' | 'args' | 'env' | 'cwd'>>): void {
    Object.assign(this.options, launch);
  }

  get state(): ClientState {
    return this._state;
  }

  /** The process id of the running sidecar. */
  get pid(): number | undefined {
    return this.conn && !this.conn.isClosed ? this.conn.pid : undefined;
  }

  get initializeResult(): InitializeResult | undefined {
    return this._initializeResult;
  }

  /** Why the client is `failed` (or the last start failure). */
  get error(): Error | undefined {
    return this.lastError;
  }

  /** The last lines the sidecar wrote to stderr (for error reports). */
  get recentStderr(): readonly string[] {
    return this.stderrTail;
  }

  private setState(state: ClientState, error?: Error): void {
    this._state = state;
    this.stateEmitter.fire(error ? { state, error } : { state });
  }

  private log(message: string): void {
    this.options.log?.(message);
  }

  /** Starts the sidecar (no-op when running; joins a start in progress). */
  start(): Promise<InitializeResult> {
    if (this._state === 'running' && this._initializeResult) return Promise.resolve(this._initializeResult);
    if ((this._state === 'starting' || this._state === 'restarting') && this.ready) return this.ready;
    clearTimeout(this.restartTimer);
    this.crashes = [];
    this.lastError = undefined;
    this.setState('starting');
    this.ready = this.spawnAndInitialize();
    this.ready.catch(() => {}); // observed by callers and by request()
    return this.ready;
  }

  private initializeParams(): InitializeParams {
    const base =
      typeof this.options.initializeParams === 'function' ? this.options.initializeParams() : this.options.initializeParams;
    const params: InitializeParams = { ...base, capabilities: { ...base.capabilities } };
    if (this.options.onShowDocument) {
      params.capabilities.window = { ...params.capabilities.window, showDocument: { support: true } };
    }
    return params;
  }

  private async spawnAndInitialize(onFailure: 'fail' | 'retry' = 'fail'): Promise<InitializeResult> {
    const conn = new Connection(this.options, {
      notification: (method, params) => this.onNotificationMessage(method, params),
      request: (method, params) => this.onRequestMessage(method, params),
      stderr: (line) => {
        this.stderrTail.push(line);
        if (this.stderrTail.length > STDERR_TAIL) this.stderrTail.shift();
        this.options.onStderr?.(line);
      },
      log: (m) => this.log(m),
      closed: (info) => this.onClosed(conn, info),
    });
    this.conn = conn;
    try {
      const result = (await conn.request(Methods.initialize, this.initializeParams(), {
        timeoutMs: this.options.initializeTimeoutMs ?? 15_000,
        cancelGraceMs: 0,
      })) as InitializeResult;
      const version = result?.capabilities?.experimental?.mcpAuth?.version;
      if (version === undefined) {
        throw new Error(`${this.options.command} is not mcp-auth-sidecar: its initialize result has no capabilities.experimental.mcpAuth`);
      }
      if (version !== 1) {
        throw new Error(`mcp-auth-sidecar speaks protocol version ${version}; this client speaks version 1`);
      }
      if (this.conn !== conn || conn.isClosed) throw new Error('the sidecar stopped while starting');
      conn.notify(Methods.initialized, {});
      this._initializeResult = result;
      this.log(
        `sidecar ${result.serverInfo?.name ?? '?'} ${result.serverInfo?.version ?? '?'} running (pid ${conn.pid})`,
      );
      this.setState('running');
      return result;
    } catch (e) {
      const error = this.startError(conn, e);
      conn.expectedExit = true;
      conn.kill();
      if (this.conn === conn && this._state !== 'stopped' && onFailure === 'fail') {
        this.lastError = error;
        this.setState('failed', error);
      }
      throw error;
    }
  }

  private startError(conn: Connection, e: unknown): Error {
    if (conn.spawnError) {
      const err = new SidecarError(
        Methods.initialize,
        ClientErrorCodes.NotRunning,
        `could not start ${JSON.stringify(this.options.command)}: ${conn.spawnError.message}`,
        undefined,
        true,
      );
      return err;
    }
    const base = e instanceof Error ? e : new Error(String(e));
    const tail = this.stderrTail.slice(-5).join('\n');
    if (tail && !(base instanceof SidecarError && !base.local)) {
      base.message += `\nlast sidecar log lines:\n${tail}`;
    }
    return base;
  }

  private onClosed(conn: Connection, info: ExitInfo): void {
    this.exitEmitter.fire(info);
    if (this.conn !== conn) return;
    if (info.expected || this._state === 'stopped' || this._state === 'failed') return;
    if (this._state === 'starting' || this._state === 'restarting') return; // handled by spawnAndInitialize
    // An unexpected exit of a running sidecar.
    this.log(`the sidecar exited unexpectedly (code ${info.code}, signal ${info.signal})`);
    this.scheduleRestart(new Error(`the sidecar exited unexpectedly (code ${info.code}, signal ${info.signal})`));
  }

  private scheduleRestart(cause: Error): void {
    const policy = this.restartPolicy;
    const now = Date.now();
    this.crashes = this.crashes.filter((t) => now - t < (policy ? policy.windowMs : 0));
    this.crashes.push(now);
    if (!policy || this.crashes.length > policy.maxRestarts) {
      const error = new Error(
        policy
          ? `${cause.message}; it crashed ${this.crashes.length} times within ${Math.round(policy.windowMs / 1000)} s, not restarting`
          : cause.message,
      );
      this.lastError = error;
      this.ready = Promise.reject(error);
      this.ready.catch(() => {});
      this.setState('failed', error);
      return;
    }
    const delay = Math.min(policy.initialDelayMs * 2 ** (this.crashes.length - 1), policy.maxDelayMs);
    this.log(`restarting the sidecar in ${delay} ms`);
    this.setState('restarting', cause);
    this.ready = new Promise<InitializeResult>((resolve, reject) => {
      this.abortRestart = reject;
      this.restartTimer = setTimeout(() => {
        this.abortRestart = undefined;
        this.spawnAndInitialize('retry').then(
          (result) => {
            resolve(result);
            this.restartEmitter.fire(result);
          },
          (error: Error) => {
            // Try again while the policy allows; the waiters follow along.
            if (this._state === 'restarting') {
              this.scheduleRestart(error);
              (this.ready ?? Promise.reject(error)).then(resolve, reject);
            } else reject(error);
          },
        );
      }, delay);
    });
    this.ready.catch(() => {});
  }

  /** Stops the sidecar: `shutdown`, `exit`, then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    clearTimeout(this.restartTimer);
    this.abortRestart?.(new SidecarError(Methods.initialize, ClientErrorCodes.NotRunning, 'the sidecar was stopped', undefined, true));
    this.abortRestart = undefined;
    const conn = this.conn;
    const wasRunning = this._state === 'running';
    this.setState('stopped');
    this.ready = undefined;
    if (!conn || conn.isClosed) return;
    conn.expectedExit = true;
    const bound = this.options.stopTimeoutMs ?? 3_000;
    if (wasRunning) {
      await withTimeout(
        conn.request(Methods.shutdown, null, { timeoutMs: bound, cancelGraceMs: 0 }).catch(() => undefined),
        bound,
      );
      conn.notify(Methods.exit);
      conn.child.stdin?.end();
      if ((await withTimeout(conn.exited, bound)) !== undefined) return;
      this.log('the sidecar did not exit after `exit`; killing it');
    }
    conn.kill('SIGKILL');
    await withTimeout(conn.exited, bound);
  }

  /** Stops and starts again (e.g. after a configuration change). */
  async restart(): Promise<InitializeResult> {
    await this.stop();
    return this.start();
  }

  private async connection(method: string, signal?: AbortSignal): Promise<Connection> {
    if (this._state === 'running' && this.conn && !this.conn.isClosed) return this.conn;
    if (this._state === 'stopped') {
      throw new SidecarError(method, ClientErrorCodes.NotRunning, `${method}: the sidecar is not started`, undefined, true);
    }
    if (this._state === 'failed' || !this.ready) {
      throw new SidecarError(
        method,
        ClientErrorCodes.NotRunning,
        `${method}: the sidecar is not running: ${this.lastError?.message ?? 'unknown error'}`,
        undefined,
        true,
      );
    }
    const waiting = this.ready.then(
      () => undefined,
      (e: Error) => {
        throw new SidecarError(method, ClientErrorCodes.NotRunning, `${method}: the sidecar is not running: ${e.message}`, undefined, true);
      },
    );
    if (signal) {
      await Promise.race([
        waiting,
        new Promise<never>((_, reject) => {
          const onAbort = () =>
            reject(new SidecarError(method, ErrorCodes.RequestCancelled, `${method}: cancelled before it was sent`, undefined, true));
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } else {
      await waiting;
    }
    return this.connection(method, signal);
  }

  /** Sends a request (waiting for a start in progress) and returns its result. */
  async request<R>(method: string, params?: unknown, options: RequestOptions = {}): Promise<R> {
    const conn = await this.connection(method, options.signal);
    return (await conn.request(method, params, {
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? this.options.requestTimeoutMs ?? 120_000,
      cancelGraceMs: this.options.cancelGraceMs ?? 5_000,
    })) as R;
  }

  /** Sends a notification (dropped when the sidecar is not running). */
  notify(method: string, params?: unknown): void {
    if (this._state === 'running') this.conn?.notify(method, params);
  }

  private onNotificationMessage(method: string, params: unknown): void {
    switch (method) {
      case Methods.authStatusChanged:
        this.statusEmitter.fire(params as ServerStatus);
        return;
      case Methods.authorizationPending:
        this.pendingEmitter.fire(params as AuthorizationPendingParams);
        return;
      case Methods.logMessage: {
        const p = params as { message?: string } | undefined;
        this.log(`sidecar: ${p?.message ?? ''}`);
        return;
      }
      default:
        this.notificationEmitter.fire({ method, params });
    }
  }

  private async onRequestMessage(method: string, params: unknown): Promise<unknown> {
    if (method === Methods.showDocument && this.options.onShowDocument) {
      try {
        return await this.options.onShowDocument(params as ShowDocumentParams);
      } catch (e) {
        this.log(`window/showDocument failed: ${(e as Error).message}`);
        return { success: false };
      }
    }
    throw new ResponseError(ErrorCodes.MethodNotFound, `unhandled method ${method}`);
  }

  // ---- typed requests (docs/protocol.md#requests) ----

  /** All configured servers, or one; `probe` asks servers in state `unknown`. */
  authStatus(params: AuthStatusParams = {}, options?: RequestOptions): Promise<AuthStatusResult> {
    return this.request(Methods.authStatus, params, options);
  }

  /** The interactive flow. Long-running: no timeout unless given; abort with `options.signal`. */
  authorize(params: AuthorizeParams, options: RequestOptions = {}): Promise<ServerStatus> {
    return this.request(Methods.authorize, params, { timeoutMs: 0, ...options });
  }

  /** Completes a pending flow with the redirect URL pasted from the browser. */
  completeAuthorization(params: CompleteAuthorizationParams, options?: RequestOptions): Promise<ServerStatus> {
    return this.request(Methods.completeAuthorization, params, options);
  }

  /** A valid access token; rejects with code 1001 (data: ServerStatus) when there is none. */
  accessToken(params: AccessTokenParams, options?: RequestOptions): Promise<AccessTokenResult> {
    return this.request(Methods.accessToken, params, options);
  }

  /** Reports a 401/403 from the MCP server. */
  handleChallenge(params: HandleChallengeParams, options?: RequestOptions): Promise<HandleChallengeResult> {
    return this.request(Methods.handleChallenge, params, options);
  }

  /** Signs out (revoking unless `revoke: false`). */
  logout(params: LogoutParams, options?: RequestOptions): Promise<LogoutResult> {
    return this.request(Methods.logout, params, options);
  }

  /** Stops the sidecar and drops all listeners. */
  async dispose(): Promise<void> {
    await this.stop();
    const emitters: { dispose(): void }[] = [
      this.statusEmitter,
      this.pendingEmitter,
      this.stateEmitter,
      this.restartEmitter,
      this.exitEmitter,
      this.notificationEmitter,
    ];
    for (const e of emitters) e.dispose();
  }
}
