import { execFileSync } from 'node:child_process';
import { runWorkerProcess } from '../lib/worker-process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import * as path from 'node:path';
import * as amqp from 'amqplib';
import { REPO_ROOT } from '../lib/build';
import { benchEnvironment } from '../lib/environment';
import { type Row, formatTable, round, scale, writeResults } from '../lib/measure';
import { medianRun } from '../lib/median';
import { NEST_BUILD_DIR, buildNestWorkers } from './build';
import {
  DEFAULT_LIBRARIES,
  NEST_LIBRARIES,
  NEST_SCENARIOS,
  ONLY_IN,
  type NestLibrary,
  type NestScenario,
  type NestTask,
  RESULT_PREFIX,
  TARGET_PEERS,
  type WorkerResult,
} from './protocol';

/**
 * Nest transport benchmark: Warren vs Nest's built-in RMQ transport vs @golevelup/nestjs-rabbitmq, all on the Nest 11
 * of bench/node_modules. Each (library, scenario, round) runs in its own process (compiled to plain JS) holding both
 * the Nest server and its client, on fresh queues and exchange that are deleted afterwards. Every library first runs
 * as many unmeasured calls (events) as the scenario measures, the same shape: what is measured is the steady state of a
 * running service, after V8 has compiled the hot paths, not the first seconds of a fresh process.
 *
 * Env: AMQP_URL, BENCH_SCALE (message counts), BENCH_LIBS (comma list; default warren,nest-rmq,golevelup,floor-warren;
 * opt-in references: nest-rmq-noack, nest-rmq-stock, golevelup-stock, warren-publisher, warren-no-otel, warren-otel,
 * floor-amqplib — see
 * protocol.ts), BENCH_SCENARIOS (rpc-seq,rpc-conc,events), BENCH_REPEAT
 * (rounds, default 1; the median round is reported), BENCH_PREFETCH (default 1000), BENCH_TIMEOUT_MS (per worker,
 * default 300 000), BENCH_NEST_RESULTS (results file name under bench/results/, default 'nest').
 */

const URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 300_000);
const PREFETCH = Number(process.env.BENCH_PREFETCH ?? 1000);
const IN_FLIGHT = 100;
const EMIT_WINDOW = 1000;
const STALL_MS = 20_000;
const BROKER_PID = brokerPid();

const DISPLAY: Record<NestLibrary, string> = {
  warren: 'Warren',
  'nest-rmq': 'Nest RMQ (Transport.RMQ)',
  golevelup: '@golevelup/nestjs-rabbitmq',
  'nest-rmq-noack': 'Nest RMQ noAck+prefetch defaults (ref.)',
  'nest-rmq-stock': 'Nest RMQ all defaults, Nagle on (ref.)',
  'golevelup-stock': '@golevelup all defaults, Nagle on (ref.)',
  'warren-publisher': 'Warren via AmqpPublisher (ref.)',
  'warren-no-otel': 'Warren without @opentelemetry/api (ref.)',
  'warren-otel': 'Warren, OpenTelemetry SDK tracing (ref.)',
  'floor-warren': 'no Nest: Warren AmqpSession (floor)',
  'floor-amqplib': 'no Nest: amqplib (floor)',
};

interface ScenarioSpec {
  id: NestScenario;
  title: string;
  messages: number;
  warmup: number;
  inFlight: number;
}

const SCENARIOS: ScenarioSpec[] = [
  {
    id: 'rpc-seq',
    title: `(1) RPC: ${scale(2_000).toLocaleString('en-US')} sequential calls`,
    messages: scale(2_000),
    warmup: scale(2_000),
    inFlight: 1,
  },
  {
    id: 'rpc-conc',
    title: `(2) RPC: ${scale(20_000).toLocaleString('en-US')} calls, ${IN_FLIGHT} in flight`,
    messages: scale(20_000),
    warmup: scale(20_000),
    inFlight: IN_FLIGHT,
  },
  {
    id: 'events',
    title: `(3) Events: ${scale(50_000).toLocaleString('en-US')} emitted (≤ ${EMIT_WINDOW} unconfirmed), first emit → handler saw all`,
    messages: scale(50_000),
    warmup: scale(50_000),
    inFlight: 1,
  },
];

