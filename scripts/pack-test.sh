#!/usr/bin/env bash
# The package as a user gets it. Packs this repository (`npm pack` runs `prepare`, the build), then, for each Nest
# major the README supports, installs the tarball and the peers into a scratch app, compiles
# scripts/pack-test/main.ts with a tsconfig like the one `nest new` generates (CommonJS, classic node resolution:
# typesVersions), type-checks it under nodenext too (the exports map), requires and imports both entry points, and
# runs the app: one RPC through AmqpModule and one plain AmqpConnection against the broker. The peers are the
# versions the lockfiles hold (Nest 12: package-lock.json; Nest 11, the oldest supported: bench/package-lock.json),
# so after `npm ci` and `npm run lint` npm finds them in its cache.
# What `npm run test:pack` and .ci/run call. The scratch directory is removed however the script ends.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

log() { printf '[pack-test %(%T)T] %s\n' -1 "$*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/warren-pack-test.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

bash scripts/rabbitmq.sh

log "npm pack, without dist/: prepare must build it"
rm -rf dist
npm pack --silent --pack-destination "$scratch" >/dev/null
tarball=$(echo "$scratch"/nestjs-warren-*.tgz)
[ -f "$tarball" ] || die "npm pack made no tarball"
listing=$(tar -tzf "$tarball")
for f in package/package.json package/dist/index.js package/dist/index.d.ts package/dist/amqp/index.js \
  package/dist/amqp/index.d.ts; do
  grep -qx "$f" <<<"$listing" || die "the tarball lacks ${f#package/}"
done
if grep -v -e '^package/dist/' -e '^package/package\.json$' -e '^package/README\.md$' -e '^package/LICENSE' \
  <<<"$listing"; then
  die "the tarball holds files other than dist/, package.json, README.md and LICENSE (listed above)"
fi

# "name@version" of each package, as the given lockfile records it.
locked() {
  node -e '
    const [lockfile, ...names] = process.argv.slice(1);
    const { packages } = require(lockfile);
    for (const name of names) {
      const entry = packages[`node_modules/${name}`];
      if (!entry) throw new Error(`${lockfile} has no ${name}`);
      console.log(`${name}@${entry.version}`);
    }' "$@"
}

# try_app LABEL LOCKFILE: a scratch app on the Nest peers LOCKFILE holds.
try_app() {
  local label=$1 lockfile=$2 app="$scratch/$1"
  mkdir -p "$app/src"
  cp scripts/pack-test/tsconfig.json "$app/"
  cp scripts/pack-test/main.ts scripts/pack-test/describe.ts "$app/src/"
  printf '{ "name": "warren-pack-test-%s", "version": "0.0.0", "private": true }\n' "$label" >"$app/package.json"
  local deps
  mapfile -t deps < <(
    locked "$lockfile" @nestjs/common @nestjs/core @nestjs/microservices reflect-metadata rxjs
    locked "$repo/package-lock.json" typescript @types/node
  )
  log "$label: npm install the tarball ${deps[*]}"
  (cd "$app" && npm install --prefer-offline --no-audit --no-fund --loglevel=error "$tarball" "${deps[@]}")
  (
    cd "$app"
    log "$label: tsc (module commonjs, moduleResolution node)"
    node_modules/.bin/tsc -p .
    log "$label: tsc --noEmit (module and moduleResolution nodenext: the exports map)"
    node_modules/.bin/tsc -p . --noEmit --module nodenext --moduleResolution nodenext
    log "$label: require and import both entry points"
    node -e "
      require('nestjs-warren/amqp');
      const nest = Object.keys(require.cache).filter((f) => f.includes('/@nestjs/'));
      if (nest.length) throw new Error('nestjs-warren/amqp loaded ' + nest[0]);
      require('nestjs-warren');"
    node --input-type=module -e "
      import { AmqpModule } from 'nestjs-warren';
      import { AmqpConnection } from 'nestjs-warren/amqp';
      if (typeof AmqpModule !== 'function' || typeof AmqpConnection !== 'function') throw new Error('missing exports');"
    log "$label: the warren bin describes a module without a broker"
    node_modules/.bin/warren asyncapi dist/describe.js --out asyncapi.json
    node -e "
      const doc = require('./asyncapi.json');
      if (doc.asyncapi !== '3.0.0') throw new Error('not an AsyncAPI 3.0 document');
      if (!doc.operations['receive.pack-test.orders.order.created']) throw new Error('the handler is missing: ' + Object.keys(doc.operations));"
    log "$label: run the app against the broker"
    node dist/main.js
  )
}

try_app nest12 "$repo/package-lock.json"
try_app nest11 "$repo/bench/package-lock.json"
log "ok"
