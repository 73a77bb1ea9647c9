// ARCHITECTURE.md#the-refresh-transaction-and-locking against a real rotating-refresh-token authorization server
// (oidc-provider: a refresh token is single-use, and presenting a spent one
// revokes the whole grant): many sidecar processes on one home, one refresh.
//
//   PATH=<node 22>:$PATH MCP_AUTH_SIDECAR_BIN=… node --test refresh.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  asCounts,
  asRequests,
  authorize,
  initializeMessage,
  mcpPost,
  refreshCount,
  rpc,
  scenario,
  startSidecar,
  withTimeout,
} from './rig.mjs';

const TTL = 3; // access-token lifetime, seconds: short, so expiry comes fast
const HERD = 16;
const CYCLES = 10;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const REJECTED = { status: 401, wwwAuthenticate: 'Bearer error="invalid_token"' };

/** A peer with short-lived tokens and one authorized sidecar on its home. */
async function authorized(t, ttl = TTL) {
  const s = await scenario(t, { OIDC_AT_TTL: String(ttl) });
  const first = await s.sidecar();
  const status = await authorize(first, s.peer, { server: 'peer' });
  assert.equal(status.state, 'authorized', JSON.stringify(status));
  return { s, first };
}

/** Sleeps until the stored access token has expired. */
async function untilExpired(sidecar) {
  const { servers } = await rpc(sidecar, 'mcp/authStatus', { server: 'peer' });
  const at = servers[0].expiresAt;
  assert.ok(at, 'the AS sent expires_in');
  await sleep(Math.max(0, at - Date.now() + 50));
}

const delay = (s, params) =>
  fetch(`${s.info.asControl}/delay?${new URLSearchParams(params)}`, { method: 'POST' }).then((r) => r.json());

/** Polls `pred` (async) until it holds; fails after `ms` naming `what`. */
async function until(ms, what, pred) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await pred();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Waits until a token request is held back at the AS (`delay` before). */
const untilHeldAtAs = (s) =>
  until(20_000, 'a token request held at the AS', async () =>
    (await s.peer.getJson(`${s.info.asControl}/held`)).held > 0);

/** The sealed record files of a home (one per server URL). */
const recordFiles = (home) =>
  readdirSync(join(home, 'store/file/records')).filter((f) => f.endsWith('.rec'));

test(`herd: ${HERD} sidecars, ${CYCLES} expiry cycles, one refresh request each`, { timeout: 240_000 }, async (t) => {
  // 6-second tokens: the refresh window is half of that, 3 s, so an
  // instance answered late on a loaded machine is still served the fresh
  // token instead of (legitimately) refreshing it again.
  const { s, first } = await authorized(t, 6);
  const herd = [first];
  while (herd.length < HERD) herd.push(await s.sidecar());
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const expiry = (await rpc(first, 'mcp/authStatus', { server: 'peer' })).servers[0].expiresAt;
    await untilExpired(first);
    const before = refreshCount(await asCounts(s.peer));
    // All at the same moment.
    const tokens = await Promise.all(herd.map((h) => rpc(h, 'mcp/accessToken', { server: 'peer' })));
    const counts = await asCounts(s.peer);
    const seen = (await asRequests(s.peer)).filter((x) => x.grantType === 'refresh_token').slice(before);
    assert.equal(refreshCount(counts) - before, 1,
      `cycle ${cycle}: exactly one refresh reached the AS; got ${seen.length} at ${JSON.stringify(seen.map((x) => x.at))}, token expiry was ${expiry}`);
    assert.equal(counts.tokenErrors.refresh_token, undefined, `cycle ${cycle}: ${JSON.stringify(counts)}`);
    assert.equal(new Set(tokens.map((x) => x.accessToken)).size, 1, `cycle ${cycle}: every instance got the same token`);
    assert.ok(tokens[0].expiresAt > Date.now(), `cycle ${cycle}: the token is fresh`);
    const r = await mcpPost(s.info.mcp, tokens[0].accessToken, initializeMessage(cycle));
    assert.equal(r.status, 200, `cycle ${cycle}: the MCP server accepts it (${r.www ?? ''})`);
  }
  // Ten rotations later the grant is alive: no refresh was ever refused.
  const refreshes = (await asRequests(s.peer)).filter((x) => x.grantType === 'refresh_token');
  assert.equal(refreshes.length, CYCLES);
  assert.ok(refreshes.every((x) => x.status === 200 && x.issuedRefreshToken), JSON.stringify(refreshes));
});

test('adopt after waiting: B waits on the lock while A refreshes, then sends nothing', { timeout: 120_000 }, async (t) => {
  const { s, first: a } = await authorized(t);
  const b = await s.sidecar();
  await untilExpired(a);
  await delay(s, { before: 1500 }); // A's refresh stays in flight a while
  const before = refreshCount(await asCounts(s.peer));
  const fromA = rpc(a, 'mcp/accessToken', { server: 'peer' });
  await sleep(300); // A holds the lock now
  const fromB = await rpc(b, 'mcp/accessToken', { server: 'peer' });
  assert.equal(fromB.accessToken, (await fromA).accessToken, 'B adopted A\'s token');
  assert.equal(refreshCount(await asCounts(s.peer)) - before, 1, 'B made no request');
});

