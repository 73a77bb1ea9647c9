// Shared by the Python-peer suites: starts server.py (the MCP Python SDK's
// authorization-server routes and MCPServer, from the pinned .venv) and
// real sidecar processes on a temp home, with timeouts on everything.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Sidecar } from '../../conformance/sidecar.mjs';
import { browserHops, freePort, getJson, initializeMessage as initializeAs, mcpPost, rpc, sleep, STEP_TIMEOUT, withTimeout } from '../shared.mjs';

export { browserHops, freePort, getJson, mcpPost, rpc, sleep, STEP_TIMEOUT, withTimeout };
export const initializeMessage = (id) => initializeAs(id, 'python-peer-test');

const here = dirname(fileURLToPath(import.meta.url));
const BROWSER = join(here, '../oidc/browser.mjs'); // fills and submits the consent form
export const BIN = process.env.MCP_AUTH_SIDECAR_BIN;
export const PYTHON = process.env.PY_PEER_PYTHON || join(here, '.venv/bin/python');

/**
 * Starts server.py; resolves with its ready line and a stop(). It exits on
 * its own when its stdin closes, so a crashed test leaves nothing behind.
 */
export async function startPeer(env = {}) {
  assert.ok(existsSync(PYTHON), `no Python peer venv at ${PYTHON}: run scripts/python-venv.sh tests/peers/python`);
  const proc = spawn(PYTHON, [join(here, 'server.py')], {
    env: { ...process.env, ...env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr = [];
  proc.stderr.on('data', (chunk) => {
    stderr.push(chunk);
    if (process.env.PY_PEER_VERBOSE) process.stderr.write(chunk);
  });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: proc.stdout });
  const first = new Promise((resolve) => lines.once('line', resolve));
  const errors = () => Buffer.concat(stderr).toString();
  let line;
  try {
    line = await withTimeout(
      Promise.race([first, exited.then((e) => { throw new Error(`server.py exited early: ${JSON.stringify(e)}`); })]),
      30_000,
      'server.py ready line',
    );
  } catch (e) {
    proc.kill('SIGKILL');
    e.message += `\n${errors()}`;
    throw e;
  }
  return {
    info: JSON.parse(line),
    errors,
    async stop() {
      proc.stdin.end();
      await withTimeout(exited, 10_000, 'server.py exit').catch(() => {
        proc.kill('SIGKILL');
        return exited;
      });
    },
  };
}

/** Every POST the AS answered at /token, /register and /revoke. */
export const asRequests = (peer) => getJson(`${peer.info.control}/requests`);
export const asState = (peer) => getJson(`${peer.info.control}/state`);
export const refreshes = async (peer) => (await asRequests(peer)).filter((r) => r.grantType === 'refresh_token');

/** A sidecar process on `dirs`, with one server `peer` (plus `extra` config). */
export async function startSidecar(dirs, mcpUrl, extra = {}) {
  const sidecar = new Sidecar(BIN, {
    ...process.env,
    HOME: dirs.home,
    XDG_CONFIG_HOME: join(dirs.home, '.config'),
    XDG_DATA_HOME: join(dirs.home, '.local', 'share'),
    XDG_STATE_HOME: join(dirs.home, '.local', 'state'),
    XDG_CACHE_HOME: join(dirs.home, '.cache'),
    MCP_AUTH_SIDECAR_HOME: dirs.sidecarHome,
    MCP_AUTH_SIDECAR_LOG: process.env.MCP_AUTH_SIDECAR_LOG || 'warn',
    BROWSER_LOG: dirs.browserLog,
  });
  try {
    const init = await withTimeout(
      sidecar.ok('initialize', {
        processId: process.pid,
        clientInfo: { name: 'python-peer-test', version: '1' },
        capabilities: {},
        initializationOptions: {
          storage: 'file',
          discoverConfigFiles: false,
          // A flow that goes wrong ends with the sidecar's error, before STEP_TIMEOUT.
          authorizationTimeout: 45,
          browser: [process.execPath, BROWSER],
          servers: { peer: { url: mcpUrl, ...extra } },
        },
      }),
      STEP_TIMEOUT,
      'initialize',
    );
    assert.deepEqual(init.capabilities?.experimental?.mcpAuth, { version: 1 });
  } catch (e) {
    await sidecar.close();
    throw e;
  }
  sidecar.notify('initialized', {});
  return sidecar;
}

/** The browser's callback hop: it logs it once the listener answered, which
 * may be just after mcp/authorize returned. */
export async function callbackHop(dirs) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const hop = browserHops(dirs).find((h) => h.callback);
    if (hop || Date.now() > deadline) return hop;
    await sleep(50);
  }
}

/** A peer and a temp home for sidecars, all torn down after `t`. */
export async function scenario(t, peerEnv = {}) {
  assert.ok(BIN, 'set MCP_AUTH_SIDECAR_BIN to the sidecar binary');
  assert.ok(existsSync(BIN), `MCP_AUTH_SIDECAR_BIN does not exist: ${BIN}`);
  const root = mkdtempSync(join(tmpdir(), 'mcp-auth-python-peer-'));
  const sidecars = [];
  let peer;
  t.after(async () => {
    for (const s of sidecars) await s.close().catch(() => {});
    if (peer) await peer.stop();
    rmSync(root, { recursive: true, force: true });
  });
  peer = await startPeer(peerEnv);
  const dirs = {
    root,
    home: join(root, 'home'),
    sidecarHome: join(root, 'sidecar-home'),
    browserLog: join(root, 'browser.jsonl'),
  };
  mkdirSync(dirs.home, { recursive: true });
  return {
    peer,
    info: peer.info,
    dirs,
    /** A sidecar on this scenario's home (or `other` dirs), `extra` in its server entry. */
    async sidecar(other = dirs, extra = {}) {
      const s = await startSidecar(other, peer.info.mcp, extra);
      sidecars.push(s);
      return s;
    },
    /** A copy of the sidecar home as it is now (it holds today's refresh token). */
    snapshot(name) {
      const copy = { ...dirs, sidecarHome: join(root, name) };
      cpSync(dirs.sidecarHome, copy.sidecarHome, { recursive: true });
      return copy;
    },
  };
}

/** mcp/authorize; a refusal is reported with what the AS saw and said. */
export async function authorize(sidecar, s) {
  try {
    return await rpc(sidecar, 'mcp/authorize', { server: 'peer' });
  } catch (e) {
    const log = await asRequests(s.peer).catch(() => []);
    e.message += `\nAS requests:\n${log.map((r) => JSON.stringify(r)).join('\n')}\nserver.py stderr:\n${s.peer.errors().slice(-4000)}`;
    throw e;
  }
}
