import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { RESULTS_DIR } from '../lib/measure';
import { partMarkdown, prettierMarkdown, readmeEnvironmentMarkdown, readmeMarkdown } from './markdown';
import type { PartReport } from './model';
import { PART_READERS, isReportedPart, readPart } from './parts';
import { partCharts } from './svg';

/** The reports of `parts` (default: every known part) whose bench/results/<part>.json exists in `dir`. */
export function loadReports(
  dir: string = RESULTS_DIR,
  parts: readonly string[] = Object.keys(PART_READERS),
): PartReport[] {
  const reports: PartReport[] = [];
  for (const part of parts) {
    if (!isReportedPart(part)) throw new Error(`bench/report: no report for part '${part}'`);
    const file = path.join(dir, `${part}.json`);
    if (!existsSync(file)) continue;
    reports.push(readPart(part, JSON.parse(readFileSync(file, 'utf8'))));
  }
  return reports;
}

/** A part's files under bench/results/: <part>.md and one <part>-<workload>.svg per chart. */
export async function reportFiles(report: PartReport): Promise<Array<{ file: string; content: string }>> {
  return [
    { file: `${report.part}.md`, content: await prettierMarkdown(partMarkdown(report)) },
    ...partCharts(report).map(({ file, svg }) => ({ file, content: svg })),
  ];
}

/** README.md's generated blocks: "environment" and one per part, Prettier-formatted. */
export async function readmeBlocks(reports: readonly PartReport[]): Promise<Map<string, string>> {
  const blocks = new Map<string, string>();
  if (reports.length > 0) blocks.set('environment', await prettierMarkdown(readmeEnvironmentMarkdown([...reports])));
  for (const report of reports) blocks.set(report.part, await prettierMarkdown(readmeMarkdown(report)));
  return blocks;
}
