// Shared test setup: where things are, temporary homes, free ports, bounds.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** editors/vscode (tests run from out/test/…). */
export const extensionRoot = resolve(__dirname, '..', '..', '..');
/** The repository root. */
export const repoRoot = resolve(extensionRoot, '..', '..');

/**
 * The real sidecar binary: MCP_AUTH_SIDECAR_BIN, default the debug build of
 * this checkout (`cargo build`: $CARGO_TARGET_DIR or <repo>/target).
 */
export const sidecarBin =
  process.env.MCP_AUTH_SIDECAR_BIN ||
  join(
    resolve(repoRoot, process.env.CARGO_TARGET_DIR || 'target'),
    'debug',
    process.platform === 'win32' ? 'mcp-auth-sidecar.exe' : 'mcp-auth-sidecar',
  );

/** The test "browser" that follows redirects into the sidecar's loopback listener. */
export const followJs = join(repoRoot, 'tests', 'conformance', 'follow.mjs');

/** The browser option that makes the sidecar run follow.mjs with the URL. */
export const followBrowser: string[] = [process.execPath, followJs];

export function assertPrerequisites(): void {
  if (!existsSync(sidecarBin)) {
    throw new Error(`no sidecar binary at ${sidecarBin} (run \`cargo build\` at the repository root, or set MCP_AUTH_SIDECAR_BIN)`);
  }
  if (!existsSync(followJs)) throw new Error(`test browser not found: ${followJs}`);
}

/** A temporary HOME / MCP_AUTH_SIDECAR_HOME, so no test touches the user's files. */
export function tempHome(prefix = 'mcp-auth-vscode-'): { home: string; env: NodeJS.ProcessEnv; remove(): void } {
  const home = mkdtempSync(join(tmpdir(), prefix));
  return {
    home,
    env: {
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      XDG_DATA_HOME: join(home, '.local', 'share'),
      MCP_AUTH_SIDECAR_HOME: join(home, 'sidecar'),
      MCP_AUTH_SIDECAR_LOG: process.env.MCP_AUTH_SIDECAR_LOG || 'info',
    },
    remove: () => rmSync(home, { recursive: true, force: true }),
  };
}

/** An OS-chosen free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => ok(port));
    });
  });
}

/** Rejects after `ms` with a message naming what was awaited. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves when `pred` holds (polled), or rejects after `ms`. */
export async function until(ms: number, what: string, pred: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The rejection of a promise that must fail. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject, it resolved');
}
