import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export const RESULTS_DIR = path.resolve(__dirname, '..', 'results');

/** BENCH_SCALE (default 1) scales message counts for smoke runs; never below 1 message. */
export function scale(n: number): number {
  const factor = Number(process.env.BENCH_SCALE ?? '1');
  if (!Number.isFinite(factor) || factor <= 0) throw new Error(`BENCH_SCALE must be a positive number`);
  return Math.max(1, Math.round(n * factor));
}

export interface Measurement {
  messages: number;
  wallMs: number;
  msgsPerSec: number;
  /** Client CPU (user + system) per 1 000 messages, in ms. */
  cpuMsPer1k: number;
  cpuMs: number;
  peakRssMiB: number;
}

/** Samples process RSS every `intervalMs` (unref'd timer) and keeps the peak. */
export class RssSampler {
  private peak = process.memoryUsage.rss();
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 50) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): number {
    const rss = process.memoryUsage.rss();
    if (rss > this.peak) this.peak = rss;
    return this.peak;
  }

  /** Final sample, stop the timer, return the peak in bytes. */
  stop(): number {
    clearInterval(this.timer);
    return this.sample();
  }
}

/**
 * Runs `fn` (which handles `messages` messages) and measures wall time, throughput, CPU per 1 000 messages and the
 * process's peak RSS (from `sampler`, started earlier so it also covers setup, or a new one).
 */
export async function measure(messages: number, fn: () => Promise<void>, sampler?: RssSampler): Promise<Measurement> {
  const rss = sampler ?? new RssSampler();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const peak = rss.stop();
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return {
    messages,
    wallMs: round(wallMs, 1),
    msgsPerSec: Math.round(messages / (wallMs / 1000)),
    cpuMsPer1k: round((cpuMs / messages) * 1000, 2),
    cpuMs: round(cpuMs, 1),
    peakRssMiB: round(peak / (1024 * 1024), 1),
  };
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export type Cell = string | number | undefined | null;
export type Row = Record<string, Cell>;

function formatCell(value: Cell): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'number') return Number.isInteger(value) ? value.toLocaleString('en-US') : String(value);
  return value.replace(/\|/g, '\\|').replace(/\s+/g, ' ');
}

/** Formats rows as an aligned markdown table (numbers right-aligned); columns from the first row's keys onwards. */
export function formatTable(title: string, rows: Row[]): string {
  const columns: string[] = [];
  for (const row of rows) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  if (columns.length === 0) return `### ${title}\n\n(no results)\n`;
  const numeric = columns.map((c) => rows.some((r) => typeof r[c] === 'number'));
  const cells = rows.map((row) => columns.map((c) => formatCell(row[c])));
  const widths = columns.map((c, i) => Math.max(c.length, 3, ...cells.map((r) => r[i].length)));
  const line = (values: string[]): string =>
    `| ${values.map((v, i) => (numeric[i] ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (numeric[i] ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [`### ${title}`, '', line(columns), rule, ...cells.map(line), ''].join('\n');
}

export function printTable(title: string, rows: Row[]): void {
  process.stdout.write(`\n${formatTable(title, rows)}\n`);
}

/** Writes bench/results/<name>.json (pretty) and returns its path. */
export function writeResults(name: string, data: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}
