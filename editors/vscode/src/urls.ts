// URL helpers for the browser flow. Pure, no `vscode` import.

/** 127.0.0.0/8, ::1 and localhost (RFC 8252 §7.3 loopback redirect hosts). */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(?:\.\d{1,3}){3}$/.test(h);
}

/**
 * The loopback `redirect_uri` of an authorization URL (the sidecar's
 * callback listener), or undefined when it has none or it is not a
 * loopback http URL (e.g. a pre-registered https redirect).
 */
export function loopbackRedirect(authorizationUrl: string): URL | undefined {
  let redirect: string | null;
  try {
    redirect = new URL(authorizationUrl).searchParams.get('redirect_uri');
  } catch {
    return undefined;
  }
  if (!redirect) return undefined;
  try {
    const url = new URL(redirect);
    return url.protocol === 'http:' && isLoopbackHost(url.hostname) ? url : undefined;
  } catch {
    return undefined;
  }
}

/** The port of an http(s) URL, with the scheme's default filled in. */
export function effectivePort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : url.protocol === 'http:' ? '80' : '');
}

/**
 * Whether a browser on the user's machine that follows `redirect` reaches
 * `external` (what `vscode.env.asExternalUri` returned for the sidecar's
 * listener): both http on a loopback host with the same port.
 */
export function reachesSameListener(redirect: URL, external: URL): boolean {
  return (
    external.protocol === 'http:' &&
    isLoopbackHost(external.hostname) &&
    effectivePort(external) === effectivePort(redirect)
  );
}

/**
 * Whether VS Code can open this URL from a `vscode.Uri` without changing
 * what the server reads. `openExternal(uri)` opens `encodeURI(uri.toString(true))`:
 * every percent-escape is decoded and only characters `encodeURI` escapes
 * are escaped again (microsoft/vscode#85930). That keeps the meaning of a
 * query unless a decoded component contains one of `& = + # % ?` or a
 * space. Authorization URLs from the sidecar normally pass; one whose
 * `resource` has its own query string does not.
 */
export function survivesVscodeUri(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (/%(?!2F|3A)[0-9A-F]{2}/i.test(parsed.pathname)) return false;
  const query = parsed.search.replace(/^\?/, '');
  if (query === '') return true;
  if (query.includes('+')) return false;
  for (const pair of query.split('&')) {
    for (const part of pair.split('=')) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(part);
      } catch {
        return false;
      }
      if (/[&=+#%?\s]/.test(decoded)) return false;
    }
  }
  return true;
}

/**
 * Why `input` cannot be the redirect URL of an authorization (for the
 * paste box), or undefined when it looks right. The sidecar does the real
 * checks (`state`, `iss`).
 */
export function callbackUrlProblem(input: string): string | undefined {
  const text = input.trim();
  if (text === '') return 'Paste the full address from the browser, starting with http.';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'This is not a URL. Copy the whole address from the browser’s address bar.';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'The address must start with http:// or https://.';
  const q = url.searchParams;
  if (!q.get('code') && !q.get('error')) return 'The address has no `code` (or `error`) parameter: is it the page the browser was sent back to?';
  if (!q.get('state')) return 'The address has no `state` parameter.';
  return undefined;
}
