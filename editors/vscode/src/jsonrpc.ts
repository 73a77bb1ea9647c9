// The client's typed error and a tiny event emitter with VS Code's calling
// convention. The JSON-RPC transport (LSP framing, ids, $/cancelRequest) is
// vscode-jsonrpc's (client.ts). No `vscode` import (see client.ts).

import { ClientErrorCodes, ErrorCodes, isServerStatus, type ServerStatus } from './protocol';

export interface ResponseError {
  code: number;
  message: string;
  data?: unknown;
}

/** The shape of a disposable; assignable to `vscode.Disposable`. */
export interface Disposable {
  dispose(): void;
}

/** The shape of an event; assignable to `vscode.Event<T>`. */
export type Event<T> = (
  listener: (e: T) => unknown,
  thisArgs?: unknown,
  disposables?: Disposable[],
) => Disposable;

/** A minimal event emitter with the `vscode.EventEmitter` calling convention. */
export class Emitter<T> {
  private listeners: { fn: (e: T) => unknown; thisArgs: unknown }[] = [];

  readonly event: Event<T> = (fn, thisArgs, disposables) => {
    const entry = { fn, thisArgs };
    this.listeners.push(entry);
    const d: Disposable = {
      dispose: () => {
        this.listeners = this.listeners.filter((l) => l !== entry);
      },
    };
    disposables?.push(d);
    return d;
  };

  fire(e: T): void {
    for (const l of [...this.listeners]) {
      try {
        l.fn.call(l.thisArgs, e);
      } catch {
        // A throwing listener must not break the others or the reader.
      }
    }
  }

  dispose(): void {
    this.listeners = [];
  }
}

/**
 * A failed request. `code` is the JSON-RPC error code (docs/protocol.md#errors, e.g. 1001
 * AuthorizationRequired, -32602 InvalidParams, -32800 RequestCancelled) or,
 * when `local` is true, one of `ClientErrorCodes` made by this client.
 */
export class SidecarError extends Error {
  override readonly name = 'SidecarError';

  constructor(
    readonly method: string,
    readonly code: number,
    message: string,
    readonly data?: unknown,
    /** True when this client made the error (the sidecar never answered). */
    readonly local = false,
  ) {
    super(message);
  }

  static fromResponse(method: string, error: ResponseError): SidecarError {
    return new SidecarError(method, error.code, error.message, error.data, false);
  }

  /** For 1001 (and any error whose data is a ServerStatus): that status. */
  get status(): ServerStatus | undefined {
    return isServerStatus(this.data) ? this.data : undefined;
  }

  /** For 1002: the OAuth error code (`access_denied`, `invalid_client`, …). */
  get oauthError(): string | undefined {
    const d = this.data as { error?: unknown } | undefined;
    return typeof d?.error === 'string' ? d.error : undefined;
  }

  get isCancelled(): boolean {
    return this.code === ErrorCodes.RequestCancelled;
  }

  get isAuthorizationRequired(): boolean {
    return this.code === ErrorCodes.AuthorizationRequired;
  }

  get isConnectionClosed(): boolean {
    return this.code === ClientErrorCodes.ConnectionClosed || this.code === ClientErrorCodes.NotRunning;
  }
}
