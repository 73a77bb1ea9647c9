// A small JSON-RPC client for the real mcp-auth-sidecar binary over stdio
// (LSP framing). Shared by the conformance client and other Node tests.
import { spawn } from 'node:child_process';

export class Sidecar {
  constructor(bin, env) {
    this.proc = spawn(bin, [], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    this.nextId = 1;
    this.pending = new Map();
    this.notifications = [];
    this.buf = Buffer.alloc(0);
    this.proc.stdout.on('data', (chunk) => this.#onData(chunk));
    // A killed sidecar closes its stdin: writing then must not crash us.
    this.proc.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => this.proc.on('exit', resolve));
  }

  #onData(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const headerEnd = this.buf.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const m = /Content-Length:\s*(\d+)/i.exec(this.buf.subarray(0, headerEnd).toString());
      if (!m) throw new Error('sidecar sent a frame without Content-Length');
      const len = Number(m[1]);
      if (this.buf.length < headerEnd + 4 + len) return;
      const msg = JSON.parse(this.buf.subarray(headerEnd + 4, headerEnd + 4 + len).toString());
      this.buf = this.buf.subarray(headerEnd + 4 + len);
      if (msg.id !== undefined && msg.method === undefined && this.pending.has(msg.id)) {
        const { resolve } = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        resolve(msg);
      } else if (msg.method !== undefined && msg.id !== undefined) {
        // A request from the sidecar (window/showDocument): we have no UI.
        this.#send({ jsonrpc: '2.0', id: msg.id, result: { success: false } });
      } else {
        this.notifications.push(msg);
      }
    }
  }

  #send(obj) {
    const body = Buffer.from(JSON.stringify(obj));
    this.proc.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
    this.proc.stdin.write(body);
  }

  /** Sends a request; resolves with the whole response object. */
  call(method, params) {
    const id = this.nextId++;
    const p = new Promise((resolve) => this.pending.set(id, { resolve }));
    this.#send({ jsonrpc: '2.0', id, method, params });
    return p;
  }

  /** Sends a request that must succeed; returns its result. */
  async ok(method, params) {
    const r = await this.call(method, params);
    if (r.error) {
      const e = new Error(`${method}: ${r.error.code} ${r.error.message}`);
      e.rpc = r.error;
      throw e;
    }
    return r.result;
  }

  notify(method, params) {
    this.#send({ jsonrpc: '2.0', method, params });
  }

  async close() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const answered = this.call('shutdown', null);
      await Promise.race([answered, this.exited, new Promise((r) => setTimeout(r, 3000))]);
      this.notify('exit', null);
    }
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 3000))]);
    this.proc.kill();
  }
}