test('invalid_grant while someone else stored a rotated token: adopted, not deleted', { timeout: 120_000 }, async (t) => {
  const { s, first: a } = await authorized(t);
  // A second home with the same data key and record: a writer the lock
  // does not cover (another machine's copy, an older client).
  const other = { ...s.dirs, sidecarHome: `${s.dirs.sidecarHome}-other` };
  await s.close(a);
  cpSync(s.dirs.sidecarHome, other.sidecarHome, { recursive: true });
  const c = await startSidecar(other, s.info.mcp);
  t.after(() => c.close());
  // C rotates the refresh token; the first home still holds the spent one.
  assert.equal((await rpc(c, 'mcp/handleChallenge', { server: 'peer', ...REJECTED })).action, 'retry');
  const rotated = await rpc(c, 'mcp/accessToken', { server: 'peer' });

  // B, on the first home, refreshes with the spent token; while the AS
  // answers (slowly) the rotated record lands in B's store.
  const b = await s.sidecar();
  await delay(s, { after: 1500 });
  const challenge = rpc(b, 'mcp/handleChallenge', { server: 'peer', ...REJECTED });
  await sleep(500);
  const [file] = recordFiles(other.sidecarHome);
  cpSync(join(other.sidecarHome, 'store/file/records', file), join(s.dirs.sidecarHome, 'store/file/records', file));
  const outcome = await challenge;
  await delay(s, {});
  const errors = (await asRequests(s.peer)).filter((x) => x.grantType === 'refresh_token' && x.status >= 400);
  assert.equal(errors.length, 1, 'B\'s refresh was refused');
  assert.equal(errors[0].error, 'invalid_grant');
  assert.equal(outcome.action, 'retry', JSON.stringify(outcome));
  const status = (await rpc(b, 'mcp/authStatus', { server: 'peer' })).servers[0];
  assert.equal(status.state, 'authorized', 'the stored token was kept');
  const adopted = await rpc(b, 'mcp/accessToken', { server: 'peer', minValiditySeconds: 0 });
  assert.equal(adopted.accessToken, rotated.accessToken);
  assert.equal(recordFiles(s.dirs.sidecarHome).length, 1, 'the record is still there');
});

test('SIGKILL while the request is held before the AS: the next instance refreshes fine', { timeout: 120_000 }, async (t) => {
  const { s, first: a } = await authorized(t);
  const b = await s.sidecar();
  await untilExpired(a);
  await delay(s, { before: 2000 });
  a.call('mcp/accessToken', { server: 'peer' }); // never answered
  await sleep(500);
  a.proc.kill('SIGKILL');
  await a.exited;
  await delay(s, {});
  // The lock died with A; B gets it at once and refreshes with the
  // unspent refresh token.
  const token = await rpc(b, 'mcp/accessToken', { server: 'peer' }, 20_000);
  const r = await mcpPost(s.info.mcp, token.accessToken, initializeMessage(1));
  assert.equal(r.status, 200);
  await sleep(2500); // let A's abandoned request finish at the AS
  const refreshes = (await asRequests(s.peer)).filter((x) => x.grantType === 'refresh_token');
  assert.equal(refreshes.filter((x) => x.status === 200).length, 1, JSON.stringify(refreshes));
});

test('SIGKILL after the AS spent the token: the next instance fails cleanly, no torn record', { timeout: 120_000 }, async (t) => {
  const { s, first: a } = await authorized(t);
  const b = await s.sidecar();
  await untilExpired(a);
  await delay(s, { after: 2000 });
  a.call('mcp/accessToken', { server: 'peer' });
  await sleep(700); // the AS has rotated the token; A waits for the answer
  a.proc.kill('SIGKILL');
  await a.exited;
  await delay(s, {});
  // B reads the old, complete record and presents the spent refresh token:
  // invalid_grant (and the AS revokes the grant). Nothing hangs.
  const answer = await withTimeout(b.call('mcp/accessToken', { server: 'peer' }), 20_000, 'B after the kill');
  assert.equal(answer.error?.code, 1001, JSON.stringify(answer));
  assert.equal(answer.error.data.state, 'unauthenticated');
  assert.match(answer.error.data.message, /refresh token/);
  const status = (await rpc(b, 'mcp/authStatus', { server: 'peer' })).servers[0];
  assert.equal(status.state, 'unauthenticated');
  assert.equal(recordFiles(s.dirs.sidecarHome).length, 1, 'the record (with its registration) is intact');
});

