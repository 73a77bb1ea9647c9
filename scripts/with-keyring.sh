#!/usr/bin/env bash
# Runs a command against a real, unlocked, throw-away Secret Service:
#   dbus-run-session -- scripts/with-keyring.sh CMD ARGS...
# gnome-keyring keeps its collections under $XDG_DATA_HOME/keyrings, so the
# script points every XDG directory at a temp dir first; the bus-activated
# services inherit the bus's environment, hence the activation update.
set -euo pipefail
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  echo "with-keyring.sh: run me under dbus-run-session" >&2
  exit 2
fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/mcp-auth-keyring.XXXXXX")
# The daemons this script starts outlive it (gnome-keyring daemonizes);
# stop the ones that belong to this scratch folder, then remove it.
cleanup() {
  for pid in $(pgrep -f gnome-keyring-daemon || true); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "XDG_RUNTIME_DIR=$scratch/run"; then
      kill "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$scratch"
}
trap cleanup EXIT
export XDG_DATA_HOME="$scratch/data" XDG_CONFIG_HOME="$scratch/config" \
       XDG_CACHE_HOME="$scratch/cache" XDG_RUNTIME_DIR="$scratch/run"
mkdir -p "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME"
mkdir -m 700 -p "$XDG_RUNTIME_DIR"
unset DISPLAY WAYLAND_DISPLAY   # never wait for a graphical unlock prompt
dbus-update-activation-environment XDG_DATA_HOME XDG_CONFIG_HOME XDG_CACHE_HOME XDG_RUNTIME_DIR
# Creates (first run) and unlocks the "login" collection with this password.
printf '%s' 'mcp-auth-sidecar-test' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
for _ in $(seq 100); do
  if dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
       org.freedesktop.Secret.Service.ReadAlias string:default 2>/dev/null | grep -q collection/; then
    break
  fi
  sleep 0.05
done
export MCP_AUTH_SIDECAR_TEST_KEYRING=1
"$@"
