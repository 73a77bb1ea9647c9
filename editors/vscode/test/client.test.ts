// The protocol client against the REAL mcp-auth-sidecar binary
// (MCP_AUTH_SIDECAR_BIN, default this checkout's target/debug/mcp-auth-sidecar).

import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  ClientErrorCodes,
  ErrorCodes,
  SidecarClient,
  SidecarError,
  type ClientState,
  type ExitInfo,
  type SidecarClientOptions,
} from '../src/client';
import { assertPrerequisites, extensionRoot, rejection, sidecarBin, tempHome, until, within } from './support/env';

describe('SidecarClient against the real sidecar', function () {
  this.timeout(30_000);
  let home: ReturnType<typeof tempHome>;
  const clients: SidecarClient[] = [];
  let stderr: string[] = [];

  function newClient(overrides: Partial<SidecarClientOptions> = {}, servers: Record<string, { url: string }> = {
    alpha: { url: 'https://alpha.example.invalid/mcp' },
    beta: { url: 'http://127.0.0.1:9/mcp' },
  }): SidecarClient {
    const client = new SidecarClient({
      command: sidecarBin,
      env: home.env,
      initializeParams: {
        processId: process.pid,
        clientInfo: { name: 'vscode-client-test', version: '1' },
        capabilities: {},
        initializationOptions: { storage: 'memory', discoverConfigFiles: false, browser: 'none', servers },
      },
      onStderr: (line) => stderr.push(line),
      log: (line) => stderr.push(`[client] ${line}`),
      ...overrides,
    });
    clients.push(client);
    return client;
  }

  before(() => {
    assertPrerequisites();
    home = tempHome();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(stderr.slice(-40).join('\n'));
    stderr = [];
    await Promise.all(clients.splice(0).map((c) => c.dispose()));
  });
  after(() => home.remove());

  it('src/client.ts and its imports load in plain Node, without a `vscode` module', () => {
    for (const mod of ['client', 'jsonrpc', 'protocol', 'status', 'urls', 'errors']) {
      const file = join(extensionRoot, 'out', 'src', `${mod}.js`);
      const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${mod}.js: ${r.stderr}`);
    }
  });

  it('initialize handshake: mcpAuth protocol version 1, serverInfo, then `initialized`', async () => {
    const client = newClient();
    const states: ClientState[] = [];
    client.onDidChangeState((e) => states.push(e.state));
    const result = await client.start();
    assert.deepEqual(result.capabilities.experimental?.mcpAuth, { version: 1 });
    assert.equal(result.serverInfo?.name, 'mcp-auth-sidecar');
    assert.equal(typeof result.serverInfo?.version, 'string');
    assert.equal(client.state, 'running');
    assert.deepEqual(states, ['starting', 'running']);
    assert.equal(typeof client.pid, 'number');
    // `initialized` was sent: a request now is served (not -32002).
    await client.authStatus();
  });

  it('requests made while starting wait for the handshake; before start() they fail locally', async () => {
    const client = newClient();
    const early = (await rejection(client.authStatus())) as SidecarError;
    assert.ok(early instanceof SidecarError);
    assert.equal(early.code, ClientErrorCodes.NotRunning);
    assert.equal(early.local, true);
    void client.start();
    const result = await client.authStatus(); // sent only after initialize/initialized
    assert.equal(result.servers.length, 2);
  });

  it('mcp/authStatus reports every configured server, or one', async () => {
    const client = newClient();
    await client.start();
    const all = await client.authStatus();
    const byName = new Map(all.servers.map((s) => [s.server, s]));
    assert.deepEqual([...byName.keys()].sort(), ['alpha', 'beta']);
    assert.equal(byName.get('alpha')?.url, 'https://alpha.example.invalid/mcp');
    assert.equal(byName.get('alpha')?.state, 'unknown');
    assert.equal(byName.get('alpha')?.storage, 'memory');
    assert.deepEqual(byName.get('beta')?.scopes, []);
    const one = await client.authStatus({ server: 'beta' });
    assert.deepEqual(
      one.servers.map((s) => s.server),
      ['beta'],
    );
  });

  it('errors are SidecarErrors with the code: unknown server → -32602', async () => {
    const client = newClient();
    await client.start();
    for (const call of [
      () => client.accessToken({ server: 'no-such-server' }),
      () => client.authorize({ server: 'no-such-server' }),
      () => client.logout({ server: 'no-such-server' }),
      () => client.authStatus({ server: 'no-such-server' }),
    ]) {
      const e = await rejection(call());
      assert.ok(e instanceof SidecarError, String(e));
      assert.equal(e.code, ErrorCodes.InvalidParams, `${e.method}: ${e.code} ${e.message}`);
      assert.equal(e.local, false);
      assert.match(e.message, /no-such-server/);
    }
  });

  it('mcp/accessToken without credentials → 1001 AuthorizationRequired with the ServerStatus as data', async () => {
    const client = newClient();
    await client.start();
    const e = await rejection(client.accessToken({ server: 'alpha' }));
    assert.ok(e instanceof SidecarError);
    assert.equal(e.code, ErrorCodes.AuthorizationRequired);
    assert.equal(e.isAuthorizationRequired, true);
    assert.equal(e.status?.server, 'alpha');
    assert.ok(['unknown', 'unauthenticated'].includes(e.status?.state ?? ''), `state ${e.status?.state}`);
    assert.equal((e.data as { state?: string }).state, e.status?.state);
  });

  it('unknown methods → -32601; malformed params → -32602 naming the field', async () => {
    const client = newClient();
    await client.start();
    const unknown = await rejection(client.request('mcp/noSuchMethod', {}));
    assert.ok(unknown instanceof SidecarError);
    assert.equal(unknown.code, ErrorCodes.MethodNotFound);
    const bad = await rejection(client.request('mcp/accessToken', { srever: 'alpha' }));
    assert.ok(bad instanceof SidecarError);
    assert.equal(bad.code, ErrorCodes.InvalidParams);
    assert.match(bad.message, /server/);
  });

  describe('with an MCP server that never answers', () => {
    let silent: Server;
    let url: string;
    const sockets: Socket[] = [];
    before(async () => {
      silent = createServer((s) => sockets.push(s));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
      const addr = silent.address();
      url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/mcp`;
    });
    after(async () => {
      sockets.forEach((s) => s.destroy());
      await new Promise((r) => silent.close(r));
    });

    it('$/cancelRequest aborts a pending mcp/authorize: the sidecar answers -32800', async () => {
      const client = newClient({}, { hang: { url } });
      await client.start();
      const abort = new AbortController();
      const before = sockets.length;
      const pending = client.authorize({ server: 'hang' }, { signal: abort.signal });
      await until(5_000, 'the sidecar to connect to the MCP server', () => sockets.length > before);
      abort.abort();
      const e = await within(5_000, 'the cancelled authorize to settle', rejection(pending));
      assert.ok(e instanceof SidecarError);
      assert.equal(e.code, ErrorCodes.RequestCancelled);
      assert.equal(e.local, false, 'the -32800 came from the sidecar, not from a local timer');
      // Other requests were never blocked, and still work.
      assert.equal((await client.authStatus({ server: 'hang' })).servers.length, 1);
    });

    it('a crash rejects pending requests (ConnectionClosed), restarts the sidecar, and it serves again', async () => {
      const client = newClient({ restart: { initialDelayMs: 50 } }, { hang: { url } });
      await client.start();
      const firstPid = client.pid;
      assert.ok(firstPid);
      const exits: ExitInfo[] = [];
      client.onDidExit((e) => exits.push(e));
      const restarted = new Promise((r) => client.onDidRestart(r));
      const before = sockets.length;
      const pending = client.authorize({ server: 'hang' });
      await until(5_000, 'the authorize to reach the MCP server', () => sockets.length > before);
      process.kill(firstPid, 'SIGKILL');
      const e = await within(5_000, 'the pending authorize to fail', rejection(pending));
      assert.ok(e instanceof SidecarError);
      assert.equal(e.code, ClientErrorCodes.ConnectionClosed);
      assert.equal(e.local, true);
      // Requests made during the restart wait for it.
      const during = client.authStatus();
      await within(10_000, 'the restart', restarted);
      assert.equal((await during).servers[0]?.server, 'hang');
      assert.equal(client.state, 'running');
      assert.notEqual(client.pid, firstPid);
      assert.deepEqual(exits[0], { code: null, signal: 'SIGKILL', expected: false });
    });
  });

  it('gives up after too many crashes (state failed); start() recovers', async () => {
    const client = newClient({ restart: { maxRestarts: 1, initialDelayMs: 20 } });
    await client.start();
    const restarted = new Promise((r) => client.onDidRestart(r));
    process.kill(client.pid!, 'SIGKILL');
    await within(10_000, 'the first restart', restarted);
    const failed = new Promise((r) => client.onDidChangeState((e) => e.state === 'failed' && r(e)));
    process.kill(client.pid!, 'SIGKILL');
    await within(10_000, 'the client to give up', failed);
    const e = await rejection(client.authStatus());
    assert.ok(e instanceof SidecarError);
    assert.equal(e.code, ClientErrorCodes.NotRunning);
    await client.start();
    assert.equal((await client.authStatus()).servers.length, 2);
  });

  it('stop() runs shutdown and exit; the sidecar exits with status 0', async () => {
    const client = newClient();
    await client.start();
    const exited = new Promise<ExitInfo>((r) => client.onDidExit(r));
    await client.stop();
    assert.deepEqual(await within(5_000, 'exit', exited), { code: 0, signal: null, expected: true });
    assert.equal(client.state, 'stopped');
  });

  it('a missing binary fails start() with a clear local error, and no restart loop', async () => {
    const client = newClient({ command: join(home.home, 'no-such-mcp-auth-sidecar') });
    const e = await rejection(client.start());
    assert.ok(e instanceof SidecarError, String(e));
    assert.equal(e.code, ClientErrorCodes.NotRunning);
    assert.match(e.message, /ENOENT/);
    assert.equal(client.state, 'failed');
  });
});
