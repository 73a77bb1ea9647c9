// Real-peer integration test: the real mcp-auth-sidecar binary against the
// official TypeScript SDK's example Streamable HTTP server, run with
// `--oauth --oauth-strict` (an MCP server plus a separate demo authorization
// server that auto-approves, both on localhost, with RFC 8707 resource checks
// at the token endpoint and audience checks on every MCP request).
//
// Run: npm ci && MCP_AUTH_SIDECAR_BIN=/path/to/mcp-auth-sidecar node --test
// (Node >= 22 recommended; MCP_AUTH_SIDECAR_LOG=debug for sidecar logs.)
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '../shared.mjs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sidecar } from '../../conformance/sidecar.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const followJs = resolve(here, '../../conformance/follow.mjs');
const exampleJs = join(
  here,
  'node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server/simpleStreamableHttp.js',
);
const bin = process.env.MCP_AUTH_SIDECAR_BIN;

const STARTUP_MS = 15_000; // example server until both ports listen
const AUTHORIZE_MS = 30_000; // whole discovery + DCR + browser + token exchange
const HTTP_MS = 10_000; // any single HTTP request of ours
const SERVER = 'sdk-example'; // the configured server name in the sidecar

/** Rejects after `ms` with a message naming what was awaited. */
function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Starts the SDK example with OAuth on the given ports; resolves once both listen. */
function startExample(mcpPort, authPort) {
  const child = spawn(process.execPath, [exampleJs, '--oauth', '--oauth-strict'], {
    env: { ...process.env, MCP_PORT: String(mcpPort), MCP_AUTH_PORT: String(authPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = [];
  const ready = new Promise((ok, fail) => {
    let mcpUp = false;
    let authUp = false;
    const onText = (chunk) => {
      const text = chunk.toString();
      output.push(text);
      if (text.includes(`MCP Streamable HTTP Server listening on port ${mcpPort}`)) mcpUp = true;
      if (text.includes(`OAuth Authorization Server listening on port ${authPort}`)) authUp = true;
      if (mcpUp && authUp) ok();
    };
    child.stdout.on('data', onText);
    child.stderr.on('data', onText);
    child.on('error', fail);
    child.on('exit', (code, signal) =>
      fail(new Error(`example server exited early (code ${code}, signal ${signal}):\n${output.join('')}`)),
    );
  });
  return { child, output, ready };
}

/** One MCP `initialize` POST; resolves with status, headers and body text. */
async function postInitialize(url, token) {
  const headers = {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
  };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'mcp-auth-sidecar-peer-test', version: '1' },
    },
  });
  const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(HTTP_MS) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The JSON-RPC message with `id` from a JSON or SSE response body. */
function rpcMessage(reply, id) {
  const type = reply.headers.get('content-type') || '';
  if (type.includes('text/event-stream')) {
    for (const line of reply.text.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const msg = JSON.parse(line.slice(5));
      if (msg.id === id) return msg;
    }
    return undefined;
  }
  return JSON.parse(reply.text);
}

describe('mcp-auth-sidecar against the SDK example server (--oauth --oauth-strict)', { timeout: 120_000 }, () => {
  let mcpPort;
  let authPort;
  let mcpUrl;
  let issuer;
  let example;
  let home;
  let sidecar;
  let status; // result of mcp/authorize
  let token; // result of mcp/accessToken

  before(async () => {
    assert.ok(bin, 'set MCP_AUTH_SIDECAR_BIN to the mcp-auth-sidecar binary');
    assert.ok(existsSync(bin), `MCP_AUTH_SIDECAR_BIN does not exist: ${bin}`);
    assert.ok(existsSync(exampleJs), `SDK example not found (run npm ci here): ${exampleJs}`);

    mcpPort = await freePort();
    do authPort = await freePort();
    while (authPort === mcpPort);
    // The example names itself `localhost` in its metadata (PRM `resource`,
    // AS `issuer`), and --oauth-strict compares the RFC 8707 resource with
    // http://localhost:<port>/mcp exactly, so the client must use that URL.
    mcpUrl = `http://localhost:${mcpPort}/mcp`;
    issuer = `http://localhost:${authPort}/`;

    example = startExample(mcpPort, authPort);
    await within(STARTUP_MS, 'SDK example server to listen', example.ready);

    home = mkdtempSync(join(tmpdir(), 'mcp-auth-peer-sdk-'));
    sidecar = new Sidecar(bin, {
      ...process.env,
      HOME: home,
      MCP_AUTH_SIDECAR_HOME: join(home, 'sidecar'),
      MCP_AUTH_SIDECAR_LOG: process.env.MCP_AUTH_SIDECAR_LOG || 'info',
    });
    const init = await within(
      HTTP_MS,
      'sidecar initialize',
      sidecar.ok('initialize', {
        processId: process.pid,
        clientInfo: { name: 'peer-sdk-test', version: '1' },
        capabilities: {},
        initializationOptions: {
          storage: 'file',
          discoverConfigFiles: false,
          browser: [process.execPath, followJs],
          servers: { [SERVER]: { url: mcpUrl } },
        },
      }),
    );
    assert.deepEqual(init.capabilities?.experimental?.mcpAuth, { version: 1 });
    sidecar.notify('initialized', {});
  });

  after(async () => {
    if (sidecar) await sidecar.close();
    if (example) {
      example.child.kill('SIGTERM');
      await within(5000, 'example server to exit', new Promise((r) => {
        if (example.child.exitCode !== null || example.child.signalCode !== null) r();
        else example.child.once('exit', r);
      })).catch(() => example.child.kill('SIGKILL'));
    }
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('the example server refuses an unauthenticated initialize with 401 and a PRM pointer', async () => {
    const reply = await postInitialize(mcpUrl);
    assert.equal(reply.status, 401, reply.text);
    const www = reply.headers.get('www-authenticate') || '';
    assert.match(www, /^Bearer /);
    assert.ok(
      www.includes(`resource_metadata="http://localhost:${mcpPort}/.well-known/oauth-protected-resource/mcp"`),
      `WWW-Authenticate: ${www}`,
    );
  });

  it('the example server refuses a made-up bearer token', async () => {
    const reply = await postInitialize(mcpUrl, 'not-a-real-token');
    // SDK 1.32.2's example verifier throws a plain Error when introspection
    // says the token is inactive, which requireBearerAuth turns into
    // 500 server_error rather than 401 invalid_token. Either way: refused.
    assert.ok([401, 500].includes(reply.status), `HTTP ${reply.status}: ${reply.text}`);
    assert.ok(!reply.headers.get('mcp-session-id'), 'no session for a bogus token');
  });

  it('mcp/authorize completes discovery, registration and the browser flow', async () => {
    status = await within(
      AUTHORIZE_MS,
      'mcp/authorize',
      sidecar.ok('mcp/authorize', { server: SERVER }),
    );
    assert.equal(status.state, 'authorized', JSON.stringify(status));
    assert.equal(status.server, SERVER);
    assert.equal(status.url, mcpUrl);
    assert.equal(status.storage, 'file');
    // The AS metadata's issuer is `http://localhost:<auth port>/` (URL.href).
    assert.ok(
      status.issuer === issuer || status.issuer === issuer.replace(/\/$/, ''),
      `issuer ${status.issuer}, expected ${issuer}`,
    );
    assert.ok(status.expiresAt > Date.now(), `expiresAt ${status.expiresAt} should be in the future`);
  });

  it('the flow was announced with mcp/authorizationPending carrying the authorization URL', (t) => {
    const pending = sidecar.notifications.filter(
      (n) => n.method === 'mcp/authorizationPending' && n.params?.server === SERVER,
    );
    assert.equal(pending.length, 1, JSON.stringify(sidecar.notifications));
    const url = new URL(pending[0].params.url);
    assert.equal(url.origin, `http://localhost:${authPort}`);
    assert.equal(url.pathname, '/authorize');
    const q = url.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.ok(q.get('code_challenge'), 'code_challenge present');
    assert.ok(q.get('state'), 'state present');
    assert.ok(q.get('client_id'), 'client_id present');
    assert.equal(q.get('resource'), mcpUrl, 'RFC 8707 resource is the MCP server URL');
    const redirect = new URL(q.get('redirect_uri'));
    assert.equal(redirect.protocol, 'http:');
    assert.equal(redirect.hostname, '127.0.0.1');
    t.diagnostic(`requested scope=${q.get('scope')} redirect_uri=${redirect.href}`);
  });

  it('mcp/accessToken hands out the bearer token', async (t) => {
    token = await within(HTTP_MS, 'mcp/accessToken', sidecar.ok('mcp/accessToken', { server: SERVER }));
    assert.equal(token.server, SERVER);
    assert.equal(token.tokenType, 'Bearer');
    assert.equal(typeof token.accessToken, 'string');
    assert.ok(token.accessToken.length > 0);
    assert.ok(Array.isArray(token.scopes));
    t.diagnostic(`granted scopes=${JSON.stringify(token.scopes)} expiresAt=${token.expiresAt}`);
  });

  it('the example server accepts a real MCP initialize with that token (200)', async () => {
    assert.ok(token?.accessToken, 'no token from the previous step');
    const reply = await postInitialize(mcpUrl, token.accessToken);
    assert.equal(reply.status, 200, reply.text);
    assert.ok(reply.headers.get('mcp-session-id'), 'server opened a session');
    const msg = rpcMessage(reply, 1);
    assert.ok(msg?.result, `initialize result: ${reply.text}`);
    assert.equal(typeof msg.result.protocolVersion, 'string');
    assert.ok(msg.result.serverInfo?.name, 'serverInfo.name present');
  });

  it('the same initialize without the token is still refused (401)', async () => {
    const reply = await postInitialize(mcpUrl);
    assert.equal(reply.status, 401, reply.text);
  });
});
