import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { transformFileSync } from '@swc/core';
import { REPO_ROOT } from '../lib/build';

/**
 * Like bench/lib/build.ts's buildForWorkers (same swc settings: legacy decorators + decorator metadata, which Nest
 * needs), but into its own folder so that a nest run never wipes the client or recovery bench's compiled workers when
 * they run at the same time. The folder is inside bench/node_modules, so the compiled Warren code (lib/nest) and the
 * adapters resolve @nestjs/*, rxjs and reflect-metadata from bench/node_modules (Nest 11), not from the root's
 * node_modules (Nest 12): the worker checks and reports this.
 */
export const NEST_BUILD_DIR = path.join(REPO_ROOT, 'bench', 'node_modules', '.cache', 'warren-nest');

function tsFiles(dir: string): string[] {
  let out: string[] = [];
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry.startsWith('.')) continue;
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out = out.concat(tsFiles(full));
    else if (entry.endsWith('.ts') && !entry.endsWith('.d.ts') && !entry.endsWith('.spec.ts')) out.push(full);
  }
  return out;
}

/** Compiles the folders (relative to the repository root); returns files that failed (relative path -> error). */
export function buildNestWorkers(folders: string[]): Record<string, string> {
  rmSync(NEST_BUILD_DIR, { recursive: true, force: true });
  const failures: Record<string, string> = {};
  for (const folder of folders) {
    for (const file of tsFiles(path.join(REPO_ROOT, folder))) {
      const rel = path.relative(REPO_ROOT, file);
      try {
        const { code } = transformFileSync(file, {
          jsc: {
            parser: { syntax: 'typescript', decorators: true },
            transform: { legacyDecorator: true, decoratorMetadata: true },
            target: 'es2022',
          },
          module: { type: 'commonjs' },
          sourceMaps: 'inline',
          swcrc: false,
          configFile: false,
        });
        const target = path.join(NEST_BUILD_DIR, rel.replace(/\.ts$/, '.js'));
        mkdirSync(path.dirname(target), { recursive: true });
        writeFileSync(target, code);
      } catch (err) {
        failures[rel] = err instanceof Error ? err.message.split('\n')[0] : String(err);
      }
    }
  }
  return failures;
}
