// How states look in the UI: labels, icons and the status bar summary.
// Pure functions, no `vscode` import (unit-tested directly).

import type { ClientState } from './client';
import type { AuthState, ServerStatus } from './protocol';

export interface StateInfo {
  /** A product icon id, for `$(id)`. */
  icon: string;
  label: string;
  /** The user should authorize (status bar draws attention). */
  needsAction: boolean;
  /** The sidecar holds a credential that sign-out would delete. */
  hasCredential: boolean;
}

export const STATE_INFO: Record<AuthState, StateInfo> = {
  unknown: { icon: 'circle-outline', label: 'Not checked', needsAction: false, hasCredential: false },
  not_required: { icon: 'unlock', label: 'No sign-in required', needsAction: false, hasCredential: false },
  unauthenticated: { icon: 'key', label: 'Sign-in required', needsAction: true, hasCredential: false },
  authorizing: { icon: 'sync~spin', label: 'Signing in…', needsAction: false, hasCredential: false },
  authorized: { icon: 'pass', label: 'Signed in', needsAction: false, hasCredential: true },
  refreshing: { icon: 'pass', label: 'Signed in (refreshing)', needsAction: false, hasCredential: true },
  step_up_required: { icon: 'key', label: 'More permissions needed', needsAction: true, hasCredential: true },
  error: { icon: 'error', label: 'Error', needsAction: false, hasCredential: true },
};

export function stateInfo(state: string): StateInfo {
  return (STATE_INFO as Record<string, StateInfo>)[state] ?? {
    icon: 'question',
    label: state,
    needsAction: false,
    hasCredential: false,
  };
}

/** "in 53 min", "in 2 h", "expired" — for tooltips and quick pick details. */
export function describeExpiry(expiresAt: number | undefined, now = Date.now()): string | undefined {
  if (expiresAt === undefined) return undefined;
  const ms = expiresAt - now;
  if (ms <= 0) return 'expired';
  const min = Math.round(ms / 60_000);
  if (min < 1) return 'expires in <1 min';
  if (min < 120) return `expires in ${min} min`;
  const h = Math.round(min / 60);
  if (h < 48) return `expires in ${h} h`;
  return `expires in ${Math.round(h / 24)} days`;
}

/** One line per server: "github — Signed in (expires in 53 min)". */
export function describeServer(s: ServerStatus, now = Date.now()): string {
  const extras = [describeExpiry(s.state === 'authorized' ? s.expiresAt : undefined, now), s.message].filter(
    (x): x is string => !!x,
  );
  return `${s.server} — ${stateInfo(s.state).label}${extras.length ? ` (${extras.join('; ')})` : ''}`;
}

export type Severity = 'ok' | 'busy' | 'warning' | 'error' | 'idle';

export interface Summary {
  text: string;
  tooltip: string;
  severity: Severity;
  visible: boolean;
}

/**
 * The status bar item for all servers: the most urgent state wins
 * (sidecar down > error > sign-in needed > signing in > unknown > signed in).
 */
export function summarize(
  statuses: readonly ServerStatus[],
  client: { state: ClientState; error?: string },
  now = Date.now(),
): Summary {
  const click = 'Click for servers and actions.';
  switch (client.state) {
    case 'stopped':
      return { text: '$(circle-slash) MCP Auth', tooltip: 'mcp-auth-sidecar is stopped.', severity: 'idle', visible: false };
    case 'failed':
      return {
        text: '$(error) MCP Auth',
        tooltip: `mcp-auth-sidecar is not running: ${client.error ?? 'unknown error'}\n${click}`,
        severity: 'error',
        visible: true,
      };
    case 'starting':
    case 'restarting':
      if (statuses.length === 0) {
        return { text: '$(sync~spin) MCP Auth', tooltip: 'Starting mcp-auth-sidecar…', severity: 'busy', visible: true };
      }
      break;
    case 'running':
      break;
  }
  if (statuses.length === 0) {
    return {
      text: '$(shield) MCP Auth',
      tooltip: `No remote MCP servers configured (setting mcpAuth.servers, .vscode/mcp.json, .mcp.json, …).\n${click}`,
      severity: 'idle',
      visible: true,
    };
  }
  const count = (pred: (s: ServerStatus) => boolean) => statuses.filter(pred).length;
  const errors = count((s) => s.state === 'error');
  const attention = count((s) => stateInfo(s.state).needsAction);
  const authorizing = count((s) => s.state === 'authorizing');
  const unknown = count((s) => s.state === 'unknown');
  const signedIn = count((s) => s.state === 'authorized' || s.state === 'refreshing');
  const tooltip = [...statuses.map((s) => describeServer(s, now)), click].join('\n');
  const one = (n: number, what: (s: ServerStatus) => boolean) =>
    n === 1 ? statuses.find(what)?.server : undefined;

  if (errors > 0) {
    const name = one(errors, (s) => s.state === 'error');
    return { text: `$(error) MCP: ${name ? `${name} error` : `${errors} errors`}`, tooltip, severity: 'error', visible: true };
  }
  if (attention > 0) {
    const name = one(attention, (s) => stateInfo(s.state).needsAction);
    return { text: `$(key) MCP: sign in ${name ? `to ${name}` : `(${attention})`}`, tooltip, severity: 'warning', visible: true };
  }
  if (authorizing > 0) {
    return { text: '$(sync~spin) MCP: signing in…', tooltip, severity: 'busy', visible: true };
  }
  if (unknown > 0) {
    return { text: `$(shield) MCP: ${signedIn}/${statuses.length} signed in`, tooltip, severity: 'idle', visible: true };
  }
  return {
    text: signedIn > 0 ? `$(pass) MCP: ${signedIn}/${statuses.length} signed in` : '$(pass) MCP',
    tooltip,
    severity: 'ok',
    visible: true,
  };
}
