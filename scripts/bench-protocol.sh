#!/usr/bin/env bash
# Protocol benchmark (figures, not pass/fail; issue 9, "Fast and small").
#
#   scripts/bench-protocol.sh [--baseline REV] [DRIVER OPTIONS]
#   BENCH_BASELINE=REV scripts/bench-protocol.sh
#
# Builds three release programs and measures them side by side in one run of
# examples/protocol_bench.rs:
#   current   the sidecar of this checkout, uncommitted changes included;
#   baseline  the sidecar at REV (default 216f71f: main before the
#             protocol-layer rework), built in a temporary git worktree;
#   limit     examples/frame_limit.rs: reads LSP frames and writes canned
#             answers as large as the sidecar's mcp/authStatus answer — the
#             least any program can do over this framing.
# Measures (10 servers, memory storage, no config discovery): pipelined
# mcp/authStatus throughput (best of 3 runs of 20000), single-request latency
# p50/p99, spawn -> initialize answered (median of 50), idle RSS, idle
# wake-ups in 3 s. It prints one table: a row per measure, a column per
# program, each program's ratio to the limit, and the goals of issue 9 as
# goals (nothing fails on them).
#
# DRIVER OPTIONS go to the driver unchanged: --requests N, --rounds N,
# --latency N, --warmup N, --spawns N, --idle-secs S, --servers N (see the
# header of examples/protocol_bench.rs).
#
# The baseline is built with the same target directory as this checkout, so
# it reuses the release dependencies and compiles only the crate; its binary
# is copied at once to target/bench-baseline/<commit>/ and reused by later
# runs for the same commit. Takes a few minutes; the figures are only as
# quiet as the machine (the load average is printed at start and end).
# Linux: idle RSS and wake-ups read /proc.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

baseline=${BENCH_BASELINE:-216f71f}
driver_args=()
while (($#)); do
  case $1 in
    --baseline) baseline=${2:?--baseline needs a revision}; shift 2 ;;
    --baseline=*) baseline=${1#--baseline=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) driver_args+=("$1"); shift ;;
  esac
done

sha=$(git rev-parse --verify --quiet "$baseline^{commit}") ||
  { echo "bench-protocol: no commit $baseline" >&2; exit 1; }
bins=$(mktemp -d)
trap 'rm -rf "$bins"' EXIT

# (b) the baseline, built first: it shares target/release with the build
# below, which then leaves this checkout's binary in target/release.
cached=target/bench-baseline/$sha/mcp-auth-sidecar
if [[ ! -x $cached ]]; then
  echo "building the baseline ${sha:0:12} ..." >&2
  wt=$root/target/bench-baseline/worktree
  mkdir -p target/bench-baseline
  git worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
  git worktree add --force --detach --quiet "$wt" "$sha"
  trap 'git -C "$root" worktree remove --force "$wt" 2>/dev/null || true; rm -rf "$bins"' EXIT
  (cd "$wt" && CARGO_TARGET_DIR=$root/target cargo build --release --locked --quiet --bin mcp-auth-sidecar)
  mkdir -p "$(dirname "$cached")"
  cp target/release/mcp-auth-sidecar "$cached.tmp" && mv "$cached.tmp" "$cached"
  git worktree remove --force "$wt"
fi
cp "$cached" "$bins/baseline"

# (a) this checkout, then (c) the limit and the driver. Separately: built
# together with examples, the binary would get the features that the
# dev-dependencies turn on in shared dependencies, unlike the baseline and
# unlike `cargo build --release`.
echo "building this checkout ..." >&2
cargo build --release --locked --quiet --bin mcp-auth-sidecar
cp target/release/mcp-auth-sidecar "$bins/current"
cargo build --release --locked --quiet --example frame_limit --example protocol_bench
cp target/release/examples/frame_limit target/release/examples/protocol_bench "$bins/"

dirty=$(git status --porcelain --untracked-files=no | grep -q . && echo ' + uncommitted changes' || true)
echo "current  = $(git rev-parse --short=12 HEAD)$dirty"
echo "baseline = ${sha:0:12} ($baseline)"
echo "$(rustc --version), release profile"
"$bins/protocol_bench" \
  --program "current=$bins/current" \
  --program "baseline=$bins/baseline" \
  --limit "limit=$bins/frame_limit" \
  "${driver_args[@]}"
