// A real OAuth 2.1 authorization server (oidc-provider) and a small MCP
// protected resource that trusts it, both on loopback, for testing
// mcp-auth-sidecar against real peers.
//
//   node server.mjs
//
// Prints one JSON line on stdout when both listen:
//   {"issuer", "mcp", "resource", "prm", "jwks", "asControl", "rsControl",
//    "accessTokenTtl", "refreshPolicy", "scopes", "asListsResourceScopes"}
// Everything else (oidc-provider's notices, request log) goes to stderr.
//
// Environment (all optional):
//   OIDC_AS_PORT, OIDC_RS_PORT  ports (default 0 = chosen by the OS)
//   OIDC_AT_TTL                 access-token lifetime in seconds (default 60)
//   OIDC_RT_TTL                 refresh-token lifetime in seconds (default 14 days)
//   OIDC_AT_ALG                 JWS alg of the JWT access tokens (default ES256)
//   OIDC_RS_SCOPES              space-separated scopes of the MCP resource,
//                               listed in its PRM scopes_supported (default "mcp:tools").
//                               Empty: the PRM lists none; oidc-provider then has no
//                               scope to grant for the resource and answers
//                               access_denied unless offline_access is granted.
//   OIDC_AS_LISTS_RS_SCOPES=1   also list the resource's scopes among the AS's own
//                               scopes (discovery scopes_supported). oidc-provider
//                               accepts in a registration's `scope` only the AS's own
//                               scopes, so without this a client that registers with
//                               the PRM's scopes gets invalid_client_metadata. Off by
//                               default: oidc-provider's documented setup keeps
//                               resource-server scopes out of `scopes`.
//   OIDC_REFRESH_POLICY         when the AS issues refresh tokens:
//                               "grant_type" (default): to every client registered
//                                 with the refresh_token grant (pure OAuth 2.1 rule);
//                               "offline_access": oidc-provider's stock rule, only when
//                                 offline_access was granted, which oidc-provider keeps
//                                 only when the authorization request has prompt=consent
//                                 (OpenID Connect Core §11);
//                               "never"
//   OIDC_TLS_CERT, OIDC_TLS_KEY PEM files: serve both over https with this certificate
//                               (its CA must then be in NODE_EXTRA_CA_CERTS, for the
//                               MCP server's own requests to the AS's jwks)
//   OIDC_VERBOSE=1              log every AS/RS request on stderr
//   OIDC_EXIT_ON_STDIN_EOF=1    exit when stdin closes (a test runner gives a pipe,
//                               so a killed runner leaves no server behind)
//
// Test-only control endpoints (GET, JSON):
//   <issuer>/__test/requests    every request the AS answered, in order:
//                               {seq, at, method, path, status, error?, errorDescription?,
//                                errorDetail? (oidc-provider's reason, e.g. "refresh token
//                                already used"), clientId?,
//                                POST /token: grantType, resource?, issuedRefreshToken?, scope?,
//                                POST /reg: requested (metadata sent), client (registered),
//                                GET /auth: params (response_type, redirect_uri, scope,
//                                  resource, prompt, code_challenge_method, ...)}
//   <issuer>/__test/counts      {registration, authorization, token: {<grant_type>: n},
//                                tokenErrors: {<grant_type>: n}, revocation}
//   <rs>/__test/requests        every /mcp and PRM request: {seq, at, method, path,
//                                status, error?, aud?, sub?, clientId?, jti?, scope?, rpc?}
//   POST <issuer>/__test/reset  clears both logs
//   POST <issuer>/__test/delay?before=MS&after=MS
//                               delays token responses before or after the AS
//                               handles them (0 turns a delay off)
//   <issuer>/__test/held        {held: n}: token requests held back by
//                               `before` at this moment
// The logs never hold token values.

