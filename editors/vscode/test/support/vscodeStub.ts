// A small, recording stand-in for the `vscode` module: only what the
// extension uses, behaving like VS Code where the tests depend on it.
// installVscodeStub() makes `require('vscode')` resolve to this file.
//
// Honesty rules: the functions the extension calls have VS Code's
// signatures (checked at compile time at the bottom of this file against
// @types/vscode); UI answers (quick picks, input boxes, message buttons)
// come from responders a test sets, and default to "dismissed"; nothing is
// faked about the sidecar — the extension under test talks to the real binary.
//
// Not emulated: VS Code's own Uri encoding quirks (Uri here keeps the
// string as given), and LogOutputChannel.

import type * as vscode from 'vscode';
import Module = require('node:module');

// ---- basic types ----

export class Disposable {
  private fn: (() => void) | undefined;
  constructor(fn: () => void) {
    this.fn = fn;
  }
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((d) => d.dispose()));
  }
  dispose(): void {
    const fn = this.fn;
    this.fn = undefined;
    fn?.();
  }
}

export class EventEmitter<T> {
  private listeners: ((e: T) => unknown)[] = [];
  readonly event = (listener: (e: T) => unknown, thisArgs?: unknown, disposables?: { dispose(): unknown }[]): Disposable => {
    const bound = thisArgs === undefined ? listener : listener.bind(thisArgs);
    this.listeners.push(bound);
    const d = new Disposable(() => {
      this.listeners = this.listeners.filter((l) => l !== bound);
    });
    disposables?.push(d);
    return d;
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  dispose(): void {
    this.listeners = [];
  }
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}

export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class CancellationTokenSource {
  private readonly emitter = new EventEmitter<void>();
  private cancelled = false;
  readonly token: { readonly isCancellationRequested: boolean; onCancellationRequested: EventEmitter<void>['event'] };
  constructor() {
    const isCancelled = () => this.cancelled;
    this.token = {
      get isCancellationRequested() {
        return isCancelled();
      },
      onCancellationRequested: this.emitter.event,
    };
  }
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emitter.fire();
  }
  dispose(): void {
    this.emitter.dispose();
  }
}

/** A Uri that keeps the string it was parsed from (no re-encoding). */
export class Uri {
  private constructor(
    readonly scheme: string,
    readonly authority: string,
    readonly path: string,
    readonly query: string,
    readonly fragment: string,
    private readonly text: string,
  ) {}

  static parse(value: string, _strict?: boolean): Uri {
    const m = /^([a-zA-Z][\w+.-]*):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/.exec(value);
    if (!m) throw new Error(`[UriError]: cannot parse ${JSON.stringify(value)}`);
    return new Uri(m[1]!.toLowerCase(), m[2] ?? '', m[3] ?? '', m[4] ?? '', m[5] ?? '', value);
  }

  static file(path: string): Uri {
    return new Uri('file', '', path, '', '', `file://${path}`);
  }

  get fsPath(): string {
    return this.path;
  }

  with(change: { scheme?: string; authority?: string; path?: string; query?: string; fragment?: string }): Uri {
    const scheme = change.scheme ?? this.scheme;
    const authority = change.authority ?? this.authority;
    const path = change.path ?? this.path;
    const query = change.query ?? this.query;
    const fragment = change.fragment ?? this.fragment;
    const text = `${scheme}:${authority || scheme === 'file' ? `//${authority}` : ''}${path}${query ? `?${query}` : ''}${fragment ? `#${fragment}` : ''}`;
    return new Uri(scheme, authority, path, query, fragment, text);
  }

  toString(_skipEncoding?: boolean): string {
    return this.text;
  }

  toJSON(): unknown {
    return { scheme: this.scheme, authority: this.authority, path: this.path, query: this.query, fragment: this.fragment };
  }
}

// ---- recorded UI ----

