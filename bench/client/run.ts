import { runWorkerProcess } from '../lib/worker-process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as path from 'node:path';
import * as amqp from 'amqplib';
import { BUILD_DIR, REPO_ROOT, buildForWorkers } from '../lib/build';
import { benchEnvironment } from '../lib/environment';
import { type Row, formatTable, scale, writeResults } from '../lib/measure';
import { medianRun } from '../lib/median';
import { waitForCount } from './types';
import { LIBRARIES, type Library, RESULT_PREFIX, type Scenario, type WorkerResult, type WorkerTask } from './worker';

/**
 * Client benchmark: every scenario for every library, each run in its own process on a fresh queue.
 *
 * Env: AMQP_URL, BENCH_SCALE (message counts), BENCH_LIBS (comma list, default all), BENCH_SCENARIOS (comma list),
 * BENCH_REPEAT (runs per library and scenario, default 1; the median by throughput is reported),
 * BENCH_PUBLISH_WINDOW (unsettled publish promises for promise-based clients without confirms, default 1),
 * BENCH_TIMEOUT_MS (per worker, default 300 000).
 */

const URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const BODY_SIZE = 256;
const IN_FLIGHT = 1000;
const PREFETCH = 1000;
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 300_000);
const DISPLAY_NAMES: Record<Library, string> = {
  amqplib: 'amqplib',
  'rabbitmq-client': 'rabbitmq-client',
  cloudamqp: '@cloudamqp/amqp-client',
  warren: 'warren',
};

interface ScenarioSpec {
  id: Scenario;
  title: string;
  messages: number;
}

const SCENARIOS: ScenarioSpec[] = [
  {
    id: 'publish',
    title: `Publish ${scale(200_000).toLocaleString('en-US')} × ${BODY_SIZE} B, no confirms (until the queue holds them all)`,
    messages: scale(200_000),
  },
  {
    id: 'confirm',
    title: `Publish ${scale(100_000).toLocaleString('en-US')} × ${BODY_SIZE} B with confirms, ≤ ${IN_FLIGHT} in flight`,
    messages: scale(100_000),
  },
  {
    id: 'consume',
    title: `Consume ${scale(200_000).toLocaleString('en-US')} × ${BODY_SIZE} B, prefetch ${PREFETCH}, one ack per message`,
    messages: scale(200_000),
  },
];

function list<T extends string>(env: string | undefined, all: readonly T[]): T[] {
  if (!env) return [...all];
  const wanted = env.split(',').map((s) => s.trim());
  return all.filter((x) => wanted.includes(x));
}

interface RunRecord extends WorkerResult {
  scenario: Scenario;
  lib: Library;
  round: number;
  queue: string;
  note?: string;
}

/** The harness's own amqplib connection: declares, pre-fills, checks and deletes the queues. */
class Harness {
  private constructor(
    private readonly model: amqp.ChannelModel,
    private readonly ch: amqp.Channel,
  ) {}

  static async open(): Promise<Harness> {
    const model = await amqp.connect(URL, { clientProperties: { connection_name: 'warren-bench-harness' } });
    const ch = await model.createChannel();
    return new Harness(model, ch);
  }

  async freshQueue(prefix: string): Promise<string> {
    const queue = `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`;
    await this.ch.assertQueue(queue, { durable: false, autoDelete: false });
    return queue;
  }

  async fill(queue: string, n: number): Promise<void> {
    const body = randomBytes(BODY_SIZE);
    for (let i = 0; i < n; i++) {
      if (!this.ch.publish('', queue, body)) await once(this.ch, 'drain');
    }
    await waitForCount(() => this.count(queue), n);
  }

  async count(queue: string): Promise<number> {
    return (await this.ch.checkQueue(queue)).messageCount;
  }

  async deleteQueue(queue: string): Promise<void> {
    await this.ch.deleteQueue(queue);
  }

  async close(): Promise<void> {
    await this.model.close();
  }
}

function runWorker(task: WorkerTask): Promise<WorkerResult> {
  const script = path.join(BUILD_DIR, 'bench', 'client', 'worker.js');
  return runWorkerProcess<WorkerResult>(script, task, TIMEOUT_MS, RESULT_PREFIX);
}

