// A scripted browser for the sidecar's `browser` option:
//
//   node browser.mjs <authorization-url>
//
// Follows redirects with a cookie jar, fills and submits the HTML forms the
// authorization server shows (oidc-provider's login and consent pages), and
// finally delivers the redirect to the client's redirect URI (the sidecar's
// loopback listener, http://127.0.0.1:<port>/callback?...). No JavaScript.
//
// Environment (optional):
//   BROWSER_LOGIN     username typed into the login form (default "alice")
//   BROWSER_PASSWORD  password (default "secret")
//   BROWSER_DENY=1    press "cancel" on the first interaction page instead
//                     (oidc-provider answers access_denied to the client)
//   BROWSER_LOG       append a JSON line per hop to this file (no cookie or
//                     code values, only methods, URLs without query, statuses)
//   BROWSER_TIMEOUT   overall limit in ms (default 30000)
import { appendFileSync } from 'node:fs';

const start = process.argv.at(-1);
const LOGIN = process.env.BROWSER_LOGIN || 'alice';
const PASSWORD = process.env.BROWSER_PASSWORD || 'secret';
const DENY = process.env.BROWSER_DENY === '1';
const LOG = process.env.BROWSER_LOG;
const TIMEOUT = Number(process.env.BROWSER_TIMEOUT || 30000);
const MAX_STEPS = 40;

const deadline = setTimeout(() => fail(`gave up after ${TIMEOUT} ms`), TIMEOUT);
deadline.unref();

function fail(message) {
  console.error(`browser.mjs: ${message}`);
  process.exit(1);
}

function trace(hop) {
  if (LOG) appendFileSync(LOG, `${JSON.stringify({ at: Date.now(), ...hop })}\n`);
}

function withoutQuery(u) {
  const url = new URL(u);
  return `${url.origin}${url.pathname}`;
}

// ---------------------------------------------------------------- cookie jar

/** RFC 6265, the parts a same-origin test flow needs: host-only cookies, Path, Max-Age/Expires. */
class CookieJar {
  #cookies = new Map(); // `${host}\n${path}\n${name}` -> {host, path, name, value}

