#!/usr/bin/env bash
# package-lock.json must be the one npm 10 (Node 20's npm) writes: npm 11 adds `libc` fields to platform packages,
# which npm 10's `npm install` then deletes, dirtying every clone. Change dependencies with `npx npm@10 install …`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if grep -q '"libc"' package-lock.json; then
  echo 'package-lock.json has "libc" fields (written by npm 11): regenerate it with `npx npm@10 install --package-lock-only`' >&2
  exit 1
fi
