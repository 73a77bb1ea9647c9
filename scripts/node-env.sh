# Sourced by the scripts that run Node-based tests: installs Node 22 (the npm
# package `node`) and the pinned MCP conformance suite into
# tests/conformance/node_modules, builds the sidecar, and exports PATH and
# MCP_AUTH_SIDECAR_BIN for the test clients.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
(cd "$root/tests/conformance" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
# --all-targets: the same dependency features as `cargo test`, so this
# reuses its build (see scripts/test.sh) instead of compiling a second variant.
(cd "$root" && cargo build --locked --all-targets --quiet)
export PATH="$root/tests/conformance/node_modules/.bin:$PATH"
export MCP_AUTH_SIDECAR_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/mcp-auth-sidecar"
if [ ! -x "$MCP_AUTH_SIDECAR_BIN" ]; then
  echo "node-env.sh: no sidecar binary at $MCP_AUTH_SIDECAR_BIN" >&2
  exit 1
fi
