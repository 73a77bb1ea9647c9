// Unit tests of the pure parts: framing, status summaries, URL helpers.

import * as assert from 'node:assert/strict';
import { SidecarError } from '../src/jsonrpc';
import type { ServerStatus } from '../src/protocol';
import { summarize } from '../src/status';
import { callbackUrlProblem, isLoopbackHost, loopbackRedirect, reachesSameListener, survivesVscodeUri } from '../src/urls';

describe('SidecarError', () => {
  it('exposes the ServerStatus of a 1001 and the OAuth error of a 1002', () => {
    const status: ServerStatus = { server: 's', url: 'https://x/mcp', state: 'unauthenticated', scopes: [], storage: 'memory' };
    const e1 = SidecarError.fromResponse('mcp/accessToken', { code: 1001, message: 'sign in', data: status });
    assert.ok(e1 instanceof Error);
    assert.equal(e1.isAuthorizationRequired, true);
    assert.deepEqual(e1.status, status);
    const e2 = SidecarError.fromResponse('mcp/authorize', { code: 1002, message: 'no', data: { error: 'access_denied' } });
    assert.equal(e2.oauthError, 'access_denied');
    assert.equal(e2.status, undefined);
  });
});

function st(server: string, state: ServerStatus['state'], extra: Partial<ServerStatus> = {}): ServerStatus {
  return { server, url: `https://${server}.example/mcp`, state, scopes: [], storage: 'memory', ...extra };
}

describe('status bar summary', () => {
  const running = { state: 'running' as const };
  it('says what needs doing, most urgent first', () => {
    assert.equal(summarize([st('a', 'authorized'), st('b', 'unauthenticated')], running).text, '$(key) MCP: sign in to b');
    assert.equal(summarize([st('a', 'step_up_required'), st('b', 'unauthenticated')], running).text, '$(key) MCP: sign in (2)');
    assert.equal(summarize([st('a', 'error'), st('b', 'unauthenticated')], running).text, '$(error) MCP: a error');
    assert.equal(summarize([st('a', 'authorizing'), st('b', 'authorized')], running).text, '$(sync~spin) MCP: signing in…');
    assert.equal(summarize([st('a', 'authorized'), st('b', 'refreshing')], running).text, '$(pass) MCP: 2/2 signed in');
    assert.equal(summarize([st('a', 'authorized'), st('b', 'unknown')], running).text, '$(shield) MCP: 1/2 signed in');
    assert.equal(summarize([st('a', 'not_required')], running).text, '$(pass) MCP');
  });
  it('colors warnings and errors, and lists every server in the tooltip', () => {
    const s = summarize([st('a', 'authorized', { expiresAt: Date.now() + 30 * 60_000 }), st('b', 'unauthenticated', { message: 'signed out' })], running);
    assert.equal(s.severity, 'warning');
    assert.match(s.tooltip, /^a — Signed in \(expires in 30 min\)$/m);
    assert.match(s.tooltip, /^b — Sign-in required \(signed out\)$/m);
  });
  it('shows a sidecar that is not running', () => {
    const s = summarize([], { state: 'failed', error: 'spawn x ENOENT' });
    assert.equal(s.severity, 'error');
    assert.match(s.tooltip, /ENOENT/);
    assert.equal(summarize([], { state: 'stopped' }).visible, false);
  });
});

describe('URL helpers', () => {
  const auth =
    'http://localhost:1/authorize?response_type=code&client_id=c&redirect_uri=http%3A%2F%2F127.0.0.1%3A44505%2Fcallback&state=s&resource=http%3A%2F%2Flocalhost%3A2%2Fmcp&scope=mcp%3Atools';
  it('finds the loopback redirect_uri of an authorization URL', () => {
    assert.equal(loopbackRedirect(auth)?.href, 'http://127.0.0.1:44505/callback');
    assert.equal(loopbackRedirect('https://as/authorize?redirect_uri=https%3A%2F%2Fapp.example%2Fcb'), undefined);
    assert.equal(loopbackRedirect('not a url'), undefined);
    assert.ok(isLoopbackHost('[::1]') && isLoopbackHost('127.1.2.3') && isLoopbackHost('LOCALHOST'));
    assert.ok(!isLoopbackHost('127.example.com'));
  });
  it('knows when a forwarded callback still reaches the listener', () => {
    const redirect = new URL('http://127.0.0.1:44505/callback');
    assert.ok(reachesSameListener(redirect, new URL('http://localhost:44505/')));
    assert.ok(!reachesSameListener(redirect, new URL('http://localhost:50000/')));
    assert.ok(!reachesSameListener(redirect, new URL('https://x-44505.app.github.dev/')));
  });
  it('knows which URLs VS Code’s Uri would change', () => {
    assert.ok(survivesVscodeUri(auth));
    assert.ok(!survivesVscodeUri(`${auth}&resource=https%3A%2F%2Fx%2Fmcp%3Ft%3D1%26u%3D2`));
    assert.ok(!survivesVscodeUri('https://as/authorize?scope=a+b'));
    assert.ok(!survivesVscodeUri('https://as/authorize?scope=a%20b'));
  });
  it('checks a pasted callback URL before sending it', () => {
    assert.equal(callbackUrlProblem(' http://127.0.0.1:1/callback?code=c&state=s '), undefined);
    assert.equal(callbackUrlProblem('http://127.0.0.1:1/callback?error=access_denied&state=s'), undefined);
    assert.match(callbackUrlProblem('hello') ?? '', /not a URL/);
    assert.match(callbackUrlProblem('http://127.0.0.1:1/callback?state=s') ?? '', /code/);
    assert.match(callbackUrlProblem('http://127.0.0.1:1/callback?code=c') ?? '', /state/);
  });
});
