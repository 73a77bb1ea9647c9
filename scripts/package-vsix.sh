#!/usr/bin/env bash
# Packages the VS Code extension as a platform-specific VSIX with the
# mcp-auth-sidecar binary inside (bin/<platform>-<arch>/mcp-auth-sidecar[.exe],
# where the extension looks when mcpAuth.sidecarPath is not set), and the
# licence files. Uses @vscode/vsce, pinned in editors/vscode/package-lock.json.
#
# Usage: scripts/package-vsix.sh <target> [--bin PATH] [--out FILE]
#   <target>   a vsce target: linux-x64, linux-arm64, linux-armhf, alpine-x64,
#              alpine-arm64, darwin-x64, darwin-arm64, win32-x64, win32-arm64
#   --bin      the mcp-auth-sidecar binary built for <target>. Without it the
#              script runs `cargo build --release --locked` (host target only:
#              for another platform build there, or cross-compile, and pass
#              --bin).
#   --out      the VSIX to write (default:
#              editors/vscode/mcp-auth-sidecar-<version>-<target>.vsix)
# Needs Node >= 20 and npm (the dev dependencies are installed with npm ci
# when missing); the binary and licences are removed from editors/vscode
# again afterwards.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
ext="$root/editors/vscode"

die() { printf 'package-vsix: error: %s\n' "$*" >&2; exit 2; }
say() { printf 'package-vsix: %s\n' "$*" >&2; }

target="${1:-}"
[[ -n "$target" ]] || die "usage: scripts/package-vsix.sh <target> [--bin PATH] [--out FILE]"
shift
bin="" out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) bin="${2:?--bin needs a path}"; shift 2 ;;
    --out) out="${2:?--out needs a path}"; shift 2 ;;
    *) die "unknown argument: $1" ;;
  esac
done

# vsce's target -> the folder name the extension computes at run time from
# Node's process.platform and process.arch (Alpine is Node's "linux").
case "$target" in
  linux-x64 | linux-arm64 | darwin-x64 | darwin-arm64 | win32-x64 | win32-arm64) node_dir="$target" ;;
  linux-armhf) node_dir=linux-arm ;;
  alpine-x64) node_dir=linux-x64 ;;
  alpine-arm64) node_dir=linux-arm64 ;;
  *) die "unknown or unsupported target '$target' (see the usage at the top of this script)" ;;
esac
exe_name=mcp-auth-sidecar
[[ "$target" == win32-* ]] && exe_name=mcp-auth-sidecar.exe

host_target() {
  local os arch
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) os=unknown ;; esac
  case "$(uname -m)" in x86_64 | amd64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; armv7l) arch=armhf ;; *) arch=unknown ;; esac
  # musl (Alpine) binaries need the alpine-* targets
  if [[ $os == linux ]] && ldd --version 2>&1 | grep -qi musl; then os=alpine; fi
  printf '%s-%s\n' "$os" "$arch"
}

if [[ -z "$bin" ]]; then
  host="$(host_target)"
  [[ "$host" == "$target" ]] ||
    die "this machine builds for $host, not $target: build mcp-auth-sidecar for $target and pass --bin"
  say "building mcp-auth-sidecar (cargo build --release --locked; a cold build takes minutes)"
  messages="$(cd "$root" && cargo build --release --locked --bin mcp-auth-sidecar --message-format=json-render-diagnostics)"
  bin="$(printf '%s\n' "$messages" | grep -o '"executable":"[^"]*"' | tail -n 1 | sed 's/^"executable":"//; s/"$//')"
fi
[[ -f "$bin" ]] || die "no binary at $bin"
if [[ "$target" != win32-* ]]; then
  [[ -x "$bin" ]] || die "$bin is not executable"
fi

version="$(node -p 'require(process.argv[1]).version' "$ext/package.json")"
out="${out:-$ext/mcp-auth-sidecar-$version-$target.vsix}"
[[ "$out" == /* ]] || out="$PWD/$out"

# Stage the binary and the licences in the extension folder for vsce, and
# take them out again whatever happens.
[[ ! -e "$ext/bin" ]] || die "$ext/bin exists already (left from an interrupted run? remove it)"
staged=("$ext/bin")
cleanup() { rm -rf "${staged[@]}"; }
trap cleanup EXIT
mkdir -p "$ext/bin/$node_dir"
cp "$bin" "$ext/bin/$node_dir/$exe_name"
chmod 755 "$ext/bin/$node_dir/$exe_name"
for f in LICENSE-MIT LICENSE-APACHE; do
  [[ -e "$ext/$f" ]] && die "$ext/$f exists already (left from an interrupted run? remove it)"
  staged+=("$ext/$f")
  cp "$root/$f" "$ext/$f"
done

cd "$ext"
[[ -x node_modules/.bin/vsce ]] || npm ci --no-audit --no-fund --loglevel=error >/dev/null
# The one runtime dependency, vscode-jsonrpc, goes in from node_modules (vsce
# takes the production dependencies of `npm list --production`; the dev
# dependencies stay out). --skip-license: the licence is the two files above
# (MIT OR Apache-2.0), not the single LICENSE file vsce looks for.
# vscode:prepublish compiles the TypeScript first.
node_modules/.bin/vsce package --target "$target" --out "$out" \
  --skip-license --allow-missing-repository
say "wrote $out ($(du -h "$out" | cut -f1))"
