/**
 * What a benchmark report says, before it is markdown or SVG: per part, tables of library rows × workload columns,
 * and who the best peer is in each column. Each part's reader (client.ts, codec.ts, ...) builds one from its JSON.
 */

/** Warren itself; a peer it is compared with; or a reference row (Warren without Nest, opt-in variants), never a peer. */
export type Role = 'warren' | 'peer' | 'reference';

export type Better = 'higher' | 'lower';

/** What a column measures. */
export interface Metric {
  /** e.g. "throughput" or "p50 latency". */
  label: string;
  /** e.g. "msgs/s", "ms", "B/op". */
  unit: string;
  better: Better;
  /** Decimals shown. */
  digits: number;
  /** Column header suffix, for a table whose columns measure different things, e.g. "p50 ms" (default: none). */
  column?: string;
}

/** One scenario of a part, e.g. client "publish". */
export interface Workload {
  /** Used in chart file names: bench/results/<part>-<id>.svg. */
  id: string;
  /** Short column header. */
  label: string;
  /** Full description (chart title, legend under the table). */
  title: string;
}

export interface Column {
  workload: Workload;
  metric: Metric;
}

/** A library's figure in one column: a median, and the lowest and highest sample when it is the median of several. */
export interface Cell {
  value: number;
  min?: number;
  max?: number;
}

export interface Row {
  library: string;
  role: Role;
  /** One per column; undefined when the library has no result there (failed, or not run). */
  cells: Array<Cell | undefined>;
}

export interface Table {
  title: string;
  columns: Column[];
  rows: Row[];
  /** Charts (one per column) are drawn from this table; one such table per part. */
  chart?: boolean;
  /** Shown in README.md as well as in bench/results/<part>.md. */
  readme?: boolean;
}

/** Machine, Node and broker a part ran on, as recorded in its JSON. */
export interface EnvironmentSummary {
  date?: string;
  node?: string;
  platform?: string;
  os?: string;
  cpus?: number;
  cpuModel?: string;
  memoryGiB?: number;
  /** BENCH_SCALE; 1 or absent for a full run. */
  scale?: number;
  /** The codec part's --quick. */
  quick?: boolean;
  broker?: { product?: string; version?: string; platform?: string; error?: string };
  /** host:port of the broker (the JSON keeps the URL without credentials). */
  brokerAddress?: string;
  /** Versions of the peers this part compares, e.g. { amqplib: "2.3.1" }. */
  peers?: Record<string, string>;
  /** Set when some of the above were added to the JSON after the run. */
  recordedAfterRun?: string;
}

export interface PartReport {
  /** bench/<part>/, bench/results/<part>.json. */
  part: string;
  title: string;
  environment: EnvironmentSummary;
  /** How the figures were taken (one or two sentences). */
  method: string;
  tables: Table[];
  /** Extra lines under the tables (reference points, invalid scenarios, ...). */
  notes: string[];
}

export interface BestPeer {
  library: string;
  value: number;
}

/** The best peer value in column `index` (highest or lowest as the metric says), or undefined without any. */
export function bestPeer(table: Table, index: number): BestPeer | undefined {
  const better = table.columns[index].metric.better;
  let best: BestPeer | undefined;
  for (const row of table.rows) {
    const cell = row.cells[index];
    if (row.role !== 'peer' || cell === undefined) continue;
    if (best === undefined || (better === 'higher' ? cell.value > best.value : cell.value < best.value))
      best = { library: row.library, value: cell.value };
  }
  return best;
}

/**
 * `row`'s value over the best peer's in column `index` (below 1 means less of the metric, whichever way is better);
 * undefined when either is missing or the best peer's value is 0.
 */
export function ratioToBestPeer(table: Table, row: Row, index: number): number | undefined {
  const cell = row.cells[index];
  const best = bestPeer(table, index);
  if (cell === undefined || best === undefined || best.value === 0) return undefined;
  return cell.value / best.value;
}

/** The median of `values` (mean of the two middle ones for an even count) with its extremes; undefined when empty. */
export function medianCell(values: readonly number[]): Cell | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const value = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return sorted.length === 1 ? { value } : { value, min: sorted[0], max: sorted[sorted.length - 1] };
}

/** A cell holding one figure, or undefined when the figure is missing or not a finite number. */
export function cell(value: unknown): Cell | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? { value } : undefined;
}

/** Rows that are not peers and get a "… / best peer" line: Warren first, then the references. */
export function comparedRows(table: Table): Row[] {
  return [...table.rows.filter((r) => r.role === 'warren'), ...table.rows.filter((r) => r.role === 'reference')];
}

/** A file-name-safe id: lower case, runs of anything but letters and digits become one "-". */
export function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

/** The table charts are drawn from, and one chart per column of it. */
export function chartColumns(report: PartReport): Array<{ table: Table; index: number; file: string }> {
  const table = report.tables.find((t) => t.chart);
  if (!table) return [];
  return table.columns.map((column, index) => ({ table, index, file: `${report.part}-${column.workload.id}.svg` }));
}