export class FakeStatusBarItem {
  name: string | undefined;
  /** Every text the item showed, in order. */
  readonly history: string[] = [];
  private _text = '';
  get text(): string {
    return this._text;
  }
  set text(value: string) {
    if (value !== this._text) this.history.push(value);
    this._text = value;
  }
  tooltip: string | undefined;
  color: string | ThemeColor | undefined;
  backgroundColor: ThemeColor | undefined;
  command: string | undefined;
  accessibilityInformation: undefined;
  visible = false;
  disposed = false;
  constructor(
    readonly id: string,
    readonly alignment: StatusBarAlignment,
    readonly priority: number | undefined,
  ) {}
  show(): void {
    this.visible = true;
  }
  hide(): void {
    this.visible = false;
  }
  dispose(): void {
    this.disposed = true;
    this.visible = false;
  }
}

export class FakeOutputChannel {
  readonly lines: string[] = [];
  /** Created with `{ log: true }` (a LogOutputChannel). */
  isLogChannel = false;
  private partial = '';
  shown = false;
  constructor(readonly name: string) {}
  append(value: string): void {
    const parts = (this.partial + value).split('\n');
    this.partial = parts.pop() ?? '';
    this.lines.push(...parts);
  }
  appendLine(value: string): void {
    this.append(`${value}\n`);
  }
  replace(value: string): void {
    this.clear();
    this.append(value);
  }
  clear(): void {
    this.lines.length = 0;
    this.partial = '';
  }
  show(): void {
    this.shown = true;
  }
  hide(): void {
    this.shown = false;
  }
  dispose(): void {}
  // LogOutputChannel (createOutputChannel(name, { log: true })): one line
  // per call, "[level] message", like VS Code's rendering minus the time.
  readonly logLevel = 2; // LogLevel.Debug
  readonly onDidChangeLogLevel = new EventEmitter<number>().event;
  trace(message: string): void {
    this.appendLine(`[trace] ${message}`);
  }
  debug(message: string): void {
    this.appendLine(`[debug] ${message}`);
  }
  info(message: string): void {
    this.appendLine(`[info] ${message}`);
  }
  warn(message: string): void {
    this.appendLine(`[warning] ${message}`);
  }
  error(error: string | Error): void {
    this.appendLine(`[error] ${typeof error === 'string' ? error : error.message}`);
  }
}

/** SecretStorage in memory; `values` is what the test inspects. */
export class FakeSecretStorage {
  readonly values = new Map<string, string>();
  private readonly emitter = new EventEmitter<{ key: string }>();
  readonly onDidChange = this.emitter.event;
  async get(key: string): Promise<string | undefined> {
    return this.values.get(key);
  }
  async store(key: string, value: string): Promise<void> {
    this.values.set(key, value);
    this.emitter.fire({ key });
  }
  async delete(key: string): Promise<void> {
    this.values.delete(key);
    this.emitter.fire({ key });
  }
}

/** VS Code >= 1.101's McpHttpServerDefinition. */
export class McpHttpServerDefinition {
  constructor(
    public label: string,
    public uri: Uri,
    public headers: Record<string, string> = {},
    public version?: string,
  ) {}
}

export interface McpProviderRecord {
  id: string;
  provider: {
    onDidChangeMcpServerDefinitions?: (listener: () => unknown) => { dispose(): unknown };
    provideMcpServerDefinitions(token: unknown): Promise<McpHttpServerDefinition[]> | McpHttpServerDefinition[];
    resolveMcpServerDefinition?(server: McpHttpServerDefinition, token: unknown): Promise<McpHttpServerDefinition | undefined>;
  };
  disposed: boolean;
}

export interface MessageRecord {
  kind: 'info' | 'warning' | 'error';
  message: string;
  items: string[];
}
export interface ProgressRecord {
  title: string | undefined;
  cancellable: boolean;
  reports: { message?: string; increment?: number }[];
  done: boolean;
  cancel(): void;
}
export interface QuickPickRecord {
  items: vscode.QuickPickItem[];
  options: vscode.QuickPickOptions | undefined;
}

type MessageResponder = (m: MessageRecord) => string | undefined;
type QuickPickResponder = (r: QuickPickRecord) => vscode.QuickPickItem | undefined;
type InputBoxResponder = (o: vscode.InputBoxOptions | undefined) => string | undefined | Promise<string | undefined>;

