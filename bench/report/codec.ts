import { type ResultsFile, readEnvironment } from './environment';
import { type Metric, type PartReport, type Row, type Table, type Workload, cell, slug } from './model';

/** bench/results/codec.json, as bench/codec/run.ts writes it (only what the report reads). */
interface CodecResults extends ResultsFile {
  amqplib?: string;
  quick?: boolean;
  settings?: { ROUNDS?: number; ROUND_MS?: number; ALLOC_SAMPLES?: number; bodyBytes?: number };
  rows: Array<{
    group: string;
    case: string;
    library: string;
    variant: string | null;
    opsPerSec?: number;
    wallOpsPerSec?: number;
    bytesPerOp?: number;
  }>;
}

type CodecRow = CodecResults['rows'][number];

const OPS: Metric = { label: 'ops per CPU second', unit: 'ops/s', better: 'higher', digits: 0 };
const WALL_OPS: Metric = { label: 'ops per wall-clock second', unit: 'ops/s', better: 'higher', digits: 0 };
const BYTES: Metric = { label: 'allocated per op', unit: 'B/op', better: 'lower', digits: 0 };

/**
 * The codec part: Warren's encoder and parser against amqplib's, no broker. A case Warren reports in several variants
 * (headers read or not) is one workload per variant, each against amqplib's single figure for that case.
 */
export function codecReport(json: CodecResults): PartReport {
  const cases = [...new Set(json.rows.map((r) => `${r.group}\u0000${r.case}`))];
  const workloads: Array<{ workload: Workload; rows: CodecRow[] }> = [];
  for (const key of cases) {
    const [group, name] = key.split('\u0000');
    const inCase = json.rows.filter((r) => r.group === group && r.case === name);
    const variants = [...new Set(inCase.filter((r) => r.library === 'warren').map((r) => r.variant))];
    for (const variant of variants.length > 0 ? variants : [null]) {
      const full = `${group} ${name}${variant ? `, ${variant}` : ''}`;
      // "parse deliver, 5 headers, headers read" → "parse, 5 headers, read": the group already names the method.
      const label = `${group}, ${name.replace(/^[^,]*, /, '')}${variant ? `, ${variant.replace(/^headers /, '')}` : ''}`;
      workloads.push({
        workload: { id: slug(full), label, title: `${full} (${json.settings?.bodyBytes ?? 256} B body)` },
        // Warren's row of this variant; every other library's row of the case, whatever its variant.
        rows: inCase.filter((r) => r.library !== 'warren' || r.variant === variant),
      });
    }
  }
  const libs = [...new Set(json.rows.map((r) => r.library))].sort(
    (a, b) => Number(b === 'warren') - Number(a === 'warren'),
  );
  const table = (title: string, metric: Metric, figure: (r: CodecRow) => number | undefined): Table => ({
    title,
    columns: workloads.map(({ workload }) => ({ workload, metric })),
    rows: libs.map((lib): Row => ({
      library: lib,
      role: lib === 'warren' ? 'warren' : 'peer',
      cells: workloads.map(({ rows }) => {
        const row = rows.find((r) => r.library === lib);
        return row ? cell(figure(row)) : undefined;
      }),
    })),
  });
  const s = json.settings ?? {};
  return {
    part: 'codec',
    title: 'Codec',
    environment: {
      ...readEnvironment(json, []),
      quick: json.quick,
      peers: json.amqplib ? { amqplib: json.amqplib } : undefined,
    },
    method:
      `No broker: encode = basic.publish + content header + body frame as one socket-ready buffer; parse = one ` +
      `chunk (deliver + header + body) to fields, properties and body. ops/s: the median of ${s.ROUNDS ?? '?'} ` +
      `interleaved rounds of ${s.ROUND_MS ?? '?'} ms, counted per second of process CPU time; B/op: the median of ` +
      `${s.ALLOC_SAMPLES ?? '?'} samples taken between GCs.`,
    tables: [
      { ...table('Ops per CPU second, ops/s (higher is better)', OPS, (r) => r.opsPerSec), chart: true, readme: true },
      { ...table('Allocated bytes per op, B/op (lower is better)', BYTES, (r) => r.bytesPerOp), readme: true },
      table('Ops per wall-clock second, ops/s (higher is better)', WALL_OPS, (r) => r.wallOpsPerSec),
    ],
    notes: [],
  };
}