import * as http from 'node:http';
import * as https from 'node:https';
import { readFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import * as jose from 'jose';
import Provider, { errors as oidcErrors } from 'oidc-provider';

// oidc-provider prints notices with console.info (stdout); stdout is reserved
// for the ready line.
console.info = (...args) => console.error(...args);

const HOST = '127.0.0.1';
const AT_TTL = positiveInt(process.env.OIDC_AT_TTL, 60);
const RT_TTL = positiveInt(process.env.OIDC_RT_TTL, 14 * 24 * 3600);
const AT_ALG = process.env.OIDC_AT_ALG || 'ES256';
const RS_SCOPES = (process.env.OIDC_RS_SCOPES ?? 'mcp:tools').split(' ').filter(Boolean);
const REFRESH_POLICY = process.env.OIDC_REFRESH_POLICY || 'grant_type';
const AS_LISTS_RS_SCOPES = process.env.OIDC_AS_LISTS_RS_SCOPES === '1';
const VERBOSE = process.env.OIDC_VERBOSE === '1';

if (!['grant_type', 'offline_access', 'never'].includes(REFRESH_POLICY)) {
  throw new Error(`OIDC_REFRESH_POLICY must be grant_type, offline_access or never, not ${REFRESH_POLICY}`);
}

function positiveInt(value, fallback) {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive integer, got ${value}`);
  return n;
}

function log(...args) {
  if (VERBOSE) console.error('[peer]', ...args);
}

async function listen(server, port) {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address().port;
}

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

async function readBody(req, limit = 1 << 20) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// ---------------------------------------------------------------- signing keys

async function signingKeys() {
  const keys = [];
  for (const alg of new Set(['RS256', 'ES256', AT_ALG])) {
    const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
    const jwk = await jose.exportJWK(privateKey);
    keys.push({ ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}` });
  }
  return keys;
}

// ---------------------------------------------------------------- sockets first

// Both listeners are bound before the provider is built: the issuer and the
// resource identifier contain the ports.
const tls = process.env.OIDC_TLS_CERT
  ? { cert: readFileSync(process.env.OIDC_TLS_CERT), key: readFileSync(process.env.OIDC_TLS_KEY) }
  : null;
const createServer = () => (tls ? https.createServer(tls) : http.createServer());
const scheme = tls ? 'https' : 'http';
const asServer = createServer();
const rsServer = createServer();
const asPort = await listen(asServer, Number(process.env.OIDC_AS_PORT || 0));
const rsPort = await listen(rsServer, Number(process.env.OIDC_RS_PORT || 0));

const issuer = `${scheme}://${HOST}:${asPort}`;
const rsOrigin = `${scheme}://${HOST}:${rsPort}`;
const resource = `${rsOrigin}/mcp`;
const prmUrl = `${rsOrigin}/.well-known/oauth-protected-resource/mcp`;

// ---------------------------------------------------------------- authorization server

