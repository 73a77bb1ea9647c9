#!/usr/bin/env bash
# Runs every test of the project. This is the README's test command and what
# .ci/run calls.
#
#   scripts/test.sh                 every stage
#   STAGES="clippy test" scripts/test.sh   only those (the others: skipped)
#   SKIP_CROSS=1 scripts/test.sh    skips cross-check (unless CI is set)
#
# Every stage runs, whatever happened before it, and the run ends with a
# table (stage, passed/failed/skipped, seconds); the exit status is 1 if
# any stage failed. Each stage's output is shown as it runs and kept in
# target/test-logs/<stage>.log.
#
# One build serves every stage: `build` compiles the crate, its tests and
# examples once (`--all-targets`, so the binary has the same dependency
# features as the one `cargo test` uses and nothing is compiled twice), and
# every later stage runs target/debug/mcp-auth-sidecar of this checkout
# (exported as MCP_AUTH_SIDECAR_BIN). No release build. Clippy's `check`
# output cannot be reused by the test build; it is the only second pass.
#
# Nothing may outlive its stage: TMPDIR points at target/test-tmp, which must
# be empty again when a stage ends, and every process started by the run
# carries MCP_AUTH_TEST_RUN in its environment; a stage that leaves files or
# processes behind fails (the processes are ended, the files listed).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
logs=$root/target/test-logs
mkdir -p "$logs"
export MCP_AUTH_SIDECAR_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/mcp-auth-sidecar"
export TMPDIR=$root/target/test-tmp
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
export MCP_AUTH_TEST_RUN="$$-$(date +%s)"

# Processes that carry this run's marker, other than this script and the
# subshell $1 asking (grep matches itself too; it is gone when the list is
# read).
leftover_processes() {
  local f pid
  for f in $(grep -lzxF "MCP_AUTH_TEST_RUN=$MCP_AUTH_TEST_RUN" /proc/[0-9]*/environ 2>/dev/null); do
    pid=${f#/proc/}
    pid=${pid%/environ}
    if [ "$pid" != $$ ] && [ "$pid" != "$1" ] && [ "$pid" != "$BASHPID" ] && [ -e "/proc/$pid" ]; then
      echo "$pid"
    fi
  done
}

# Fails the stage (prints why) if it left processes or temp files behind.
check_leftovers() {
  local pids files ok=0 pid
  pids=$(leftover_processes "$BASHPID")
  if [ -n "$pids" ]; then
    echo "left running:"
    for pid in $pids; do
      printf '  %s %s\n' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
      kill "$pid" 2>/dev/null || true
    done
    ok=1
  fi
  # Not leftovers: Node's module compile cache (npm turns it on; shared by
  # design) and Neovim's per-user temp folder once it is empty (Neovim
  # removes its own subfolder, not the parent).
  rmdir "$TMPDIR"/nvim.* 2>/dev/null || true
  files=$(ls -A "$TMPDIR" | grep -vx node-compile-cache)
  if [ -n "$files" ]; then
    echo "left in $TMPDIR:"
    printf '  %s\n' $files
    (cd "$TMPDIR" && rm -rf $files)
    ok=1
  fi
  return $ok
}

# Interrupted (Ctrl-C reaches only this script: background stages ignore
# SIGINT): end the running stage and whatever it started.
interrupted() {
  local p
  for p in $(leftover_processes "$BASHPID"); do kill "$p" 2>/dev/null || true; done
  exit 130
}
trap interrupted INT TERM

names=() results=() times=()

# stage NAME CMD ARGS...: runs it (unless STAGES leaves it out), records
# passed/failed and the time. A stage that exits 77 counts as skipped.
stage() {
  local name=$1 start status result pid report
  shift
  if [ -n "${STAGES:-}" ] && [[ " $STAGES " != *" $name "* ]]; then
    skip "$name" "not in STAGES"
    return
  fi
  printf '\n===== %s: %s\n' "$name" "$*"
  start=$SECONDS
  # Shown as it is written; not through a pipe, so a process that wrongly
  # outlives the stage cannot hold the stage open.
  "$@" >"$logs/$name.log" 2>&1 &
  pid=$!
  tail -n +1 -s 0.2 --pid="$pid" -f "$logs/$name.log" &
  wait "$pid"
  status=$?
  wait $!
  if ! report=$(check_leftovers 2>&1); then
    printf '%s\n' "$report" | sed "s/^/$name: /" | tee -a "$logs/$name.log"
    printf '===== %s: left things behind (above)\n' "$name"
    [ "$status" != 0 ] && [ "$status" != 77 ] || status=3
  fi
  case $status in
    0) result=passed ;;
    77) result=skipped ;;
    *) result=failed
       printf '===== %s: FAILED (exit %s); its output is in %s\n' "$name" "$status" "$logs/$name.log" ;;
  esac
  names+=("$name") results+=("$result") times+=($((SECONDS - start)))
}

# skip NAME REASON: records a stage as skipped without running it.
skip() {
  printf '\n===== %s: skipped (%s)\n' "$1" "$2"
  names+=("$1") results+=(skipped) times+=(0)
}

summary() {
  local i failed=0
  printf '\n%-14s %-8s %8s\n' STAGE RESULT SECONDS
  for i in "${!names[@]}"; do
    printf '%-14s %-8s %8s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
    [ "${results[$i]}" != failed ] || failed=1
  done
  if [ "$failed" = 1 ]; then
    echo "FAILED: see the logs above or in $logs/"
    return 1
  fi
  echo "all stages passed or were skipped"
}

# --- the stages, in order (adding one is one line) ----------------------------
stage deps scripts/install-test-deps.sh
stage fmt cargo fmt --check
stage clippy cargo clippy --locked --all-targets -- -D warnings
stage build cargo build --locked --all-targets
# Windows and macOS: `cargo check` and `cargo clippy -D warnings`, all
# targets, 0 warnings (type-checked and linted only; nothing runs them).
# Cold: ~9 min of 2 idle cores (16 min of CPU); warm: seconds.
if [ -n "${SKIP_CROSS:-}" ] && [ "$SKIP_CROSS" != 0 ] && [ -z "${CI:-}" ]; then
  skip cross-check "SKIP_CROSS is set"
else
  stage cross-check scripts/cross-check.sh
fi
# Unit and integration tests (the real binary over stdio, real files, real
# HTTP peers on loopback, SIGKILL crash loop).
stage test cargo test --locked
# The official MCP conformance suite, both requirement sets (Node 22 and the
# suite come from npm, pinned in tests/conformance/package-lock.json).
stage conformance scripts/conformance.sh
# Real peers: the MCP SDK's example OAuth server, oidc-provider, the MCP
# Python SDK (its pinned venv is installed by peers.sh).
stage peers scripts/peers.sh
# The editor integrations (Neovim headless, VS Code's transport and UI).
stage editors scripts/editors.sh
# The keyring tests, against a throw-away gnome-keyring on a private bus.
stage keyring scripts/with-keyring.sh \
  cargo test --locked --test keyring -- --ignored

summary
