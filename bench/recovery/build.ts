import { buildDirFor, buildForWorkers } from '../lib/build';

/** The recovery bench's own build folder (see bench/lib/build.ts). */
export const RECOVERY_BUILD_DIR = buildDirFor('recovery');

/** Compiles the folders (relative to the repository root); returns files that failed (relative path -> error). */
export function buildRecoveryWorkers(folders: string[]): Record<string, string> {
  return buildForWorkers(folders, RECOVERY_BUILD_DIR).failures;
}
