import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { promisify } from 'node:util';

/**
 * README (Install): "Code that uses only the AMQP client imports `nestjs-warren/amqp`, which loads no `@nestjs/*`
 * module." `nestjs-warren/amqp` is lib/amqp/index.ts, compiled.
 */
jest.setTimeout(30_000);

const execFileAsync = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const amqpDir = path.join(root, 'lib/amqp');

/** Every module specifier a TypeScript file imports, re-exports or requires. */
function specifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) found.push(m[1]);
  return found;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

describe("nestjs-warren/amqp (README): loads no '@nestjs/*' module", () => {
  it('requiring lib/amqp in a fresh Node process loads nothing from @nestjs, nor any package, nor the Nest layer', async () => {
    // Records every module a file of lib/amqp asks for, and what ends up in the require cache.
    const script = `
      const Module = require('node:module');
      const path = require('node:path');
      const amqpDir = ${JSON.stringify(amqpDir)};
      const requests = [];
      const load = Module._load;
      Module._load = function (request, parent, isMain) {
        if (parent && parent.filename && parent.filename.startsWith(amqpDir + path.sep)) requests.push(request);
        return load.apply(this, arguments);
      };
      const before = new Set(Object.keys(require.cache));
      const amqp = require(amqpDir);
      if (typeof amqp.AmqpSession !== 'function') throw new Error('lib/amqp did not load');
      const loaded = Object.keys(require.cache).filter((p) => !before.has(p));
      process.stdout.write(JSON.stringify({ requests, loaded }));
    `;
    const { stdout } = await execFileAsync(process.execPath, ['-r', '@swc-node/register', '-e', script], {
      cwd: root,
      encoding: 'utf8',
    });
    const { requests, loaded } = JSON.parse(stdout) as { requests: string[]; loaded: string[] };

    expect(requests.length).toBeGreaterThan(10);
    expect(requests.filter((r) => r.startsWith('@nestjs'))).toEqual([]);
    expect(loaded.filter((p) => p.includes(`${path.sep}@nestjs${path.sep}`))).toEqual([]);
    // Files lib/amqp loads are its own: nothing from lib/nest, no package (the transpiler's own files aside).
    const own = loaded.filter((p) => !p.includes(`${path.sep}node_modules${path.sep}`));
    expect(own.filter((p) => !p.startsWith(amqpDir + path.sep))).toEqual([]);
    expect(requests.filter((r) => !r.startsWith('.') && !builtinModules.includes(r.replace(/^node:/, '')))).toEqual([]);
  });

  it('no file under lib/amqp imports @nestjs/*, a package, or a file outside lib/amqp', () => {
    const files = tsFiles(amqpDir);
    expect(files.length).toBeGreaterThan(10);
    const offending: string[] = [];
    for (const file of files) {
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        const builtin = builtinModules.includes(spec.replace(/^node:/, ''));
        const inside = spec.startsWith('.') && path.resolve(path.dirname(file), spec).startsWith(amqpDir);
        if (spec.includes('@nestjs') || (!builtin && !inside)) offending.push(`${path.relative(root, file)}: ${spec}`);
      }
    }
    expect(offending).toEqual([]);
  });
});
