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

export interface GeneratedReport {
  /** Under bench/results/: <part>.md and one <part>-<workload>.svg per chart, per part. */
  files: Array<{ file: string; content: string }>;
  /** README.md's generated blocks: "environment" and one per part. */
  readmeBlocks: Map<string, string>;
}

/** Everything the report writes for `reports`, markdown formatted as Prettier would. */
export function generate(reports: readonly PartReport[]): GeneratedReport {
  const texts = [
    ...reports.map(partMarkdown),
    ...reports.map(readmeMarkdown),
    ...(reports.length > 0 ? [readmeEnvironmentMarkdown([...reports])] : []),
  ];
  const formatted = prettierMarkdown(texts);
  const files: GeneratedReport['files'] = [];
  const readmeBlocks = new Map<string, string>();
  if (reports.length > 0) readmeBlocks.set('environment', formatted[2 * reports.length]);
  reports.forEach((report, i) => {
    files.push({ file: `${report.part}.md`, content: formatted[i] });
    files.push(...partCharts(report).map(({ file, svg }) => ({ file, content: svg })));
    readmeBlocks.set(report.part, formatted[reports.length + i]);
  });
  return { files, readmeBlocks };
}