async function runOne(harness: Harness, spec: ScenarioSpec, lib: Library, round: number): Promise<RunRecord> {
  const queue = await harness.freshQueue(`bench-client-${spec.id}-${lib}`);
  const record: RunRecord = { scenario: spec.id, lib, round, queue };
  try {
    if (spec.id === 'consume') await harness.fill(queue, spec.messages);
    const result = await runWorker({
      lib,
      scenario: spec.id,
      url: URL,
      queue,
      messages: spec.messages,
      bodySize: BODY_SIZE,
      inFlight: IN_FLIGHT,
      prefetch: PREFETCH,
    });
    Object.assign(record, result);
    if (!result.error) {
      // Sanity check outside the measurement: the broker saw what the client claims.
      const left = await harness.count(queue);
      const expected = spec.id === 'consume' ? 0 : spec.messages;
      if (left !== expected) record.note = `queue holds ${left}, expected ${expected}`;
    }
  } catch (err) {
    record.error = `harness: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    await harness.deleteQueue(queue).catch(() => undefined);
  }
  return record;
}

function toRow(record: RunRecord, runs: number): Row {
  const row: Row = {
    library: DISPLAY_NAMES[record.lib],
    'msgs/s': record.msgsPerSec,
    'CPU ms/1k msgs': record.cpuMsPer1k,
    'peak RSS MiB': record.peakRssMiB,
    'wall s': record.wallMs === undefined ? undefined : Math.round(record.wallMs / 10) / 100,
  };
  if (runs > 1) row.runs = runs;
  row.note = record.error ?? record.note ?? '';
  return row;
}

async function main(): Promise<void> {
  const libs = list(process.env.BENCH_LIBS, LIBRARIES);
  const scenarios = SCENARIOS.filter((s) =>
    list(process.env.BENCH_SCENARIOS, ['publish', 'confirm', 'consume']).includes(s.id),
  );
  const repeat = Math.max(1, Number(process.env.BENCH_REPEAT ?? '1') || 1);

  const build = buildForWorkers(['bench/client', 'bench/lib', 'lib']);
  for (const [file, error] of Object.entries(build.failures))
    process.stderr.write(`bench: swc could not compile ${file}: ${error}\n`);

  const harness = await Harness.open();
  const records: RunRecord[] = [];
  const tables: string[] = [];
  try {
    for (const [si, spec] of SCENARIOS.entries()) {
      if (!scenarios.includes(spec)) continue;
      const byLib = new Map<Library, RunRecord[]>();
      for (let round = 0; round < repeat; round++) {
        // Rotate the starting library per scenario and round so no library always runs first (cold broker) or last.
        const offset = (si + round) % libs.length;
        const order = [...libs.slice(offset), ...libs.slice(0, offset)];
        for (const lib of order) {
          process.stderr.write(`bench client: ${spec.id} ${lib} (round ${round + 1}/${repeat}) ... `);
          const record = await runOne(harness, spec, lib, round);
          process.stderr.write(record.error ? `error: ${record.error}\n` : `${record.msgsPerSec} msgs/s\n`);
          records.push(record);
          byLib.set(lib, [...(byLib.get(lib) ?? []), record]);
        }
      }
      const rows = libs.flatMap((lib) => {
        const record = medianRun(byLib.get(lib) ?? [], (r) => r.msgsPerSec);
        return record ? [toRow(record, repeat)] : [];
      });
      const table = formatTable(spec.title, rows);
      tables.push(table);
      process.stdout.write(`\n${table}\n`);
    }
  } finally {
    await harness.close();
  }
  const file = writeResults('client', {
    environment: await benchEnvironment(URL),
    config: {
      url: URL.replace(/\/\/[^@]*@/, '//'),
      bodySize: BODY_SIZE,
      inFlight: IN_FLIGHT,
      prefetch: PREFETCH,
      repeat,
    },
    scenarios: scenarios.map((s) => ({ id: s.id, title: s.title, messages: s.messages })),
    runs: records,
    tables,
  });
  process.stdout.write(`results: ${path.relative(REPO_ROOT, file)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench client failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
