// Which mcp-auth-sidecar the extension starts (src/sidecarPath.ts): the
// resolution order as a table with injected lookups, and the PATH search on
// real files.

import * as assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bundledRelativePath,
  findOnPath,
  isExecutableFile,
  resolveSidecar,
  type ResolveInputs,
  type SidecarSource,
} from '../src/sidecarPath';

interface Case {
  name: string;
  setting?: string;
  platform?: NodeJS.Platform;
  arch?: string;
  extensionPath?: string;
  executables: string[];
  onPath?: string;
  want: { command: string; source: SidecarSource };
}

const EXT = '/home/u/.vscode/extensions/mcp-auth-sidecar.mcp-auth-sidecar-0.1.0-linux-x64';
const BUNDLED = `${EXT}/bin/linux-x64/mcp-auth-sidecar`;

const cases: Case[] = [
  {
    name: 'an explicit setting wins over the bundled binary and PATH',
    setting: '/opt/sidecar/mcp-auth-sidecar',
    executables: [BUNDLED, '/opt/sidecar/mcp-auth-sidecar'],
    onPath: '/usr/bin/mcp-auth-sidecar',
    want: { command: '/opt/sidecar/mcp-auth-sidecar', source: 'setting' },
  },
  {
    name: 'an explicit setting is used even when it does not exist (the error names it)',
    setting: '/nowhere/mcp-auth-sidecar',
    executables: [BUNDLED],
    want: { command: '/nowhere/mcp-auth-sidecar', source: 'setting' },
  },
  {
    name: 'an explicit bare name is spawned as given (looked up on PATH by the OS)',
    setting: 'mcp-auth-sidecar',
    executables: [BUNDLED],
    onPath: '/usr/bin/mcp-auth-sidecar',
    want: { command: 'mcp-auth-sidecar', source: 'setting' },
  },
  {
    name: '~/ in the setting is the home directory',
    setting: '~/.cargo/bin/mcp-auth-sidecar',
    executables: [],
    want: { command: '/home/u/.cargo/bin/mcp-auth-sidecar', source: 'setting' },
  },
  {
    name: 'unset: the bundled binary before PATH',
    executables: [BUNDLED],
    onPath: '/usr/bin/mcp-auth-sidecar',
    want: { command: BUNDLED, source: 'bundled' },
  },
  {
    name: 'a blank setting counts as unset',
    setting: '   ',
    executables: [BUNDLED],
    want: { command: BUNDLED, source: 'bundled' },
  },
  {
    name: 'unset, nothing bundled: PATH',
    executables: [],
    onPath: '/usr/local/bin/mcp-auth-sidecar',
    want: { command: '/usr/local/bin/mcp-auth-sidecar', source: 'PATH' },
  },
  {
    name: "another architecture's binary is not used",
    arch: 'arm64',
    executables: [BUNDLED],
    onPath: '/usr/bin/mcp-auth-sidecar',
    want: { command: '/usr/bin/mcp-auth-sidecar', source: 'PATH' },
  },
  {
    name: 'nothing anywhere: the plain name (spawn fails with ENOENT)',
    executables: [],
    want: { command: 'mcp-auth-sidecar', source: 'none' },
  },
  {
    name: 'Windows: bin\\win32-x64\\mcp-auth-sidecar.exe',
    platform: 'win32',
    extensionPath: 'C:\\Users\\u\\.vscode\\extensions\\mcp-auth-sidecar-0.1.0-win32-x64',
    executables: ['C:\\Users\\u\\.vscode\\extensions\\mcp-auth-sidecar-0.1.0-win32-x64\\bin\\win32-x64\\mcp-auth-sidecar.exe'],
    want: {
      command: 'C:\\Users\\u\\.vscode\\extensions\\mcp-auth-sidecar-0.1.0-win32-x64\\bin\\win32-x64\\mcp-auth-sidecar.exe',
      source: 'bundled',
    },
  },
  {
    name: 'macOS on Apple silicon: bin/darwin-arm64/mcp-auth-sidecar',
    platform: 'darwin',
    arch: 'arm64',
    executables: [`${EXT}/bin/darwin-arm64/mcp-auth-sidecar`],
    want: { command: `${EXT}/bin/darwin-arm64/mcp-auth-sidecar`, source: 'bundled' },
  },
];