const provider = new Provider(issuer, {
  jwks: { keys: await signingKeys() },
  cookies: { keys: [randomBytes(32).toString('base64url'), randomBytes(32).toString('base64url')] },
  // OAuth-only clients: no id_token response types.
  responseTypes: ['code'],
  // S256 is the only method oidc-provider 9 implements; require it for every
  // client, confidential or public.
  pkce: { required: () => true },
  // The AS's own scopes. The resource's scopes come from
  // getResourceServerInfo and are not listed here (see OIDC_AS_LISTS_RS_SCOPES).
  scopes: ['openid', 'offline_access', ...(AS_LISTS_RS_SCOPES ? RS_SCOPES : [])],
  clientDefaults: {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  },
  ttl: {
    AccessToken: () => AT_TTL,
    RefreshToken: () => RT_TTL,
    // Defaults, stated so oidc-provider does not warn about them.
    AuthorizationCode: () => 60,
    IdToken: () => 3600,
    Interaction: () => 600,
    Session: () => 14 * 24 * 3600,
    Grant: () => 14 * 24 * 3600,
  },
  // Refresh-token issuance (see OIDC_REFRESH_POLICY). oidc-provider's stock
  // rule wants offline_access in the grant, and its authorization endpoint
  // drops a requested offline_access unless response_type has `code`, the
  // client may use the refresh_token grant and `prompt` contains `consent`.
  issueRefreshToken: async (ctx, client, source) => {
    if (!client.grantTypeAllowed('refresh_token')) return false;
    if (REFRESH_POLICY === 'never') return false;
    if (REFRESH_POLICY === 'grant_type') return true;
    return source.scopes.has('offline_access');
  },
  // Refresh tokens outlive the AS browser session (the stock rule ties them
  // to it unless offline_access was granted).
  expiresWithSession: async () => false,
  // Rotation: every refresh of a public (token_endpoint_auth_method none),
  // non-sender-constrained client spends the presented refresh token and
  // issues a new one (this is also oidc-provider's default rule). Presenting a
  // spent one is answered invalid_grant ("refresh token already used") and
  // revokes the whole grant: every token of that authorization dies.
  rotateRefreshToken: (ctx) => {
    const { Client: client, RefreshToken: rt } = ctx.oidc.entities;
    if (client.clientAuthMethod === 'none' && !rt.isSenderConstrained()) return true;
    return rt.ttlPercentagePassed() >= 70;
  },
  features: {
    // Login accepts any username/password; consent grants what was asked.
    devInteractions: { enabled: true },
    // RFC 7591, open: no initial access token.
    registration: { enabled: true, initialAccessToken: false },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: false },
    // The sidecar does not do DPoP or PAR; keep the metadata plain.
    dPoP: { enabled: false },
    pushedAuthorizationRequests: { enabled: false },
    rpInitiatedLogout: { enabled: false },
    // RFC 8707. The MCP resource is the only resource server this AS knows;
    // its access tokens are RFC 9068 JWTs whose `aud` is the resource URL.
    resourceIndicators: {
      enabled: true,
      // No `resource` in the request: no audience-bound token (the code and
      // refresh grants fall back to the resource granted at authorization).
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        if (indicator !== resource) {
          throw new oidcErrors.InvalidTarget(`unknown resource ${indicator}`);
        }
        return {
          audience: resource,
          scope: RS_SCOPES.join(' '),
          accessTokenTTL: AT_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: AT_ALG } },
        };
      },
    },
  },
  // Every subject exists.
  findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
});

// ---- request log (test-only)

const asRequests = [];
const rsRequests = [];
let seq = 0;

provider.use(async (ctx, next) => {
  await next();
  const entry = { seq: ++seq, at: Date.now(), method: ctx.method, path: ctx.path, status: ctx.status };
  if (ctx.path === '/token' && ctx.method === 'POST') {
    entry.grantType = ctx.oidc?.params?.grant_type ?? 'unknown';
    entry.clientId = ctx.oidc?.client?.clientId;
    entry.resource = ctx.oidc?.params?.resource;
    if (ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      entry.issuedRefreshToken = typeof ctx.body.refresh_token === 'string';
      entry.scope = ctx.body.scope;
    }
  }
  if (ctx.path === '/reg' && ctx.method === 'POST' && ctx.oidc?.body && typeof ctx.oidc.body === 'object') {
    // The client metadata as sent (a public client's registration carries no secret).
    const { client_secret: _s, jwks: _j, ...requested } = ctx.oidc.body;
    entry.requested = requested;
  }
  if (ctx.path === '/reg' && ctx.method === 'POST' && ctx.status === 201) {
    const b = ctx.body;
    entry.clientId = b.client_id;
    entry.client = {
      application_type: b.application_type,
      client_name: b.client_name,
      grant_types: b.grant_types,
      response_types: b.response_types,
      redirect_uris: b.redirect_uris,
      token_endpoint_auth_method: b.token_endpoint_auth_method,
      scope: b.scope,
      has_client_secret: typeof b.client_secret === 'string',
    };
  }
  if (ctx.path === '/auth' && ctx.oidc?.params) {
    // The authorization request as the AS parsed it (no state, no challenge).
    const p = ctx.oidc.params;
    entry.clientId = p.client_id;
    entry.params = {
      response_type: p.response_type,
      redirect_uri: p.redirect_uri,
      scope: p.scope,
      resource: p.resource,
      prompt: p.prompt,
      code_challenge_method: p.code_challenge_method,
      has_code_challenge: typeof p.code_challenge === 'string',
      has_state: typeof p.state === 'string',
    };
  }
  if (ctx.path === '/token/revocation' && ctx.method === 'POST') {
    entry.tokenTypeHint = ctx.oidc?.params?.token_type_hint;
  }
  if (ctx.status >= 400 && ctx.body && typeof ctx.body === 'object' && ctx.body.error) {
    entry.error = ctx.body.error;
    entry.errorDescription = ctx.body.error_description;
  }
  // oidc-provider keeps the reason out of the response; the error events
  // below put it here.
  if (ctx.state.errorDetail) entry.errorDetail = ctx.state.errorDetail;
  asRequests.push(entry);
  log('AS', entry.method, entry.path, entry.status, entry.grantType ?? '', entry.error ?? '');
});

