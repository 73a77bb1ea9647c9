// Shared by the oidc-provider peer suites: starts server.mjs (oidc-provider
// plus a JWT-checking MCP resource server) and real sidecar processes on a
// temp home, with timeouts on everything.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request as httpsRequestRaw } from 'node:https';
import { mkdtempSync, rmSync, readFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import * as jose from 'jose';
import { Sidecar } from '../../conformance/sidecar.mjs';
import { browserHops, getJson, initializeMessage as initializeAs, mcpPost, rpc, sleep, STEP_TIMEOUT, withTimeout } from '../shared.mjs';

export { browserHops, getJson, mcpPost, rpc, sleep, STEP_TIMEOUT, withTimeout };
export const initializeMessage = (id) => initializeAs(id, 'oidc-peer-test');

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.MCP_AUTH_SIDECAR_BIN;

// ---------------------------------------------------------------- helpers

/**
 * One request over https trusting only `ca` (the test process was started
 * before the test CA existed, so NODE_EXTRA_CA_CERTS cannot help it).
 * Resolves with {status, headers, body} (body parsed as JSON when it is).
 */
export function httpsRequest(url, { ca, method = 'GET', headers = {}, body } = {}) {
  const request = new Promise((resolve, reject) => {
    const req = httpsRequestRaw(url, { ca, method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = text;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {}
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
  return withTimeout(request, 10_000, `${method} ${url}`);
}

/** Starts server.mjs; resolves with its ready line and a stop(). With `ca`,
 *  its JSON helpers trust that CA (a peer served over https). */
export async function startPeer(env = {}, { ca } = {}) {
  const proc = spawn(process.execPath, [join(here, 'server.mjs')], {
    env: { ...process.env, ...env, OIDC_EXIT_ON_STDIN_EOF: '1' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: proc.stdout });
  const first = new Promise((resolve) => lines.once('line', resolve));
  const line = await withTimeout(
    Promise.race([first, exited.then((e) => { throw new Error(`server.mjs exited early: ${JSON.stringify(e)}`); })]),
    15_000,
    'server.mjs ready line',
  );
  const info = JSON.parse(line);
  return {
    info,
    async getJson(url) {
      if (!ca) return getJson(url);
      const r = await httpsRequest(url, { ca });
      assert.equal(r.status, 200, `GET ${url}`);
      return r.body;
    },
    async stop() {
      proc.kill('SIGTERM');
      await withTimeout(exited, 5_000, 'server.mjs exit').catch(() => proc.kill('SIGKILL'));
    },
  };
}

export const asCounts = (peer) => peer.getJson(`${peer.info.asControl}/counts`);
export const asRequests = (peer) => peer.getJson(`${peer.info.asControl}/requests`);

/** The variables of the machine's TLS and proxy setup: a test that cares sets
 *  its own, and no other test inherits them from whoever runs the suite. */
export const NETWORK_ENV = ['SSL_CERT_FILE', 'SSL_CERT_DIR', 'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY',
  'http_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy', 'NODE_EXTRA_CA_CERTS', 'NODE_USE_ENV_PROXY'];

/** A sidecar process on `dirs`, initialized with one server `peer`; `env`
 *  is added to its environment (an `undefined` value removes a variable). */
export async function startSidecar(dirs, mcpUrl, { storage = 'file', env = {} } = {}) {
  const base = { ...process.env };
  for (const name of NETWORK_ENV) delete base[name];
  const merged = { ...base, ...env };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  const sidecar = new Sidecar(BIN, {
    ...merged,
    HOME: dirs.home,
    XDG_CONFIG_HOME: join(dirs.home, '.config'),
    XDG_DATA_HOME: join(dirs.home, '.local', 'share'),
    XDG_STATE_HOME: join(dirs.home, '.local', 'state'),
    XDG_CACHE_HOME: join(dirs.home, '.cache'),
    MCP_AUTH_SIDECAR_HOME: dirs.sidecarHome,
    MCP_AUTH_SIDECAR_LOG: process.env.MCP_AUTH_SIDECAR_LOG || 'info',
    // Read by browser.mjs, which the sidecar spawns with its environment.
    BROWSER_LOG: dirs.browserLog,
  });
  const init = await withTimeout(
    sidecar.ok('initialize', {
      processId: process.pid,
      clientInfo: { name: 'oidc-peer-test', version: '1' },
      capabilities: {},
      initializationOptions: {
        storage,
        discoverConfigFiles: false,
        browser: [process.execPath, join(here, 'browser.mjs')],
        servers: { peer: { url: mcpUrl } },
      },
    }),
    STEP_TIMEOUT,
    'initialize',
  );
  assert.deepEqual(init.capabilities?.experimental?.mcpAuth, { version: 1 });
  sidecar.notify('initialized', {});
  return sidecar;
}

/** A peer and a temp home for sidecars, torn down after `t`. `peerOptions`
 *  go to startPeer. */
export async function scenario(t, peerEnv, peerOptions) {
  assert.ok(BIN, 'set MCP_AUTH_SIDECAR_BIN to the sidecar binary');
  assert.ok(existsSync(BIN), `MCP_AUTH_SIDECAR_BIN does not exist: ${BIN}`);
  const peer = await startPeer(peerEnv, peerOptions);
  const root = mkdtempSync(join(tmpdir(), 'mcp-auth-oidc-peer-'));
  const dirs = {
    home: join(root, 'home'),
    sidecarHome: join(root, 'sidecar-home'),
    browserLog: join(root, 'browser.jsonl'),
  };
  mkdirSync(dirs.home, { recursive: true });
  const sidecars = [];
  t.after(async () => {
    for (const s of sidecars) await s.close().catch(() => {});
    await peer.stop();
    rmSync(root, { recursive: true, force: true });
  });
  return {
    peer,
    info: peer.info,
    dirs,
    async sidecar(options) {
      const s = await startSidecar(dirs, peer.info.mcp, options);
      sidecars.push(s);
      return s;
    },
    async close(s) {
      await s.close();
      sidecars.splice(sidecars.indexOf(s), 1);
    },
  };
}

/** mcp/authorize; a refusal is reported with what the AS saw. */
export async function authorize(sidecar, peer, params) {
  try {
    return await rpc(sidecar, 'mcp/authorize', params);
  } catch (e) {
    const log = await asRequests(peer).catch(() => []);
    const relevant = log.filter((r) => r.path !== '/jwks' && !r.path.startsWith('/interaction/') && !r.path.startsWith('/auth/'));
    e.message += `\nAS requests:\n${relevant.map((r) => JSON.stringify(r)).join('\n')}`;
    throw e;
  }
}

export const refreshCount = (counts) => counts.token.refresh_token || 0;
