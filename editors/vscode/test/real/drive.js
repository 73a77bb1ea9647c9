// Opens code-server's workbench in headless chromium with the extension as a
// development extension and the suite as its tests module, forwards the
// suite's console, and watches the page for the extension's status bar item
// (its element id contains mcpAuth.status) until its text matches the 6th
// argument (a regex); then writes "$(icon) text" to $MCP_AUTH_REAL_MARKER,
// which the suite waits for.
// Exit code: the suite's (0 pass, 1 fail), 124 timeout, 2 driver error.
'use strict';
const fs = require('node:fs');
const { chromium } = require('playwright-core');

const [base, folder, extDev, tests, timeoutS, expect] = process.argv.slice(2);
const verbose = !!process.env.REAL_VSCODE_VERBOSE;
const marker = process.env.MCP_AUTH_REAL_MARKER;

(async () => {
  const t0 = Date.now();
  const el = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage();
  let exitCode = null;
  let done;
  const finished = new Promise((r) => (done = r));
  // VS Code's automation hooks for extensionTestsPath in a browser workbench.
  await page.exposeFunction('codeAutomationLog', (_type, args) => console.log(...args));
  await page.exposeFunction('codeAutomationExit', (code) => {
    exitCode = code;
    done();
  });
  page.on('console', (m) => {
    if (verbose) console.error(`[browser:${m.type()}] ${m.text().slice(0, 2000)}`);
  });
  const host = new URL(base).host;
  const payload = [
    ['extensionDevelopmentPath', `vscode-remote://${host}${extDev}`],
    ['extensionTestsPath', `vscode-remote://${host}${tests}`],
  ];
  await page.goto(`${base}/?folder=${encodeURIComponent(folder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 90_000 });
  console.error(`[real-vscode] workbench up (${el()})`);
  const timer = setTimeout(() => {
    console.error('[real-vscode] TIMEOUT waiting for the suite');
    exitCode = 124;
    done();
  }, Number(timeoutS) * 1000);
  // The status bar item: VS Code gives the element the id "<extension id>.<item id>".
  page
    .waitForFunction(
      (re) => {
        const item = [...document.querySelectorAll('.statusbar-item')].find((e) => e.id.includes('mcpAuth.status'));
        const text = (item?.textContent || '').trim();
        // "$(shield)" renders as a codicon element, the rest as text.
        const icon = item?.querySelector('.codicon')?.className.match(/codicon-([\w-]+)/)?.[1];
        return new RegExp(re).test(text) ? `$(${icon}) ${text}` : undefined;
      },
      expect || 'MCP',
      { timeout: Number(timeoutS) * 1000 },
    )
    .then(async (handle) => {
      const text = String(await handle.jsonValue()).trim();
      console.error(`[real-vscode] status bar item: ${JSON.stringify(text)} (${el()})`);
      if (marker) fs.writeFileSync(marker, text);
    })
    .catch(() => console.error('[real-vscode] the status bar item never appeared'));
  await finished;
  clearTimeout(timer);
  console.error(`[real-vscode] exit ${exitCode} (${el()})`);
  await browser.close();
  process.exit(exitCode ?? 2);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
