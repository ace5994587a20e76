import { buildDirFor, buildForWorkers } from '../lib/build';

/**
 * The nest bench's own build folder (see bench/lib/build.ts). Being inside bench/node_modules, the compiled Warren code
 * (lib/nest) and the adapters resolve @nestjs/*, rxjs and reflect-metadata from bench/node_modules (Nest 11), not from
 * the root's node_modules (Nest 12): the worker checks and reports this.
 */
export const NEST_BUILD_DIR = buildDirFor('nest');

/** Compiles the folders (relative to the repository root); returns files that failed (relative path -> error). */
export function buildNestWorkers(folders: string[]): Record<string, string> {
  return buildForWorkers(folders, NEST_BUILD_DIR).failures;
}
