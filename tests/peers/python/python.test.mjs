// The real sidecar against the MCP Python SDK (server.py): its
// authorization-server routes — DCR, /authorize, /token with its client
// authentication, /revoke — with refresh tokens that rotate, and its
// MCPServer as the protected resource. The SDK's PRM names the issuer with a
// trailing slash the AS metadata does not have, and its token endpoint looks
// the client up by a `client_id` in the body.
//
//   scripts/peers.sh, or: scripts/python-venv.sh tests/peers/python &&
//   PATH=<node 22>:$PATH MCP_AUTH_SIDECAR_BIN=… node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  asRequests,
  asState,
  authorize,
  callbackHop,
  freePort,
  getJson,
  initializeMessage,
  mcpPost,
  refreshes,
  rpc,
  scenario,
  sleep,
} from './rig.mjs';

const HERD = 6;
const CYCLES = 2;

/** A scenario with one sidecar that completed mcp/authorize. */
async function authorized(t, peerEnv) {
  const s = await scenario(t, peerEnv);
  const a = await s.sidecar();
  const status = await authorize(a, s);
  assert.equal(status.state, 'authorized', JSON.stringify(status));
  return { s, a, status };
}

/** The 401 the MCP server answers to a token it does not accept. */
async function realChallenge(s) {
  const r = await mcpPost(s.info.mcp, 'not-a-token', initializeMessage(0));
  assert.equal(r.status, 401);
  return { server: 'peer', status: 401, wwwAuthenticate: r.www };
}

const codeExchanges = async (s) => (await asRequests(s.peer)).filter((r) => r.grantType === 'authorization_code');

test('discovery (PRM issuer with a trailing slash), DCR, PKCE, and the token opens the MCP server', { timeout: 120_000 }, async (t) => {
  const s = await scenario(t);
  // The premise: the SDK's PRM and AS metadata spell the issuer differently.
  const origin = new URL(s.info.mcp).origin;
  const prm = await getJson(`${origin}/.well-known/oauth-protected-resource/mcp`);
  assert.deepEqual(prm.authorization_servers, [`${s.info.issuer}/`]);
  const metadata = await getJson(`${s.info.issuer}/.well-known/oauth-authorization-server`);
  assert.equal(metadata.issuer, s.info.issuer);
  assert.deepEqual(metadata.token_endpoint_auth_methods_supported, ['client_secret_post', 'client_secret_basic']);
  const unauthenticated = await mcpPost(s.info.mcp, null, initializeMessage(1));
  assert.equal(unauthenticated.status, 401);
  assert.match(unauthenticated.www, /resource_metadata="/);

  const a = await s.sidecar();
  const status = await authorize(a, s);
  assert.equal(status.state, 'authorized', JSON.stringify(status));
  assert.equal(status.issuer, s.info.issuer, 'the metadata\'s issuer is the one kept');
  // The callback carried `iss`, compared with the metadata's issuer exactly.
  const callback = await callbackHop(s.dirs);
  assert.ok(callback?.params.includes('iss'), JSON.stringify(callback));

  const log = await asRequests(s.peer);
  const registrations = log.filter((r) => r.path === '/register');
  assert.equal(registrations.length, 1);
  assert.equal(registrations[0].status, 201);
  assert.equal(registrations[0].requestedAuthMethod, 'client_secret_post');
  assert.equal(registrations[0].authMethod, 'client_secret_post');
  const [exchange] = await codeExchanges(s);
  assert.equal(exchange.status, 200, JSON.stringify(exchange));
  assert.ok(exchange.clientIdInBody && exchange.secretInBody && !exchange.basic, JSON.stringify(exchange));

  const token = await rpc(a, 'mcp/accessToken', { server: 'peer' });
  const r = await mcpPost(s.info.mcp, token.accessToken, initializeMessage(2));
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.ok(r.body?.result?.serverInfo?.name, JSON.stringify(r.body));
  assert.equal((await mcpPost(s.info.mcp, null, initializeMessage(3))).status, 401);
});

test('a 401 forces a refresh; the refresh token rotates and the spent one is refused by the AS', { timeout: 120_000 }, async (t) => {
  const { s, a } = await authorized(t);
  const before = s.snapshot('before-refresh'); // holds the first refresh token
  const [exchange] = await codeExchanges(s);
  const first = await rpc(a, 'mcp/accessToken', { server: 'peer' });
  const challenge = await realChallenge(s);

  const tokens = [first.accessToken];
  for (let i = 0; i < 2; i++) {
    const outcome = await rpc(a, 'mcp/handleChallenge', challenge);
    assert.equal(outcome.action, 'retry', JSON.stringify(outcome));
    const next = await rpc(a, 'mcp/accessToken', { server: 'peer' });
    assert.ok(!tokens.includes(next.accessToken), 'a new access token');
    tokens.push(next.accessToken);
    assert.equal((await mcpPost(s.info.mcp, next.accessToken, initializeMessage(i))).status, 200);
  }
  const rotations = await refreshes(s.peer);
  assert.equal(rotations.length, 2, JSON.stringify(rotations));
  for (const r of rotations) {
    assert.equal(r.status, 200, JSON.stringify(r));
    assert.ok(r.clientIdInBody && r.secretInBody, JSON.stringify(r));
    assert.ok(r.issuedRefresh && r.issuedRefresh !== r.presentedRefresh, 'a new refresh token each time');
  }
  assert.equal(rotations[0].presentedRefresh, exchange.issuedRefresh);
  assert.equal(rotations[1].presentedRefresh, rotations[0].issuedRefresh, 'the rotated token was stored and used');

  // An instance on the old copy of the store presents the spent token.
  const stale = await s.sidecar(before);
  const outcome = await rpc(stale, 'mcp/handleChallenge', challenge);
  assert.equal(outcome.action, 'authorize', JSON.stringify(outcome));
  const replay = (await refreshes(s.peer))[2];
  assert.equal(replay.presentedRefresh, exchange.issuedRefresh);
  assert.equal(replay.status, 400, JSON.stringify(replay));
  assert.equal(replay.error, 'invalid_grant');
  assert.equal((await asState(s.peer)).reuseDetected, 1);
  // Reuse ended the grant (RFC 9700 §4.14.2): the live token stops working too.
  assert.equal((await mcpPost(s.info.mcp, tokens.at(-1), initializeMessage(9))).status, 401);
});

test(`${HERD} sidecar processes on one home: exactly one refresh reaches the AS per expiry`, { timeout: 240_000 }, async (t) => {
  // 10-second tokens: the refresh window is half of that, so an instance
  // answered late on a loaded machine still finds the fresh token fresh.
  const { s, a } = await authorized(t, { PY_PEER_AT_TTL: '10' });
  const herd = [a];
  while (herd.length < HERD) herd.push(await s.sidecar());
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const { servers } = await rpc(a, 'mcp/authStatus', { server: 'peer' });
    assert.ok(servers[0].expiresAt, 'the AS sent expires_in');
    await sleep(Math.max(0, servers[0].expiresAt - Date.now() + 100));
    const before = (await refreshes(s.peer)).length;
    const tokens = await Promise.all(herd.map((h) => rpc(h, 'mcp/accessToken', { server: 'peer' })));
    const seen = (await refreshes(s.peer)).slice(before);
    assert.equal(seen.length, 1, `cycle ${cycle}: one refresh, got ${JSON.stringify(seen)}`);
    assert.equal(seen[0].status, 200, JSON.stringify(seen[0]));
    assert.equal(new Set(tokens.map((x) => x.accessToken)).size, 1, `cycle ${cycle}: every instance got the same token`);
    const r = await mcpPost(s.info.mcp, tokens[0].accessToken, initializeMessage(cycle));
    assert.equal(r.status, 200, `cycle ${cycle}: the MCP server accepts it`);
  }
  assert.equal((await asState(s.peer)).reuseDetected, 0, 'no spent refresh token was ever presented');
});

