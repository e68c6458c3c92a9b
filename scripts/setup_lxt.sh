#!/usr/bin/env bash
# Creates or refreshes .venv-lxt: LXT 2.1, the published AttnLRP implementation, that the
# whole-model comparison (tests/support/lxt_runner.py) runs to compute reference relevance.
# LXT is a test tool, never a dependency of relscope; it needs transformers 4.x, which stays
# in this separate environment. torch comes through relscope's constraints.txt, so it is
# the same local CPU wheel as in .venv.
# Idempotent: installs only when this script, scripts/lxt-requirements.txt or
# constraints.txt changed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.venv-lxt"
python="${PYTHON:-python3}"
requirements="scripts/lxt-requirements.txt"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import sys" >/dev/null 2>&1; then
  echo "setup_lxt: creating $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi

stamp="$venv/.relscope-lxt.sha256"
want="$(cat "$requirements" constraints.txt scripts/setup_lxt.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "setup_lxt: installing LXT 2.1 into $venv (through constraints.txt)"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The constraints file pins torch to the CPU build; PIP_CONSTRAINT makes the pin apply to
# every resolver run pip starts, including build environments (lxt ships an sdist).
export PIP_CONSTRAINT="$root/constraints.txt"
"$venv/bin/python" -m pip install -q -r "$requirements"
# LXT's declared dependencies (accelerate, bitsandbytes, open_clip_torch, zennit, ...) are
# not imported by lxt.efficient for the compared models: installed without them.
"$venv/bin/python" -m pip install -q --no-deps "lxt==2.1"
# The pins are the complete set: a missing or clashing one fails here, not in the test
# (lxt's own unmet declarations are expected and left out).
problems="$("$venv/bin/python" -m pip check 2>&1 | grep -v '^lxt 2\.1 requires ' || true)"
if [ -n "$problems" ]; then
  echo "setup_lxt: pip check failed:" >&2
  echo "$problems" >&2
  exit 1
fi
# transformers imports torchvision, whose import needs the zoo's work-around first.
"$venv/bin/python" -W ignore -c "
import sys; sys.path.insert(0, 'tests')
from support import zoo; zoo.import_torchvision()
import transformers, lxt.efficient
" >/dev/null
echo "$want" > "$stamp"
