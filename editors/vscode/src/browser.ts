// The browser side of the authorization flow, and Remote-SSH.
//
// Opening: the extension advertises `window.showDocument` support, so with
// `mcpAuth.browser: "auto"` the sidecar sends `window/showDocument
// {uri, external: true}` and we open the URL with `vscode.env.openExternal`.
// That opens the browser of the machine the user sits at, also when this
// extension (a "workspace" extension) and the sidecar run on a remote host
// over Remote-SSH, in a dev container or WSL.
//
// The callback: the authorization server sends the browser back to the
// sidecar's loopback listener, the `redirect_uri` of the authorization URL,
// e.g. `http://127.0.0.1:PORT/callback`. Over Remote-SSH that listener is on
// the remote host, and 127.0.0.1 in the local browser is the local machine.
// `vscode.env.asExternalUri(http://127.0.0.1:PORT/)` fixes that: run on a
// remote, it opens a port-forwarding tunnel from the local machine to PORT
// on the remote and returns the local address of the tunnel (locally it
// returns the URI unchanged). We call it for every loopback redirect_uri,
// before the browser is opened (showDocument waits for it):
//   - it returned a loopback http URL with the same port (Remote-SSH's usual
//     outcome, the port is free locally): the redirect reaches the sidecar
//     through the tunnel, nothing else to do;
//   - anything else (another local port, or an https URL as in Codespaces /
//     vscode.dev tunnels): the redirect_uri cannot be changed — it is
//     registered with the authorization server and bound to the code
//     exchange — so the browser will land on an unreachable address. We
//     say so, and offer "MCP Auth: Paste Callback URL…": the user copies
//     that address from the browser and the sidecar completes the flow with
//     `mcp/completeAuthorization` (same `state`/`iss` checks).

import * as vscode from 'vscode';
import type { AuthorizationPendingParams, ShowDocumentParams, ShowDocumentResult } from './protocol';
import { loopbackRedirect, reachesSameListener, survivesVscodeUri } from './urls';

export type CallbackRoute =
  | { kind: 'not-loopback' }
  | { kind: 'direct'; redirect: URL; external: URL }
  | { kind: 'unreachable'; redirect: URL; external?: URL; error?: string };

export interface BrowserHost {
  log(message: string): void;
  /** `mcpAuth.browser` as configured. */
  browserSetting(): 'auto' | 'none' | string[];
  /** Remember the flow's URL for the paste / copy actions. */
  setPending(server: string, url: string): void;
}

export const PASTE_ACTION = 'Paste Callback URL…';
export const COPY_ACTION = 'Copy Authorization URL';
export const OPEN_ACTION = 'Open in Browser';

/** What the log may show of an authorization URL: not its query (it holds `state`). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '(not a URL)';
  }
}

/**
 * `vscode.env.openExternal` target for a URL string. A `vscode.Uri` is the
 * documented argument, but VS Code opens `encodeURI(uri.toString(true))`,
 * which changes a query whose values hold encoded `&`, `=`, `+`, `#` or `%`
 * (microsoft/vscode#85930). For such URLs we pass the string itself, which
 * VS Code's `openExternal` forwards unchanged (its implementation accepts
 * `string | Uri`); all others go as a `vscode.Uri`.
 */
export function openExternalTarget(url: string): vscode.Uri {
  return survivesVscodeUri(url) ? vscode.Uri.parse(url, true) : (url as unknown as vscode.Uri);
}

export class BrowserBridge {
  private readonly routes = new Map<string, Promise<CallbackRoute>>();

  constructor(private readonly host: BrowserHost) {}

  /**
   * The loopback callback of this authorization URL, made reachable from
   * the user's browser with `asExternalUri` (once per URL).
   */
  prepareCallback(authorizationUrl: string): Promise<CallbackRoute> {
    let route = this.routes.get(authorizationUrl);
    if (!route) {
      route = this.resolveRoute(authorizationUrl);
      this.routes.set(authorizationUrl, route);
      if (this.routes.size > 20) this.routes.delete(this.routes.keys().next().value as string);
    }
    return route;
  }

  private async resolveRoute(authorizationUrl: string): Promise<CallbackRoute> {
    const redirect = loopbackRedirect(authorizationUrl);
    if (!redirect) return { kind: 'not-loopback' };
    try {
      const local = vscode.Uri.parse(`http://${redirect.host}/`, true);
      const external = new URL((await vscode.env.asExternalUri(local)).toString(true));
      if (reachesSameListener(redirect, external)) {
        if (external.host !== redirect.host) this.host.log(`callback ${redirect.host} is reachable as ${external.host}`);
        return { kind: 'direct', redirect, external };
      }
      this.host.log(
        `callback ${redirect.origin} is forwarded to ${external.origin}: the browser's redirect will not reach it; paste the callback URL instead`,
      );
      return { kind: 'unreachable', redirect, external };
    } catch (e) {
      this.host.log(`asExternalUri(${redirect.origin}) failed: ${(e as Error).message}`);
      return { kind: 'unreachable', redirect, error: (e as Error).message };
    }
  }

  /** `window/showDocument` from the sidecar. */
  async showDocument(params: ShowDocumentParams): Promise<ShowDocumentResult> {
    let scheme: string;
    try {
      scheme = new URL(params.uri).protocol;
    } catch {
      return { success: false };
    }
    // The sidecar only sends authorization URLs; open nothing else.
    if (scheme !== 'https:' && scheme !== 'http:') {
      this.host.log(`refusing to open a ${scheme} URL`);
      return { success: false };
    }
    await this.prepareCallback(params.uri);
    this.host.log(`opening ${redactUrl(params.uri)} in the browser`);
    const opened = await vscode.env.openExternal(openExternalTarget(params.uri));
    if (!opened) this.host.log('the browser was not opened (declined?); the URL can be copied from MCP Auth: Show Status');
    return { success: opened };
  }

  /** `mcp/authorizationPending`: remember the URL; tell the user when they must act. */
  async authorizationPending(params: AuthorizationPendingParams): Promise<void> {
    this.host.setPending(params.server, params.url);
    this.host.log(`sign-in to ${params.server} waits for the browser: ${redactUrl(params.url)}`);
    const route = await this.prepareCallback(params.url);
    const browser = this.host.browserSetting();
    let choice: string | undefined;
    if (route.kind === 'unreachable') {
      choice = await vscode.window.showWarningMessage(
        `MCP Auth: after signing in to ${params.server}, the browser is sent to ${route.redirect.origin}, ` +
          `which it cannot reach from your machine${route.external ? ` (VS Code forwards it as ${route.external.origin})` : ''}. ` +
          `When it shows an error page, copy its address and run “MCP Auth: Paste Callback URL…”.`,
        PASTE_ACTION,
        COPY_ACTION,
      );
    } else if (browser === 'none') {
      choice = await vscode.window.showInformationMessage(
        `MCP Auth: open the authorization page to sign in to ${params.server}.`,
        OPEN_ACTION,
        COPY_ACTION,
        PASTE_ACTION,
      );
    }
    if (choice === OPEN_ACTION) {
      await vscode.env.openExternal(openExternalTarget(params.url));
    } else if (choice === COPY_ACTION) {
      await vscode.env.clipboard.writeText(params.url);
    } else if (choice === PASTE_ACTION) {
      await vscode.commands.executeCommand('mcpAuth.pasteCallbackUrl', params.server);
    }
  }
}
