import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The guides in docs/*.md hold no code of their own: every ```ts block is preceded by
 * `<!-- example: path/to/file.ts#region -->` (relative to the guide) and must be, character for character, that
 * region of the file: one of docs/examples/ (or, for the peers' side of a migration guide, bench/migration/, compiled
 * against the peers in bench/node_modules), which `npm run lint`'s tsc type-checks. And every relative link between
 * the guides (and to the README) must land on a file and, with a #fragment, on one of its headings.
 */

const root = resolve(__dirname, '../..');
const docs = join(root, 'docs');
const guides = readdirSync(docs)
  .filter((f) => f.endsWith('.md'))
  .map((f) => join(docs, f));

const EXAMPLE_MARK = /^<!-- example: ([\w./-]+\.ts)#([\w-]+) -->$/;
const FENCE = /^```(\w*)\s*$/;

interface CodeBlock {
  lang: string;
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
  /** The example mark on the last non-blank line before the fence, if any. */
  mark: { file: string; region: string } | null;
}

function codeBlocks(markdown: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    let before = start - 1;
    while (before >= 0 && lines[before].trim() === '') before--;
    const previous = before >= 0 ? EXAMPLE_MARK.exec(lines[before]) : null;
    blocks.push({
      lang: open[1],
      line: start + 1,
      code: body.join('\n'),
      mark: previous ? { file: previous[1], region: previous[2] } : null,
    });
  }
  return blocks;
}

/** The lines between `// #region name` and its `// #endregion`, without nested region markers, dedented. */
function region(file: string, name: string): string | undefined {
  const lines = readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((l) => l.trim() === `// #region ${name}`);
  if (start < 0) return undefined;
  const body: string[] = [];
  let depth = 0;
  for (const line of lines.slice(start + 1)) {
    const t = line.trim();
    if (t.startsWith('// #region ')) {
      depth++;
      continue;
    }
    if (t === '// #endregion' || t.startsWith('// #endregion ')) {
      if (depth === 0) break;
      depth--;
      continue;
    }
    body.push(line);
  }
  const indent = Math.min(...body.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  return body.map((l) => l.slice(indent)).join('\n');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let inCode = false;
  for (const line of markdown.split('\n')) {
    if (FENCE.test(line)) inCode = !inCode;
    const heading = inCode ? null : /^#{1,6} (.+)$/.exec(line);
    if (!heading) continue;
    const base = heading[1]
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Links outside code blocks and inline code: `[text](target)`. */
function links(markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```$/gm, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);
}

describe('docs guides', () => {
  it('exist', () => {
    expect(guides.length).toBeGreaterThan(0);
  });

  describe.each(guides.map((g) => [relative(root, g), g]))('%s', (_name, guide) => {
    const markdown = readFileSync(guide, 'utf8');

    it('shows only TypeScript that is a region of a type-checked example, verbatim', () => {
      const problems: string[] = [];
      for (const block of codeBlocks(markdown)) {
        if (block.lang !== 'ts' && block.lang !== 'typescript') continue;
        const where = `line ${block.line}`;
        if (!block.mark) {
          problems.push(`${where}: a ts block without <!-- example: path/to/file.ts#region --> above it`);
          continue;
        }
        const file = resolve(dirname(guide), block.mark.file);
        const expected = existsSync(file) ? region(file, block.mark.region) : undefined;
        if (expected === undefined) problems.push(`${where}: no region '${block.mark.region}' in ${block.mark.file}`);
        else if (expected !== block.code)
          problems.push(`${where}: differs from ${block.mark.file}#${block.mark.region}:\n${expected}`);
      }
      expect(problems).toEqual([]);
    });

    it('links only to files and headings that exist', () => {
      const broken: string[] = [];
      for (const target of links(markdown)) {
        if (/^[a-z]+:/i.test(target)) continue;
        const [path, fragment] = target.split('#');
        const file = path === '' ? guide : resolve(dirname(guide), path);
        if (!existsSync(file)) {
          broken.push(`${target}: no such file`);
          continue;
        }
        if (fragment !== undefined && file.endsWith('.md') && !anchors(readFileSync(file, 'utf8')).has(fragment))
          broken.push(`${target}: no such heading`);
      }
      expect(broken).toEqual([]);
    });
  });
});
