#!/usr/bin/env bash
# Makes sure Debian's amqp-specs XML (the source of lib/amqp/protocol/spec.generated.ts) is on this machine, so that
# `npm run generate` works and the unit tests can check the committed file is fresh. Installs the package with
# apt-get when it is missing and we are root (or have sudo); otherwise says so and carries on (the freshness test then
# skips, with a warning). AMQP_SPEC_XML points elsewhere and skips all of this.
set -uo pipefail
xml="${AMQP_SPEC_XML:-/usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml}"
[ -f "$xml" ] && exit 0
[ -n "${AMQP_SPEC_XML:-}" ] && { echo "amqp-specs: $xml not found" >&2; exit 0; }
log() { echo "amqp-specs: $*" >&2; }
if ! command -v apt-get >/dev/null 2>&1; then
  log "$xml is missing and apt-get is not available; install Debian's amqp-specs package to check the generated tables"
  exit 0
fi
if ((EUID == 0)); then as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1; then as_root() { sudo -n "$@"; }
else
  log "$xml is missing and we are not root; run 'apt-get install amqp-specs' to check the generated tables"
  exit 0
fi
log "installing Debian's amqp-specs package (the protocol XML the generator reads)"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q amqp-specs >&2 ||
  { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q amqp-specs >&2; } ||
  log "apt-get install amqp-specs failed; the freshness check of spec.generated.ts will be skipped"
exit 0
