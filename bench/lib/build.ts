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

/**
 * Compiles the given repository folders (TypeScript -> CommonJS, same swc settings as Jest) into BUILD_DIR, keeping
 * relative paths, so benchmark workers run on plain `node` without a TypeScript loader in their memory and CPU
 * figures (@swc-node/register alone adds ~85 MiB RSS). No type checking.
 */
export function buildForWorkers(folders: string[]): BuildReport {
  rmSync(BUILD_DIR, { recursive: true, force: true });
  const report: BuildReport = { dir: BUILD_DIR, files: 0, failures: {} };
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
        const target = path.join(BUILD_DIR, rel.replace(/\.ts$/, '.js'));
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
