#!/bin/sh
# The Neovim plugin's build step: builds mcp-auth-sidecar from the repository
# this plugin folder belongs to (cargo build --release --locked) and puts the
# binary into the plugin's own folder, editors/nvim/bin/, where the plugin
# looks before $PATH. Plugin managers run it after install and update
# (lazy.nvim `build`, packer `run`, vim-plug `do`); run it by hand for native
# packages. Needs cargo (Rust >= the rust-version in Cargo.toml). A cold
# release build takes minutes (about 11 on 2 cores).
#
# Usage: sh editors/nvim/build.sh      (from any directory)
# Env:   CARGO                    the cargo to run (default: cargo on $PATH,
#                                 else ~/.cargo/bin/cargo)
#        CARGO_TARGET_DIR         cargo's own: where it builds
#        MCP_AUTH_BUILD_PROFILE   test knob: the cargo profile (default
#                                 release). The plugin's tests use `dev` with
#                                 CARGO_TARGET_DIR at an already built target/
#                                 so as not to do a second release build.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
name=mcp-auth-sidecar

say() { printf 'mcp_auth build: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ -f "$repo/Cargo.toml" ] && grep -q "^name = \"$name\"" "$repo/Cargo.toml" ||
  die "$repo is not the mcp-auth-sidecar repository (this script belongs in its editors/nvim folder)"

cargo=${CARGO:-}
if [ -z "$cargo" ]; then
  if command -v cargo >/dev/null 2>&1; then
    cargo=cargo
  elif [ -x "$HOME/.cargo/bin/cargo" ]; then
    cargo="$HOME/.cargo/bin/cargo" # GUI-started editors often lack ~/.cargo/bin on PATH
  else
    die "cargo not found: install Rust (https://rustup.rs), then run: sh $here/build.sh"
  fi
fi

profile=${MCP_AUTH_BUILD_PROFILE:-release}
say "building $name ($profile profile; a cold release build takes minutes)"
# cargo prints where it put the executable in its JSON messages; that also
# covers a target-dir set in a cargo config file.
messages=$("$cargo" build --locked --profile "$profile" --bin "$name" \
  --manifest-path "$repo/Cargo.toml" --message-format=json-render-diagnostics) ||
  die "cargo build failed"
exe=$(printf '%s\n' "$messages" | grep -o '"executable":"[^"]*"' | tail -n 1 | sed 's/^"executable":"//; s/"$//')
[ -n "$exe" ] && [ -x "$exe" ] || die "cargo did not report the $name executable"

mkdir -p "$here/bin"
dest="$here/bin/$(basename "$exe")"
# Copy, then rename over the old one: a running sidecar keeps its file.
tmp="$here/bin/.$name.$$.tmp"
cp "$exe" "$tmp"
chmod 755 "$tmp"
mv -f "$tmp" "$dest"
say "installed $dest ($("$dest" --version))"