provider.on('server_error', (ctx, err) => console.error('[peer] AS server_error', ctx.path, err));
for (const event of ['grant.error', 'registration_create.error', 'authorization.error', 'revocation.error', 'introspection.error']) {
  provider.on(event, (ctx, err) => {
    ctx.state.errorDetail = err.error_detail || err.error_description || err.message;
    log(`AS ${event}`, err.error, ctx.state.errorDetail);
  });
}

function asCounts() {
  const counts = { registration: 0, authorization: 0, token: {}, tokenErrors: {}, revocation: 0 };
  for (const r of asRequests) {
    if (r.path === '/reg' && r.method === 'POST') counts.registration += 1;
    else if (r.path === '/auth') counts.authorization += 1;
    else if (r.path === '/token/revocation' && r.method === 'POST') counts.revocation += 1;
    else if (r.path === '/token' && r.method === 'POST') {
      counts.token[r.grantType] = (counts.token[r.grantType] || 0) + 1;
      if (r.status >= 400) counts.tokenErrors[r.grantType] = (counts.tokenErrors[r.grantType] || 0) + 1;
    }
  }
  return counts;
}

// Test control: delay token responses, before the AS handles the request
// (nothing is spent yet) or after (a refresh token is already rotated when
// the client is, say, killed while waiting).
const tokenDelay = { before: 0, after: 0 };
// Token requests being held back by `before` right now (GET
// <issuer>/__test/held): tests wait for a request to be at the AS instead
// of sleeping and hoping it got there.
let held = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
provider.use(async (ctx, next) => {
  const delayed = ctx.path === '/token' && ctx.method === 'POST';
  if (delayed && tokenDelay.before) {
    held += 1;
    await sleep(tokenDelay.before).finally(() => (held -= 1));
    // The client died while the request was held back: as if it never
    // reached the AS, nothing is spent.
    if (ctx.req.socket.destroyed) {
      ctx.status = 499;
      return;
    }
  }
  await next();
  if (delayed && tokenDelay.after) await sleep(tokenDelay.after);
});

const providerCallback = provider.callback();
asServer.on('request', (req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/__test/delay' && req.method === 'POST') {
    const q = new URL(req.url, issuer).searchParams;
    tokenDelay.before = Number(q.get('before') || 0);
    tokenDelay.after = Number(q.get('after') || 0);
    return sendJson(res, 200, tokenDelay);
  }
  if (path === '/__test/requests' && req.method === 'GET') return sendJson(res, 200, asRequests);
  if (path === '/__test/counts' && req.method === 'GET') return sendJson(res, 200, asCounts());
  if (path === '/__test/held' && req.method === 'GET') return sendJson(res, 200, { held });
  if (path === '/__test/reset' && req.method === 'POST') {
    asRequests.length = 0;
    rsRequests.length = 0;
    return sendJson(res, 200, { ok: true });
  }
  return providerCallback(req, res);
});

// ---------------------------------------------------------------- MCP resource server

const jwks = jose.createRemoteJWKSet(new URL(`${issuer}/jwks`));
const prm = {
  resource,
  authorization_servers: [issuer],
  bearer_methods_supported: ['header'],
  ...(RS_SCOPES.length ? { scopes_supported: RS_SCOPES } : {}),
  resource_name: 'oidc-provider peer MCP server',
};

function challenge(res, error, description) {
  let www = `Bearer resource_metadata="${prmUrl}"`;
  if (error) www += `, error="${error}", error_description="${description.replace(/["\\]/g, '')}"`;
  sendJson(res, 401, { error: error || 'unauthorized' }, { 'WWW-Authenticate': www });
}

