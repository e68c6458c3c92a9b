#!/usr/bin/env bash
# Builds the browser front end (frontend/) into src/relscope/app/static, idempotently:
# npm packages are installed from the lock file when it changed, and the build runs only
# when a source file changed since the last build (a hash stamp next to the built files).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
front="$root/frontend"
static="$root/src/relscope/app/static"
cd "$front"

if ! command -v npm >/dev/null 2>&1; then
  echo "build_frontend: npm (Node.js 20 or newer) is needed to build the Explorer front end" >&2
  exit 1
fi

lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
lock_stamp="node_modules/.relscope-lock.sha256"
if [ ! -f "$lock_stamp" ] || [ "$(cat "$lock_stamp")" != "$lock_hash" ]; then
  echo "build_frontend: installing npm packages from package-lock.json"
  # Not `npm ci`: npm 11 writes lock files without the other platforms' optional rollup
  # binaries here and then refuses them in `ci`; `install --no-save` keeps the lock as it is.
  npm install --no-save --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > "$lock_stamp"
fi

sources_hash="$(cd "$front" && find index.html designer.html package.json package-lock.json tsconfig.json \
  vite.config.ts src -type f ! -name '*.test.ts' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
stamp="$static/.build-stamp"
if [ -f "$stamp" ] && [ -f "$static/index.html" ] && [ -f "$static/designer.html" ] && [ "$(cat "$stamp")" = "$sources_hash" ]; then
  exit 0
fi
echo "build_frontend: building the Explorer front end into src/relscope/app/static"
npm run --silent build -- --logLevel warn
echo "$sources_hash" > "$stamp"