function list<T extends string>(env: string | undefined, all: readonly T[], fallback: readonly T[]): T[] {
  if (!env) return [...fallback];
  const wanted = env.split(',').map((s) => s.trim());
  return all.filter((x) => wanted.includes(x));
}

interface RunRecord extends WorkerResult {
  scenario: NestScenario;
  lib: NestLibrary;
  round: number;
  loadAvg1: number;
  leftInQueues?: number;
  note?: string;
}

/** The harness's own amqplib connection: checks and deletes what the workers declared. */
class Harness {
  private constructor(
    private readonly model: amqp.ChannelModel,
    private ch: amqp.Channel,
  ) {}

  static async open(): Promise<Harness> {
    const model = await amqp.connect(URL, { clientProperties: { connection_name: 'warren-bench-nest-harness' } });
    const ch = await model.createChannel();
    ch.on('error', () => undefined);
    return new Harness(model, ch);
  }

  private async channel(): Promise<amqp.Channel> {
    // A failed passive check closes the channel: take a new one.
    try {
      await this.ch.checkExchange('amq.direct');
    } catch {
      this.ch = await this.model.createChannel();
      this.ch.on('error', () => undefined);
    }
    return this.ch;
  }

  async messageCount(queue: string): Promise<number> {
    const ch = await this.model.createChannel();
    ch.on('error', () => undefined);
    try {
      const { messageCount } = await ch.checkQueue(queue);
      await ch.close();
      return messageCount;
    } catch {
      return 0;
    }
  }

  async cleanup(queues: string[], exchanges: string[]): Promise<void> {
    for (const q of queues) await (await this.channel()).deleteQueue(q).catch(() => undefined);
    for (const x of exchanges) await (await this.channel()).deleteExchange(x).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.model.close();
  }
}

