#!/usr/bin/env bash
# Makes <dir>/.venv hold exactly <dir>/requirements.txt (every version
# pinned), for the Python real peers: creates it with python3's venv module
# and installs from PyPI when it is missing or the requirements changed.
#
# Usage: scripts/python-venv.sh tests/peers/python
set -euo pipefail
dir=$(cd "$1" && pwd)
venv="$dir/.venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$dir/requirements.txt" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
command -v python3 >/dev/null || { echo "python-venv.sh: python3 is needed for $dir" >&2; exit 1; }
echo "python-venv.sh: installing $dir/requirements.txt into $venv" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-virtualenv \
  -r "$dir/requirements.txt"
echo "$want" >"$stamp"
