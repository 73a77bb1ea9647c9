#!/usr/bin/env bash
# The Neovim install path, as a user follows it: a fresh copy of the
# repository (the working tree's tracked and unignored files, so no bin/ and
# no target/), the plugin's build step (editors/nvim/build.sh), then Neovim
# with that copy's editors/nvim on the runtimepath and `:checkhealth mcp_auth`,
# which must report the bundled binary, its version and protocol, and no
# ERROR or WARNING. Then a fake binary with another protocol version in the
# same place must give the mismatch warning (tests/install.lua).
#
# The build step runs with MCP_AUTH_BUILD_PROFILE=dev and
# CARGO_TARGET_DIR=<this repository>/target (build.sh's test knob): it reuses
# the debug build the other tests made instead of a cold release build of
# about 11 minutes. Everything else is what a user runs.
#
# Usage: editors/nvim/tests/install.sh
# Env:   NVIM, KEEP_TMP=1, CARGO_TARGET_DIR (default: <repo>/target)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plugin_dir="$(cd "$here/.." && pwd)"
repo="$(cd "$plugin_dir/../.." && pwd)"

log() { printf '[install.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

source "$here/nvim-env.sh"
command -v python3 >/dev/null || die "python3 is needed (a loopback MCP server for the health check)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/mcp-auth-nvim-install.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ "${KEEP_TMP:-}" == 1 ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- a fresh checkout ------------------------------------------------------------
checkout="$tmp/src/mcp-auth-sidecar"
mkdir -p "$checkout"
# tar keeps modification times, so cargo sees the same sources as in $repo.
(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
  tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$checkout"
[[ -f "$checkout/Cargo.toml" && -x "$checkout/editors/nvim/build.sh" ]] || die "copy of the repository is incomplete"
[[ ! -e "$checkout/editors/nvim/bin" ]] || die "the fresh copy already has editors/nvim/bin"

# --- the build step ----------------------------------------------------------------
log "build step: sh editors/nvim/build.sh (test knob: dev profile, CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target})"
(cd "$checkout" && MCP_AUTH_BUILD_PROFILE=dev CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}" \
  timeout 1200 sh editors/nvim/build.sh)
bundled="$checkout/editors/nvim/bin/mcp-auth-sidecar"
[[ -x "$bundled" ]] || die "the build step left no executable at $bundled"
version="$("$bundled" --version)"
log "bundled: $bundled ($version)"

# A decoy on PATH: the bundled binary must win over it.
mkdir -p "$tmp/path"
printf '#!/bin/sh\necho "mcp-auth-sidecar 0.0.0-decoy (protocol 1)"\n' >"$tmp/path/mcp-auth-sidecar"
chmod +x "$tmp/path/mcp-auth-sidecar"

# --- a loopback MCP server that needs no authorization (state not_required) ----------
cat >"$tmp/server.py" <<'EOF'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = b'{"jsonrpc":"2.0","id":1,"result":{}}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOF
python3 "$tmp/server.py" >"$tmp/port" &
server_pid=$!
for _ in $(seq 300); do [[ -s "$tmp/port" ]] && break; sleep 0.1; done # 30 s: a loaded machine
port="$(cat "$tmp/port")"
[[ -n "$port" ]] || die "the loopback server did not start"

# --- Neovim ---------------------------------------------------------------------------
mkdir -p "$tmp/home" "$tmp/xdg/config" "$tmp/xdg/data" "$tmp/xdg/state" "$tmp/xdg/cache"
env -u SSH_CONNECTION -u SSH_TTY -u SSH_CLIENT -u MCP_AUTH_SIDECAR_BIN \
  HOME="$tmp/home" PATH="$tmp/path:$PATH" \
  XDG_CONFIG_HOME="$tmp/xdg/config" XDG_DATA_HOME="$tmp/xdg/data" \
  XDG_STATE_HOME="$tmp/xdg/state" XDG_CACHE_HOME="$tmp/xdg/cache" \
  MCP_AUTH_SIDECAR_HOME="$tmp/sidecar-home" \
  MCP_TEST_PLUGIN="$checkout/editors/nvim" \
  MCP_TEST_VERSION="$version" \
  MCP_TEST_URL="http://127.0.0.1:$port/mcp" \
  MCP_TEST_DECOY="$tmp/path/mcp-auth-sidecar" \
  timeout 300 "$NVIM" --headless -u NONE -i NONE -l "$here/install.lua"
