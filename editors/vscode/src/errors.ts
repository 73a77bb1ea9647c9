// User-facing text for errors. No `vscode` import.

import { SidecarError } from './jsonrpc';
import { ClientErrorCodes, ErrorCodes } from './protocol';

/** A short, user-facing sentence for an error from the sidecar or the client. */
export function describeError(e: unknown): string {
  if (!(e instanceof SidecarError)) return e instanceof Error ? e.message : String(e);
  switch (e.code) {
    case ErrorCodes.AuthorizationRequired:
      return `Sign-in required: ${e.message}`;
    case ErrorCodes.AuthorizationFailed:
      return `The authorization server refused${e.oauthError ? ` (${e.oauthError})` : ''}: ${e.message}`;
    case ErrorCodes.DiscoveryFailed:
      return `Could not discover how to authorize: ${e.message}`;
    case ErrorCodes.StorageUnavailable:
      return `Token storage is unavailable: ${e.message} (setting mcpAuth.storage)`;
    case ErrorCodes.Timeout:
      return `The sign-in was not finished in time: ${e.message}`;
    case ErrorCodes.InsecureUrl:
      return `Insecure URL refused: ${e.message}`;
    case ErrorCodes.InvalidParams:
      return e.message;
    case ErrorCodes.RequestCancelled:
      return 'Cancelled.';
    case ClientErrorCodes.NotRunning:
    case ClientErrorCodes.ConnectionClosed:
      return `${e.message}${/ENOENT/.test(e.message) ? ' — install mcp-auth-sidecar or set mcpAuth.sidecarPath' : ''}`;
    default:
      return e.message;
  }
}
