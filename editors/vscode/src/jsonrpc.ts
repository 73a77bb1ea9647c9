// JSON-RPC 2.0 messages with LSP base-protocol framing, a tiny event
// emitter and the typed error. No `vscode` import (see client.ts).

import { ClientErrorCodes, ErrorCodes, isServerStatus, type ServerStatus } from './protocol';

export type Id = number | string;

export interface RequestMessage {
  jsonrpc: '2.0';
  id: Id;
  method: string;
  params?: unknown;
}
export interface NotificationMessage {
  jsonrpc: '2.0';
  method: string;
  params?: unknown;
}
export interface ResponseError {
  code: number;
  message: string;
  data?: unknown;
}
export interface ResponseMessage {
  jsonrpc: '2.0';
  id: Id | null;
  result?: unknown;
  error?: ResponseError;
}
export type Message = RequestMessage | NotificationMessage | ResponseMessage;

export function isRequest(m: Message): m is RequestMessage {
  return 'method' in m && 'id' in m && m.id !== undefined && m.id !== null;
}
export function isNotification(m: Message): m is NotificationMessage {
  return 'method' in m && !('id' in m && m.id !== undefined && m.id !== null);
}
export function isResponse(m: Message): m is ResponseMessage {
  return !('method' in m) && 'id' in m;
}

/** One frame: `Content-Length: N\r\n\r\n` + N bytes of UTF-8 JSON. */
export function encodeMessage(message: Message): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'), body]);
}

/**
 * Incremental reader of LSP-framed messages. Feed it stdout chunks; it
 * returns the complete messages. Content-Length counts bytes, so a
 * multi-byte character split across chunks is handled. A frame whose
 * header has no Content-Length, or whose body is not JSON, is reported
 * through `onError` and skipped; reading continues.
 */
export class MessageReader {
  private buffer: Buffer = Buffer.alloc(0);

  constructor(private readonly onError: (why: string) => void = () => {}) {}

  push(chunk: Buffer): Message[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const out: Message[] = [];
    for (;;) {
      const headerEnd = this.buffer.indexOf('\r\n\r\n');
      if (headerEnd < 0) return out;
      const header = this.buffer.subarray(0, headerEnd).toString('ascii');
      const match = /^content-length:\s*(\d+)\s*$/im.exec(header);
      if (!match) {
        this.onError(`frame without Content-Length: ${JSON.stringify(header.slice(0, 200))}`);
        this.buffer = this.buffer.subarray(headerEnd + 4);
        continue;
      }
      const length = Number(match[1]);
      const start = headerEnd + 4;
      if (this.buffer.length < start + length) return out;
      const body = this.buffer.subarray(start, start + length).toString('utf8');
      this.buffer = this.buffer.subarray(start + length);
      try {
        const parsed: unknown = JSON.parse(body);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
          out.push(parsed as Message);
        } else {
          this.onError(`frame is not a JSON-RPC object: ${body.slice(0, 200)}`);
        }
      } catch (e) {
        this.onError(`frame is not JSON (${(e as Error).message})`);
      }
    }
  }
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