test('logout revokes at the AS, and every other instance reports unauthenticated', { timeout: 120_000 }, async (t) => {
  const { s, first: a } = await authorized(t);
  const b = await s.sidecar();
  // A copy of the home before logout: it holds the refresh token logout revokes.
  const before = { ...s.dirs, sidecarHome: `${s.dirs.sidecarHome}-before-logout` };
  cpSync(s.dirs.sidecarHome, before.sidecarHome, { recursive: true });

  b.notifications.length = 0;
  const started = Date.now();
  const out = await rpc(a, 'mcp/logout', { server: 'peer' });
  // A answers once the tokens are deleted from the store: B's latency is
  // counted from there. (Counted from the request, it also held the two
  // revocation round trips to oidc-provider: 1245 ms on a loaded machine.)
  const deleted = Date.now();
  assert.equal(out.revoked, true, JSON.stringify(out));
  assert.equal(out.status.state, 'unauthenticated');
  const revocations = (await asRequests(s.peer)).filter((x) => x.path === '/token/revocation');
  // The refresh token first, then the access token, each on its own.
  // oidc-provider cannot revoke its JWT access tokens and says so
  // (unsupported_token_type, RFC 7009 §2.2.1); they expire on their own.
  assert.deepEqual(revocations.map((x) => x.tokenTypeHint), ['refresh_token', 'access_token']);
  assert.equal(revocations[0].status, 200);
  assert.ok(revocations[1].status === 200 || revocations[1].error === 'unsupported_token_type', JSON.stringify(revocations[1]));

  // B sees the deletion within a second (the store watcher; its own
  // latency is milliseconds, the second is for a loaded machine).
  let seen;
  while (!seen && Date.now() - deleted < 5000) {
    seen = b.notifications.find((n) => n.method === 'mcp/authStatusChanged' && n.params.state === 'unauthenticated');
    if (!seen) await sleep(10);
  }
  assert.ok(seen, 'B reported unauthenticated');
  const latency = Math.max(0, Date.now() - deleted);
  t.diagnostic(
    `logout visible in the other instance ${latency} ms after the deletion (${Date.now() - started} ms after the request, revocations included)`,
  );
  assert.ok(latency < 1000, `${latency} ms`);
  assert.equal((await b.call('mcp/accessToken', { server: 'peer' })).error?.code, 1001);

  // The revoked refresh token no longer works at the AS.
  const c = await startSidecar(before, s.info.mcp);
  t.after(() => c.close());
  const outcome = await rpc(c, 'mcp/handleChallenge', { server: 'peer', ...REJECTED });
  assert.equal(outcome.action, 'authorize', JSON.stringify(outcome));
  const refused = (await asRequests(s.peer)).filter((x) => x.grantType === 'refresh_token');
  assert.equal(refused.length, 1);
  assert.equal(refused[0].error, 'invalid_grant');
});

test('a cancelled request does not abandon its refresh: it completes and is persisted', { timeout: 120_000 }, async (t) => {
  const { s, first: a } = await authorized(t);
  await untilExpired(a);
  await delay(s, { before: 1000 });
  const expired = (await rpc(a, 'mcp/authStatus', { server: 'peer' })).servers[0].expiresAt;
  const id = a.nextId;
  a.notifications.length = 0;
  const answer = a.call('mcp/accessToken', { server: 'peer' });
  await untilHeldAtAs(s); // the refresh request is at the AS now
  a.notify('$/cancelRequest', { id });
  assert.equal((await answer).error?.code, -32800, 'the request was cancelled');
  // The AS answers; the refresh goes on without the request, persists the
  // rotated tokens, then A announces them (events, not a fixed sleep: on a
  // loaded machine 1.5 s was too short and B refreshed a second time).
  await until(20_000, 'A announcing the refreshed token', () =>
    a.notifications.find(
      (n) => n.method === 'mcp/authStatusChanged' && n.params.state === 'authorized' && n.params.expiresAt > expired,
    ));
  await delay(s, {});
  // A new instance finds the refreshed token in storage: no second refresh.
  const b = await s.sidecar();
  const token = await rpc(b, 'mcp/accessToken', { server: 'peer' });
  const refreshes = (await asRequests(s.peer)).filter((x) => x.grantType === 'refresh_token');
  assert.equal(refreshes.length, 1, JSON.stringify(refreshes));
  assert.equal(refreshes[0].status, 200);
  const r = await mcpPost(s.info.mcp, token.accessToken, initializeMessage(1));
  assert.equal(r.status, 200);
});

test('exit while a refresh is in flight: it completes and is persisted before the process ends', { timeout: 120_000 }, async (t) => {
  const { s, first: a } = await authorized(t);
  await untilExpired(a);
  await delay(s, { before: 1000 });
  a.call('mcp/accessToken', { server: 'peer' }); // left unanswered by exit
  await untilHeldAtAs(s); // the refresh request is at the AS now
  a.notify('exit', null);
  await withTimeout(a.exited, 20_000, 'A exits after finishing the refresh');
  await delay(s, {});
  const b = await s.sidecar();
  const token = await rpc(b, 'mcp/accessToken', { server: 'peer' });
  const refreshes = (await asRequests(s.peer)).filter((x) => x.grantType === 'refresh_token');
  assert.equal(refreshes.length, 1, `the rotated token was kept, not spent again: ${JSON.stringify(refreshes)}`);
  assert.equal(refreshes[0].status, 200);
  assert.equal((await mcpPost(s.info.mcp, token.accessToken, initializeMessage(1))).status, 200);
});
