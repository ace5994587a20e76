import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './lib/build';
import { RESULTS_DIR } from './lib/measure';
import { generate, loadReports } from './report/generate';
import { replaceBlocks } from './report/readme';

/**
 * Benchmark report: from each bench/results/<part>.json, writes bench/results/<part>.md (tables of medians with
 * ratios to the best peer, the machine, Node and broker) and bench/results/<part>-<workload>.svg (a bar chart per
 * workload). bench/run.sh runs it after the parts; it also runs alone on the committed JSON:
 *
 *   node -r @swc-node/register bench/report.ts [part ...] [--readme]
 *
 * --readme also rewrites the generated blocks of README.md's Benchmarks section from the same JSON.
 */
function main(): void {
  const args = process.argv.slice(2);
  const parts = args.filter((a) => !a.startsWith('--'));
  const unknown = args.filter((a) => a.startsWith('--') && a !== '--readme');
  if (unknown.length > 0) throw new Error(`unknown option(s): ${unknown.join(' ')} (known: --readme)`);
  const reports = loadReports(RESULTS_DIR, parts.length > 0 ? parts : undefined);
  if (reports.length === 0) {
    process.stderr.write(`bench report: no results in ${path.relative(REPO_ROOT, RESULTS_DIR)}\n`);
    return;
  }
  const { files, readmeBlocks } = generate(reports);
  for (const { file, content } of files) writeFileSync(path.join(RESULTS_DIR, file), content);
  for (const report of reports) {
    const charts = files.filter((f) => f.file.startsWith(`${report.part}-`) && f.file.endsWith('.svg')).length;
    process.stdout.write(`report: bench/results/${report.part}.md and ${charts} chart(s)\n`);
  }
  if (args.includes('--readme')) {
    const readmePath = path.join(REPO_ROOT, 'README.md');
    const readme = readFileSync(readmePath, 'utf8');
    const updated = replaceBlocks(readme, readmeBlocks);
    if (updated !== readme) writeFileSync(readmePath, updated);
    process.stdout.write(`report: README.md ${updated === readme ? 'already up to date' : 'updated'}\n`);
  }
}

try {
  main();
} catch (err) {
  process.stderr.write(`bench report failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
