#!/usr/bin/env bash
# Runs the real-peer suites under tests/peers/* (Node's test runner, Node 22
# from tests/conformance): the real sidecar binary against real servers —
# the MCP TypeScript SDK's example server, oidc-provider, …
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh

status=0
for dir in tests/peers/*/; do
  [ -f "$dir/package.json" ] || continue
  echo "peers: ${dir%/}"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && node --test) || status=1
done
exit $status
