#!/usr/bin/env bash
# Runs the benchmarks (what `npm run bench` calls, after scripts/rabbitmq.sh has the broker up).
#   BENCH_ONLY=client        run only these parts (comma list: codec,client,recovery,nest,...)
#   BENCH_SCALE=0.1          scale message counts down, e.g. for a smoke run
# Parts run in a fixed order (codec, client, recovery, nest, then any other bench/*/run.ts); absent ones are skipped.
# Results land in bench/results/<part>.json; tables go to stdout. Then bench/report.ts writes, beside each JSON,
# bench/results/<part>.md (tables, machine, Node, broker) and bench/results/<part>-<workload>.svg (bar charts).
set -uo pipefail
cd "$(dirname "$0")/.."

# The benchmark peers live in bench/'s own package so their peer ranges never clash with the root's.
bash scripts/bench-deps.sh || exit 1

parts=(codec client recovery nest)
for f in bench/*/run.ts; do
  [ -f "$f" ] || continue
  p=$(basename "$(dirname "$f")")
  case " ${parts[*]} " in *" $p "*) ;; *) parts+=("$p") ;; esac
done

failed=()
ran=0
for part in "${parts[@]}"; do
  if [ -n "${BENCH_ONLY:-}" ] && [[ ",${BENCH_ONLY// /}," != *",${part},"* ]]; then continue; fi
  script="bench/${part}/run.ts"
  if [ ! -f "$script" ]; then
    [ -n "${BENCH_ONLY:-}" ] && echo "bench: no ${script}, skipped" >&2
    continue
  fi
  echo "== bench/${part} (BENCH_SCALE=${BENCH_SCALE:-1}) =="
  ran=$((ran + 1))
  if [ "$part" = recovery ]; then
    # It stops the broker app and kills connections: never beside a test run (see scripts/broker-lock.sh).
    bash scripts/broker-lock.sh node -r @swc-node/register "$script" || failed+=("$part")
  else
    node -r @swc-node/register "$script" || failed+=("$part")
  fi
done

if [ "$ran" -eq 0 ]; then
  echo "bench: nothing to run (BENCH_ONLY=${BENCH_ONLY:-})" >&2
  exit 1
fi
# Every part's report is made again from its JSON: the parts not run this time (BENCH_ONLY) come out unchanged.
# A full-scale run also refreshes README.md's tables (a scaled-down smoke run must not put its numbers there).
readme=()
[ "${BENCH_SCALE:-1}" = 1 ] && [ -z "${BENCH_LIBS:-}${BENCH_SCENARIOS:-}" ] && readme=(--readme)
node -r @swc-node/register bench/report.ts "${readme[@]}" || failed+=(report)

if [ "${#failed[@]}" -gt 0 ]; then
  echo "bench: failed: ${failed[*]}" >&2
  exit 1
fi
