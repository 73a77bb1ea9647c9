#!/usr/bin/env bash
# The editor integrations against the real sidecar and a real protected MCP
# server (the MCP SDK's example OAuth server): Neovim headless (from PyPI),
# the Neovim install path (build step, :checkhealth), the VS Code
# extension's mocha suites, its platform-specific VSIX, and the extension
# activated in a real VS Code (editors/vscode/test/real/run.sh).
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
  echo "editors: vscode VSIX (package for linux-x64 with the binary, unzip, resolve)"
  if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then
    editors/vscode/test/package.sh || status=1
  else
    echo "skipped: the VSIX test packages for linux-x64 and runs the binary"
  fi
  echo "editors: vscode in a real VS Code (code-server 4.103.2 = VS Code 1.103.2, headless chromium)"
  if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] && command -v apt-get >/dev/null; then
    editors/vscode/test/real/run.sh || status=1
  else
    echo "skipped: the real-host test installs Debian's chromium and builds code-server for Linux x86_64"
  fi
fi
exit $status
