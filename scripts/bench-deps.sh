#!/usr/bin/env bash
# Installs bench/'s own dependencies (the benchmark peers, kept apart from the root so their peer ranges never
# clash) when they are missing or older than bench/package-lock.json. Used by `npm run bench` and by `npm run lint`,
# which type-checks bench/ too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -d bench/node_modules ] || [ bench/package-lock.json -nt bench/node_modules/.package-lock.json ]; then
  echo "bench: installing bench/ dependencies" >&2
  (cd bench && npm install --no-audit --no-fund --loglevel=error)
fi
