/**
 * The median run of a library in one scenario: among the runs without an error, sorted by `key` (throughput), the
 * middle one (the lower middle for an even count); the last run when every run failed, so its error shows. A whole
 * run rather than a median per figure, so a row's figures (throughput, CPU, memory, latency) stay one run's.
 * The bench tables and bench/report.ts pick runs with this one function.
 */
export function medianRun<T extends { error?: string }>(
  runs: readonly T[],
  key: (run: T) => number | undefined,
): T | undefined {
  const ok = runs.filter((r) => !r.error).sort((a, b) => (key(a) ?? 0) - (key(b) ?? 0));
  if (ok.length === 0) return runs[runs.length - 1];
  return ok[Math.floor((ok.length - 1) / 2)];
}
