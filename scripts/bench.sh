#!/usr/bin/env bash
# Benchmarks (figures, not pass/fail): the refresh herd against oidc-provider.
#   scripts/bench.sh [herd size] [cycles]
# (The protocol layer's benchmark is scripts/bench-protocol.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh
cd tests/peers/oidc
npm ci --no-audit --no-fund --loglevel=error >/dev/null
MCP_AUTH_SIDECAR_LOG=warn node herd.bench.mjs "$@" 2>/dev/null
