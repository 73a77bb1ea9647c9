// The status bar item: the aggregate state of all servers (status.ts),
// click → "MCP Auth: Show Status" (servers, states and actions).

import * as vscode from 'vscode';
import type { McpAuthExtension } from './extension';
import { summarize } from './status';

export class StatusBar implements vscode.Disposable {
  readonly item: vscode.StatusBarItem;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly ext: McpAuthExtension) {
    this.item = vscode.window.createStatusBarItem('mcpAuth.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'MCP Auth';
    this.item.command = 'mcpAuth.showStatus';
    this.subscription = ext.onDidChange(() => this.update());
    this.update();
  }

  update(): void {
    const summary = summarize([...this.ext.statuses.values()], {
      state: this.ext.client.state,
      ...(this.ext.client.error ? { error: this.ext.client.error.message } : {}),
    });
    this.item.text = summary.text;
    this.item.tooltip = summary.tooltip;
    this.item.backgroundColor =
      summary.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : summary.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
    if (summary.visible) this.item.show();
    else this.item.hide();
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
