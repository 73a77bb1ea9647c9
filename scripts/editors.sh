#!/usr/bin/env bash
# The editor integrations against the real sidecar and a real protected MCP
# server (the MCP SDK's example OAuth server): Neovim headless (from PyPI),
# the Neovim install path (build step, :checkhealth), and the VS Code
# extension's mocha suites.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh
(cd tests/peers/sdk && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

status=0
echo "editors: nvim"
editors/nvim/tests/run.sh || status=1
echo "editors: nvim install (build step into a fresh copy, :checkhealth)"
editors/nvim/tests/install.sh || status=1
if [ -f editors/vscode/package.json ]; then
  echo "editors: vscode"
  (cd editors/vscode && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm test) || status=1
fi
exit $status
