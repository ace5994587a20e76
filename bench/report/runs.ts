import { medianRun } from '../lib/median';
import type { Workload } from './model';

/** A run as the client and Nest parts record it: one library, one scenario, one round. */
export interface RunRecord {
  scenario: string;
  lib: string;
  /** Display name. */
  library?: string;
  error?: string;
}

/** The median run (by `key`) of `lib` in `scenario`, as the part's own table picks it; undefined if every run failed. */
export function medianRunOf<T extends RunRecord>(
  runs: readonly T[],
  scenario: string,
  lib: string,
  key: (run: T) => number | undefined,
): T | undefined {
  const run = medianRun(
    runs.filter((r) => r.scenario === scenario && r.lib === lib),
    key,
  );
  return run && !run.error ? run : undefined;
}

/** The libraries of `runs` in the order they first ran, Warren first. */
export function librariesOf(runs: readonly RunRecord[]): string[] {
  const libs = [...new Set(runs.map((r) => r.lib))];
  return [...libs.filter((l) => l === 'warren'), ...libs.filter((l) => l !== 'warren')];
}

/** The display name of `lib` in `runs` (its id when none is recorded). */
export function displayName(runs: readonly RunRecord[], lib: string): string {
  return runs.find((r) => r.lib === lib && r.library)?.library ?? lib;
}

/** One line per library and workload where every run failed: why there is no figure. */
export function failureNotes(
  runs: readonly RunRecord[],
  workloads: readonly Workload[],
  libs: readonly string[],
): string[] {
  const notes: string[] = [];
  for (const w of workloads)
    for (const lib of libs) {
      const own = runs.filter((r) => r.scenario === w.id && r.lib === lib);
      if (own.length > 0 && own.every((r) => r.error))
        notes.push(`**${displayName(runs, lib)}, ${w.label}: no result** (${own[own.length - 1].error}).`);
    }
  return notes;
}
