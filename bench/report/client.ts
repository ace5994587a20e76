import { type ResultsFile, readEnvironment } from './environment';
import { type Metric, type PartReport, type Table, type Workload, cell } from './model';
import { type RunRecord, displayName, failureNotes, librariesOf, medianRunOf } from './runs';

/** bench/results/client.json, as bench/client/run.ts writes it (only what the report reads). */
interface ClientResults extends ResultsFile {
  scenarios: Array<{ id: string; title: string }>;
  runs: ClientRun[];
}

interface ClientRun extends RunRecord {
  msgsPerSec?: number;
  cpuMsPer1k?: number;
  peakRssMiB?: number;
}

const LABELS: Record<string, string> = {
  publish: 'publish, no confirms',
  confirm: 'publish, confirms',
  consume: 'consume + ack',
};
const PEERS = ['amqplib', 'rabbitmq-client', '@cloudamqp/amqp-client'];

const THROUGHPUT: Metric = { label: 'throughput', unit: 'msgs/s', better: 'higher', digits: 0 };
const CPU: Metric = { label: 'client CPU per 1,000 messages', unit: 'ms', better: 'lower', digits: 2 };
const RSS: Metric = { label: 'peak RSS', unit: 'MiB', better: 'lower', digits: 1 };

/** The client part: each AMQP client publishing, publishing with confirms and consuming on the same broker. */
export function clientReport(json: ClientResults): PartReport {
  const workloads: Workload[] = json.scenarios.map((s) => ({ id: s.id, label: LABELS[s.id] ?? s.id, title: s.title }));
  const libs = librariesOf(json.runs);
  const table = (title: string, metric: Metric, figure: (run: ClientRun) => number | undefined): Table => ({
    title,
    columns: workloads.map((workload) => ({ workload, metric })),
    rows: libs.map((lib) => ({
      library: displayName(json.runs, lib),
      role: lib === 'warren' ? 'warren' : 'peer',
      cells: workloads.map((w) => {
        const run = medianRunOf(json.runs, w.id, lib, (r) => r.msgsPerSec);
        return run ? cell(figure(run)) : undefined;
      }),
    })),
    readme: true,
  });
  const repeat = json.config?.repeat ?? 1;
  return {
    part: 'client',
    title: 'AMQP clients',
    environment: readEnvironment(json, PEERS),
    method:
      `Each library in its own process on a fresh queue, ${repeat} run(s) per library and workload; ` +
      `the median run by msgs/s is shown, and its CPU and RSS figures are that same run's. ` +
      `CPU is the client process's user + system time.`,
    tables: [
      { ...table('Throughput, msgs/s (higher is better)', THROUGHPUT, (r) => r.msgsPerSec), chart: true },
      table('Client CPU per 1,000 messages, ms (lower is better)', CPU, (r) => r.cpuMsPer1k),
      table('Peak RSS of the client process, MiB (lower is better)', RSS, (r) => r.peakRssMiB),
    ],
    notes: failureNotes(json.runs, workloads, libs),
  };
}