/** Everything the stub recorded, and the test's answers to UI prompts. */
export const recorded = {
  statusBarItems: [] as FakeStatusBarItem[],
  outputChannels: [] as FakeOutputChannel[],
  messages: [] as MessageRecord[],
  quickPicks: [] as QuickPickRecord[],
  inputBoxes: [] as { options: vscode.InputBoxOptions | undefined; answer: string | undefined; validation?: string }[],
  progress: [] as ProgressRecord[],
  openedExternal: [] as { target: unknown; text: string }[],
  asExternalUri: [] as string[],
  clipboard: [] as string[],
  executed: [] as { command: string; args: unknown[] }[],
  mcpProviders: [] as McpProviderRecord[],
  /** The order of env calls: 'asExternalUri <uri>', 'openExternal <url>'. */
  sequence: [] as string[],
};

export const responders = {
  message: (() => undefined) as MessageResponder,
  quickPick: (() => undefined) as QuickPickResponder,
  inputBox: (() => undefined) as InputBoxResponder,
  /** What the "browser" does with a URL openExternal opened; resolves to openExternal's answer. */
  openExternal: (async () => true) as (text: string) => Promise<boolean>,
  /** What port forwarding asExternalUri sets up (default: none needed, as on a local machine). */
  asExternalUri: ((uri: Uri) => uri) as (uri: Uri) => Uri,
};

// ---- namespaces ----

const commandHandlers = new Map<string, (...args: unknown[]) => unknown>();
const settings = new Map<string, unknown>();
const configurationEmitter = new EventEmitter<{ affectsConfiguration(section: string): boolean }>();
const foldersEmitter = new EventEmitter<unknown>();
const trustEmitter = new EventEmitter<void>();

function message(kind: MessageRecord['kind']) {
  return (text: string, ...rest: unknown[]): Promise<string | undefined> => {
    // (message, ...items) or (message, options, ...items); string items only.
    const items = rest.filter((x): x is string => typeof x === 'string');
    const rec: MessageRecord = { kind, message: text, items };
    recorded.messages.push(rec);
    const answer = responders.message(rec);
    return Promise.resolve(answer !== undefined && items.includes(answer) ? answer : undefined);
  };
}

export const window = {
  createOutputChannel(name: string, options?: string | { log: true }): FakeOutputChannel {
    const ch = new FakeOutputChannel(name);
    ch.isLogChannel = typeof options === 'object' && options.log === true;
    recorded.outputChannels.push(ch);
    return ch;
  },
  createStatusBarItem(
    idOrAlignment?: string | StatusBarAlignment,
    alignmentOrPriority?: StatusBarAlignment | number,
    priority?: number,
  ): FakeStatusBarItem {
    const item =
      typeof idOrAlignment === 'string'
        ? new FakeStatusBarItem(idOrAlignment, (alignmentOrPriority as StatusBarAlignment) ?? StatusBarAlignment.Left, priority)
        : new FakeStatusBarItem('', idOrAlignment ?? StatusBarAlignment.Left, alignmentOrPriority);
    recorded.statusBarItems.push(item);
    return item;
  },
  showInformationMessage: message('info'),
  showWarningMessage: message('warning'),
  showErrorMessage: message('error'),
  async showQuickPick<T extends vscode.QuickPickItem>(
    items: readonly T[] | Thenable<readonly T[]>,
    options?: vscode.QuickPickOptions,
  ): Promise<T | undefined> {
    const list = await items;
    const rec: QuickPickRecord = { items: [...list], options };
    recorded.quickPicks.push(rec);
    const answer = responders.quickPick(rec);
    // Like VS Code: only one of the offered items can come back.
    return list.find((i) => i === answer);
  },
  async showInputBox(options?: vscode.InputBoxOptions): Promise<string | undefined> {
    const answer = await responders.inputBox(options);
    let validation: string | undefined;
    if (answer !== undefined && options?.validateInput) {
      const v = await options.validateInput(answer);
      validation = typeof v === 'string' ? v : v?.message;
    }
    // VS Code does not accept an invalid value; the user would cancel.
    const accepted = validation ? undefined : answer;
    recorded.inputBoxes.push(validation ? { options, answer: accepted, validation } : { options, answer: accepted });
    return accepted;
  },
  async withProgress<R>(
    options: vscode.ProgressOptions,
    task: (
      progress: vscode.Progress<{ message?: string; increment?: number }>,
      token: vscode.CancellationToken,
    ) => Thenable<R>,
  ): Promise<R> {
    const source = new CancellationTokenSource();
    const rec: ProgressRecord = {
      title: options.title,
      cancellable: !!options.cancellable,
      reports: [],
      done: false,
      cancel: () => source.cancel(),
    };
    recorded.progress.push(rec);
    try {
      return await task({ report: (v) => void rec.reports.push(v) }, source.token as unknown as vscode.CancellationToken);
    } finally {
      rec.done = true;
      source.dispose();
    }
  },
};

