// Which mcp-auth-sidecar executable the extension starts (no `vscode`
// import: unit-tested in plain Node).
//
// Order, first found wins:
//   1. `mcpAuth.sidecarPath`, when the user set it: a deliberate choice
//      (a newer build, a wrapper script) beats what we ship;
//   2. the binary bundled in a platform-specific VSIX,
//      <extension>/bin/<platform>-<arch>/mcp-auth-sidecar[.exe];
//   3. mcp-auth-sidecar on PATH.
// When none is found the plain name is returned, so spawning fails with
// ENOENT and the error tells the user to install it or set the path.

import * as fs from 'node:fs';
import * as path from 'node:path';

export const SIDECAR_NAME = 'mcp-auth-sidecar';

export type SidecarSource = 'setting' | 'bundled' | 'PATH' | 'none';

export interface SidecarResolution {
  /** What to spawn. */
  command: string;
  source: SidecarSource;
  /** The bundled location that was looked at (for messages). */
  bundledPath: string;
}

export interface ResolveInputs {
  /** `mcpAuth.sidecarPath` as set by the user; empty or undefined: not set. */
  setting: string | undefined;
  /** The extension's folder (`ExtensionContext.extensionPath`). */
  extensionPath: string;
  /** `process.platform` */
  platform: NodeJS.Platform;
  /** `process.arch` */
  arch: string;
  /** The user's home, for `~/` in the setting. */
  homedir: string;
  /** Is this file an executable we may run? */
  isExecutable: (file: string) => boolean;
  /** The full path of `name` on PATH, or undefined. */
  lookPath: (name: string) => string | undefined;
}

/** The folder name under bin/ for a platform: `${platform}-${arch}` as Node names them. */
export function platformDir(platform: NodeJS.Platform, arch: string): string {
  return `${platform}-${arch}`;
}

export function executableName(platform: NodeJS.Platform): string {
  return platform === 'win32' ? `${SIDECAR_NAME}.exe` : SIDECAR_NAME;
}

/** Where a platform-specific VSIX carries the binary, relative to the extension folder. */
export function bundledRelativePath(platform: NodeJS.Platform, arch: string): string {
  return ['bin', platformDir(platform, arch), executableName(platform)].join('/');
}

function expandHome(p: string, homedir: string): string {
  return p === '~' || p.startsWith('~/') ? homedir + p.slice(1) : p;
}

/** The resolution itself: pure apart from the two injected lookups. */
export function resolveSidecar(i: ResolveInputs): SidecarResolution {
  const pathApi = i.platform === 'win32' ? path.win32 : path.posix;
  const bundledPath = pathApi.join(i.extensionPath, ...bundledRelativePath(i.platform, i.arch).split('/'));
  const setting = i.setting?.trim();
  if (setting) return { command: expandHome(setting, i.homedir), source: 'setting', bundledPath };
  if (i.isExecutable(bundledPath)) return { command: bundledPath, source: 'bundled', bundledPath };
  const onPath = i.lookPath(SIDECAR_NAME);
  if (onPath) return { command: onPath, source: 'PATH', bundledPath };
  return { command: SIDECAR_NAME, source: 'none', bundledPath };
}

/** A regular file we may execute (on Windows: a regular file). */
export function isExecutableFile(file: string, platform: NodeJS.Platform = process.platform): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    if (platform !== 'win32') fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Looks `name` up on PATH like a shell would (PATHEXT on Windows). */
export function findOnPath(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  isExecutable: (file: string) => boolean = (f) => isExecutableFile(f, platform),
): string | undefined {
  const pathApi = platform === 'win32' ? path.win32 : path.posix;
  const pathVar = platform === 'win32' ? (env.Path ?? env.PATH ?? '') : (env.PATH ?? '');
  const exts =
    platform === 'win32' ? (env.PATHEXT ?? '.COM;.EXE;.BAT;.CMD').split(';').filter(Boolean).map((e) => e.toLowerCase()) : [''];
  for (const dir of pathVar.split(pathApi.delimiter)) {
    if (!dir) continue; // an empty entry is the cwd: never run a program from the workspace
    for (const ext of exts) {
      const candidate = pathApi.join(dir, name + ext);
      if (isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** resolveSidecar with this machine's platform, files and PATH. */
export function resolveSidecarHere(setting: string | undefined, extensionPath: string, homedir: string): SidecarResolution {
  return resolveSidecar({
    setting,
    extensionPath,
    platform: process.platform,
    arch: process.arch,
    homedir,
    isExecutable: (f) => isExecutableFile(f),
    lookPath: (name) => findOnPath(name),
  });
}
