/**
 * The generated parts of README.md's "Benchmarks" section: each sits between `<!-- bench-report:<name> -->` and
 * `<!-- /bench-report:<name> -->`, and only that text is ever replaced.
 */

export function blockMarkers(name: string): { begin: string; end: string } {
  return { begin: `<!-- bench-report:${name} -->`, end: `<!-- /bench-report:${name} -->` };
}

/** The text between a block's markers (without the blank lines around it), or undefined when the block is absent. */
export function readBlock(readme: string, name: string): string | undefined {
  const { begin, end } = blockMarkers(name);
  const from = readme.indexOf(begin);
  const to = readme.indexOf(end, from);
  if (from < 0 || to < 0) return undefined;
  return `${readme.slice(from + begin.length, to).trim()}\n`;
}

/** `readme` with every block in `blocks` replaced by its new content; throws naming a block whose markers are missing. */
export function replaceBlocks(readme: string, blocks: ReadonlyMap<string, string>): string {
  let out = readme;
  for (const [name, content] of blocks) {
    const { begin, end } = blockMarkers(name);
    const from = out.indexOf(begin);
    const to = out.indexOf(end, from);
    if (from < 0 || to < 0) throw new Error(`README.md has no ${begin} … ${end} block`);
    out = `${out.slice(0, from + begin.length)}\n\n${content.trim()}\n\n${out.slice(to)}`;
  }
  return out;
}
