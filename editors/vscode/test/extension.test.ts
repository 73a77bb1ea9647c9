// extension.ts with a stub `vscode` module (test/support/vscodeStub.ts),
// the REAL sidecar binary and the MCP SDK example server: what the user
// sees (status bar, messages, quick picks) and what VS Code is asked to do
// (openExternal, asExternalUri), end to end.

import * as assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as stub from './support/vscodeStub';
import { assertPrerequisites, extensionRoot, freePort, rejection, sidecarBin, tempHome, until, within } from './support/env';
import { callbackUrlFor, followInBrowser, postInitialize, startExample, type ExampleServer } from './support/exampleServer';
import type { McpAuthApi, ServerStatus } from '../src/api';

// `require('vscode')` must resolve to the stub before extension.ts loads.
stub.installVscodeStub();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const extension = require('../src/extension') as typeof import('../src/extension');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { SidecarError } = require('../src/client') as typeof import('../src/client');

const SERVER = 'example';
const packageJSON = JSON.parse(readFileSync(join(extensionRoot, 'package.json'), 'utf8')) as {
  version: string;
  contributes: { commands: { command: string; title: string }[]; configuration: { properties: Record<string, { default?: unknown }> } };
};

interface Activated {
  api: McpAuthApi;
  context: ReturnType<typeof stub.extensionContext>;
  instance: InstanceType<typeof extension.McpAuthExtension>;
  item: stub.FakeStatusBarItem;
  output: stub.FakeOutputChannel;
  events: ServerStatus[];
  shared?: boolean;
}

