#!/usr/bin/env bash
# Runs a command against a real, unlocked, throw-away Secret Service on a
# private session bus, and leaves nothing behind:
#   scripts/with-keyring.sh CMD ARGS...
# (`dbus-run-session -- scripts/with-keyring.sh CMD` works too; the script
# starts its own bus either way.)
#
# Everything lives in one scratch folder: gnome-keyring's collections
# ($XDG_DATA_HOME/keyrings, so every XDG directory points there), and the
# bus sockets (a copy of the session bus configuration that listens there
# instead of in /tmp; tests that start buses of their own use it too, via
# MCP_AUTH_TEST_DBUS_CONFIG). Every process started under the script
# carries MCP_AUTH_TEST_SCRATCH in its environment: gnome-keyring daemonizes
# and outlives its bus, and a test that kills its `dbus-run-session`
# orphans that bus's daemon, so at exit the script ends each process that
# still carries the marker, then removes the folder.
set -euo pipefail

if [ -z "${MCP_AUTH_TEST_SCRATCH:-}" ]; then
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/mcp-auth-keyring.XXXXXX")
  cleanup() {
    local f pid left
    for _ in 1 2 3; do
      left=0
      for f in $(grep -lzxF "MCP_AUTH_TEST_SCRATCH=$scratch" /proc/[0-9]*/environ 2>/dev/null); do
        pid=${f#/proc/}
        pid=${pid%/environ}
        [ "$pid" != $$ ] || continue
        kill "$pid" 2>/dev/null && left=1
      done
      [ "$left" = 1 ] || break
      sleep 0.2
    done
    rm -rf "$scratch"
  }
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  mkdir -m 700 -p "$scratch/bus"
  sed "s|<listen>[^<]*</listen>|<listen>unix:dir=$scratch/bus</listen>|" \
    /usr/share/dbus-1/session.conf >"$scratch/session.conf"
  export MCP_AUTH_TEST_SCRATCH=$scratch MCP_AUTH_TEST_DBUS_CONFIG=$scratch/session.conf
  status=0
  dbus-run-session --config-file="$scratch/session.conf" -- "$0" "$@" || status=$?
  exit "$status"
fi

# Inside the private bus.
scratch=$MCP_AUTH_TEST_SCRATCH
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
