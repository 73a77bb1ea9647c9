#!/usr/bin/env bash
# Runs the real-peer suites under tests/peers/* (Node's test runner, Node 22
# from tests/conformance): the real sidecar binary against real servers —
# the MCP TypeScript SDK's example server, oidc-provider, the MCP Python SDK
# (a suite with a requirements.txt gets its pinned .venv first), …
set -euo pipefail
cd "$(dirname "$0")/.."
# The idle test measures the keyring mode too: run everything against a
# throw-away gnome-keyring on a private session bus.
if [ -z "${MCP_AUTH_SIDECAR_TEST_KEYRING:-}" ]; then
  exec scripts/with-keyring.sh "$0" "$@"
fi
source scripts/node-env.sh

status=0
for dir in tests/peers/*/; do
  [ -f "$dir/package.json" ] || continue
  echo "peers: ${dir%/}"
  if [ -f "$dir/requirements.txt" ]; then
    scripts/python-venv.sh "$dir" || { status=1; continue; }
  fi
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && node --test) || status=1
done
exit $status