test('logout revokes at the AS; the revoked refresh token no longer works', { timeout: 120_000 }, async (t) => {
  const { s, a } = await authorized(t);
  const before = s.snapshot('before-logout');
  const token = await rpc(a, 'mcp/accessToken', { server: 'peer' });
  assert.equal((await mcpPost(s.info.mcp, token.accessToken, initializeMessage(1))).status, 200);

  const out = await rpc(a, 'mcp/logout', { server: 'peer' });
  assert.equal(out.revoked, true, JSON.stringify(out));
  assert.equal(out.status.state, 'unauthenticated');
  const revocations = (await asRequests(s.peer)).filter((r) => r.path === '/revoke');
  assert.deepEqual(revocations.map((r) => r.tokenTypeHint), ['refresh_token', 'access_token']);
  for (const r of revocations) {
    assert.equal(r.status, 200, JSON.stringify(r));
    assert.ok(r.clientIdInBody && r.secretInBody, JSON.stringify(r));
  }
  assert.equal((await mcpPost(s.info.mcp, token.accessToken, initializeMessage(2))).status, 401);

  const stale = await s.sidecar(before);
  const outcome = await rpc(stale, 'mcp/handleChallenge', await realChallenge(s));
  assert.equal(outcome.action, 'authorize', JSON.stringify(outcome));
  const [refused] = await refreshes(s.peer);
  assert.equal(refused.status, 400, JSON.stringify(refused));
  assert.equal(refused.error, 'invalid_grant');
});

test('a configured client with client_secret_basic: Basic header and client_id in the body', { timeout: 120_000 }, async (t) => {
  const port = await freePort();
  const s = await scenario(t, { PY_PEER_PRECLIENT_REDIRECT: `http://127.0.0.1:${port}/callback` });
  const { clientId, clientSecret } = s.info.preregistered;
  const a = await s.sidecar(s.dirs, { clientId, clientSecret, callbackPort: port });
  const status = await authorize(a, s);
  assert.equal(status.state, 'authorized', JSON.stringify(status));
  const log = await asRequests(s.peer);
  assert.equal(log.filter((r) => r.path === '/register').length, 0, 'no registration');
  const [exchange] = log.filter((r) => r.grantType === 'authorization_code');
  assert.equal(exchange.status, 200, JSON.stringify(exchange));
  assert.ok(exchange.basic && exchange.clientIdInBody && !exchange.secretInBody, JSON.stringify(exchange));

  assert.equal((await rpc(a, 'mcp/handleChallenge', await realChallenge(s))).action, 'retry');
  const [refresh] = await refreshes(s.peer);
  assert.equal(refresh.status, 200, JSON.stringify(refresh));
  assert.ok(refresh.basic && refresh.clientIdInBody && !refresh.secretInBody, JSON.stringify(refresh));
  const token = await rpc(a, 'mcp/accessToken', { server: 'peer' });
  assert.equal((await mcpPost(s.info.mcp, token.accessToken, initializeMessage(1))).status, 200);
});