describe('the VS Code extension (stub vscode, real sidecar)', function () {
  this.timeout(60_000);
  let example: ExampleServer;
  let home: ReturnType<typeof tempHome>;
  const savedEnv = { ...process.env };
  let active: Activated | undefined;

  function settings(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      'mcpAuth.sidecarPath': sidecarBin,
      'mcpAuth.servers': { [SERVER]: { url: example.mcpUrl } },
      'mcpAuth.storage': 'memory',
      'mcpAuth.discoverConfigFiles': false,
      'mcpAuth.logLevel': 'info',
      ...extra,
    };
  }

  async function activate(extra: Record<string, unknown> = {}, extensionPath?: string): Promise<Activated> {
    stub.reset();
    stub.configure(settings(extra));
    // The "browser": follows the authorization URL in the background (a
    // real openExternal resolves once the browser was launched).
    stub.responders.openExternal = async (url) => {
      void followInBrowser(url).catch(() => undefined);
      return true;
    };
    const context = stub.extensionContext(packageJSON, extensionPath);
    const api = extension.activate(context);
    const instance = context.subscriptions.find((d) => d instanceof extension.McpAuthExtension) as Activated['instance'];
    const events: ServerStatus[] = [];
    api.onDidChangeStatus((s) => events.push(s));
    active = {
      api,
      context,
      instance,
      item: stub.recorded.statusBarItems[0]!,
      output: stub.recorded.outputChannels[0]!,
      events,
    };
    return active;
  }

  async function deactivate(): Promise<void> {
    if (!active) return;
    const a = active;
    active = undefined;
    await extension.deactivate();
    for (const d of a.context.subscriptions) d.dispose();
  }

  function statusBarShows(a: Activated, text: string): Promise<void> {
    return until(15_000, `status bar "${text}" (now "${a.item.text}")`, () => a.item.text === text);
  }

  before(async () => {
    assertPrerequisites();
    example = await startExample();
    home = tempHome();
    // The extension passes its own environment to the sidecar.
    Object.assign(process.env, {
      HOME: home.env.HOME,
      XDG_CONFIG_HOME: home.env.XDG_CONFIG_HOME,
      XDG_DATA_HOME: home.env.XDG_DATA_HOME,
      MCP_AUTH_SIDECAR_HOME: home.env.MCP_AUTH_SIDECAR_HOME,
    });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && active) console.error(active.output.lines.slice(-60).join('\n'));
    if (!active?.shared) await deactivate();
  });
  after(async () => {
    for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
    Object.assign(process.env, savedEnv);
    await example?.stop();
    home?.remove();
  });

  it('package.json contributes the four commands, the settings and an activation event', () => {
    const commands = Object.fromEntries(packageJSON.contributes.commands.map((c) => [c.command, c.title]));
    assert.deepEqual(commands, {
      'mcpAuth.authorize': 'MCP Auth: Authorize Server…',
      'mcpAuth.signOut': 'MCP Auth: Sign Out…',
      'mcpAuth.pasteCallbackUrl': 'MCP Auth: Paste Callback URL…',
      'mcpAuth.showStatus': 'MCP Auth: Show Status',
      'mcpAuth.setClientSecret': 'MCP Auth: Set Client Secret…',
    });
    const props = packageJSON.contributes.configuration.properties;
    assert.equal(props['mcpAuth.sidecarPath']?.default, ''); // unset: bundled, then PATH
    assert.deepEqual(props['mcpAuth.servers']?.default, {});
    assert.equal(props['mcpAuth.storage']?.default, 'auto');
    const manifest = packageJSON as unknown as { activationEvents: string[]; main: string };
    assert.ok(manifest.activationEvents.includes('onStartupFinished'));
    assert.equal(manifest.main, './out/src/extension.js');
    // The MCP server definition provider is declared, and activates the extension.
    const contributes = packageJSON.contributes as unknown as { mcpServerDefinitionProviders: { id: string }[] };
    assert.deepEqual(contributes.mcpServerDefinitionProviders.map((p) => p.id), ['mcpAuth.servers']);
    assert.ok(manifest.activationEvents.includes('onMcpServerDefinitionProvider:mcpAuth.servers'));
  });

  describe("VS Code's own MCP client (lm.registerMcpServerDefinitionProvider)", () => {
    function provider(): stub.McpProviderRecord['provider'] {
      const rec = stub.recorded.mcpProviders.find((p) => p.id === 'mcpAuth.servers' && !p.disposed);
      assert.ok(rec, 'the provider is registered');
      return rec.provider;
    }
    const token = () => new stub.CancellationTokenSource().token;

    it('offers the configured servers; resolve signs in once and adds a Bearer token the MCP server accepts', async () => {
      const a = await activate();
      assert.equal(a.api.mcpServerDefinitionProvider, 'mcpAuth.servers');
      const defs = await provider().provideMcpServerDefinitions(token());
      assert.deepEqual(
        defs.map((d) => [d.label, d.uri.toString(), d.headers]),
        [[SERVER, example.mcpUrl, {}]],
      );
      assert.equal(stub.recorded.openedExternal.length, 0, 'offering does not sign in');

      // VS Code resolves before it connects: no token yet → the browser flow, then the header.
      const resolved = await provider().resolveMcpServerDefinition!(defs[0]!, token());
      assert.equal(stub.recorded.openedExternal.length, 1, 'one browser sign-in');
      const auth = resolved?.headers.Authorization ?? '';
      assert.match(auth, /^Bearer \S+$/);
      const reply = await postInitialize(example.mcpUrl, auth.slice('Bearer '.length));
      assert.equal(reply.status, 200, reply.text);
      assert.ok(!a.output.lines.some((l) => l.includes(auth.slice(7))), 'the token never reaches the log');

      // A second connection: the same login, no second browser flow; the sidecar's token.
      const again = await provider().resolveMcpServerDefinition!(
        (await provider().provideMcpServerDefinitions(token()))[0]!,
        token(),
      );
      assert.equal(stub.recorded.openedExternal.length, 1, 'no second sign-in');
      assert.equal(again?.headers.Authorization, `Bearer ${await a.api.getAccessToken(SERVER)}`);
    });

    it('a cancelled token, or a server the sidecar cannot serve, rejects with a clear error', async () => {
      await activate();
      const defs = await provider().provideMcpServerDefinitions(token());
      const source = new stub.CancellationTokenSource();
      source.cancel();
      const cancelled = await rejection(provider().resolveMcpServerDefinition!(defs[0]!, source.token));
      assert.match((cancelled as Error).message, /^MCP Auth: connecting to example was cancelled$/);
      assert.equal(stub.recorded.openedExternal.length, 0);
      const unknown = new stub.McpHttpServerDefinition('nope', stub.Uri.parse('https://nope.example/mcp'));
      const failed = await rejection(provider().resolveMcpServerDefinition!(unknown, token()));
      assert.match((failed as Error).message, /^MCP Auth: no access token for nope: /);
    });

    it('fires onDidChangeMcpServerDefinitions when the set of servers changes', async () => {
      const a = await activate();
      let fired = 0;
      provider().onDidChangeMcpServerDefinitions!(() => fired++);
      await provider().provideMcpServerDefinitions(token());
      // A restart with the same servers (another setting changed) is no change for VS Code.
      const pid = a.instance.client.pid;
      stub.configure({ 'mcpAuth.logLevel': 'debug' }, true);
      await until(15_000, 'the restart', () => {
        const now = a.instance.client.pid;
        return now !== undefined && now !== pid && a.instance.statusesLoaded;
      });
      assert.equal(fired, 0, 'same servers after a restart: no event');
      stub.configure({ 'mcpAuth.servers': { [SERVER]: { url: example.mcpUrl }, second: { url: example.mcpUrl } } }, true);
      await until(15_000, 'onDidChangeMcpServerDefinitions', () => fired > 0);
      const defs = await provider().provideMcpServerDefinitions(token());
      assert.deepEqual(defs.map((d) => d.label).sort(), [SERVER, 'second']);
      assert.ok(a.output.lines.some((l) => l.includes('MCP server definitions changed')));
    });

    it('on a VS Code without the API (before 1.101) nothing is registered and the rest works', async () => {
      stub.reset();
      delete stub.lm.registerMcpServerDefinitionProvider;
      stub.configure(settings());
      const context = stub.extensionContext(packageJSON);
      const api = extension.activate(context);
      active = { api, context, instance: undefined as never, item: stub.recorded.statusBarItems[0]!, output: stub.recorded.outputChannels[0]!, events: [] };
      assert.equal(api.mcpServerDefinitionProvider, undefined);
      assert.equal(stub.recorded.mcpProviders.length, 0);
      assert.ok(active.output.lines.some((l) => l.includes('has no MCP server definition provider API')));
      assert.equal((await api.getStatus(SERVER))[0]?.server, SERVER);
    });
  });

  describe('client secrets in SecretStorage', () => {
    it('"MCP Auth: Set Client Secret…" stores it in SecretStorage, restarts the sidecar with it, never logs it', async () => {
      const a = await activate({ 'mcpAuth.servers': { [SERVER]: { url: example.mcpUrl, clientId: 'pre-registered' } } });
      await statusBarShows(a, '$(shield) MCP: 0/1 signed in');
      const pid = a.instance.client.pid;
      stub.responders.quickPick = (r) => r.items.find((i) => i.label === SERVER);
      stub.responders.inputBox = () => 'very-secret-value';
      assert.equal(await stub.commands.executeCommand('mcpAuth.setClientSecret'), true);
      assert.equal(stub.recorded.inputBoxes.at(-1)?.options?.password, true);
      assert.equal(a.context.secrets.values.get('mcpAuth.clientSecret/example'), 'very-secret-value');
      await until(15_000, 'the sidecar restarted', () => a.instance.client.pid !== undefined && a.instance.client.pid !== pid && a.instance.client.state === 'running');
      assert.deepEqual(a.instance.initializationOptions().servers?.[SERVER], {
        url: example.mcpUrl,
        clientId: 'pre-registered',
        clientSecret: 'very-secret-value',
      });
      assert.ok(!a.output.lines.some((l) => l.includes('very-secret-value')), 'the secret never reaches the log');
      // An empty answer deletes it.
      assert.equal(await stub.commands.executeCommand('mcpAuth.setClientSecret', SERVER, ''), true);
      assert.equal(a.context.secrets.values.has('mcpAuth.clientSecret/example'), false);
    });

    it('a clientSecret in settings still works but warns (naming the command, not the value)', async () => {
      const a = await activate({ 'mcpAuth.servers': { [SERVER]: { url: example.mcpUrl, clientId: 'c', clientSecret: 'in-settings-secret' } } });
      await until(15_000, 'the warning', () => stub.recorded.messages.some((m) => m.kind === 'warning'));
      const warning = stub.recorded.messages.find((m) => m.kind === 'warning')!;
      assert.match(warning.message, /deprecated.*Settings Sync.*MCP Auth: Set Client Secret/);
      assert.ok(!warning.message.includes('in-settings-secret'));
      assert.deepEqual(warning.items, ['Set Client Secret…']);
      assert.equal(a.instance.initializationOptions().servers?.[SERVER]?.clientSecret, 'in-settings-secret');
      assert.ok(!a.output.lines.some((l) => l.includes('in-settings-secret')));
    });
  });

  it('activate() registers the commands, a status bar item and an output channel, and returns the API', async () => {
    const a = await activate();
    assert.deepEqual(
      stub.registeredCommands().sort(),
      packageJSON.contributes.commands.map((c) => c.command).sort(),
    );
    assert.equal(a.item.id, 'mcpAuth.status');
    assert.equal(a.item.command, 'mcpAuth.showStatus');
    assert.equal(a.output.name, 'MCP Auth');
    assert.equal(a.output.isLogChannel, true, 'a LogOutputChannel');
    assert.equal(a.api.apiVersion, 1);
    assert.equal(typeof a.api.getAccessToken, 'function');
    assert.equal(typeof a.api.onDidChangeStatus, 'function');
    // The sidecar starts; the configured server shows up as not checked yet.
    await statusBarShows(a, '$(shield) MCP: 0/1 signed in');
    assert.equal(a.item.visible, true);
    assert.match(String(a.item.tooltip), /^example — Not checked$/m);
    assert.ok(a.output.lines.some((l) => l.includes('[sidecar]')), 'the sidecar log goes to the output channel');
    // A log channel: each sidecar line at the level its tracing prefix names.
    const levels: Record<string, string> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warning', ERROR: 'error' };
    const sidecarLines = a.output.lines
      .map((l) => /^\[(\w+)\] \[sidecar\] \S+\s+(TRACE|DEBUG|INFO|WARN|ERROR)\b/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null);
    assert.ok(sidecarLines.length > 0, a.output.lines.join('\n'));
    for (const m of sidecarLines) assert.equal(m[1], levels[m[2]!], m[0]);
  });

  describe('sign-in, token, sign-out', () => {
    let a: Activated;
    // One activation for the whole group (the outer afterEach leaves shared ones alone).
    before(async () => {
      a = await activate();
      a.shared = true;
      await statusBarShows(a, '$(shield) MCP: 0/1 signed in');
    });
    after(async () => {
      active = a;
      await deactivate();
    });

    it('mcpAuth.authorize: window/showDocument → asExternalUri(callback) → openExternal; status bar → signed in', async () => {
      const status = (await stub.commands.executeCommand('mcpAuth.authorize', SERVER)) as ServerStatus | undefined;
      assert.equal(status?.state, 'authorized', a.output.lines.join('\n'));

      // openExternal got the authorization URL the sidecar sent with window/showDocument.
      assert.equal(stub.recorded.openedExternal.length, 1);
      const authUrl = new URL(stub.recorded.openedExternal[0]!.text);
      assert.equal(authUrl.origin, `http://localhost:${example.authPort}`);
      assert.equal(authUrl.pathname, '/authorize');
      // Its loopback redirect_uri went through asExternalUri first (Remote-SSH port forwarding).
      const redirect = new URL(authUrl.searchParams.get('redirect_uri') ?? '');
      assert.deepEqual(stub.recorded.asExternalUri, [`http://127.0.0.1:${redirect.port}/`]);
      assert.deepEqual(
        stub.recorded.sequence.map((c) => c.split(' ')[0]),
        ['asExternalUri', 'openExternal'],
        'the callback port is forwarded before the browser opens',
      );

      assert.equal(a.item.text, '$(pass) MCP: 1/1 signed in');
      assert.ok(a.item.history.includes('$(sync~spin) MCP: signing in…'), a.item.history.join(' | '));
      assert.equal(a.item.backgroundColor, undefined);
      const progress = stub.recorded.progress.at(-1);
      assert.equal(progress?.title, 'MCP Auth: signing in to example');
      assert.equal(progress?.cancellable, true);
      assert.equal(progress?.done, true);
      assert.ok(stub.recorded.messages.some((m) => m.kind === 'info' && m.message === 'MCP Auth: signed in to example.'));
      // The output channel never shows the authorization URL's query (state, PKCE challenge).
      assert.ok(!a.output.lines.some((l) => l.includes(authUrl.searchParams.get('state') ?? '<none>')));
    });

    it('onDidChangeStatus fired authorizing, then authorized', () => {
      const states = a.events.filter((s) => s.server === SERVER).map((s) => s.state);
      assert.ok(states.indexOf('authorizing') >= 0 && states.lastIndexOf('authorized') > states.indexOf('authorizing'), states.join(', '));
    });

    it('api.getAccessToken returns a token the MCP server accepts (HTTP 200)', async () => {
      const token = await a.api.getAccessToken(SERVER);
      const reply = await postInitialize(example.mcpUrl, token);
      assert.equal(reply.status, 200, reply.text);
      assert.ok(!a.output.lines.some((l) => l.includes(token)), 'the token never reaches the log');
    });

    it('mcpAuth.signOut: status bar asks to sign in; getAccessToken rejects with code 1001', async () => {
      const before = a.events.length;
      assert.equal(await stub.commands.executeCommand('mcpAuth.signOut', SERVER), true);
      await statusBarShows(a, '$(key) MCP: sign in to example');
      assert.equal(a.item.backgroundColor?.id, 'statusBarItem.warningBackground');
      assert.ok(a.events.slice(before).some((s) => s.state === 'unauthenticated'));
      const e = await rejection(a.api.getAccessToken(SERVER));
      assert.ok(e instanceof SidecarError);
      assert.equal(e.code, 1001);
      assert.equal(e.status?.state, 'unauthenticated');
    });

    it('mcpAuth.showStatus: a quick pick of servers with their states; picking an action runs it', async () => {
      stub.responders.quickPick = (r) =>
        r.options?.title === 'MCP Auth: servers'
          ? r.items.find((i) => (i as { server?: string }).server === SERVER)
          : r.items.find((i) => i.label === '$(sign-in) Sign In');
      await stub.commands.executeCommand('mcpAuth.showStatus');
      const [servers, actions] = stub.recorded.quickPicks.slice(-2);
      const entry = servers?.items.find((i) => i.label === '$(key) example');
      assert.ok(entry, JSON.stringify(servers?.items));
      assert.equal(entry.description, 'Sign-in required');
      assert.ok(servers?.items.some((i) => i.label === '$(output) Show Log'));
      assert.deepEqual(
        actions?.items.map((i) => i.label),
        ['$(sign-in) Sign In'],
      );
      await statusBarShows(a, '$(pass) MCP: 1/1 signed in');
      stub.responders.quickPick = (r) =>
        r.options?.title === 'MCP Auth: servers' ? r.items.find((i) => (i as { server?: string }).server === SERVER) : undefined;
      await stub.commands.executeCommand('mcpAuth.showStatus');
      assert.deepEqual(
        stub.recorded.quickPicks.at(-1)?.items.map((i) => i.label),
        ['$(sign-in) Sign In Again', '$(sign-out) Sign Out'],
      );
    });

    it('cancelling the progress notification cancels the sign-in ($/cancelRequest → -32800), silently', async () => {
      stub.responders.openExternal = async () => true; // the user never finishes in the browser
      const errorsBefore = stub.recorded.messages.filter((m) => m.kind === 'error').length;
      const openedBefore = stub.recorded.openedExternal.length;
      const running = stub.commands.executeCommand('mcpAuth.authorize', SERVER, { force: true });
      await until(15_000, 'the browser to be opened', () => stub.recorded.openedExternal.length > openedBefore);
      stub.recorded.progress.at(-1)!.cancel();
      assert.equal(await within(5_000, 'the cancelled command', running), undefined);
      assert.ok(a.output.lines.some((l) => l.includes('sign-in to example cancelled')));
      assert.ok(!a.output.lines.some((l) => l.includes('giving up locally')), 'the sidecar confirmed the cancellation');
      assert.equal(stub.recorded.messages.filter((m) => m.kind === 'error').length, errorsBefore);
      await until(5_000, 'the status bar to leave "signing in"', () => !a.item.text.includes('signing in'));
    });

    it('window/showDocument forwards the loopback callback (asExternalUri) before it opens the browser', async () => {
      stub.responders.openExternal = async () => true;
      stub.recorded.sequence.length = 0;
      const url = 'http://localhost:1/authorize?client_id=c&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcallback&state=s';
      assert.deepEqual(await a.instance.browser.showDocument({ uri: url, external: true }), { success: true });
      assert.deepEqual(stub.recorded.sequence, ['asExternalUri http://127.0.0.1:5555/', `openExternal ${url}`]);
      // A URL VS Code's Uri would re-encode goes to openExternal as the original string.
      const tricky = `${url}&resource=https%3A%2F%2Fmcp.example%2Fmcp%3Ftenant%3Da%26x%3Db`;
      await a.instance.browser.showDocument({ uri: tricky, external: true });
      assert.equal(stub.recorded.openedExternal.at(-1)?.target, tricky);
      stub.responders.openExternal = async () => false; // e.g. the user declined VS Code's prompt
      assert.deepEqual(await a.instance.browser.showDocument({ uri: `${url}&x=1`, external: true }), { success: false });
    });

    it('window/showDocument opens only web URLs', async () => {
      const opened = stub.recorded.openedExternal.length;
      assert.deepEqual(await a.instance.browser.showDocument({ uri: 'file:///etc/passwd', external: true }), { success: false });
      assert.deepEqual(await a.instance.browser.showDocument({ uri: 'command:workbench.action.quit', external: true }), {
        success: false,
      });
      assert.equal(stub.recorded.openedExternal.length, opened);
    });
  });

  it('Remote-SSH: when asExternalUri forwards the callback to another port, the user is told to paste; the paste command completes the flow', async () => {
    const otherPort = await freePort();
    const a = await activate();
    stub.env.remoteName = 'ssh-remote';
    stub.responders.asExternalUri = () => stub.Uri.parse(`http://localhost:${otherPort}/`);
    // The browser is sent to the unforwarded 127.0.0.1:<port>: nothing to follow.
    stub.responders.openExternal = async () => true;
    await statusBarShows(a, '$(shield) MCP: 0/1 signed in');

    const running = stub.commands.executeCommand('mcpAuth.authorize', SERVER) as Promise<ServerStatus | undefined>;
    await until(15_000, 'the browser to be opened', () => stub.recorded.openedExternal.length === 1);
    await until(5_000, 'the warning', () => stub.recorded.messages.some((m) => m.kind === 'warning'));
    const warning = stub.recorded.messages.find((m) => m.kind === 'warning')!;
    assert.match(warning.message, /Paste Callback URL/);
    assert.match(warning.message, new RegExp(`localhost:${otherPort}`));
    assert.ok(warning.items.includes('Paste Callback URL…'));

    // The user copies the address the browser shows and runs the paste command.
    const callbackUrl = await callbackUrlFor(stub.recorded.openedExternal[0]!.text);
    stub.responders.inputBox = () => `  ${callbackUrl}  `;
    const pasted = (await stub.commands.executeCommand('mcpAuth.pasteCallbackUrl')) as ServerStatus | undefined;
    assert.equal(pasted?.state, 'authorized');
    assert.equal(stub.recorded.inputBoxes.at(-1)?.validation, undefined);
    assert.equal((await within(5_000, 'the authorize command', running))?.state, 'authorized');
    await statusBarShows(a, '$(pass) MCP: 1/1 signed in');
  });

  it('browser "none": the pending notification offers to copy the URL and to paste the callback', async () => {
    const a = await activate({ 'mcpAuth.browser': 'none' });
    await statusBarShows(a, '$(shield) MCP: 0/1 signed in');
    stub.responders.message = (m) => (m.kind === 'info' && m.items.includes('Copy Authorization URL') ? 'Copy Authorization URL' : undefined);
    const running = stub.commands.executeCommand('mcpAuth.authorize', SERVER) as Promise<ServerStatus | undefined>;
    await until(15_000, 'the URL on the clipboard', () => stub.recorded.clipboard.length === 1);
    assert.equal(stub.recorded.openedExternal.length, 0, 'nothing opened with browser "none"');
    const info = stub.recorded.messages.find((m) => m.items.includes('Copy Authorization URL'))!;
    assert.deepEqual(info.items, ['Open in Browser', 'Copy Authorization URL', 'Paste Callback URL…']);
    const callbackUrl = await callbackUrlFor(stub.recorded.clipboard[0]!);
    stub.responders.inputBox = () => 'not a url';
    assert.equal(await stub.commands.executeCommand('mcpAuth.pasteCallbackUrl', SERVER), undefined);
    assert.match(stub.recorded.inputBoxes.at(-1)?.validation ?? '', /not a URL/);
    stub.responders.inputBox = () => callbackUrl;
    assert.equal(((await stub.commands.executeCommand('mcpAuth.pasteCallbackUrl', SERVER)) as ServerStatus).state, 'authorized');
    assert.equal((await within(5_000, 'the authorize command', running))?.state, 'authorized');
  });

  it('a settings change restarts the sidecar with the new servers', async () => {
    const a = await activate();
    await statusBarShows(a, '$(shield) MCP: 0/1 signed in');
    const firstPid = a.instance.client.pid;
    stub.configure(
      { 'mcpAuth.servers': { [SERVER]: { url: example.mcpUrl }, second: { url: 'https://second.example.invalid/mcp' } } },
      true,
    );
    await statusBarShows(a, '$(shield) MCP: 0/2 signed in');
    assert.match(String(a.item.tooltip), /^second — Not checked$/m);
    assert.notEqual(a.instance.client.pid, firstPid);
  });

  it('mcpAuth.sidecarPath unset: the binary bundled under bin/<platform>-<arch> runs; set, the setting wins', async () => {
    const extDir = join(home.home, 'extension');
    const bundled = join(extDir, 'bin', `${process.platform}-${process.arch}`, 'mcp-auth-sidecar');
    mkdirSync(dirname(bundled), { recursive: true });
    symlinkSync(sidecarBin, bundled); // a link: the debug binary is large
    let a = await activate({ 'mcpAuth.sidecarPath': undefined }, extDir);
    await statusBarShows(a, '$(shield) MCP: 0/1 signed in');
    assert.ok(a.output.lines.some((l) => l.endsWith(`sidecar: ${bundled} (bundled with the extension)`)), a.output.lines.join('\n'));
    await deactivate();
    a = await activate({}, extDir); // settings() sets mcpAuth.sidecarPath
    await statusBarShows(a, '$(shield) MCP: 0/1 signed in');
    assert.ok(a.output.lines.some((l) => l.endsWith(`sidecar: ${sidecarBin} (mcpAuth.sidecarPath)`)), a.output.lines.join('\n'));
  });

  it('a missing sidecar binary: error message with "Open Settings", error in the status bar; deactivate is clean', async () => {
    const a = await activate({ 'mcpAuth.sidecarPath': join(home.home, 'missing', 'mcp-auth-sidecar') });
    await statusBarShows(a, '$(error) MCP Auth');
    assert.equal(a.item.backgroundColor?.id, 'statusBarItem.errorBackground');
    assert.match(String(a.item.tooltip), /ENOENT/);
    await until(5_000, 'the error message', () => stub.recorded.messages.some((m) => m.kind === 'error'));
    const error = stub.recorded.messages.find((m) => m.kind === 'error')!;
    assert.match(error.message, /not running/);
    assert.match(error.message, /mcpAuth\.sidecarPath/);
    assert.deepEqual(error.items, ['Open Settings', 'Show Log']);
    const e = await rejection(a.api.getAccessToken(SERVER));
    assert.ok(e instanceof SidecarError);
    assert.equal(e.code, -32099);
  });

  it('deactivate() shuts the sidecar down', async () => {
    const a = await activate();
    await statusBarShows(a, '$(shield) MCP: 0/1 signed in');
    const pid = a.instance.client.pid!;
    await deactivate();
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
  });
});
