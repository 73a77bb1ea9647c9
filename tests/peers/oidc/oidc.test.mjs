// mcp-auth-sidecar against real peers: an oidc-provider authorization server
// (discovery, open dynamic registration, PKCE S256, RFC 8707 resource
// indicators with JWT access tokens, rotating refresh tokens, RFC 9207 iss)
// and an MCP resource server that verifies those JWTs.
//
//   npm ci
//   PATH=/work/main/tests/conformance/node_modules/.bin:$PATH \
//   MCP_AUTH_SIDECAR_BIN=/path/to/mcp-auth-sidecar node --test
//
// MCP_AUTH_SIDECAR_LOG sets the sidecar's log filter (default "info");
// OIDC_VERBOSE=1 logs every AS/RS request of the peer on stderr.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as jose from 'jose';
import {
  BIN,
  STEP_TIMEOUT,
  withTimeout,
  startPeer,
  getJson,
  asCounts,
  asRequests,
  startSidecar,
  rpc,
  mcpPost,
  initializeMessage,
  browserHops,
  scenario,
  authorize,
  refreshCount,
} from './rig.mjs';


// ---------------------------------------------------------------- the tests

test('mcp-auth-sidecar against oidc-provider and a JWT-checking MCP server', { timeout: 240_000 }, async (t) => {
  // Access tokens live 5 minutes here: longer than mcp/accessToken's default
  // 60-second validity window, so a fresh token is handed out as is, and a
  // refresh can still be forced with a wider window.
  const s = await scenario(t, { OIDC_AT_TTL: process.env.OIDC_AT_TTL || '300' });
  const { peer, info, dirs } = s;

  // Facts shared between the steps; a step whose prerequisite failed is skipped.
  const done = new Set();
  const requires = (st, ...steps) => {
    const missing = steps.filter((x) => !done.has(x));
    if (missing.length) st.skip(`needs: ${missing.join(', ')}`);
    return missing.length === 0;
  };
  let sidecar;
  let firstToken;
  let firstClientId;
  let firstRedirectUri;

  await t.test('the peer itself: MCP answers 401 with resource_metadata, PRM names the issuer', async () => {
    const r = await mcpPost(info.mcp, undefined, initializeMessage(1));
    assert.equal(r.status, 401);
    assert.equal(r.www, `Bearer resource_metadata="${info.prm}"`);
    const prm = await getJson(info.prm);
    assert.equal(prm.resource, info.mcp);
    assert.deepEqual(prm.authorization_servers, [info.issuer]);
    const meta = await getJson(`${info.issuer}/.well-known/oauth-authorization-server`);
    assert.equal(meta.issuer, info.issuer);
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    assert.equal(meta.authorization_response_iss_parameter_supported, true);
    assert.ok(meta.registration_endpoint);
    assert.ok(meta.revocation_endpoint);
    done.add('peer');
  });

  await t.test('first authorization: discovery, dynamic registration, PKCE browser flow', async (st) => {
    if (!requires(st, 'peer')) return;
    sidecar = await s.sidecar();

    const probed = await rpc(sidecar, 'mcp/authStatus', { server: 'peer', probe: true });
    assert.equal(probed.servers.length, 1);
    assert.equal(probed.servers[0].state, 'unauthenticated', JSON.stringify(probed.servers[0]));

    const status = await authorize(sidecar, peer, { server: 'peer' });
    assert.equal(status.state, 'authorized', JSON.stringify(status));
    assert.equal(status.server, 'peer');
    assert.equal(status.url, info.mcp);
    assert.equal(status.issuer, info.issuer);
    assert.equal(status.storage, 'file');

    const pending = sidecar.notifications.filter((n) => n.method === 'mcp/authorizationPending');
    assert.equal(pending.length, 1, 'one mcp/authorizationPending');
    assert.ok(pending[0].params.url.startsWith(`${info.issuer}/auth?`), pending[0].params.url);

    // What reached the AS.
    const counts = await asCounts(peer);
    // oidc-provider accepts only its own scopes in a registration: the
    // sidecar's first attempt (with the MCP scope) is refused with
    // invalid_client_metadata and retried without `scope`.
    const regs = (await asRequests(peer)).filter((r) => r.path === '/reg' && r.method === 'POST');
    assert.equal(regs.filter((r) => r.status === 201).length, 1, `registrations: ${JSON.stringify(counts)}`);
    assert.ok(regs.length <= 2, `at most one retry: ${JSON.stringify(counts)}`);
    assert.equal(counts.token.authorization_code, 1, `token requests: ${JSON.stringify(counts)}`);
    assert.equal(counts.tokenErrors.authorization_code, undefined, `token errors: ${JSON.stringify(counts)}`);

    const log = await asRequests(peer);
    const reg = log.find((r) => r.path === '/reg' && r.method === 'POST' && r.status === 201);
    assert.equal(reg.status, 201);
    assert.equal(reg.client.application_type, 'native');
    assert.equal(reg.client.token_endpoint_auth_method, 'none');
    assert.equal(reg.client.has_client_secret, false);
    assert.deepEqual([...reg.client.grant_types].sort(), ['authorization_code', 'refresh_token']);
    assert.equal(reg.client.redirect_uris.length, 1);
    assert.match(reg.client.redirect_uris[0], /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    firstClientId = reg.clientId;
    firstRedirectUri = reg.client.redirect_uris[0];

    const auth = log.find((r) => r.path === '/auth');
    assert.equal(auth.clientId, firstClientId);
    assert.equal(auth.params.response_type, 'code');
    assert.equal(auth.params.redirect_uri, firstRedirectUri);
    assert.equal(auth.params.resource, info.mcp, 'RFC 8707 resource on the authorization request');
    assert.equal(auth.params.code_challenge_method, 'S256');
    assert.equal(auth.params.has_code_challenge, true);
    assert.equal(auth.params.has_state, true);

    const tokenReq = log.find((r) => r.path === '/token' && r.grantType === 'authorization_code');
    assert.equal(tokenReq.status, 200, JSON.stringify(tokenReq));
    assert.equal(tokenReq.clientId, firstClientId);
    assert.equal(tokenReq.issuedRefreshToken, true, 'the AS issued a refresh token');

    // The browser got the AS's redirect with code, state and RFC 9207 iss,
    // and the sidecar's listener accepted it.
    const callback = browserHops(dirs).find((h) => h.callback);
    assert.ok(callback, 'browser.mjs delivered the callback');
    assert.equal(callback.url, firstRedirectUri);
    assert.ok(callback.status < 400, `callback answered ${callback.status}`);
    assert.deepEqual([...callback.params].sort(), ['code', 'iss', 'state']);
    done.add('authorized');
  });

  await t.test('mcp/accessToken: an audience-bound JWT the MCP server accepts', async (st) => {
    if (!requires(st, 'authorized')) return;
    const tok = await rpc(sidecar, 'mcp/accessToken', { server: 'peer' });
    assert.equal(tok.server, 'peer');
    assert.equal(tok.tokenType, 'Bearer');
    assert.equal(typeof tok.accessToken, 'string');

    const claims = jose.decodeJwt(tok.accessToken);
    const header = jose.decodeProtectedHeader(tok.accessToken);
    assert.equal(header.typ, 'at+jwt');
    assert.equal(claims.aud, info.mcp, 'aud is exactly the MCP resource URL');
    assert.equal(claims.iss, info.issuer);
    assert.equal(claims.client_id, firstClientId);
    assert.equal(typeof tok.expiresAt, 'number');
    assert.ok(Math.abs(tok.expiresAt - claims.exp * 1000) <= 5_000,
      `expiresAt ${tok.expiresAt} matches exp ${claims.exp}`);
    assert.ok(Array.isArray(tok.scopes));
    assert.deepEqual([...tok.scopes].sort(), (claims.scope ?? '').split(' ').filter(Boolean).sort());

    const r = await mcpPost(info.mcp, tok.accessToken, initializeMessage(2));
    assert.equal(r.status, 200, `MCP answered ${r.status} ${r.www ?? ''}`);
    assert.equal(r.body.id, 2);
    assert.equal(r.body.result.serverInfo.name, 'oidc-peer-mcp');
    firstToken = tok.accessToken;
    done.add('token');
  });

  await t.test('restart on the same home: stored registration reused by a forced authorization', async (st) => {
    if (!requires(st, 'authorized')) return;
    await s.close(sidecar);
    const before = await asCounts(peer);
    sidecar = await s.sidecar();

    // The file store survived the restart.
    const stored = await rpc(sidecar, 'mcp/authStatus', { server: 'peer' });
    assert.equal(stored.servers[0].state, 'authorized', JSON.stringify(stored.servers[0]));
    assert.equal(stored.servers[0].issuer, info.issuer);

    const status = await authorize(sidecar, peer, { server: 'peer', force: true });
    assert.equal(status.state, 'authorized', JSON.stringify(status));
    assert.equal(status.issuer, info.issuer);

    const after = await asCounts(peer);
    assert.equal(after.registration, before.registration, 'no second POST /reg reached the AS');
    assert.equal(after.authorization, before.authorization + 1, 'a second browser flow ran');
    assert.equal(after.token.authorization_code, before.token.authorization_code + 1);

    const log = await asRequests(peer);
    const auths = log.filter((r) => r.path === '/auth');
    assert.equal(auths.at(-1).clientId, firstClientId, 'the stored client_id was used');
    assert.equal(auths.at(-1).params.redirect_uri, firstRedirectUri, 'the stored redirect URI was listened on again');
    assert.equal(auths.at(-1).params.resource, info.mcp);

    const tok = await rpc(sidecar, 'mcp/accessToken', { server: 'peer' });
    if (firstToken) assert.notEqual(tok.accessToken, firstToken, 'force produced a new access token');
    assert.equal(jose.decodeJwt(tok.accessToken).aud, info.mcp);
    const r = await mcpPost(info.mcp, tok.accessToken, initializeMessage(3));
    assert.equal(r.status, 200, `MCP answered ${r.status} ${r.www ?? ''}`);
    done.add('reused');
  });

  await t.test('refresh against rotating refresh tokens: one AS request per refresh, rotated token kept',
    async (st) => {
      if (!requires(st, 'authorized')) return;
      const before = await asCounts(peer);

      // The MCP server rejected the token (401): the sidecar refreshes
      // without the user and says retry.
      const rejected = async () => {
        const c = await rpc(sidecar, 'mcp/handleChallenge',
          { server: 'peer', status: 401, wwwAuthenticate: 'Bearer error="invalid_token"' });
        assert.equal(c.action, 'retry', JSON.stringify(c));
        return rpc(sidecar, 'mcp/accessToken', { server: 'peer' });
      };
      const first = await rejected();
      let counts = await asCounts(peer);
      assert.equal(refreshCount(counts) - refreshCount(before), 1,
        `one refresh request reached the AS: ${JSON.stringify(counts)}`);
      assert.equal(counts.tokenErrors.refresh_token, undefined, `refresh errors: ${JSON.stringify(counts)}`);
      assert.equal(jose.decodeJwt(first.accessToken).aud, info.mcp, 'the refreshed token is bound to the resource');
      let r = await mcpPost(info.mcp, first.accessToken, initializeMessage(4));
      assert.equal(r.status, 200, `MCP answered ${r.status} ${r.www ?? ''}`);

      // The second refresh must present the rotated refresh token: presenting
      // the spent one would be invalid_grant and revoke the whole grant.
      const second = await rejected();
      counts = await asCounts(peer);
      assert.equal(refreshCount(counts) - refreshCount(before), 2,
        `two refresh requests reached the AS: ${JSON.stringify(counts)}`);
      const refreshes = (await asRequests(peer)).filter((x) => x.grantType === 'refresh_token');
      assert.ok(refreshes.every((x) => x.status === 200), JSON.stringify(refreshes));
      assert.ok(refreshes.every((x) => x.issuedRefreshToken === true), 'every refresh rotated the refresh token');
      assert.notEqual(second.accessToken, first.accessToken);
      r = await mcpPost(info.mcp, second.accessToken, initializeMessage(5));
      assert.equal(r.status, 200, `MCP answered ${r.status} ${r.www ?? ''}`);

      // Still valid for a short window: served from storage, no request.
      const third = await rpc(sidecar, 'mcp/accessToken', { server: 'peer', minValiditySeconds: 1 });
      assert.equal(third.accessToken, second.accessToken);
      counts = await asCounts(peer);
      assert.equal(refreshCount(counts) - refreshCount(before), 2, 'no third refresh');
    });
});

// oidc-provider's stock rule (OpenID Connect Core §11): offline_access, and
// so a refresh token, only when the authorization request carries
// prompt=consent. The sidecar adds offline_access when the AS lists it
// (SEP-2207), and prompt=consent with it.
test('stock oidc-provider refresh policy: offline_access with prompt=consent yields a refresh token',
  { timeout: 120_000 }, async (t) => {
    const s = await scenario(t, { OIDC_AT_TTL: '300', OIDC_REFRESH_POLICY: 'offline_access' });
    const sidecar = await s.sidecar();
    const status = await authorize(sidecar, s.peer, { server: 'peer' });
    assert.equal(status.state, 'authorized', JSON.stringify(status));
    const log = await asRequests(s.peer);
    const auth = log.find((r) => r.path === '/auth');
    assert.match(auth.params.scope ?? '', /(^| )offline_access( |$)/, 'offline_access survived the authorization request');
    const tokenReq = log.find((r) => r.path === '/token' && r.grantType === 'authorization_code');
    assert.equal(tokenReq.issuedRefreshToken, true, 'the AS issued a refresh token');
  });
