#!/usr/bin/env bash
# Type-checks and lints the crate for Windows and macOS from Linux:
# `cargo check` and `cargo clippy -- -D warnings`, both `--all-targets
# --locked`, for each target; any warning of ours fails it. Nothing is
# linked or run: runtime behaviour on those systems is not tested here.
#
#   scripts/cross-check.sh [TARGET...]     (default: the two below)
#   scripts/cross-check.sh --install       (only install what it needs)
#   SKIP_CROSS=1 scripts/test.sh           (skips it, unless CI is set)
#
# rustup cannot download other targets' standard libraries here, so this
# uses Debian's own toolchain, which ships the standard library's source:
# rustc-web, cargo-web, rust-web-src and rust-web-clippy (bookworm-security,
# one version for all four), with `-Zbuild-std` (RUSTC_BOOTSTRAP=1) to build
# `std` for each target. rustup's toolchain is neither used nor changed.
# Build scripts that compile C (ring) get a stand-in compiler that writes
# empty objects: `cargo check` links nothing, so nothing reads them.
#
# Builds go to ${XDG_CACHE_HOME:-~/.cache}/mcp-auth-sidecar-cross (never to
# ./target), shared by every checkout of the project. Cold (empty cache: std
# and every dependency, per target), measured on 2 cores shared with three
# other builds (load 8): Windows 19 min, then macOS 7 min, 27 min in all for
# 16 min of CPU time, so about 9 min on 2 idle cores. Warm, with only this
# crate changed: 5-20 s for both. Cache: about 2.5 GB.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=()
install_only=
for arg in "$@"; do
  case "$arg" in
    --install) install_only=1 ;;
    -*) echo "cross-check: unknown option $arg" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
((${#targets[@]})) || targets=(x86_64-pc-windows-msvc aarch64-apple-darwin)

if [ -n "${SKIP_CROSS:-}" ] && [ "${SKIP_CROSS}" != 0 ]; then
  if [ -n "${CI:-}" ]; then
    echo "cross-check: SKIP_CROSS is ignored when CI is set" >&2
  else
    echo "cross-check: skipped (SKIP_CROSS is set)" >&2
    exit 0
  fi
fi

# --- the toolchain ----------------------------------------------------------
packages=(rustc-web cargo-web rust-web-src rust-web-clippy)
version_of() { dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null | awk '$1=="installed"{print $2}'; }
toolchain_ok() {
  local want
  want=$(version_of rustc-web)
  [ -n "$want" ] || return 1
  for p in "${packages[@]}"; do [ "$(version_of "$p")" = "$want" ] || return 1; done
  [ -f /usr/lib/rustlib/src/rust/library/Cargo.lock ] && [ -x /usr/bin/cargo-clippy ]
}
if ! toolchain_ok; then
  command -v apt-get >/dev/null || { echo "cross-check: needs Debian's ${packages[*]} (apt-get not found)" >&2; exit 2; }
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "cross-check: installing ${packages[*]} needs root or sudo" >&2; exit 2; }
    sudo=(sudo)
  fi
  echo "cross-check: installing ${packages[*]} ..." >&2
  "${sudo[@]}" apt-get update -qq
  version=$(apt-cache policy rustc-web | awk '/Candidate:/{print $2}')
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    echo "cross-check: apt has no rustc-web (Debian 12 needs bookworm-security in its sources)" >&2
    exit 2
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${packages[@]/%/=$version}" >/dev/null
  toolchain_ok || { echo "cross-check: the toolchain is still incomplete after installing" >&2; exit 2; }
fi
[ -z "$install_only" ] || exit 0

cache=${XDG_CACHE_HOME:-$HOME/.cache}/mcp-auth-sidecar-cross
mkdir -p "$cache/bin" "$cache/logs"

# The stand-in C compiler: says it is clang when asked, and writes an empty
# file wherever `-o` points. The archiver writes an empty archive.
cat >"$cache/bin/cc" <<'EOF'
#!/bin/sh
out=
while [ $# -gt 0 ]; do
  case "$1" in
    -E) echo '"clang"'; exit 0 ;;
    --version) echo 'clang version 99 (mcp-auth-sidecar cross-check stand-in)'; exit 0 ;;
    -o) out=$2; shift ;;
    -o*) out=${1#-o} ;;
  esac
  shift
done
[ -z "$out" ] || : >"$out"
EOF
cat >"$cache/bin/ar" <<'EOF'
#!/bin/sh
for a in "$@"; do
  case "$a" in
    -out:*|/OUT:*|/out:*) printf '!<arch>\n' >"${a#*:}" ;;
    *.a|*.lib) [ -s "$a" ] || printf '!<arch>\n' >"$a" ;;
  esac
done
EOF
chmod +x "$cache/bin/cc" "$cache/bin/ar"

# Debian's cargo and clippy, whatever rustup put first in PATH.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO=/usr/bin/cargo
export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$cache/target
# `check` and `clippy` generate no code, so debug info changes nothing but
# the build hashes: pinned, one cache serves every checkout whatever its
# [profile.dev] says.
export CARGO_PROFILE_DEV_DEBUG=true
export MACOSX_DEPLOYMENT_TARGET=${MACOSX_DEPLOYMENT_TARGET:-11.0}
unset RUSTUP_TOOLCHAIN RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER RUSTFLAGS
common=(-Zbuild-std=std,panic_abort --all-targets --locked --message-format=short)

# `cargo check` fails on errors only; a warning of ours fails here too.
warnings_in() { grep -cE '^[^ ]+:[0-9]+:[0-9]+: warning' "$1" || true; }

failed=()
for t in "${targets[@]}"; do
  u=${t//-/_}
  export "CC_$u=$cache/bin/cc" "CXX_$u=$cache/bin/cc" "AR_$u=$cache/bin/ar"
  for step in check clippy; do
    log=$cache/logs/$t.$step.log
    start=$SECONDS
    if [ "$step" = check ]; then
      cmd=(/usr/bin/cargo check --target "$t" "${common[@]}")
    else
      cmd=(/usr/bin/cargo-clippy clippy --target "$t" "${common[@]}" -- -D warnings)
    fi
    status=0
    "${cmd[@]}" >"$log" 2>&1 || status=$?
    warnings=$(warnings_in "$log")
    echo "cross-check: $t $step: exit $status, $warnings warning(s), $((SECONDS - start))s" >&2
    if [ "$status" != 0 ] || [ "$warnings" != 0 ]; then
      grep -E ': (warning|error)' "$log" | grep -v '^warning: build failed' | head -40 >&2 || true
      echo "cross-check: full log in $log" >&2
      failed+=("$t $step")
    fi
  done
done
if ((${#failed[@]})); then
  echo "cross-check: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "cross-check: ${targets[*]}: ok (0 warnings)" >&2
