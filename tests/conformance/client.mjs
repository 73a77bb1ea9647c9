// The MCP client the conformance suite runs: `node client.mjs <server-url>`.
// It does the MCP calls itself and leaves all of OAuth to the real
// mcp-auth-sidecar (MCP_AUTH_SIDECAR_BIN), asking it for tokens and
// reporting every 401/403 through mcp/handleChallenge.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sidecar } from './sidecar.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const serverUrl = process.argv.at(-1);
const version = process.env.MCP_CONFORMANCE_PROTOCOL_VERSION || '2025-11-25';
const stateless = version >= '2026-07-28';
const context = process.env.MCP_CONFORMANCE_CONTEXT ? JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT) : {};
const bin = process.env.MCP_AUTH_SIDECAR_BIN;
if (!bin) {
  console.error('client.mjs: set MCP_AUTH_SIDECAR_BIN to the sidecar binary');
  process.exit(2);
}

const home = mkdtempSync(join(tmpdir(), 'mcp-auth-conformance-'));
const sidecar = new Sidecar(bin, {
  ...process.env,
  MCP_AUTH_SIDECAR_HOME: home,
  MCP_AUTH_SIDECAR_LOG: process.env.MCP_AUTH_SIDECAR_LOG || 'info',
});

const server = { url: serverUrl, clientMetadataUrl: 'https://conformance-test.local/client-metadata.json' };
if (context.client_id) server.clientId = context.client_id;
if (context.client_secret) server.clientSecret = context.client_secret;

let sessionId;
let nextId = 1;

/** One MCP POST with the current token; returns {status, headers, body}. */
async function post(message, token) {
  const headers = {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
  };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (stateless || message.method !== 'initialize') headers['MCP-Protocol-Version'] = version;
  if (sessionId) headers['Mcp-Session-Id'] = sessionId;
  const res = await fetch(serverUrl, { method: 'POST', headers, body: JSON.stringify(message) });
  const sid = res.headers.get('mcp-session-id');
  if (sid) sessionId = sid;
  const text = await res.text();
  return { status: res.status, www: res.headers.get('www-authenticate'), contentType: res.headers.get('content-type') || '', text };
}

function parseResult(reply, id) {
  if (!reply.text) return null;
  if (reply.contentType.includes('text/event-stream')) {
    for (const line of reply.text.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const msg = JSON.parse(line.slice(5));
      if (msg.id === id) return msg;
    }
    return null;
  }
  return JSON.parse(reply.text);
}

async function token() {
  const r = await sidecar.call('mcp/accessToken', { server: 'target' });
  return r.error ? undefined : r.result.accessToken;
}

/** Sends `method`, handling auth through the sidecar, at most 5 rounds. */
async function mcp(method, params, { notification = false } = {}) {
  const id = notification ? undefined : nextId++;
  if (stateless) {
    params = {
      ...(params || {}),
      _meta: {
        'io.modelcontextprotocol/protocolVersion': version,
        'io.modelcontextprotocol/clientCapabilities': {},
      },
    };
  }
  const message = { jsonrpc: '2.0', method, ...(params ? { params } : {}), ...(notification ? {} : { id }) };
  for (let round = 0; round < 5; round++) {
    const reply = await post(message, await token());
    if (reply.status === 401 || reply.status === 403) {
      const outcome = await sidecar.ok('mcp/handleChallenge', {
        server: 'target',
        status: reply.status,
        ...(reply.www ? { wwwAuthenticate: reply.www } : {}),
      });
      if (outcome.action === 'fail') throw new Error(`giving up: ${outcome.status.message}`);
      if (outcome.action === 'authorize') {
        await sidecar.ok('mcp/authorize', { server: 'target', ...(outcome.scopes ? { scopes: outcome.scopes } : {}) });
      }
      continue;
    }
    if (reply.status >= 400) throw new Error(`${method}: HTTP ${reply.status} ${reply.text.slice(0, 200)}`);
    return notification ? null : parseResult(reply, id);
  }
  throw new Error(`${method}: still unauthorized after 5 rounds`);
}

let code = 0;
try {
  await sidecar.ok('initialize', {
    processId: process.pid,
    clientInfo: { name: 'conformance-client', version: '1' },
    capabilities: {},
    initializationOptions: {
      storage: 'memory',
      discoverConfigFiles: false,
      browser: [process.execPath, join(here, 'follow.mjs')],
      servers: { target: server },
    },
  });
  sidecar.notify('initialized', {});
  if (!stateless) {
    await mcp('initialize', {
      protocolVersion: version,
      capabilities: {},
      clientInfo: { name: 'conformance-client', version: '1' },
    });
    await mcp('notifications/initialized', undefined, { notification: true });
  }
  await mcp('tools/list', {});
  await mcp('tools/call', { name: 'test-tool', arguments: {} });
} catch (e) {
  console.error(`client.mjs: ${e.message}`);
  code = 1;
} finally {
  await sidecar.close();
  rmSync(home, { recursive: true, force: true });
}
process.exit(code);