  store(url, setCookieHeaders) {
    for (const header of setCookieHeaders) {
      const [pair, ...attrs] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = defaultPath(url);
      let expired = false;
      for (const attr of attrs) {
        const [k, ...rest] = attr.split('=');
        const key = k.trim().toLowerCase();
        const v = rest.join('=').trim();
        if (key === 'path' && v.startsWith('/')) path = v;
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const id = `${url.host}\n${path}\n${name}`;
      if (expired) this.#cookies.delete(id);
      else this.#cookies.set(id, { host: url.host, path, name, value });
    }
  }

  header(url) {
    const matching = [...this.#cookies.values()].filter(
      (c) => c.host === url.host && pathMatches(url.pathname, c.path),
    );
    // Longer paths first (RFC 6265 §5.4).
    matching.sort((a, b) => b.path.length - a.path.length);
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

function defaultPath(url) {
  const p = url.pathname;
  if (!p.startsWith('/') || p.lastIndexOf('/') === 0) return '/';
  return p.slice(0, p.lastIndexOf('/'));
}

function pathMatches(requestPath, cookiePath) {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

// ---------------------------------------------------------------- HTML forms

function decodeEntities(s) {
  return s
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attributes(tag) {
  const out = {};
  const re = /([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
  const inner = tag.replace(/^<\s*[a-z]+/i, '').replace(/\/?>$/, '');
  let m;
  while ((m = re.exec(inner))) {
    out[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/** The forms of a page: [{action, method, fields: [[name, value]]}]. */
function forms(html) {
  const out = [];
  const formRe = /<form\b[^>]*>([\s\S]*?)<\/form>/gi;
  let m;
  while ((m = formRe.exec(html))) {
    const open = m[0].match(/^<form\b[^>]*>/i)[0];
    const attrs = attributes(open);
    const fields = [];
    for (const input of m[1].match(/<input\b[^>]*>/gi) || []) {
      const a = attributes(input);
      if (!a.name) continue;
      const type = (a.type || 'text').toLowerCase();
      if (['submit', 'button', 'image', 'reset'].includes(type)) continue;
      if ((type === 'checkbox' || type === 'radio') && !('checked' in a)) continue;
      let value = a.value ?? '';
      if (type === 'password') value = PASSWORD;
      else if (type === 'text' || type === 'email') value = value || LOGIN;
      fields.push([a.name, value]);
    }
    out.push({ action: attrs.action ?? '', method: (attrs.method || 'get').toLowerCase(), fields });
  }
  return out;
}

function links(html) {
  return [...html.matchAll(/<a\b[^>]*>/gi)].map((m) => attributes(m[0]).href).filter(Boolean);
}

// ---------------------------------------------------------------- the walk

const startUrl = new URL(start);
if (!['http:', 'https:'].includes(startUrl.protocol)) fail(`not an http(s) URL: ${startUrl.protocol}`);
const redirectUri = startUrl.searchParams.get('redirect_uri');
if (!redirectUri) fail('the authorization URL has no redirect_uri');
const target = withoutQuery(redirectUri);

const jar = new CookieJar();
let request = { url: startUrl, method: 'GET' };
let denied = false;

for (let step = 0; step < MAX_STEPS; step++) {
  const url = request.url;

  if (withoutQuery(url.href) === target) {
    // The client's redirect URI: deliver it like a browser would (fresh
    // request, no AS cookies), then stop.
    const res = await fetch(url, { method: request.method, body: request.body, headers: request.headers, redirect: 'manual' });
    const text = await res.text();
    trace({ step, method: request.method, url: withoutQuery(url.href), status: res.status, callback: true,
      params: [...url.searchParams.keys()] });
    if (res.status >= 400) fail(`the redirect URI answered HTTP ${res.status}: ${text.slice(0, 200)}`);
    console.error(`browser.mjs: delivered the callback (HTTP ${res.status}; ${url.searchParams.has('code') ? 'code' : url.searchParams.get('error') || 'no code'})`);
    process.exit(0);
  }

  const headers = { ...(request.headers || {}), 'User-Agent': 'mcp-auth-sidecar-peer-browser/1' };
  const cookie = jar.header(url);
  if (cookie) headers.Cookie = cookie;
  const res = await fetch(url, { method: request.method, body: request.body, headers, redirect: 'manual' });
  jar.store(url, res.headers.getSetCookie());
  trace({ step, method: request.method, url: withoutQuery(url.href), status: res.status });

  if (res.status >= 300 && res.status < 400) {
    await res.arrayBuffer();
    const location = res.headers.get('location');
    if (!location) fail(`HTTP ${res.status} without Location at ${withoutQuery(url.href)}`);
    // 307/308 repeat the method and body; the others become GET.
    request = [307, 308].includes(res.status)
      ? { ...request, url: new URL(location, url) }
      : { url: new URL(location, url), method: 'GET' };
    continue;
  }

  const text = await res.text();
  if (res.status !== 200 || !/html/i.test(res.headers.get('content-type') || '')) {
    fail(`unexpected HTTP ${res.status} (${res.headers.get('content-type')}) at ${withoutQuery(url.href)}: ${text.slice(0, 300)}`);
  }

  if (DENY && !denied) {
    const abort = links(text).find((h) => /\/abort$/.test(new URL(h, url).pathname));
    if (!abort) fail(`BROWSER_DENY: no abort link at ${withoutQuery(url.href)}`);
    denied = true;
    request = { url: new URL(abort, url), method: 'GET' };
    continue;
  }

  const [form] = forms(text);
  if (!form) fail(`no form to submit at ${withoutQuery(url.href)}: ${text.replace(/\s+/g, ' ').slice(0, 300)}`);
  const action = new URL(form.action || url.href, url);
  const body = new URLSearchParams(form.fields);
  request = form.method === 'post'
    ? { url: action, method: 'POST', body: body.toString(), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }
    : { url: new URL(`${action.origin}${action.pathname}?${body}`), method: 'GET' };
}

fail(`no redirect to ${target} after ${MAX_STEPS} steps`);
