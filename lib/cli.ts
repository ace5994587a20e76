#!/usr/bin/env node
/**
 * The `warren` command (package.json "bin").
 *
 *   warren asyncapi <module-file> [--export Name] [--connection name] [--out file [--check]]
 *                   [--title t] [--api-version v] [--description d] [--require hook]...
 *
 * Loads the application module from <module-file>, boots it without opening any connection (`generateAsyncApi`),
 * and prints its AsyncAPI 3.0 document (or writes it to --out; with --check, exits 1 if that file is not up to date).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { DynamicModule, Type } from '@nestjs/common';
import type { AsyncApiInfo } from './nest/asyncapi/asyncapi-document';
import { generateAsyncApi } from './nest/asyncapi/generate-asyncapi';

const USAGE = `Usage: warren asyncapi <module-file> [options]

Prints the AsyncAPI 3.0 document of a Nest application's Warren messaging. The module is booted without
connecting to the broker: nothing is declared, consumed or published.

Options:
  --export <name>        the module class exported by <module-file> (default: AppModule, or its only module)
  --connection <name>    the Warren connection to describe (default: 'default')
  --out <file>           write the document to <file> instead of printing it
  --check                with --out: write nothing, exit 1 if <file> differs from the document
  --title <text>         info.title (default: the nearest package.json's name)
  --api-version <v>      info.version (default: the nearest package.json's version)
  --description <text>   info.description (default: the nearest package.json's description)
  --require <module>     load <module> first (repeatable), e.g. ts-node/register or @swc-node/register for a
                         TypeScript module file
  --help                 show this help`;

/** A mistake in the command line: exit code 2, with the usage. */
class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      export: { type: 'string' },
      connection: { type: 'string' },
      out: { type: 'string' },
      check: { type: 'boolean' },
      title: { type: 'string' },
      'api-version': { type: 'string' },
      description: { type: 'string' },
      require: { type: 'string', multiple: true },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [command, file, ...rest] = positionals;
  if (command !== 'asyncapi') throw new UsageError(command ? `unknown command '${command}'` : 'no command given');
  if (!file) throw new UsageError('asyncapi: no module file given');
  if (rest.length > 0) throw new UsageError(`asyncapi: unexpected argument '${rest[0]}'`);
  if (values.check && !values.out) throw new UsageError('asyncapi: --check needs --out <file>');

  const cwd = process.cwd();
  const fromCwd = createRequire(join(cwd, 'package.json'));
  for (const hook of values.require ?? []) fromCwd(hook);
  const path = resolve(cwd, file);
  const module = pickModule(loadModuleFile(path, fromCwd), values.export, file);
  const info = { ...packageInfo(dirname(path)), ...definedOnly(values) };
  const document = await generateAsyncApi(module, { connection: values.connection, info, logger: false });
  const text = `${JSON.stringify(document, null, 2)}\n`;

  if (!values.out) {
    await new Promise<void>((done) => process.stdout.write(text, () => done()));
    return 0;
  }
  const out = resolve(cwd, values.out);
  if (values.check) {
    if (existsSync(out) && readFileSync(out, 'utf8') === text) return 0;
    process.stderr.write(`warren: ${values.out} is not up to date; run the same command without --check\n`);
    return 1;
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, text);
  return 0;
}

function loadModuleFile(path: string, fromCwd: NodeJS.Require): Record<string, unknown> {
  try {
    return fromCwd(path) as Record<string, unknown>;
  } catch (err) {
    const hint = /\.[cm]?ts$/.test(path)
      ? ' (a TypeScript file needs --require ts-node/register or @swc-node/register, or give the compiled .js)'
      : '';
    throw new Error(`cannot load ${path}${hint}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** The exported module: --export, else AppModule, else the only export that is a Nest module. */
function pickModule(exports: Record<string, unknown>, name: string | undefined, file: string): Type | DynamicModule {
  if (name !== undefined) {
    if (!isModule(exports[name])) throw new UsageError(`asyncapi: ${file} exports no Nest module named '${name}'`);
    return exports[name];
  }
  if (isModule(exports.AppModule)) return exports.AppModule;
  const modules = Object.entries(exports).filter(([, v]) => isModule(v));
  if (modules.length === 1) return modules[0][1] as Type | DynamicModule;
  const found = modules.map(([k]) => k).join(', ') || 'none';
  throw new UsageError(`asyncapi: say which module of ${file} to describe with --export (modules found: ${found})`);
}

/** A class decorated with @Module (Nest keeps its metadata on it), or a dynamic module. */
function isModule(v: unknown): v is Type | DynamicModule {
  if (typeof v === 'function') {
    const keys = Reflect.getMetadataKeys?.(v) ?? [];
    return ['imports', 'providers', 'controllers', 'exports'].some((k) => keys.includes(k));
  }
  return typeof v === 'object' && v !== null && typeof (v as { module?: unknown }).module === 'function';
}

/** title, version and description of the nearest package.json at or above `dir`. */
function packageInfo(dir: string): Partial<AsyncApiInfo> {
  for (let d = dir; ; d = dirname(d)) {
    const file = join(d, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      const info: Partial<AsyncApiInfo> = {};
      if (typeof pkg.name === 'string') info.title = pkg.name;
      if (typeof pkg.version === 'string') info.version = pkg.version;
      if (typeof pkg.description === 'string') info.description = pkg.description;
      return info;
    }
    if (dirname(d) === d) return {};
  }
}

function definedOnly(values: { title?: string; 'api-version'?: string; description?: string }): Partial<AsyncApiInfo> {
  const info: Partial<AsyncApiInfo> = {};
  if (values.title !== undefined) info.title = values.title;
  if (values['api-version'] !== undefined) info.version = values['api-version'];
  if (values.description !== undefined) info.description = values.description;
  return info;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const code = (err as { code?: unknown } | null)?.code;
    const usage = err instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'));
    process.stderr.write(`warren: ${err instanceof Error ? err.message : String(err)}\n${usage ? `\n${USAGE}\n` : ''}`);
    process.exit(usage ? 2 : 1);
  },
);