/** Verifies an RFC 9068 access token issued by the AS for this resource. */
async function verifyAccessToken(token) {
  const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
    issuer,
    audience: resource,
    typ: 'at+jwt',
    algorithms: [AT_ALG],
    clockTolerance: 0,
    requiredClaims: ['exp', 'iat', 'sub', 'client_id'],
  });
  // Audience bound to this resource and nothing else.
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (aud.length !== 1 || aud[0] !== resource) {
    throw new Error(`aud ${JSON.stringify(payload.aud)} is not exactly ${resource}`);
  }
  return { payload, protectedHeader };
}

function mcpReply(message) {
  if (message.id === undefined) return null; // notification
  switch (message.method) {
    case 'initialize':
      return {
        jsonrpc: '2.0',
        id: message.id,
        result: {
          protocolVersion: message.params?.protocolVersion || '2025-11-25',
          capabilities: { tools: {} },
          serverInfo: { name: 'oidc-peer-mcp', version: '1.0.0' },
        },
      };
    case 'tools/list':
      return { jsonrpc: '2.0', id: message.id, result: { tools: [] } };
    case 'ping':
      return { jsonrpc: '2.0', id: message.id, result: {} };
    default:
      return { jsonrpc: '2.0', id: message.id, error: { code: -32601, message: `unknown method ${message.method}` } };
  }
}

rsServer.on('request', async (req, res) => {
  const path = req.url.split('?')[0];
  try {
    if (path === '/__test/requests' && req.method === 'GET') return sendJson(res, 200, rsRequests);
    if (req.method === 'GET' && path === '/.well-known/oauth-protected-resource/mcp') {
      rsRequests.push({ seq: ++seq, at: Date.now(), method: req.method, path, status: 200 });
      return sendJson(res, 200, prm);
    }
    if (path !== '/mcp') {
      rsRequests.push({ seq: ++seq, at: Date.now(), method: req.method, path, status: 404 });
      return sendJson(res, 404, { error: 'not_found' });
    }

    const entry = { seq: ++seq, at: Date.now(), method: req.method, path };
    rsRequests.push(entry);
    const done = (status, extra = {}) => {
      Object.assign(entry, { status }, extra);
      log('RS', req.method, path, status, extra.error ?? '');
    };

    const auth = req.headers.authorization || '';
    const m = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/.exec(auth);
    if (!m) {
      done(401, { error: auth ? 'invalid_request' : 'no_token' });
      return challenge(res);
    }
    let payload;
    try {
      ({ payload } = await verifyAccessToken(m[1]));
    } catch (e) {
      done(401, { error: 'invalid_token', reason: e.code || e.message });
      return challenge(res, 'invalid_token', e.message);
    }
    const claims = { aud: payload.aud, sub: payload.sub, clientId: payload.client_id, jti: payload.jti, scope: payload.scope };

    if (req.method !== 'POST') {
      done(405, claims);
      return sendJson(res, 405, { error: 'method_not_allowed' }, { Allow: 'POST' });
    }
    let message;
    try {
      message = JSON.parse(await readBody(req));
    } catch {
      done(400, claims);
      return sendJson(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } });
    }
    const reply = mcpReply(message);
    if (!reply) {
      done(202, claims);
      res.writeHead(202).end();
      return;
    }
    done(200, { ...claims, rpc: message.method });
    return sendJson(res, 200, reply);
  } catch (e) {
    console.error('[peer] RS error', e);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
  }
});

// ---------------------------------------------------------------- ready

const ready = {
  issuer,
  mcp: resource,
  resource,
  prm: prmUrl,
  jwks: `${issuer}/jwks`,
  asControl: `${issuer}/__test`,
  rsControl: `${rsOrigin}/__test`,
  accessTokenTtl: AT_TTL,
  refreshPolicy: REFRESH_POLICY,
  scopes: RS_SCOPES,
  asListsResourceScopes: AS_LISTS_RS_SCOPES,
};
process.stdout.write(`${JSON.stringify(ready)}\n`);

function shutdown() {
  asServer.closeAllConnections?.();
  rsServer.closeAllConnections?.();
  asServer.close();
  rsServer.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (process.env.OIDC_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}
