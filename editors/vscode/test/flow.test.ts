// A full authorization through the protocol client: the REAL sidecar
// against the MCP TypeScript SDK's example server with OAuth
// (simpleStreamableHttp.js --oauth --oauth-strict, auto-approving).

import * as assert from 'node:assert/strict';
import { SidecarClient, SidecarError, ErrorCodes, type AuthorizationPendingParams, type ServerStatus, type ShowDocumentParams } from '../src/client';
import { assertPrerequisites, followBrowser, rejection, sidecarBin, tempHome, until, within } from './support/env';
import { callbackUrlFor, followInBrowser, postInitialize, startExample, type ExampleServer } from './support/exampleServer';

const SERVER = 'sdk-example';
const AUTHORIZE_MS = 30_000;

describe('authorization against the MCP SDK example server (real sidecar)', function () {
  this.timeout(60_000);
  let example: ExampleServer;
  let home: ReturnType<typeof tempHome>;
  const clients: SidecarClient[] = [];
  let logs: string[] = [];

  function newClient(
    browser: 'none' | string[],
    extra: { onShowDocument?: (p: ShowDocumentParams) => Promise<{ success: boolean }>; storage?: 'file' | 'memory' } = {},
  ) {
    const statuses: ServerStatus[] = [];
    const pending: AuthorizationPendingParams[] = [];
    const client = new SidecarClient({
      command: sidecarBin,
      env: home.env,
      initializeParams: {
        processId: process.pid,
        clientInfo: { name: 'vscode-flow-test', version: '1' },
        capabilities: {},
        initializationOptions: {
          storage: extra.storage ?? 'file',
          discoverConfigFiles: false,
          browser: extra.onShowDocument ? 'auto' : browser,
          servers: { [SERVER]: { url: example.mcpUrl } },
        },
      },
      ...(extra.onShowDocument ? { onShowDocument: extra.onShowDocument } : {}),
      onStderr: (l) => logs.push(l),
      log: (l) => logs.push(`[client] ${l}`),
    });
    client.onDidChangeStatus((s) => statuses.push(s));
    client.onAuthorizationPending((p) => pending.push(p));
    clients.push(client);
    return { client, statuses, pending };
  }

  before(async () => {
    assertPrerequisites();
    example = await startExample();
    home = tempHome();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(logs.slice(-60).join('\n'));
    logs = [];
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await example?.stop();
    home?.remove();
  });

  describe('browser flow (the sidecar runs the test browser follow.mjs)', () => {
    let c: ReturnType<typeof newClient>;
    let token: string;

    before(async () => {
      c = newClient(followBrowser);
      await c.client.start();
    });

    it('the example server refuses an unauthenticated MCP request (401)', async () => {
      assert.equal((await postInitialize(example.mcpUrl)).status, 401);
    });

    it('mcp/authStatus with probe learns that the server needs authorization', async () => {
      const { servers } = await c.client.authStatus({ server: SERVER, probe: true });
      assert.equal(servers[0]?.state, 'unauthenticated', JSON.stringify(servers));
    });

    it('mcp/authorize runs discovery, registration, the browser and the token exchange', async () => {
      const status = await within(AUTHORIZE_MS, 'mcp/authorize', c.client.authorize({ server: SERVER }));
      assert.equal(status.state, 'authorized', JSON.stringify(status));
      assert.equal(status.server, SERVER);
      assert.equal(status.url, example.mcpUrl);
      assert.equal(status.storage, 'file');
      assert.equal(status.issuer?.replace(/\/$/, ''), example.issuer.replace(/\/$/, ''));
      assert.ok((status.expiresAt ?? 0) > Date.now());
    });

    it('mcp/authStatusChanged notifications arrived: authorizing, then authorized', async () => {
      await until(2_000, 'the authorized notification', () => c.statuses.some((s) => s.state === 'authorized'));
      const states = c.statuses.filter((s) => s.server === SERVER).map((s) => s.state);
      const authorizing = states.indexOf('authorizing');
      assert.ok(authorizing >= 0, `states: ${states.join(', ')}`);
      assert.ok(states.indexOf('authorized', authorizing) > authorizing, `states: ${states.join(', ')}`);
    });

    it('mcp/authorizationPending carried the authorization URL with a loopback redirect_uri', () => {
      assert.equal(c.pending.length, 1);
      const url = new URL(c.pending[0]!.url);
      assert.equal(url.origin, `http://localhost:${example.authPort}`);
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
      const redirect = new URL(url.searchParams.get('redirect_uri') ?? '');
      assert.equal(redirect.hostname, '127.0.0.1');
    });

    it('mcp/accessToken returns a token the MCP server accepts (HTTP 200 on initialize)', async () => {
      const result = await c.client.accessToken({ server: SERVER });
      assert.equal(result.tokenType, 'Bearer');
      token = result.accessToken;
      const reply = await postInitialize(example.mcpUrl, token);
      assert.equal(reply.status, 200, reply.text);
      assert.ok(reply.headers.get('mcp-session-id'), 'the server opened a session');
    });

    it('mcp/logout flips the server to unauthenticated; mcp/accessToken then answers 1001', async () => {
      const before = c.statuses.length;
      const result = await c.client.logout({ server: SERVER });
      assert.equal(result.server, SERVER);
      assert.equal(typeof result.revoked, 'boolean');
      assert.equal(result.status.state, 'unauthenticated');
      await until(2_000, 'the unauthenticated notification', () =>
        c.statuses.slice(before).some((s) => s.server === SERVER && s.state === 'unauthenticated'),
      );
      const e = await rejection(c.client.accessToken({ server: SERVER }));
      assert.ok(e instanceof SidecarError);
      assert.equal(e.code, ErrorCodes.AuthorizationRequired);
      assert.equal(e.status?.state, 'unauthenticated');
    });
  });

  describe('browser "none"', () => {
    let c: ReturnType<typeof newClient>;
    before(async () => {
      c = newClient('none', { storage: 'memory' });
      await c.client.start();
    });

    it('cancelling a pending mcp/authorize ($/cancelRequest) gives -32800 and releases the listener', async () => {
      const abort = new AbortController();
      const authorizing = c.client.authorize({ server: SERVER }, { signal: abort.signal });
      await until(AUTHORIZE_MS, 'mcp/authorizationPending', () => c.pending.length === 1);
      const redirect = new URL(new URL(c.pending[0]!.url).searchParams.get('redirect_uri') ?? '');
      const statusesBefore = c.statuses.length;
      abort.abort();
      const e = await within(5_000, 'the cancelled authorize', rejection(authorizing));
      assert.ok(e instanceof SidecarError, String(e));
      assert.equal(e.code, ErrorCodes.RequestCancelled);
      assert.equal(e.local, false, 'the sidecar answered -32800 itself');
      await until(2_000, 'a status change away from authorizing', () =>
        c.statuses.slice(statusesBefore).some((s) => s.server === SERVER && s.state !== 'authorizing'),
      );
      await assert.rejects(
        fetch(redirect.origin, { signal: AbortSignal.timeout(2_000) }),
        'the loopback listener is closed after the cancellation',
      );
    });

    it('mcp/completeAuthorization finishes the flow with the pasted callback URL (SSH path)', async () => {
      c.pending.length = 0;
      const authorizing = c.client.authorize({ server: SERVER });
      await until(AUTHORIZE_MS, 'mcp/authorizationPending', () => c.pending.length === 1);
      // What the user copies from the address bar after the AS redirected.
      const callbackUrl = await callbackUrlFor(c.pending[0]!.url);
      const status = await c.client.completeAuthorization({ server: SERVER, callbackUrl });
      assert.equal(status.state, 'authorized', JSON.stringify(status));
      assert.equal((await within(5_000, 'the joined authorize', authorizing)).state, 'authorized');
      const { accessToken } = await c.client.accessToken({ server: SERVER });
      assert.equal((await postInitialize(example.mcpUrl, accessToken)).status, 200);
    });
  });

  it('window/showDocument: the sidecar asks the client to open the URL when the client supports it', async () => {
    const opened: ShowDocumentParams[] = [];
    const c = newClient('none', {
      storage: 'memory',
      onShowDocument: async (params) => {
        opened.push(params);
        // Like a real browser: starts loading, the editor answers at once.
        void followInBrowser(params.uri).catch(() => undefined);
        return { success: true };
      },
    });
    await c.client.start();
    const status = await within(AUTHORIZE_MS, 'mcp/authorize', c.client.authorize({ server: SERVER, force: true }));
    assert.equal(status.state, 'authorized');
    assert.equal(opened.length, 1);
    assert.equal(opened[0]!.external, true);
    assert.equal(opened[0]!.uri, c.pending[0]?.url);
  });
});
