#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, if it is missing:
# a real Secret Service (gnome-keyring) and a session bus for the keyring
# tests; openssl for the TLS peer tests' private CA; Debian's rustc-web
# toolchain for the Windows and macOS checks (scripts/cross-check.sh,
# unless SKIP_CROSS skips it). Idempotent; does nothing when everything is
# present.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${SKIP_CROSS:-}" ] && [ "$SKIP_CROSS" != 0 ] && [ -z "${CI:-}" ]; then
  echo "install-test-deps: SKIP_CROSS is set: not installing the cross-check toolchain" >&2
else
  scripts/cross-check.sh --install
fi

need_apt=()
command -v gnome-keyring-daemon >/dev/null || need_apt+=(gnome-keyring)
command -v dbus-run-session >/dev/null || need_apt+=(dbus-daemon dbus-x11)
command -v dbus-update-activation-environment >/dev/null || need_apt+=(dbus-bin)
command -v secret-tool >/dev/null || need_apt+=(libsecret-tools)
command -v openssl >/dev/null || need_apt+=(openssl)

if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing: ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
    echo "installing with sudo: ${need_apt[*]}" >&2
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "missing test dependencies: ${need_apt[*]} (install them with your package manager)" >&2
    exit 1
  fi
fi