export const commands = {
  registerCommand(command: string, callback: (...args: any[]) => any, thisArg?: any): Disposable {
    if (commandHandlers.has(command)) throw new Error(`command '${command}' already exists`);
    commandHandlers.set(command, thisArg === undefined ? callback : callback.bind(thisArg));
    return new Disposable(() => commandHandlers.delete(command));
  },
  async executeCommand<T = unknown>(command: string, ...rest: any[]): Promise<T> {
    recorded.executed.push({ command, args: rest });
    const handler = commandHandlers.get(command);
    return (handler ? await handler(...rest) : undefined) as T;
  },
  async getCommands(_filterInternal?: boolean): Promise<string[]> {
    return [...commandHandlers.keys()];
  },
};

export const env = {
  appName: 'Visual Studio Code (test stub)',
  uriScheme: 'vscode',
  remoteName: undefined as string | undefined,
  clipboard: {
    async readText(): Promise<string> {
      return recorded.clipboard.at(-1) ?? '';
    },
    async writeText(value: string): Promise<void> {
      recorded.clipboard.push(value);
    },
  },
  async openExternal(target: Uri): Promise<boolean> {
    // VS Code's implementation accepts a string too (see src/browser.ts).
    const text = typeof target === 'string' ? target : target.toString();
    recorded.openedExternal.push({ target, text });
    recorded.sequence.push(`openExternal ${text}`);
    return responders.openExternal(text);
  },
  async asExternalUri(target: Uri): Promise<Uri> {
    recorded.asExternalUri.push(target.toString());
    recorded.sequence.push(`asExternalUri ${target.toString()}`);
    return responders.asExternalUri(target);
  },
};

export const workspace = {
  workspaceFolders: undefined as readonly { uri: Uri; name: string; index: number }[] | undefined,
  isTrusted: true,
  getConfiguration(section?: string) {
    const key = (k: string) => (section ? `${section}.${k}` : k);
    return {
      get<T>(k: string, defaultValue?: T): T | undefined {
        return settings.has(key(k)) ? (settings.get(key(k)) as T) : defaultValue;
      },
      has(k: string): boolean {
        return settings.has(key(k));
      },
    };
  },
  onDidChangeConfiguration: configurationEmitter.event,
  onDidChangeWorkspaceFolders: foldersEmitter.event,
  onDidGrantWorkspaceTrust: trustEmitter.event,
};

export const version = '1.90.0';

/**
 * `vscode.lm` with the MCP server definition provider API (VS Code >=
 * 1.101); a test removes the function to look like an older host.
 */
function registerMcpServerDefinitionProvider(id: string, provider: McpProviderRecord['provider']): Disposable {
  const rec: McpProviderRecord = { id, provider, disposed: false };
  recorded.mcpProviders.push(rec);
  return new Disposable(() => (rec.disposed = true));
}
export const lm: { registerMcpServerDefinitionProvider?: typeof registerMcpServerDefinitionProvider } = {
  registerMcpServerDefinitionProvider,
};

// ---- test controls ----

/** Sets settings (`mcpAuth.servers` …); fires onDidChangeConfiguration when asked. */
export function configure(values: Record<string, unknown>, fire = false): void {
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined) settings.delete(k);
    else settings.set(k, v);
  }
  if (fire) {
    const keys = Object.keys(values);
    configurationEmitter.fire({
      affectsConfiguration: (s: string) => keys.some((k) => k === s || k.startsWith(`${s}.`)),
    });
  }
}

