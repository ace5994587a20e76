import { TARGET_PEERS } from '../nest/protocol';
import { type ResultsFile, readEnvironment } from './environment';
import {
  type Cell,
  type Column,
  type Metric,
  type PartReport,
  type Role,
  type Table,
  type Workload,
  cell,
} from './model';
import { type RunRecord, displayName, failureNotes, librariesOf, medianRunOf } from './runs';

/** bench/results/nest.json, as bench/nest/run.ts writes it (only what the report reads). */
interface NestResults extends ResultsFile {
  config?: { url?: string; repeat?: number; libraries?: string[] };
  scenarios: Array<{ id: string; title: string; messages: number }>;
  runs: NestRun[];
}

interface NestRun extends RunRecord {
  perSec?: number;
  cpuMsPer1k?: number;
  peakRssMiB?: number;
  latency?: { p50Ms?: number; p99Ms?: number };
}

const LABELS: Record<string, string> = {
  'rpc-seq': 'sequential RPC',
  'rpc-conc': 'RPC, 100 in flight',
  events: 'events',
};
const PEERS = ['@nestjs/microservices', '@golevelup/nestjs-rabbitmq', '@nestjs/core'];

const P99: Metric = { label: 'p99 latency', unit: 'ms', better: 'lower', digits: 3 };
/** P50, CALLS and EVENTS share one table, so their column headers name them. */
const P50: Metric = { label: 'p50 latency', unit: 'ms', better: 'lower', digits: 3, column: 'p50 ms' };
const CALLS: Metric = { label: 'throughput', unit: 'calls/s', better: 'higher', digits: 0, column: 'calls/s' };
const EVENTS: Metric = { label: 'throughput', unit: 'events/s', better: 'higher', digits: 0, column: 'events/s' };
const CPU: Metric = { label: 'process CPU per 1,000 calls or events', unit: 'ms', better: 'lower', digits: 2 };
const RSS: Metric = { label: 'peak RSS', unit: 'MiB', better: 'lower', digits: 1 };

/** Warren; the peers of the targets (same delivery semantics); anything else (the no-Nest floor, opt-in variants). */
function roleOf(lib: string): Role {
  if (lib === 'warren') return 'warren';
  return (TARGET_PEERS as readonly string[]).includes(lib) ? 'peer' : 'reference';
}

/** The Nest part: Warren's transport against Nest's RMQ transport and @golevelup, RPC and events, on Nest 11. */
export function nestReport(json: NestResults): PartReport {
  const workloads = new Map<string, Workload>(
    json.scenarios.map((s) => [s.id, { id: s.id, label: LABELS[s.id] ?? s.id, title: s.title }]),
  );
  const libs = json.config?.libraries ?? librariesOf(json.runs);
  /** Columns: [scenario, metric, figure] for the scenarios the JSON holds. */
  const table = (
    title: string,
    columns: Array<[scenario: string, metric: Metric, figure: (run: NestRun) => number | undefined]>,
  ): Table => {
    const present = columns.filter(([scenario]) => workloads.has(scenario));
    return {
      title,
      columns: present.map(([scenario, metric]): Column => ({ workload: workloads.get(scenario) as Workload, metric })),
      rows: libs.map((lib) => ({
        library: displayName(json.runs, lib),
        role: roleOf(lib),
        cells: present.map(([scenario, , figure]): Cell | undefined => {
          const run = medianRunOf(json.runs, scenario, lib, (r) => r.perSec);
          return run ? cell(figure(run)) : undefined;
        }),
      })),
    };
  };
  const repeat = json.config?.repeat ?? 1;
  return {
    part: 'nest',
    title: 'NestJS transports',
    environment: readEnvironment(json, PEERS),
    method:
      `Server and client in one process per library, workload and run, on Nest 11; each library first runs as many ` +
      `unmeasured calls or events as it is measured on. ${repeat} run(s) each; the median run by calls/s or ` +
      `events/s is shown, and its latency, CPU and RSS figures are that same run's. "no Nest" rows are Warren's own ` +
      `client doing the same traffic without Nest: a reference, not a peer.`,
    tables: [
      {
        ...table('Sequential RPC p50 latency (lower is better); RPC and event throughput (higher is better)', [
          ['rpc-seq', P50, (r) => r.latency?.p50Ms],
          ['rpc-conc', CALLS, (r) => r.perSec],
          ['events', EVENTS, (r) => r.perSec],
        ]),
        chart: true,
        readme: true,
      },
      {
        ...table('p99 latency, ms (lower is better)', [
          ['rpc-seq', P99, (r) => r.latency?.p99Ms],
          ['rpc-conc', P99, (r) => r.latency?.p99Ms],
        ]),
        readme: true,
      },
      {
        ...table('Process CPU (server + client) per 1,000 calls or events, ms (lower is better)', [
          ['rpc-seq', CPU, (r) => r.cpuMsPer1k],
          ['rpc-conc', CPU, (r) => r.cpuMsPer1k],
          ['events', CPU, (r) => r.cpuMsPer1k],
        ]),
        readme: true,
      },
      table('Peak RSS of the process, MiB (lower is better)', [
        ['rpc-seq', RSS, (r) => r.peakRssMiB],
        ['rpc-conc', RSS, (r) => r.peakRssMiB],
        ['events', RSS, (r) => r.peakRssMiB],
      ]),
    ],
    notes: failureNotes(json.runs, [...workloads.values()], libs),
  };
}
