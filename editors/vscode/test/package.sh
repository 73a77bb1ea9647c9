#!/usr/bin/env bash
# The platform-specific VSIX, as a user gets it: scripts/package-vsix.sh
# linux-x64, then unzip and check that the binary is in it and executable,
# that the licence files are in it, that nothing from node_modules, test/ or
# the TypeScript sources is, and that the extension's own resolution code
# (out/src/sidecarPath.js from inside the VSIX) finds the bundled binary.
#
# It bundles a stripped copy of the debug binary ($MCP_AUTH_SIDECAR_BIN,
# default target/debug/mcp-auth-sidecar) instead of a release build, which
# takes ~11 minutes cold on 2 cores; what is packaged and checked is the same.
#
# Usage: editors/vscode/test/package.sh   (Linux x64; needs node, npm, unzip)
# Env:   MCP_AUTH_SIDECAR_BIN, KEEP_TMP=1
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ext="$(cd "$here/.." && pwd)"
root="$(cd "$ext/../.." && pwd)"

passed=0 failed=0
ok() { passed=$((passed + 1)); printf 'ok     %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAILED %s\n' "$1"; }
check() { local name="$1"; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }
die() { printf 'package.sh: error: %s\n' "$*" >&2; exit 2; }

[[ "$(uname -s)-$(uname -m)" == Linux-x86_64 ]] || die "this test packages for linux-x64 and runs the binary: Linux x86_64 only"
command -v unzip >/dev/null || die "unzip is needed"
src_bin="${MCP_AUTH_SIDECAR_BIN:-$root/target/debug/mcp-auth-sidecar}"
[[ -x "$src_bin" ]] || die "no sidecar binary at $src_bin (cargo build, or set MCP_AUTH_SIDECAR_BIN)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/mcp-auth-vsix.XXXXXX")"
cleanup() { if [[ "${KEEP_TMP:-}" == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT

# The debug binary carries ~200 MB of debug info; the VSIX does not need it.
if command -v strip >/dev/null; then strip -o "$tmp/mcp-auth-sidecar" "$src_bin"; else cp "$src_bin" "$tmp/mcp-auth-sidecar"; fi
want_version="$("$tmp/mcp-auth-sidecar" --version)"

"$root/scripts/package-vsix.sh" linux-x64 --bin "$tmp/mcp-auth-sidecar" --out "$tmp/mcp-auth.vsix" >"$tmp/package.log" 2>&1 ||
  { cat "$tmp/package.log" >&2; die "packaging failed"; }
check "the VSIX was written" test -s "$tmp/mcp-auth.vsix"

mkdir "$tmp/unpacked"
unzip -q "$tmp/mcp-auth.vsix" -d "$tmp/unpacked"
x="$tmp/unpacked/extension"
bundled="$x/bin/linux-x64/mcp-auth-sidecar"
check "bin/linux-x64/mcp-auth-sidecar is in the VSIX" test -f "$bundled"
check "it is executable after unzip" test -x "$bundled"
check "the zip entry has mode 755" grep -q '^-rwxr-xr-x .* extension/bin/linux-x64/mcp-auth-sidecar$' <(unzip -Z "$tmp/mcp-auth.vsix")
check "it runs: $want_version" test "$("$bundled" --version)" == "$want_version"
check "LICENSE-MIT is in the VSIX, the repository's" cmp -s "$x/LICENSE-MIT" "$root/LICENSE-MIT"
check "LICENSE-APACHE is in the VSIX, the repository's" cmp -s "$x/LICENSE-APACHE" "$root/LICENSE-APACHE"
check "package.json and the compiled extension are in it" test -f "$x/package.json" -a -f "$x/out/src/extension.js" -a -f "$x/out/src/sidecarPath.js"
entries="$(unzip -Z1 "$tmp/mcp-auth.vsix")"
check "no test, .ts sources (but .d.ts) or source maps in it" \
  bash -c '! grep -E "^extension/(test|src)/|^extension/out/test/|\.map$|[^d]\.ts$" <<<"$1"' _ "$entries"
check "of node_modules only the runtime dependency vscode-jsonrpc" \
  test "$(grep -o '^extension/node_modules/[^/]*/' <<<"$entries" | sort -u)" == extension/node_modules/vscode-jsonrpc/
check "the client loads from inside the VSIX (vscode-jsonrpc resolves there)" \
  node -e 'const c = require(process.argv[1] + "/out/src/client.js"); if (typeof c.SidecarClient !== "function") process.exit(1)' "$x"
check "nothing for another platform in it" test "$(ls "$x/bin")" == linux-x64
check "the manifest says TargetPlatform linux-x64" grep -q 'TargetPlatform="linux-x64"' "$tmp/unpacked/extension.vsixmanifest"
engine="$(node -p 'require(process.argv[1]).engines.vscode' "$x/package.json")"
check "the manifest carries engines.vscode ($engine)" grep -q "Microsoft.VisualStudio.Code.Engine\" Value=\"$engine\"" "$tmp/unpacked/extension.vsixmanifest"
check "the script removed the staged binary and licences from editors/vscode" \
  test ! -e "$ext/bin" -a ! -e "$ext/LICENSE-MIT" -a ! -e "$ext/LICENSE-APACHE"

# The extension's resolution, from the VSIX itself, with a decoy first on PATH.
mkdir "$tmp/path"
printf '#!/bin/sh\necho decoy\n' >"$tmp/path/mcp-auth-sidecar"
chmod +x "$tmp/path/mcp-auth-sidecar"
resolve() {
  PATH="$tmp/path:$PATH" node -e '
    const { resolveSidecarHere } = require(process.argv[1] + "/out/src/sidecarPath.js");
    const r = resolveSidecarHere(process.argv[2], process.argv[1], "/home/nobody");
    console.log(r.source + " " + r.command);' "$1" "$2"
}
check "unset setting: the bundled binary, not the one on PATH" test "$(resolve "$x" "")" == "bundled $bundled"
check "mcpAuth.sidecarPath set: the setting wins" test "$(resolve "$x" /opt/mcp-auth-sidecar)" == "setting /opt/mcp-auth-sidecar"
chmod -x "$bundled"
check "a bundled file that is not executable is skipped: PATH" test "$(resolve "$x" "")" == "PATH $tmp/path/mcp-auth-sidecar"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
