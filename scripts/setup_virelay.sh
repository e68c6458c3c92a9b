#!/usr/bin/env bash
# Creates or refreshes .venv-virelay: the ViRelAy 0.6.1 viewer that the interoperability test
# (tests/app/test_virelay_server.py) starts on a relscope-written project. ViRelAy is a test
# tool, never a dependency of relscope; its own pins (pillow<11, Flask, gunicorn) stay in this
# separate environment. It pulls no torch, so relscope's constraints.txt does not apply.
# Idempotent: installs only when this script or scripts/virelay-requirements.txt changed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.venv-virelay"
python="${PYTHON:-python3}"
requirements="scripts/virelay-requirements.txt"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import sys" >/dev/null 2>&1; then
  echo "setup_virelay: creating $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi

stamp="$venv/.relscope-virelay.sha256"
want="$(cat "$requirements" scripts/setup_virelay.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "setup_virelay: installing ViRelAy 0.6.1 into $venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$venv/bin/python" -m pip install -q -r "$requirements"
# The pins are the complete set: a missing or clashing one fails here, not in the test.
"$venv/bin/python" -m pip check >/dev/null
"$venv/bin/python" -c "import gunicorn, virelay.application" >/dev/null
echo "$want" > "$stamp"
