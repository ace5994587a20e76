import { clientReport } from './client';
import { codecReport } from './codec';
import type { PartReport } from './model';
import { nestReport } from './nest';
import { recoveryReport } from './recovery';

/**
 * The parts the report knows, in the order bench/run.sh runs them, each with the reader of its
 * bench/results/<part>.json. A part not listed here gets its JSON but no report.
 */
export const PART_READERS = {
  codec: codecReport,
  client: clientReport,
  recovery: recoveryReport,
  nest: nestReport,
} as const satisfies Record<string, (json: never) => PartReport>;

export type ReportedPart = keyof typeof PART_READERS;

export function isReportedPart(part: string): part is ReportedPart {
  return Object.hasOwn(PART_READERS, part);
}

/** The report of `part` from its parsed JSON (shape as the part's run.ts writes it). */
export function readPart(part: ReportedPart, json: unknown): PartReport {
  return (PART_READERS[part] as (json: unknown) => PartReport)(json);
}