describe('sidecar resolution: mcpAuth.sidecarPath, then bundled, then PATH', () => {
  for (const c of cases) {
    it(c.name, () => {
      const looked: string[] = [];
      const inputs: ResolveInputs = {
        setting: c.setting,
        extensionPath: c.extensionPath ?? EXT,
        platform: c.platform ?? 'linux',
        arch: c.arch ?? 'x64',
        homedir: '/home/u',
        isExecutable: (f) => c.executables.includes(f),
        lookPath: (name) => {
          looked.push(name);
          return c.onPath;
        },
      };
      const got = resolveSidecar(inputs);
      assert.deepEqual({ command: got.command, source: got.source }, c.want);
      // PATH is consulted only when neither the setting nor the bundle decides.
      assert.deepEqual(looked, c.want.source === 'PATH' || c.want.source === 'none' ? ['mcp-auth-sidecar'] : []);
    });
  }

  it('bundledRelativePath is where package-vsix.sh puts the binary', () => {
    assert.equal(bundledRelativePath('linux', 'x64'), 'bin/linux-x64/mcp-auth-sidecar');
    assert.equal(bundledRelativePath('win32', 'arm64'), 'bin/win32-arm64/mcp-auth-sidecar.exe');
    assert.equal(bundledRelativePath('darwin', 'x64'), 'bin/darwin-x64/mcp-auth-sidecar');
  });
});

describe('findOnPath and isExecutableFile (real files)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-auth-path-'));
    for (const d of ['a', 'b', 'c']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'a', 'mcp-auth-sidecar'), '#!/bin/sh\n'); // not executable
    chmodSync(join(dir, 'a', 'mcp-auth-sidecar'), 0o644);
    mkdirSync(join(dir, 'b', 'mcp-auth-sidecar')); // a directory
    writeFileSync(join(dir, 'c', 'mcp-auth-sidecar'), '#!/bin/sh\n');
    chmodSync(join(dir, 'c', 'mcp-auth-sidecar'), 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('skips files that are not executable and directories', function () {
    if (process.platform === 'win32') this.skip();
    const PATH = ['a', 'b', 'c'].map((d) => join(dir, d)).join(':');
    assert.equal(findOnPath('mcp-auth-sidecar', { PATH }, 'linux'), join(dir, 'c', 'mcp-auth-sidecar'));
    assert.equal(isExecutableFile(join(dir, 'a', 'mcp-auth-sidecar'), 'linux'), false);
    assert.equal(isExecutableFile(join(dir, 'b', 'mcp-auth-sidecar'), 'linux'), false);
    assert.equal(isExecutableFile(join(dir, 'missing'), 'linux'), false);
  });

  it('never searches the current directory (an empty PATH entry)', () => {
    const seen: string[] = [];
    const found = findOnPath('mcp-auth-sidecar', { PATH: ':/x::/y:' }, 'linux', (f) => {
      seen.push(f);
      return false;
    });
    assert.equal(found, undefined);
    assert.deepEqual(seen, ['/x/mcp-auth-sidecar', '/y/mcp-auth-sidecar']);
  });

  it('Windows: Path and PATHEXT', () => {
    const seen: string[] = [];
    const found = findOnPath('mcp-auth-sidecar', { Path: 'C:\\a;C:\\b', PATHEXT: '.COM;.EXE' }, 'win32', (f) => {
      seen.push(f);
      return f === 'C:\\b\\mcp-auth-sidecar.exe';
    });
    assert.equal(found, 'C:\\b\\mcp-auth-sidecar.exe');
    assert.deepEqual(seen, ['C:\\a\\mcp-auth-sidecar.com', 'C:\\a\\mcp-auth-sidecar.exe', 'C:\\b\\mcp-auth-sidecar.com', 'C:\\b\\mcp-auth-sidecar.exe']);
  });
});
