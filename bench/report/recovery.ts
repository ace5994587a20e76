import { type ResultsFile, readEnvironment } from './environment';
import { type Cell, type Metric, type PartReport, type Table, type Workload, cell, medianCell } from './model';
import { formatDate } from './format';

/** bench/results/recovery.json, as bench/recovery/run.ts writes it (only what the report reads). */
interface RecoveryResults extends ResultsFile {
  config?: { url?: string; messages?: number; inFlight?: number; heartbeatSeconds?: number };
  scenarios: Array<{
    id: string;
    title: string;
    date?: string;
    refNote?: string;
    invalid?: string[];
    carriedOver?: boolean;
    results: RecoveryResult[];
  }>;
}

interface RecoveryResult {
  lib: string;
  library?: string;
  rejected?: number;
  lost?: number;
  duplicated?: number;
  /** Error text → how many publishes were rejected with it. */
  rejections?: Record<string, number>;
  faults?: Array<{ label?: string; publishResumeMs?: number; consumerResumeMs?: number }>;
}

const LABELS: Record<string, string> = {
  kill: 'close_connection ×3',
  restart: 'broker app down 3 s',
  stall: 'traffic stalled 6 s',
  cut: 'sockets cut ×2',
  baseline: 'no fault',
};
const PEERS = ['amqp-connection-manager', 'amqplib', 'rabbitmq-client'];

const RESUME: Metric = { label: 'publish resume after the fault', unit: 'ms', better: 'lower', digits: 0 };
const CONSUMER_RESUME: Metric = { label: 'consumer resume after the fault', unit: 'ms', better: 'lower', digits: 0 };
const COUNT = (label: string): Metric => ({ label, unit: 'messages', better: 'lower', digits: 0 });

/** The median over a scenario's faults of one resume figure (with its range when there were several faults). */
function resume(result: RecoveryResult, key: 'publishResumeMs' | 'consumerResumeMs'): Cell | undefined {
  const values = (result.faults ?? []).map((f) => f[key]).filter((v): v is number => typeof v === 'number');
  return medianCell(values);
}

/** The recovery part: confirmed publishing and consuming through injected faults, every library at once. */
export function recoveryReport(json: RecoveryResults): PartReport {
  const scenarios = json.scenarios;
  const workloads: Workload[] = scenarios.map((s) => ({ id: s.id, label: LABELS[s.id] ?? s.id, title: s.title }));
  const libs: Array<{ lib: string; library: string }> = [];
  for (const s of scenarios)
    for (const r of s.results)
      if (!libs.some((l) => l.lib === r.lib)) libs.push({ lib: r.lib, library: r.library ?? r.lib });
  libs.sort((a, b) => Number(b.lib === 'warren') - Number(a.lib === 'warren'));
  const table = (title: string, metric: Metric, figure: (r: RecoveryResult) => Cell | undefined): Table => ({
    title,
    columns: workloads.map((workload) => ({ workload, metric })),
    rows: libs.map(({ lib, library }) => ({
      library,
      role: lib === 'warren' ? 'warren' : 'peer',
      cells: scenarios.map((s) => {
        const result = s.results.find((r) => r.lib === lib);
        return result ? figure(result) : undefined;
      }),
    })),
  });
  const c = json.config ?? {};
  const label = (id: string): string => LABELS[id] ?? id;
  const references = scenarios.filter((s) => s.refNote).map((s) => `- ${label(s.id)}: ${s.refNote}.`);
  const rejections = scenarios.flatMap((s) =>
    s.results.flatMap((r) =>
      Object.entries(r.rejections ?? {}).map(
        ([error, count]) => `- ${label(s.id)}, ${r.library ?? r.lib}: ×${count.toLocaleString('en-US')} ${error}`,
      ),
    ),
  );
  const notes = [
    ...(references.length > 0 ? [`Where resume times count from:\n\n${references.join('\n')}`] : []),
    ...(rejections.length > 0
      ? [`The errors rejected publishes were handed back with:\n\n${rejections.join('\n')}`]
      : []),
    ...scenarios
      .filter((s) => (s.invalid ?? []).length > 0)
      .map((s) => `**${label(s.id)} is NOT VALID**: ${(s.invalid ?? []).join('; ')}.`),
    ...scenarios
      .filter((s) => s.carriedOver)
      .map((s) => `${label(s.id)}: carried over from the run of ${formatDate(s.date)}.`),
  ];
  return {
    part: 'recovery',
    title: 'Recovery',
    environment: readEnvironment(json, PEERS),
    method:
      `Every library at once, each in its own process: ${c.messages?.toLocaleString('en-US') ?? '?'} persistent ` +
      `publishes with confirms ` +
      `(≤ ${c.inFlight ?? '?'} in flight) to its own durable queue, consumed with manual acks, heartbeat ` +
      `${c.heartbeatSeconds ?? '?'} s, while the fault is injected. One run per fault scenario; resume times are ` +
      `the median over the scenario's faults (lowest–highest in brackets). Lost = confirmed to the publisher but ` +
      `never consumed; rejected = publishes handed back to the caller as errors.`,
    tables: [
      {
        ...table('Publish resume after the fault, ms (lower is better)', RESUME, (r) => resume(r, 'publishResumeMs')),
        chart: true,
        readme: true,
      },
      {
        ...table('Publishes rejected to the caller (lower is better)', COUNT('rejected publishes'), (r) =>
          cell(r.rejected),
        ),
        readme: true,
      },
      {
        ...table('Confirmed messages lost (lower is better)', COUNT('lost messages'), (r) => cell(r.lost)),
        readme: true,
      },
      {
        ...table('Duplicate deliveries (lower is better)', COUNT('duplicate deliveries'), (r) => cell(r.duplicated)),
        readme: true,
      },
      table('Consumer resume after the fault, ms (lower is better)', CONSUMER_RESUME, (r) =>
        resume(r, 'consumerResumeMs'),
      ),
    ],
    notes,
  };
}
