// The four commands (README.md, "Commands"). Each takes an optional server name as its
// first argument (for keybindings and other extensions) and asks with a
// quick pick otherwise.

import * as vscode from 'vscode';
import { COPY_ACTION } from './browser';
import { SidecarError } from './client';
import { describeError } from './errors';
import type { McpAuthExtension } from './extension';
import type { ServerStatus } from './protocol';
import { describeExpiry, stateInfo } from './status';
import { callbackUrlProblem } from './urls';

export const COMMANDS = {
  authorize: 'mcpAuth.authorize',
  signOut: 'mcpAuth.signOut',
  pasteCallbackUrl: 'mcpAuth.pasteCallbackUrl',
  showStatus: 'mcpAuth.showStatus',
  setClientSecret: 'mcpAuth.setClientSecret',
} as const;

interface ServerItem extends vscode.QuickPickItem {
  server?: string;
  action?: 'url' | 'log' | 'settings' | 'start';
}

function serverItem(s: ServerStatus): ServerItem {
  const info = stateInfo(s.state);
  const expiry = s.state === 'authorized' ? describeExpiry(s.expiresAt) : undefined;
  return {
    label: `$(${info.icon}) ${s.server}`,
    description: [info.label, expiry].filter(Boolean).join(' · '),
    detail: [s.url, s.message].filter(Boolean).join(' — '),
    server: s.server,
  };
}

async function currentStatuses(ext: McpAuthExtension, probe = false): Promise<ServerStatus[]> {
  try {
    await ext.ensureStarted();
    return await ext.refresh(probe);
  } catch (e) {
    ext.log(`status refresh failed: ${describeError(e)}`);
    return [...ext.statuses.values()];
  }
}