export function registeredCommands(): string[] {
  return [...commandHandlers.keys()];
}

/**
 * A minimal ExtensionContext: subscriptions, the extension's package.json and
 * folder (by default one that does not exist: nothing bundled).
 */
export function extensionContext(
  packageJSON: unknown,
  extensionPath = '/nonexistent/mcp-auth-sidecar-extension',
): vscode.ExtensionContext & { subscriptions: { dispose(): unknown }[]; secrets: FakeSecretStorage } {
  return {
    subscriptions: [],
    extensionPath,
    extension: { packageJSON, extensionPath },
    secrets: new FakeSecretStorage(),
  } as unknown as vscode.ExtensionContext & {
    subscriptions: { dispose(): unknown }[];
    secrets: FakeSecretStorage;
  };
}

/** Forgets recordings, responders, settings and commands. */
export function reset(): void {
  for (const list of Object.values(recorded)) (list as unknown[]).length = 0;
  responders.message = () => undefined;
  responders.quickPick = () => undefined;
  responders.inputBox = () => undefined;
  lm.registerMcpServerDefinitionProvider = registerMcpServerDefinitionProvider;
  responders.openExternal = async () => true;
  responders.asExternalUri = (uri) => uri;
  commandHandlers.clear();
  settings.clear();
  env.remoteName = undefined;
  workspace.workspaceFolders = undefined;
  workspace.isTrusted = true;
}

let installed = false;

/** Makes `require('vscode')` load this module (Node's resolver has no `vscode`). */
export function installVscodeStub(): void {
  if (installed) return;
  installed = true;
  const self = __filename;
  const M = Module as unknown as { _resolveFilename(request: string, ...rest: unknown[]): string };
  const original = M._resolveFilename;
  M._resolveFilename = function (request: string, ...rest: unknown[]): string {
    return request === 'vscode' ? self : original.call(this, request, ...rest);
  };
}

// ---- compile-time checks against @types/vscode ----
// Each line fails to compile if the stub's signature drifts from VS Code's.

function conforms<T>(_value: T): void {}
// (openExternal / asExternalUri take this file's Uri, which keeps its
// string instead of VS Code's encoding; their other halves are checked here.)
type Expect<T extends true> = T;
export type OpenExternalResolvesLikeVscode = Expect<
  Awaited<ReturnType<typeof env.openExternal>> extends Awaited<ReturnType<typeof vscode.env.openExternal>> ? true : false
>;
export type AsExternalUriKeepsUriShape = Expect<Parameters<typeof env.asExternalUri>[0] extends { scheme: string; authority: string; toString(skipEncoding?: boolean): string } ? true : false>;
conforms<typeof vscode.env.clipboard.writeText>(env.clipboard.writeText);
conforms<typeof vscode.commands.registerCommand>(commands.registerCommand);
conforms<typeof vscode.commands.executeCommand>(commands.executeCommand);
conforms<typeof vscode.window.withProgress>(window.withProgress);
conforms<typeof vscode.window.showInputBox>(window.showInputBox);
conforms<(message: string, ...items: string[]) => Thenable<string | undefined>>(window.showErrorMessage);
conforms<(id: string, alignment?: vscode.StatusBarAlignment, priority?: number) => unknown>(
  window.createStatusBarItem as (id: string, alignment?: number, priority?: number) => FakeStatusBarItem,
);
conforms<Omit<vscode.StatusBarItem, 'alignment' | 'backgroundColor' | 'color' | 'tooltip' | 'accessibilityInformation' | 'command'>>(
  new FakeStatusBarItem('x', StatusBarAlignment.Left, 0) as FakeStatusBarItem & { name: string | undefined },
);
conforms<Omit<vscode.LogOutputChannel, 'show' | 'logLevel' | 'onDidChangeLogLevel'>>(new FakeOutputChannel('x'));
conforms<vscode.SecretStorage>(new FakeSecretStorage());
conforms<vscode.EventEmitter<number>['event']>(new EventEmitter<number>().event);
