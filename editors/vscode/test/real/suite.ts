// Runs INSIDE a real VS Code extension host (code-server, test/real/run.sh):
// VS Code loads this module through extensionTestsPath and calls run(); a
// rejection fails the run. Not a mocha file (mocha runs out/test/**/*.test.js
// with the stub; this one needs the real `vscode`).

import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as vscode from 'vscode';
import type { McpAuthApi } from '../../src/api';
import { followBrowser } from '../support/env';
import { startExample } from '../support/exampleServer';

const ID = 'mcp-auth-sidecar.mcp-auth-sidecar';

function atLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split('.').map((x) => parseInt(x, 10));
  return a > major || (a === major && b >= minor);
}

async function until<T>(ms: number, what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function run(): Promise<void> {
  console.log(`real VS Code ${vscode.version} (${vscode.env.appName})`);
  const ext = vscode.extensions.getExtension<McpAuthApi>(ID);
  assert.ok(ext, `${ID} is loaded as a development extension`);
  const api = await ext.activate();
  assert.equal(ext.isActive, true, 'the extension activated');
  assert.equal(api.apiVersion, 1);
  console.log('ok - the extension activated in the real extension host');

  const commands = await vscode.commands.getCommands(true);
  for (const c of ['mcpAuth.authorize', 'mcpAuth.signOut', 'mcpAuth.pasteCallbackUrl', 'mcpAuth.showStatus', 'mcpAuth.setClientSecret']) {
    assert.ok(commands.includes(c), `command ${c} is registered`);
  }
  console.log('ok - its five commands are registered');

  // The sidecar (mcpAuth.sidecarPath from run.sh's settings) runs and knows the configured server.
  const statuses = await api.getStatus();
  assert.deepEqual(
    statuses.map((s) => [s.server, s.url]),
    [['example', 'http://127.0.0.1:9/mcp']],
  );
  console.log(`ok - the sidecar answers: ${statuses.map((s) => `${s.server} ${s.state}`).join(', ')}`);

  if (atLeast(vscode.version, 1, 101)) {
    assert.equal(api.mcpServerDefinitionProvider, 'mcpAuth.servers', 'the MCP server definition provider is registered');
    console.log('ok - the MCP server definition provider is registered (VS Code >= 1.101)');
  } else {
    assert.equal(api.mcpServerDefinitionProvider, undefined);
    console.log(`ok - VS Code ${vscode.version} has no MCP provider API; none registered`);
  }

  // The status bar item is in the page: drive.js watches the DOM and writes the marker.
  const marker = process.env.MCP_AUTH_REAL_MARKER;
  assert.ok(marker, 'MCP_AUTH_REAL_MARKER reaches the extension host');
  const text = await until(60_000, 'the status bar item in the workbench', () =>
    existsSync(marker) ? readFileSync(marker, 'utf8') : undefined,
  );
  assert.equal(text, '$(shield) MCP: 0/1 signed in');
  console.log(`ok - the workbench shows its status bar item: ${JSON.stringify(text)}`);

  if (atLeast(vscode.version, 1, 101)) await vscodeMcpClientUsesOurToken(api);
}

/**
 * VS Code's own MCP client starts a server this extension offers: it calls
 * resolveMcpServerDefinition, which signs in through the sidecar (the test
 * browser follow.mjs, run by the sidecar) and hands VS Code the token; the
 * MCP SDK example server (--oauth-strict: 401 without a valid token)
 * accepts it, and VS Code lists the server's tools.
 */
async function vscodeMcpClientUsesOurToken(api: McpAuthApi): Promise<void> {
  const example = await startExample();
  try {
    const config = vscode.workspace.getConfiguration('mcpAuth');
    await config.update('browser', followBrowser, vscode.ConfigurationTarget.Global);
    await config.update('servers', { sdk: { url: example.mcpUrl } }, vscode.ConfigurationTarget.Global);
    await until(30_000, 'the sidecar to restart with the server "sdk"', async () =>
      (await api.getStatus().catch(() => [])).some((s) => s.server === 'sdk'),
    );
    const id = 'mcp-auth-sidecar.mcp-auth-sidecar/sdk';
    // VS Code asks the provider again after onDidChangeMcpServerDefinitions; start once it knows "sdk".
    await until(30_000, `VS Code to start ${id}`, async () => {
      await vscode.commands.executeCommand('workbench.mcp.startServer', id, { autoTrustChanges: true });
      return (vscode.lm as unknown as { tools: readonly { name: string }[] }).tools.find((t) => /greet/.test(t.name));
    });
    const tools = (vscode.lm as unknown as { tools: readonly { name: string }[] }).tools.map((t) => t.name).filter((n) => /greet/.test(n));
    const status = (await api.getStatus('sdk'))[0];
    assert.equal(status?.state, 'authorized', 'resolve signed in through the sidecar');
    console.log(`ok - VS Code's MCP client connected to the strict OAuth server with the sidecar's token; tools: ${tools.join(', ')}`);
  } finally {
    await example.stop();
  }
}
