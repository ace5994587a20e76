#!/usr/bin/env bash
# Runs a command while holding the machine-wide broker lock. The test suite and the chaos benchmark restart the
# broker, block it and kill connections by name; two of them at once (two checkouts, a test run beside `npm run
# chaos`) would spoil each other, so each waits for the other instead.
#   WARREN_BROKER_LOCK       lock file (default /tmp/warren-broker.lock)
#   WARREN_BROKER_LOCK_WAIT  seconds to wait for it (default 3600)
set -uo pipefail
lock="${WARREN_BROKER_LOCK:-/tmp/warren-broker.lock}"
wait_s="${WARREN_BROKER_LOCK_WAIT:-3600}"
if ! command -v flock >/dev/null 2>&1; then
  echo "broker-lock: flock (util-linux) not found; running without the lock" >&2
  exec "$@"
fi
# -o: the command (and any daemon it might start) does not inherit the lock; flock holds it until the command ends.
flock -n -o -E 75 "$lock" "$@"
rc=$?
[ "$rc" -ne 75 ] && exit "$rc"
echo "broker-lock: $lock is held (another test run or chaos benchmark uses the broker); waiting up to ${wait_s} s" >&2
exec flock -o -w "$wait_s" "$lock" "$@"