/** pid of the local RabbitMQ node (beam.smp), if any. */
function brokerPid(): number | undefined {
  try {
    const pid = Number(execFileSync('pgrep', ['-o', 'beam.smp'], { encoding: 'utf8' }).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function runWorker(task: NestTask): Promise<WorkerResult> {
  const script = path.join(NEST_BUILD_DIR, 'bench', 'nest', 'worker.js');
  return runWorkerProcess<WorkerResult>(script, task, TIMEOUT_MS, RESULT_PREFIX);
}

async function runOne(harness: Harness, spec: ScenarioSpec, lib: NestLibrary, roundNo: number): Promise<RunRecord> {
  const id = `${process.pid}-${randomBytes(3).toString('hex')}`;
  const task: NestTask = {
    lib,
    scenario: spec.id,
    url: URL,
    rpcQueue: `bench-nest-${lib}-${spec.id}-rpc-${id}`,
    eventQueue: `bench-nest-${lib}-${spec.id}-ev-${id}`,
    exchange: `bench-nest-${lib}-${spec.id}-x-${id}`,
    messages: spec.messages,
    warmup: spec.warmup,
    inFlight: spec.inFlight,
    emitWindow: EMIT_WINDOW,
    prefetch: PREFETCH,
    stallMs: STALL_MS,
    brokerPid: BROKER_PID,
  };
  const record: RunRecord = { scenario: spec.id, lib, round: roundNo, loadAvg1: round2(loadavg()[0]) };
  try {
    const result = await runWorker(task);
    Object.assign(record, result);
    if (!result.error) {
      const left = (await harness.messageCount(task.rpcQueue)) + (await harness.messageCount(task.eventQueue));
      record.leftInQueues = left;
      if (left !== 0) record.note = `${left} message(s) left in the queues`;
    }
  } catch (err) {
    record.error = `harness: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    await harness.cleanup([task.rpcQueue, task.eventQueue], [task.exchange]).catch(() => undefined);
  }
  return record;
}

function round2(v: number): number {
  return round(v, 2);
}

function cpuPct(r: RunRecord): number | undefined {
  return r.cpuMs === undefined || !r.wallMs ? undefined : Math.round((r.cpuMs / r.wallMs) * 100);
}

function note(r: RunRecord): string {
  const parts: string[] = [];
  if (r.error) parts.push(`ERROR ${r.error}`);
  if (r.note) parts.push(r.note);
  const errors = (r.logs ?? []).filter((l) => l.level !== 'warn').reduce((n, l) => n + l.count, 0);
  const warns = (r.logs ?? []).filter((l) => l.level === 'warn').reduce((n, l) => n + l.count, 0);
  if (errors || warns) parts.push(`logged ${errors} error(s), ${warns} warning(s)`);
  return parts.join('; ');
}

function toRow(spec: ScenarioSpec, r: RunRecord, runs: number): Row {
  const row: Row = { library: DISPLAY[r.lib] };
  const l = r.latency;
  if (spec.id === 'rpc-seq') {
    row['p50 ms'] = l?.p50Ms;
    row['p99 ms'] = l?.p99Ms;
    row['calls/s'] = r.perSec;
    row['p99.9 ms'] = l?.p999Ms;
    row['max ms'] = l?.maxMs;
  } else if (spec.id === 'rpc-conc') {
    row['calls/s'] = r.perSec;
    row['p99 ms'] = l?.p99Ms;
    row['p50 ms'] = l?.p50Ms;
    row['max ms'] = l?.maxMs;
  } else {
    row['events/s'] = r.perSec;
    row['emits confirmed s'] = r.emitsConfirmedMs === undefined ? undefined : round(r.emitsConfirmedMs / 1000, 2);
  }
  row['longest stall ms'] = r.longestGapMs;
  row['loop delay max ms'] = r.eventLoopMaxMs;
  row['CPU ms/1k'] = r.cpuMsPer1k;
  row['CPU %'] = cpuPct(r);
  row['broker CPU ms/1k'] =
    r.brokerCpuMs === undefined || !r.messages ? undefined : round((r.brokerCpuMs / r.messages) * 1000, 1);
  row['peak RSS MiB'] = r.peakRssMiB;
  row['wall s'] = r.wallMs === undefined ? undefined : round(r.wallMs / 1000, 2);
  row['load1'] = r.loadAvg1;
  if (runs > 1) row.runs = runs;
  row.note = note(r);
  return row;
}

interface TargetCheck {
  target: string;
  warren?: number;
  bestPeer?: string;
  bestPeerValue?: number;
  ratio?: number;
  /**
   * Warren's own client without Nest (the floor row) over the same peer: the best any Nest layer on Warren could
   * reach on this machine and broker. A target the floor misses is out of reach here, whatever the Nest layer does.
   */
  floorRatio?: number;
  met: boolean | 'n/a';
  why?: string;
}

function targets(best: Map<NestScenario, Map<NestLibrary, RunRecord>>): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const pick = (
    scenario: NestScenario,
    target: string,
    value: (r: RunRecord) => number | undefined,
    lowerIsBetter: boolean,
    factor: number,
  ): void => {
    const byLib = best.get(scenario);
    if (!byLib) return;
    const w = byLib.get('warren');
    const wv = w && !w.error ? value(w) : undefined;
    let peer: NestLibrary | undefined;
    let pv: number | undefined;
    for (const lib of TARGET_PEERS) {
      const r = byLib.get(lib);
      const v = r && !r.error ? value(r) : undefined;
      if (v === undefined) continue;
      if (pv === undefined || (lowerIsBetter ? v < pv : v > pv)) {
        pv = v;
        peer = lib;
      }
    }
    if (wv === undefined || pv === undefined || peer === undefined) {
      checks.push({
        target,
        warren: wv,
        bestPeer: peer && DISPLAY[peer],
        bestPeerValue: pv,
        met: 'n/a',
        why: wv === undefined ? 'no Warren result' : 'no peer result',
      });
      return;
    }
    const ratio = round(wv / pv, 2);
    const met = lowerIsBetter ? wv <= factor * pv : wv >= factor * pv;
    const floor = byLib.get('floor-warren');
    const fv = floor && !floor.error ? value(floor) : undefined;
    const floorRatio = fv === undefined ? undefined : round(fv / pv, 2);
    checks.push({ target, warren: wv, bestPeer: DISPLAY[peer], bestPeerValue: pv, ratio, floorRatio, met });
  };
  pick('rpc-seq', 'sequential RPC p50 ≤ 0.7 × best peer', (r) => r.latency?.p50Ms, true, 0.7);
  pick('rpc-conc', `RPC calls/s (${IN_FLIGHT} in flight) ≥ 2 × best peer`, (r) => r.perSec, false, 2);
  pick('events', 'events/s ≥ 2 × best peer', (r) => r.perSec, false, 2);
  return checks;
}

async function main(): Promise<void> {
  const libs = list(process.env.BENCH_LIBS, NEST_LIBRARIES, DEFAULT_LIBRARIES);
  const scenarios = list(process.env.BENCH_SCENARIOS, NEST_SCENARIOS, NEST_SCENARIOS);
  const repeat = Math.max(1, Number(process.env.BENCH_REPEAT ?? '1') || 1);

  const failures = buildNestWorkers(['bench/nest', 'bench/lib', 'lib']);
  for (const [file, error] of Object.entries(failures))
    process.stderr.write(`bench: swc could not compile ${file}: ${error}\n`);

  const harness = await Harness.open();
  const records: RunRecord[] = [];
  const tables: string[] = [];
  const best = new Map<NestScenario, Map<NestLibrary, RunRecord>>();
  try {
    for (const [si, spec] of SCENARIOS.entries()) {
      if (!scenarios.includes(spec.id)) continue;
      const byLib = new Map<NestLibrary, RunRecord[]>();
      for (let r = 0; r < repeat; r++) {
        // Rotate the starting library per scenario and round so no library always runs first or last.
        const offset = (si + r) % libs.length;
        const order = [...libs.slice(offset), ...libs.slice(0, offset)];
        for (const lib of order) {
          if (ONLY_IN[lib] && !ONLY_IN[lib].includes(spec.id)) continue;
          process.stderr.write(`bench nest: ${spec.id} ${lib} (round ${r + 1}/${repeat}) ... `);
          const record = await runOne(harness, spec, lib, r);
          process.stderr.write(
            record.error
              ? `error: ${record.error}\n`
              : `${record.perSec}/s, CPU ${record.cpuMsPer1k} ms/1k${record.latency ? `, p50 ${record.latency.p50Ms} ms, p99 ${record.latency.p99Ms} ms` : ''}\n`,
          );
          records.push(record);
          byLib.set(lib, [...(byLib.get(lib) ?? []), record]);
        }
      }
      const chosen = new Map<NestLibrary, RunRecord>();
      for (const lib of libs) {
        const m = medianRun(byLib.get(lib) ?? [], (r) => r.perSec);
        if (m) chosen.set(lib, m);
      }
      best.set(spec.id, chosen);
      const rows = libs.filter((l) => chosen.has(l)).map((lib) => toRow(spec, chosen.get(lib)!, repeat));
      const table = formatTable(spec.title, rows);
      tables.push(table);
      process.stdout.write(`\n${table}\n`);
    }
  } finally {
    await harness.close();
  }

  const checks = targets(best);
  const targetTable = formatTable(
    'Targets (Warren vs the best of Nest RMQ and @golevelup, same delivery semantics)',
    checks.map((c) => ({
      target: c.target,
      Warren: c.warren,
      'best peer': c.bestPeer ?? '',
      'peer value': c.bestPeerValue,
      'Warren / peer': c.ratio,
      'no-Nest floor / peer': c.floorRatio,
      met: c.met === 'n/a' ? `n/a (${c.why})` : c.met ? 'yes' : 'NO',
    })),
  );
  tables.push(targetTable);
  process.stdout.write(`\n${targetTable}\n`);

  // Which Nest each library actually ran on (from the workers' require.cache).
  const loaded = new Map<NestLibrary, Set<string>>();
  for (const r of records) {
    for (const [k, v] of Object.entries(r.versions ?? {})) {
      if (!k.startsWith('loaded ')) continue;
      const set = loaded.get(r.lib) ?? new Set<string>();
      set.add(`${k.slice('loaded '.length)}@${v}`);
      loaded.set(r.lib, set);
    }
  }
  const loadedList: Record<string, string[]> = {};
  for (const [lib, set] of loaded) loadedList[DISPLAY[lib]] = [...set].sort();
  const outside = Object.entries(loadedList).flatMap(([lib, dirs]) =>
    dirs.filter((d) => !d.startsWith('bench/node_modules/')).map((d) => `${lib}: ${d}`),
  );
  const resolution = [
    'Nest packages loaded by the workers (from require.cache):',
    ...Object.entries(loadedList).map(([lib, dirs]) => `  ${lib}: ${dirs.join(', ')}`),
    outside.length === 0
      ? `All @nestjs/* modules came from bench/node_modules (Nest 11)${libs.includes('warren') ? ', Warren included' : ''}; none from the root node_modules.`
      : `WARNING: @nestjs/* loaded from outside bench/node_modules: ${outside.join(', ')}`,
  ];
  process.stdout.write(`${resolution.join('\n')}\n`);
  process.stdout.write(
    'One process per library and scenario holds the Nest server and its client: CPU ms/1k and CPU % (of one core) are ' +
      'that process (server + client), measured over the timed part only; longest stall = longest time without a ' +
      'completed call / handled event, loop delay max = worst event-loop delay (a stall without loop delay is waiting ' +
      'on the broker, the network or the scheduler); broker CPU is the local RabbitMQ node over ' +
      'the same span (shared with anything else using the broker at the time: indicative only).\n',
  );

  const file = writeResults(process.env.BENCH_NEST_RESULTS ?? 'nest', {
    environment: { ...(await benchEnvironment(URL)), loadAvgAtEnd: loadavg().map(round2) },
    config: {
      url: URL.replace(/\/\/[^@]*@/, '//'),
      prefetch: PREFETCH,
      inFlight: IN_FLIGHT,
      emitWindow: EMIT_WINDOW,
      repeat,
      libraries: libs,
      semantics:
        'every handler queue non-durable, messages non-persistent, acked after the handler (Nest RMQ: noAck false + ack in the handler; nest-rmq-noack: Nest defaults), prefetch as configured; RPC replies via direct reply-to; emits/publishes resolve on the publisher confirm',
      routing:
        'Warren and golevelup: direct exchange, routing key = pattern, one queue per handler; Nest RMQ: default exchange to the server queue (pattern in the JSON body)',
    },
    nestResolution: { loaded: loadedList, allFromBench: outside.length === 0 },
    scenarios: SCENARIOS.filter((s) => scenarios.includes(s.id)).map(({ id, title, messages, warmup, inFlight }) => ({
      id,
      title,
      messages,
      warmup,
      inFlight,
    })),
    targets: checks,
    runs: records,
    tables,
  });
  process.stdout.write(`results: ${path.relative(REPO_ROOT, file)}\n`);
  if (records.some((r) => r.error)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench nest failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
