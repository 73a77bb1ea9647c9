// Helpers every real-peer rig uses (tests/peers/*/rig.mjs): timeouts on
// everything, one JSON-RPC call to the sidecar, one POST to an MCP
// endpoint, and what the test browser (oidc/browser.mjs) logged.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export const STEP_TIMEOUT = 60_000;

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const rpc = (sidecar, method, params, ms = STEP_TIMEOUT) => withTimeout(sidecar.ok(method, params), ms, method);

/** One JSON-RPC POST to the MCP endpoint; a body that is not JSON is kept as text. */
export async function mcpPost(url, token, message) {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await withTimeout(
    fetch(url, { method: 'POST', headers, body: JSON.stringify(message) }),
    10_000,
    `POST ${url}`,
  );
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  return { status: res.status, www: res.headers.get('www-authenticate'), body };
}

/** An MCP `initialize` request from a client called `clientName`. */
export const initializeMessage = (id, clientName = 'peer-test') => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: clientName, version: '1' } },
});

/** The hops the test browser logged, one JSON object per line. */
export function browserHops(dirs) {
  if (!existsSync(dirs.browserLog)) return [];
  return readFileSync(dirs.browserLog, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** GET a JSON document that must be there (HTTP 200). */
export async function getJson(url) {
  const res = await withTimeout(fetch(url), 10_000, `GET ${url}`);
  assert.equal(res.status, 200, `GET ${url}`);
  return res.json();
}

/** An OS-chosen free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}
