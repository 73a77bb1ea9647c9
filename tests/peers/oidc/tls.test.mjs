// TLS the way users' machines are configured (issue 10): oidc-provider and
// the MCP server over https with a certificate from a private CA made for
// this run, trusted by the sidecar only through SSL_CERT_FILE; the same
// through a local CONNECT proxy named by HTTPS_PROXY; and the error a user
// sees when the CA is not trusted.
//
// Needs the openssl command (the CA and the server certificate are made at
// test time, in a temp directory, and never leave it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as jose from 'jose';
import { asCounts, authorize, httpsRequest, initializeMessage, rpc, scenario } from './rig.mjs';

/** A private CA and a certificate for `san` (default 127.0.0.1 and
 *  localhost) signed by it. */
function makeCertificates(t, san = 'IP:127.0.0.1,DNS:localhost') {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-auth-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = (name) => join(dir, name);
  const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2',
    '-subj', '/CN=mcp-auth-sidecar test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(f('server.ext'), [
    `subjectAltName=${san}`,
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
  ].join('\n'));
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-set_serial', `0x${Date.now().toString(16)}`, '-days', '2', '-extfile', f('server.ext'), '-out', f('server.pem'));
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

/** An https oidc-provider + MCP server whose certificate `certs.ca` issued. */
async function tlsScenario(t, certs) {
  return scenario(t, {
    OIDC_AT_TTL: '300',
    OIDC_TLS_CERT: certs.cert,
    OIDC_TLS_KEY: certs.key,
    // The MCP server's own requests (the AS's jwks).
    NODE_EXTRA_CA_CERTS: certs.ca,
  }, { ca: readFileSync(certs.ca) });
}

