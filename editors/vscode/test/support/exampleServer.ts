// The MCP TypeScript SDK's example Streamable HTTP server with OAuth
// (`simpleStreamableHttp.js --oauth --oauth-strict`, devDependency
// @modelcontextprotocol/sdk 1.32.2): an MCP server plus a demo authorization
// server that auto-approves, both on localhost; --oauth-strict checks the
// RFC 8707 resource at the token endpoint and the audience on MCP requests.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { extensionRoot, freePort, within } from './env';

export const exampleJs = join(
  extensionRoot,
  'node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server/simpleStreamableHttp.js',
);

export interface ExampleServer {
  /** http://localhost:<port>/mcp — the example names itself `localhost`. */
  mcpUrl: string;
  issuer: string;
  mcpPort: number;
  authPort: number;
  output: string[];
  stop(): Promise<void>;
}

export async function startExample(): Promise<ExampleServer> {
  if (!existsSync(exampleJs)) throw new Error(`SDK example not found (npm ci): ${exampleJs}`);
  const mcpPort = await freePort();
  let authPort = await freePort();
  while (authPort === mcpPort) authPort = await freePort();
  const child: ChildProcess = spawn(process.execPath, [exampleJs, '--oauth', '--oauth-strict'], {
    env: { ...process.env, MCP_PORT: String(mcpPort), MCP_AUTH_PORT: String(authPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const ready = new Promise<void>((ok, fail) => {
    let mcpUp = false;
    let authUp = false;
    const onText = (chunk: Buffer) => {
      const text = chunk.toString();
      output.push(text);
      if (text.includes(`MCP Streamable HTTP Server listening on port ${mcpPort}`)) mcpUp = true;
      if (text.includes(`OAuth Authorization Server listening on port ${authPort}`)) authUp = true;
      if (mcpUp && authUp) ok();
    };
    child.stdout?.on('data', onText);
    child.stderr?.on('data', onText);
    child.on('error', fail);
    child.on('exit', (code, signal) =>
      fail(new Error(`example server exited early (code ${code}, signal ${signal}):\n${output.join('')}`)),
    );
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await within(5000, 'example server to exit', exited).catch(() => child.kill('SIGKILL'));
  };
  try {
    await within(15_000, 'SDK example server to listen', ready);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    mcpUrl: `http://localhost:${mcpPort}/mcp`,
    issuer: `http://localhost:${authPort}/`,
    mcpPort,
    authPort,
    output,
    stop,
  };
}

/** One MCP `initialize` POST, as an MCP client would send it. */
export async function postInitialize(
  url: string,
  token?: string,
): Promise<{ status: number; headers: Headers; text: string }> {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
  };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'mcp-auth-vscode-test', version: '1' },
    },
  });
  const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** What a browser does with an authorization URL: follow redirects to the end. */
export async function followInBrowser(url: string): Promise<number> {
  const res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(15_000) });
  await res.text();
  return res.status;
}

/**
 * The redirect the authorization server answers with (the callback URL a
 * user would copy from the browser's address bar), without following it.
 */
export async function callbackUrlFor(authorizationUrl: string): Promise<string> {
  let url = authorizationUrl;
  for (let hop = 0; hop < 5; hop++) {
    const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    await res.text();
    const location = res.headers.get('location');
    if (!location) throw new Error(`no redirect from ${new URL(url).origin} (HTTP ${res.status})`);
    const next = new URL(location, url);
    if (next.searchParams.has('code') || next.searchParams.has('error')) return next.href;
    url = next.href;
  }
  throw new Error('too many redirects before the callback');
}