/** Quick pick of servers; `rank` orders them (lower first); `allowUrl` adds an ad-hoc URL entry. */
async function pickServer(
  ext: McpAuthExtension,
  title: string,
  options: { rank?: (s: ServerStatus) => number; allowUrl?: boolean } = {},
): Promise<string | undefined> {
  const statuses = await currentStatuses(ext);
  const rank = options.rank ?? (() => 0);
  const items: ServerItem[] = [...statuses].sort((a, b) => rank(a) - rank(b)).map(serverItem);
  if (options.allowUrl) {
    items.push({ label: '$(add) Other MCP server URL…', action: 'url', alwaysShow: true });
  }
  if (items.length === 0) {
    void vscode.window.showInformationMessage(
      'MCP Auth: no remote MCP servers are configured (setting mcpAuth.servers, or .vscode/mcp.json).',
    );
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(items, { title, placeHolder: 'MCP server', matchOnDetail: true });
  if (!picked) return undefined;
  if (picked.action === 'url') {
    const url = await vscode.window.showInputBox({
      title,
      prompt: 'The MCP server URL (https, or http on localhost)',
      placeHolder: 'https://mcp.example.com/mcp',
      ignoreFocusOut: true,
      validateInput: (v) => {
        try {
          const u = new URL(v.trim());
          return u.protocol === 'https:' || u.protocol === 'http:' ? undefined : 'Use an https URL.';
        } catch {
          return 'Not a URL.';
        }
      },
    });
    return url?.trim() || undefined;
  }
  return picked.server;
}

function showError(ext: McpAuthExtension, what: string, e: unknown): void {
  ext.log(`${what} failed: ${describeError(e)}`);
  void vscode.window.showErrorMessage(`MCP Auth: ${what} failed. ${describeError(e)}`, 'Show Log').then((c) => {
    if (c === 'Show Log') ext.output.show(true);
  });
}

export async function authorizeCommand(
  ext: McpAuthExtension,
  server?: string,
  options: { force?: boolean; scopes?: string[] } = {},
): Promise<ServerStatus | undefined> {
  const name =
    typeof server === 'string'
      ? server
      : await pickServer(ext, 'MCP Auth: Authorize Server', {
          rank: (s) => (stateInfo(s.state).needsAction ? 0 : s.state === 'authorized' ? 2 : 1),
          allowUrl: true,
        });
  if (!name) return undefined;
  try {
    const status = await ext.authorize(name, options);
    void vscode.window.showInformationMessage(`MCP Auth: signed in to ${status.server}.`);
    return status;
  } catch (e) {
    if (e instanceof SidecarError && e.isCancelled) {
      ext.log(`sign-in to ${name} cancelled`);
      return undefined;
    }
    showError(ext, `Signing in to ${name}`, e);
    return undefined;
  }
}

export async function signOutCommand(ext: McpAuthExtension, server?: string): Promise<boolean> {
  const name =
    typeof server === 'string'
      ? server
      : await pickServer(ext, 'MCP Auth: Sign Out', { rank: (s) => (stateInfo(s.state).hasCredential ? 0 : 1) });
  if (!name) return false;
  try {
    const result = await ext.signOut(name);
    void vscode.window.showInformationMessage(
      `MCP Auth: signed out of ${name}${result.revoked ? ' (tokens revoked)' : ''}.`,
    );
    return true;
  } catch (e) {
    showError(ext, `Signing out of ${name}`, e);
    return false;
  }
}

export async function pasteCallbackUrlCommand(
  ext: McpAuthExtension,
  server?: string,
  callbackUrl?: string,
): Promise<ServerStatus | undefined> {
  let name = typeof server === 'string' ? server : undefined;
  if (!name) {
    const waiting = [...ext.statuses.values()].filter((s) => s.state === 'authorizing' || ext.pending.has(s.server));
    name =
      waiting.length === 1
        ? waiting[0]!.server
        : await pickServer(ext, 'MCP Auth: Paste Callback URL — which server?', {
            rank: (s) => (s.state === 'authorizing' ? 0 : 1),
          });
  }
  if (!name) return undefined;
  const url =
    typeof callbackUrl === 'string'
      ? callbackUrl
      : await vscode.window.showInputBox({
          title: `MCP Auth: Paste Callback URL (${name})`,
          prompt:
            'After signing in, the browser is sent back to an http://127.0.0.1:… address. If that page does not load (SSH, remote, another machine), copy the full address from the browser and paste it here.',
          placeHolder: 'http://127.0.0.1:PORT/callback?code=…&state=…',
          ignoreFocusOut: true,
          validateInput: (v) => callbackUrlProblem(v),
        });
  if (!url) return undefined;
  const problem = callbackUrlProblem(url);
  if (problem) {
    void vscode.window.showErrorMessage(`MCP Auth: ${problem}`);
    return undefined;
  }
  try {
    const status = await ext.completeAuthorization(name, url);
    void vscode.window.showInformationMessage(`MCP Auth: signed in to ${status.server}.`);
    return status;
  } catch (e) {
    showError(ext, `Completing the sign-in to ${name}`, e);
    return undefined;
  }
}

type Action = vscode.QuickPickItem & { run: () => Thenable<unknown> | void };

export async function showStatusCommand(ext: McpAuthExtension): Promise<void> {
  const items: Promise<ServerItem[]> = (async () => {
    const statuses = await currentStatuses(ext, true);
    const list: ServerItem[] = statuses.map(serverItem);
    if (ext.client.state === 'failed') {
      list.unshift({
        label: '$(error) mcp-auth-sidecar is not running',
        detail: describeError(ext.client.error),
        action: 'start',
      });
    }
    list.push({ label: '$(output) Show Log', action: 'log' }, { label: '$(settings-gear) Settings', action: 'settings' });
    return list;
  })();
  const picked = await vscode.window.showQuickPick(items, {
    title: 'MCP Auth: servers',
    placeHolder: 'Pick a server for its actions',
    matchOnDescription: true,
  });
  if (!picked) return;
  switch (picked.action) {
    case 'log':
      ext.output.show(true);
      return;
    case 'settings':
      await vscode.commands.executeCommand('workbench.action.openSettings', 'mcpAuth');
      return;
    case 'start':
      await ext.restart('requested from the status menu');
      return;
  }
  if (!picked.server) return;
  const server = picked.server;
  const status = ext.statuses.get(server);
  const info = stateInfo(status?.state ?? 'unknown');
  const actions: Action[] = [];
  if (status?.state === 'authorized' || status?.state === 'refreshing') {
    actions.push({ label: '$(sign-in) Sign In Again', run: () => authorizeCommand(ext, server, { force: true }) });
  } else if (status?.state !== 'authorizing' && status?.state !== 'not_required') {
    actions.push({ label: '$(sign-in) Sign In', run: () => authorizeCommand(ext, server) });
  }
  if (status?.state === 'authorizing' || ext.pending.has(server)) {
    actions.push({ label: '$(clippy) Paste Callback URL…', run: () => pasteCallbackUrlCommand(ext, server) });
    const url = ext.pending.get(server);
    if (url) actions.push({ label: `$(copy) ${COPY_ACTION}`, run: () => vscode.env.clipboard.writeText(url) });
  }
  if (ext.flow(server)) {
    actions.push({ label: '$(close) Cancel Sign-In', run: () => void ext.cancelAuthorization(server) });
  }
  if (info.hasCredential || status?.state === 'authorizing') {
    actions.push({ label: '$(sign-out) Sign Out', run: () => signOutCommand(ext, server) });
  }
  if (actions.length === 0) {
    void vscode.window.showInformationMessage(`MCP Auth: ${server} — ${info.label}.`);
    return;
  }
  const action = await vscode.window.showQuickPick(actions, {
    title: `MCP Auth: ${server} — ${info.label}`,
    placeHolder: status?.message ?? status?.url ?? '',
  });
  await action?.run();
}

/**
 * Stores a confidential client's secret in VS Code's SecretStorage (not in
 * settings.json, which Settings Sync uploads); an empty answer deletes it.
 * The sidecar restarts with it. Servers of the `mcpAuth.servers` setting.
 */
async function setClientSecretCommand(ext: McpAuthExtension, server?: string, secret?: string): Promise<boolean> {
  if (server === undefined) {
    const names = ext.settingsServers();
    if (names.length === 0) {
      void vscode.window.showInformationMessage(
        'MCP Auth: a client secret is set for a server of the mcpAuth.servers setting (with its clientId); there is none.',
      );
      return false;
    }
    const picked = await vscode.window.showQuickPick(
      names.map((label) => ({ label })),
      { title: 'MCP Auth: Set Client Secret', placeHolder: 'The server whose OAuth client secret to store' },
    );
    if (!picked) return false;
    server = picked.label;
  }
  if (secret === undefined) {
    secret = await vscode.window.showInputBox({
      title: `MCP Auth: client secret for ${server}`,
      prompt: 'Kept in VS Code’s secret storage (the OS keyring), never in settings. Leave empty to delete it.',
      password: true,
      ignoreFocusOut: true,
    });
    if (secret === undefined) return false;
  }
  try {
    await ext.setClientSecret(server, secret.trim() || undefined);
    return true;
  } catch (e) {
    void vscode.window.showErrorMessage(`MCP Auth: could not store the client secret: ${describeError(e)}`);
    return false;
  }
}

export function registerCommands(ext: McpAuthExtension): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand(COMMANDS.authorize, (server?: string, options?: { force?: boolean; scopes?: string[] }) =>
      authorizeCommand(ext, server, options),
    ),
    vscode.commands.registerCommand(COMMANDS.signOut, (server?: string) => signOutCommand(ext, server)),
    vscode.commands.registerCommand(COMMANDS.pasteCallbackUrl, (server?: string, url?: string) =>
      pasteCallbackUrlCommand(ext, server, url),
    ),
    vscode.commands.registerCommand(COMMANDS.showStatus, () => showStatusCommand(ext)),
    vscode.commands.registerCommand(COMMANDS.setClientSecret, (server?: string, secret?: string) =>
      setClientSecretCommand(ext, server, secret),
    ),
  ];
}