/** A forward proxy that only tunnels (CONNECT), recording each target. */
async function connectProxy(t) {
  const targets = [];
  const sockets = new Set();
  const proxy = createServer((req, res) => {
    targets.push(`plain ${req.method} ${req.url}`);
    res.writeHead(405).end();
  });
  proxy.on('connect', (req, client, head) => {
    targets.push(req.url);
    sockets.add(client);
    const [host, port] = [req.url.slice(0, req.url.lastIndexOf(':')), Number(req.url.slice(req.url.lastIndexOf(':') + 1))];
    const upstream = connect(port, host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    const close = () => { client.destroy(); upstream.destroy(); };
    upstream.on('error', close);
    client.on('error', close);
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    proxy.close();
  });
  return { url: `http://127.0.0.1:${proxy.address().port}`, targets };
}

const authority = (url) => new URL(url).host;

/** Authorizes through the sidecar, then checks the token against the MCP server. */
async function authorizeEndToEnd(s, certs, env) {
  const { peer, info } = s;
  assert.ok(info.issuer.startsWith('https://') && info.mcp.startsWith('https://'), JSON.stringify(info));
  const sidecar = await s.sidecar({ env });
  const status = await authorize(sidecar, peer, { server: 'peer' });
  assert.equal(status.state, 'authorized', JSON.stringify(status));
  assert.equal(status.issuer, info.issuer);
  const counts = await asCounts(peer);
  assert.equal(counts.token.authorization_code, 1, JSON.stringify(counts));

  const tok = await rpc(sidecar, 'mcp/accessToken', { server: 'peer' });
  assert.equal(jose.decodeJwt(tok.accessToken).aud, info.mcp);
  const r = await httpsRequest(info.mcp, {
    ca: readFileSync(certs.ca),
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      Authorization: `Bearer ${tok.accessToken}`,
    },
    body: JSON.stringify(initializeMessage(7)),
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.result.serverInfo.name, 'oidc-peer-mcp');
}

test('https peers with a private CA, trusted through SSL_CERT_FILE only', { timeout: 120_000 }, async (t) => {
  const certs = makeCertificates(t);
  const s = await tlsScenario(t, certs);
  // The browser (browser.mjs, spawned by the sidecar) is Node: it reads the CA
  // from NODE_EXTRA_CA_CERTS. The sidecar reads only SSL_CERT_FILE.
  await authorizeEndToEnd(s, certs, { SSL_CERT_FILE: certs.ca, NODE_EXTRA_CA_CERTS: certs.ca });
});

test('the same through a CONNECT proxy named by HTTPS_PROXY', { timeout: 120_000 }, async (t) => {
  const certs = makeCertificates(t);
  const s = await tlsScenario(t, certs);
  const proxy = await connectProxy(t);
  // NO_PROXY set without loopback in it: the user's list, used as written,
  // so the 127.0.0.1 peers go through the proxy.
  await authorizeEndToEnd(s, certs, {
    SSL_CERT_FILE: certs.ca,
    NODE_EXTRA_CA_CERTS: certs.ca,
    HTTPS_PROXY: proxy.url,
    NO_PROXY: 'corp.example.invalid',
  });
  const peers = new Set([authority(s.info.issuer), authority(s.info.mcp)]);
  console.error(`tls.test: ${proxy.targets.length} CONNECTs: ${proxy.targets.join(', ')}`);
  assert.ok(proxy.targets.length > 0, 'the sidecar used the proxy');
  assert.deepEqual(new Set(proxy.targets), peers, 'every CONNECT was to the AS or the MCP server, and both were');
});

test('loopback peers are not proxied when NO_PROXY is unset', { timeout: 120_000 }, async (t) => {
  const certs = makeCertificates(t);
  const s = await tlsScenario(t, certs);
  const proxy = await connectProxy(t);
  await authorizeEndToEnd(s, certs, { SSL_CERT_FILE: certs.ca, NODE_EXTRA_CA_CERTS: certs.ca, HTTPS_PROXY: proxy.url });
  assert.deepEqual(proxy.targets, [], 'no CONNECT for 127.0.0.1');
});

test('without SSL_CERT_FILE: the error names the host and says its certificate is not trusted',
  { timeout: 120_000 }, async (t) => {
    const certs = makeCertificates(t);
    const s = await tlsScenario(t, certs);
    const sidecar = await s.sidecar({ env: {} });
    const mcp = authority(s.info.mcp);
    const untrusted = new RegExp(
      `the certificate of ${mcp.replace(/\./g, '\\.')} is not trusted \\(unknown issuer\\); .*SSL_CERT_FILE`,
    );

    const probed = await rpc(sidecar, 'mcp/authStatus', { server: 'peer', probe: true });
    assert.equal(probed.servers[0].state, 'error', JSON.stringify(probed.servers[0]));
    assert.match(probed.servers[0].message, untrusted);

    const r = await sidecar.call('mcp/authorize', { server: 'peer' });
    assert.ok(r.error, JSON.stringify(r));
    assert.equal(r.error.code, 1007, JSON.stringify(r.error));
    assert.match(r.error.message, untrusted);
    console.error(`tls.test: mcp/authorize answered ${r.error.code}: ${r.error.message}`);
    const counts = await asCounts(s.peer);
    assert.equal(counts.registration, 0, 'nothing reached the AS');
  });

test('a trusted CA but a certificate for another name: the error says so', { timeout: 120_000 }, async (t) => {
  const certs = makeCertificates(t, 'DNS:mcp.example.invalid');
  const s = await tlsScenario(t, certs);
  const sidecar = await s.sidecar({ env: { SSL_CERT_FILE: certs.ca } });
  const r = await sidecar.call('mcp/authorize', { server: 'peer' });
  assert.equal(r.error?.code, 1007, JSON.stringify(r));
  const mcp = authority(s.info.mcp).replace(/\./g, '\\.');
  assert.match(r.error.message, new RegExp(
    `the certificate of ${mcp} is not trusted \\(issued for another name\\); SSL_CERT_FILE is ".*ca\\.pem"`,
  ));
});
