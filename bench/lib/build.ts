import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { transformFileSync } from '@swc/core';

/** Repository root (bench/lib/ is two levels down). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/**
 * Where compiled workers go: inside bench/node_modules (ignored by git, wiped by `npm ci`), so that code under it
 * resolves peer libraries from bench/node_modules the normal way.
 */
export const BUILD_DIR = path.join(REPO_ROOT, 'bench', 'node_modules', '.cache', 'warren-bench');

export interface BuildReport {
  dir: string;
  files: number;
  /** Files swc could not compile (e.g. lib/ mid-edit): relative path -> error. */
  failures: Record<string, string>;
}

function tsFiles(dir: string): string[] {
  let out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (entry === 'node_modules' || entry.startsWith('.')) continue;
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out = out.concat(tsFiles(full));
    else if (entry.endsWith('.ts') && !entry.endsWith('.d.ts') && !entry.endsWith('.spec.ts')) out.push(full);
  }
  return out;
}

/** A bench part's own build folder under bench/node_modules/.cache, so parts running at once never wipe each other's. */
export function buildDirFor(part: string): string {
  return path.join(REPO_ROOT, 'bench', 'node_modules', '.cache', `warren-${part}`);
}

/**
 * Compiles the given repository folders (TypeScript -> CommonJS, same swc settings as Jest: legacy decorators and
 * decorator metadata, which Nest needs) into `dir` (default BUILD_DIR), keeping relative paths, so benchmark workers
 * run on plain `node` without a TypeScript loader in their memory and CPU figures (@swc-node/register alone adds
 * ~85 MiB RSS). Inside bench/node_modules, compiled code resolves peers (and Nest 11) from bench/node_modules.
 * No type checking.
 */
export function buildForWorkers(folders: string[], dir: string = BUILD_DIR): BuildReport {
  rmSync(dir, { recursive: true, force: true });
  const report: BuildReport = { dir, files: 0, failures: {} };
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
        const target = path.join(dir, rel.replace(/\.ts$/, '.js'));
        mkdirSync(path.dirname(target), { recursive: true });
        writeFileSync(target, code);
        report.files++;
      } catch (err) {
        report.failures[rel] = err instanceof Error ? err.message.split('\n')[0] : String(err);
      }
    }
  }
  return report;
}
