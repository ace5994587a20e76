import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

/**
 * Every ```ts block of README.md is a complete file that compiles against the package as a user's project would see
 * it: `nestjs-warren` and `nestjs-warren/amqp` resolve to lib/, everything else to node_modules, with the repo's
 * compiler options (strict, decorators) plus noUnusedLocals, so an import list cannot drift either. A block whose
 * first line is `// name.ts` is that file (the Quick start's files import each other); ```ts fragment blocks are
 * skipped. One program for all blocks: type-checking lib/ and Nest's types once takes a few seconds.
 */
jest.setTimeout(120_000);

const root = path.resolve(__dirname, '../..');
/** Where the snippets pretend to live: inside the repo, so that node_modules resolves; never written to disk. */
const snippetDir = path.join(root, '.readme-snippets');

interface Snippet {
  /** File name (from its `// name.ts` first line, else snippet-<n>.ts). */
  file: string;
  /** README line of the opening fence. */
  line: number;
  code: string;
}

/** The ```ts blocks of a markdown text (not ```ts fragment, nor blocks of other languages). */
function tsBlocks(markdown: string): Snippet[] {
  const lines = markdown.split('\n');
  const blocks: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)(.*)$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(lines[i]);
    if (open[1] !== 'ts' || open[2].trim() === 'fragment') continue;
    const named = /^\/\/ ([\w.-]+\.ts)\b/.exec(body[0] ?? '');
    blocks.push({ file: named ? named[1] : `snippet-${blocks.length + 1}.ts`, line: start + 1, code: body.join('\n') });
  }
  return blocks;
}

/** TS18002: "The 'files' list in config file … is empty." */
const EMPTY_FILES_LIST = 18002;

function compilerOptions(): ts.CompilerOptions {
  const configPath = path.join(root, 'tsconfig.json');
  const { config, error } = ts.readConfigFile(configPath, (p) => ts.sys.readFile(p));
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const json = config as { compilerOptions: Record<string, unknown> };
  const parsed = ts.parseJsonConfigFileContent(
    {
      compilerOptions: {
        ...json.compilerOptions,
        noEmit: true,
        noUnusedLocals: true,
        paths: { 'nestjs-warren': ['./lib/index.ts'], 'nestjs-warren/amqp': ['./lib/amqp/index.ts'] },
      },
      files: [],
    },
    ts.sys,
    root,
    undefined,
    configPath,
  );
  // The snippets are the root files, given to createProgram: an empty `files` list is what we want here.
  const errors = parsed.errors.filter((d) => d.code !== EMPTY_FILES_LIST);
  if (errors.length > 0) throw new Error(ts.formatDiagnostics(errors, formatHost));
  // Every snippet is a module of its own, even one without imports.
  return { ...parsed.options, moduleDetection: ts.ModuleDetectionKind.Force };
}

const formatHost: ts.FormatDiagnosticsHost = {
  getCanonicalFileName: (f) => f,
  getCurrentDirectory: () => root,
  getNewLine: () => '\n',
};

/** Type-check the snippets together; returns the diagnostics of the snippet files, each named by its README line. */
function typeCheck(snippets: Snippet[]): string[] {
  const options = compilerOptions();
  const virtual = new Map(snippets.map((s) => [path.join(snippetDir, s.file), s]));
  const host = ts.createCompilerHost(options, true);
  const { getSourceFile, fileExists, readFile, directoryExists } = host;
  host.fileExists = (f) => virtual.has(f) || fileExists.call(host, f);
  host.directoryExists = (d) => d === snippetDir || (directoryExists?.call(host, d) ?? ts.sys.directoryExists(d));
  host.readFile = (f) => virtual.get(f)?.code ?? readFile.call(host, f);
  host.getSourceFile = (f, languageVersion, onError, shouldCreate) => {
    const s = virtual.get(f);
    if (s) return ts.createSourceFile(f, s.code, languageVersion, true);
    return getSourceFile.call(host, f, languageVersion, onError, shouldCreate);
  };
  const program = ts.createProgram([...virtual.keys()], options, host);
  const diagnostics = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  for (const f of virtual.keys()) {
    const sf = program.getSourceFile(f)!;
    diagnostics.push(...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf));
  }
  return diagnostics.map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const s = d.file ? virtual.get(d.file.fileName) : undefined;
    if (!d.file || !s || d.start === undefined) return text;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    return `README.md:${s.line + 1 + line} (${s.file}): ${text}`;
  });
}

/** Not from the README: a file with two known mistakes, proving that errors (unused imports too) are found and located. */
const canary: Snippet = {
  file: 'canary.ts',
  line: 0,
  code: [
    "import { AmqpSesion } from 'nestjs-warren';",
    "import { AmqpClient } from 'nestjs-warren';",
    'export const used = AmqpSesion;',
  ].join('\n'),
};

describe('README code blocks', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const snippets = tsBlocks(readme);
  let errors: string[] = [];

  beforeAll(() => {
    errors = typeCheck([...snippets, canary]);
  });

  it('finds the Quick start files and the standalone examples', () => {
    expect(snippets.map((s) => s.file)).toEqual(
      expect.arrayContaining(['app.module.ts', 'main.ts', 'orders.controller.ts', 'orders.service.ts']),
    );
    expect(snippets.filter((s) => s.code.includes("from 'nestjs-warren/amqp'")).length).toBeGreaterThan(0);
  });

  it('names each snippet file once', () => {
    const names = snippets.map((s) => s.file);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  it('every ```ts block type-checks as a file of a project using the package', () => {
    expect(errors.filter((e) => !e.includes('(canary.ts)'))).toEqual([]);
  });

  it('mistakes (a wrong name, an unused import) are reported with its README line and file (the check is live)', () => {
    expect(errors.filter((e) => e.includes('(canary.ts)'))).toEqual([
      expect.stringMatching(/^README\.md:1 \(canary\.ts\): .*no exported member named 'AmqpSesion'/),
      expect.stringMatching(/^README\.md:2 \(canary\.ts\): 'AmqpClient' is declared but its value is never read/),
    ]);
  });
});
