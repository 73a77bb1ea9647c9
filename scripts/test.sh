#!/usr/bin/env bash
# Runs every test of the project. This is the README's test command and what
# .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

# Formatting and lints first: cheap, and they fail fast.
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings

# Windows and macOS: `cargo check` and `cargo clippy -D warnings`, all
# targets, 0 warnings (type-checked and linted only; nothing runs them).
# Cold: ~9 min of 2 idle cores (16 min of CPU); warm: seconds. SKIP_CROSS=1
# skips it outside CI.
scripts/cross-check.sh

# Unit and integration tests (the real binary over stdio, real files, real
# HTTP peers on loopback, SIGKILL crash loop).
cargo test --locked

# The official MCP conformance suite, both requirement sets (Node 22 and the
# suite come from npm, pinned in tests/conformance/package-lock.json).
scripts/conformance.sh

# Real peers: the MCP SDK's example OAuth server, oidc-provider, the MCP
# Python SDK (its pinned venv is installed by peers.sh).
scripts/peers.sh

# The editor integrations (Neovim headless, VS Code's transport and UI).
scripts/editors.sh

# The keyring tests, against a throw-away gnome-keyring on a private bus.
dbus-run-session -- scripts/with-keyring.sh \
  cargo test --locked --test keyring -- --ignored
