import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { cpus, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as path from 'node:path';
import * as amqp from 'amqplib';
import {
  type BrokerConnection,
  closeConnectionsWhere,
  deleteQueue,
  rabbitmqctl,
  startApp,
  stopApp,
} from '../../test/support/broker';
import { REPO_ROOT } from '../lib/build';
import { benchEnvironment } from '../lib/environment';
import { RESULTS_DIR, type Row, formatTable, round, scale, writeResults } from '../lib/measure';
import { RECOVERY_BUILD_DIR, buildRecoveryWorkers } from './build';
import {
  type LibraryEvent,
  type ParentMessage,
  RECOVERY_LIBRARIES,
  type RecoveryLibrary,
  type RecoveryTask,
  type WorkerMessage,
  type WorkerReport,
  nowMs,
} from './protocol';
import { TcpProxy, type PairRecord } from '../../test/support/tcp-proxy';

/**
 * Recovery ("chaos") bench, issue 4: every library publishes MESSAGES persistent messages with confirms (≤ IN_FLIGHT
 * unsettled, paced so the faults land mid-run) to its own durable queue and consumes them with manual acks, while one
 * fault scenario runs:
 *   kill     rabbitmqctl close_connection on every connection of every library, three times
 *   restart  rabbitmqctl stop_app, 3 s, start_app (always started again, also on failure or Ctrl-C)
 *   stall    a proxy freezes every existing connection for 3 × heartbeat (new connections pass)
 *   cut      a proxy destroys every connection, twice
 * The libraries run side by side in their own processes (one fault hits all of them at the same instant, one broker
 * restart instead of one per library); BENCH_RECOVERY_SERIAL=1 runs them one after the other instead.
 *
 * Env: AMQP_URL, BENCH_SCALE (message count), BENCH_LIBS (comma list of warren, amqp-connection-manager,
 * rabbitmq-client), BENCH_SCENARIOS (comma list of kill, restart, stall, cut, baseline; default all but baseline),
 * BENCH_RECOVERY_SERIAL=1.
 */

const URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const BROKER = new globalThis.URL(URL);
const BROKER_HOST = BROKER.hostname || '127.0.0.1';
const BROKER_PORT = BROKER.port ? Number(BROKER.port) : 5672;
const HEARTBEAT_S = 2;
const MESSAGES = scale(10_000);
const IN_FLIGHT = 200;
const PREFETCH = 100;
const BODY_SIZE = 256;
/**
 * Confirms already on their way when a fault hit can still settle after it (read from the kernel buffer, or late when
 * the box is loaded). The outage gap must start before the library's first NEW connection after the fault (by then
 * it has noticed the loss), and no earlier than this floor.
 */
const STALE_SETTLE_MS = 100;
/** ...and within this cap (a library that never reconnects through the proxy). */
const STALE_SETTLE_CAP_MS = 5000;
const RUN_TAG = `${process.pid}${randomBytes(2).toString('hex')}`;
const NAME_PREFIX = `recovery-${RUN_TAG}-`;

const DISPLAY: Record<RecoveryLibrary, string> = {
  warren: 'warren (AmqpSession)',
  'amqp-connection-manager': 'amqp-connection-manager',
  'rabbitmq-client': 'rabbitmq-client',
};

type ScenarioId = 'kill' | 'restart' | 'stall' | 'cut' | 'baseline';

/** One fault: `ref` is where "time to resume" counts from (per library for kills: its last connection's close). */
interface Fault {
  label: string;
  startedAt: number;
  endedAt: number;
  ref: number;
  refByLib?: Partial<Record<RecoveryLibrary, number>>;
  /** The issue-4 target for the resume time from ref, ms. */
  targetMs?: number;
  detail: Record<string, unknown>;
}

interface Lane {
  lib: RecoveryLibrary;
  queue: string;
  connectionName: string;
  proxy?: TcpProxy;
  child?: ChildProcess;
  report?: WorkerReport;
  failure?: string;
  failureEvents?: LibraryEvent[];
  close?: { ms: number; error?: string };
  stderr: string;
  exited: Promise<void>;
}

interface ScenarioContext {
  t0: number;
  lanes: Lane[];
  /** Sleep until t0 + ms (at once when that is past). */
  at(ms: number): Promise<void>;
  log(message: string): void;
}

interface ScenarioSpec {
  id: ScenarioId;
  title: string;
  viaProxy: boolean;
  /** Publishing is paced over this long so the faults fall inside the run. */
  paceMs: number;
  refNote: string;
  inject(ctx: ScenarioContext): Promise<Fault[]>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
/** A sleep that does not keep the process alive (for the losing side of a race). */
const timeout = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());

// ---- broker safety: the app is always started again ----

let brokerStopped = false;

/** Last resort on Ctrl-C or a crash while the app is stopped: start it synchronously. */
function emergencyStartApp(): void {
  if (!brokerStopped) return;
  try {
    process.stderr.write('bench recovery: starting the broker app again (rabbitmqctl start_app)\n');
    execFileSync(process.env.RABBITMQCTL ?? 'rabbitmqctl', ['start_app'], { stdio: 'ignore', timeout: 120_000 });
    brokerStopped = false;
  } catch (err) {
    process.stderr.write(`bench recovery: rabbitmqctl start_app failed: ${String(err)}\n`);
  }
}

/** Resolves with nowMs() of the first moment host:port answers the AMQP protocol header with a frame. */
async function probeAmqp(host: string, port: number, timeoutMs: number): Promise<number | null> {
  const deadline = nowMs() + timeoutMs;
  while (nowMs() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      const done = (v: boolean): void => {
        socket.destroy();
        resolve(v);
      };
      socket.setTimeout(500, () => done(false));
      socket.once('error', () => done(false));
      socket.once('connect', () => socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])));
      socket.once('data', (chunk: Buffer) => done(chunk[0] === 0x01));
    });
    if (ok) return nowMs();
    await sleep(25);
  }
  return null;
}

interface BrokerState {
  /** Resource alarms as rabbit_alarm reports them ('' when none). */
  alarms: string;
  /** Pid of rabbit_sup: it changes whenever the app is restarted (by us or by anyone else). */
  app: string;
}

/** Alarms and app identity in one `rabbitmqctl eval`; null while the app is stopped or rabbitmqctl fails. */
async function brokerState(): Promise<BrokerState | null> {
  try {
    const out = (await rabbitmqctl(['eval', '{rabbit_alarm:get_alarms(), whereis(rabbit_sup)}.'], 30_000)).trim();
    const m = /^\{([\s\S]*),\s*(<[\d.]+>|undefined)\}$/.exec(out);
    if (!m || m[2] === 'undefined') return null;
    const alarms = m[1].trim();
    return { alarms: alarms === '[]' ? '' : alarms.replace(/\s+/g, ' '), app: m[2] };
  } catch {
    return null;
  }
}

/**
 * Waits (bounded) until the broker app runs without a resource alarm (others' fault tests raise alarms and restart
 * the app on this broker too). Returns the state, and why it is not clean if the wait ran out.
 */
async function waitForCleanBroker(timeoutMs: number): Promise<{ state: BrokerState | null; problem: string }> {
  const deadline = nowMs() + timeoutMs;
  let state = await brokerState();
  const problemOf = (s: BrokerState | null): string =>
    s === null ? 'the broker app is not running' : s.alarms ? `broker alarm ${s.alarms}` : '';
  if (problemOf(state)) {
    process.stderr.write(`bench recovery: ${problemOf(state)}; waiting up to ${timeoutMs / 1000} s\n`);
  }
  while (problemOf(state) && nowMs() < deadline) {
    await sleep(1000);
    state = await brokerState();
  }
  return { state, problem: problemOf(state) };
}

// ---- scenarios ----

type KilledConnection = Pick<BrokerConnection, 'clientName' | 'peerPort'>;

/**
 * Force-closes (connection.close 320 CONNECTION_FORCED) every connection whose connection_name starts with `prefix`.
 * It calls the function `rabbitmqctl close_connection` calls (rabbit_networking:close_connection), for every match,
 * from ONE `rabbitmqctl eval`: test/support's closeConnectionsWhere needs two list_connections plus one
 * close_connection per connection, i.e. six CLI VMs per round here, which took 6–7 s on a 2-CPU box under load and
 * pushed the kills out of the run. Falls back to closeConnectionsWhere if eval is refused.
 */
async function killConnections(prefix: string, reason: string): Promise<KilledConnection[]> {
  const erl = (text: string): string => text.replace(/[\\"]/g, (c) => `\\${c}`);
  const code = [
    `Prefix = <<"${erl(prefix)}">>,`,
    'Infos = [{Pid, catch rabbit_networking:connection_info(Pid, [client_properties, peer_port])}',
    '         || Pid <- rabbit_networking:connections()],',
    // client_properties is `none` for a connection still in its handshake: skip those (is_list before the generator).
    'Targets = [{Pid, N, Port} || {Pid, [{client_properties, CP}, {peer_port, Port}]} <- Infos, is_list(CP),',
    '           {<<"connection_name">>, longstr, N} <- CP,',
    '           binary:longest_common_prefix([N, Prefix]) =:= byte_size(Prefix)],',
    `[catch rabbit_networking:close_connection(Pid, "${erl(reason)}") || {Pid, _, _} <- Targets],`,
    '[{N, Port} || {_, N, Port} <- Targets].',
  ].join(' ');
  try {
    const out = await rabbitmqctl(['eval', code], 30_000);
    return [...out.matchAll(/\{<<"([^"]*)">>,\s*(\d+)\}/g)].map((m) => ({ clientName: m[1], peerPort: Number(m[2]) }));
  } catch (err) {
    process.stderr.write(
      `bench recovery: rabbitmqctl eval failed (${(err as Error).message}); using close_connection\n`,
    );
    return closeConnectionsWhere((c) => c.clientName?.startsWith(prefix) ?? false, reason);
  }
}

/** Pairs of `lane` that carried one of `closed` (matched by the proxy's upstream port = the broker's peer_port). */
function pairsFor(lane: Lane, closed: KilledConnection[]): PairRecord[] {
  const out: PairRecord[] = [];
  for (const c of closed) {
    if (!c.clientName?.startsWith(lane.connectionName)) continue;
    const pair = lane.proxy?.pairsLog.find((p) => p.upstreamPort !== undefined && p.upstreamPort === c.peerPort);
    if (pair) out.push(pair);
  }
  return out;
}

async function waitUntil(pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = nowMs() + timeoutMs;
  while (!pred()) {
    if (nowMs() >= deadline) return false;
    await sleep(10);
  }
  return true;
}

const SCENARIOS: ScenarioSpec[] = [
  {
    id: 'kill',
    title: 'rabbitmqctl close_connection on every connection of each library, 3 times',
    viaProxy: true,
    paceMs: 15_000,
    refNote: "resume counts from the moment the library's last killed connection closed (seen at the proxy)",
    async inject(ctx) {
      const faults: Fault[] = [];
      for (const [i, atMs] of [1000, 5000, 9000].entries()) {
        await ctx.at(atMs);
        const startedAt = nowMs();
        const closed = await killConnections(NAME_PREFIX, `recovery bench: kill ${i + 1}`);
        const endedAt = nowMs();
        const pairs = new Map(ctx.lanes.map((lane) => [lane, pairsFor(lane, closed)]));
        // The broker closes after the client's close-ok; wait (bounded) until the proxy saw every killed socket go.
        await waitUntil(() => [...pairs.values()].every((ps) => ps.every((p) => p.closedAt !== undefined)), 5000);
        const refByLib: Partial<Record<RecoveryLibrary, number>> = {};
        const killed: Record<string, number> = {};
        for (const [lane, ps] of pairs) {
          killed[lane.lib] = ps.length;
          const times = ps.map((p) => p.closedAt).filter((t): t is number => t !== undefined);
          if (times.length > 0) refByLib[lane.lib] = Math.max(...times);
        }
        ctx.log(`kill ${i + 1}: closed ${closed.length} connections (${JSON.stringify(killed)})`);
        faults.push({
          label: `kill ${i + 1}`,
          startedAt,
          endedAt,
          ref: endedAt,
          refByLib,
          targetMs: 500,
          detail: { killed, names: closed.map((c) => c.clientName) },
        });
      }
      return faults;
    },
  },
  {
    id: 'restart',
    title: 'broker app stopped for 3 s (rabbitmqctl stop_app / start_app)',
    viaProxy: false,
    paceMs: 10_000,
    refNote: 'resume counts from the moment the broker answered the AMQP header again',
    async inject(ctx) {
      await ctx.at(2000);
      const startedAt = nowMs();
      let stoppedAt = 0;
      let startIssuedAt = 0;
      let startedAppAt = 0;
      let back: number | null = null;
      try {
        brokerStopped = true;
        await stopApp();
        stoppedAt = nowMs();
        ctx.log('broker app stopped');
        await sleep(3000);
      } finally {
        startIssuedAt = nowMs();
        const probe = probeAmqp(BROKER_HOST, BROKER_PORT, 120_000);
        try {
          await startApp();
          brokerStopped = false;
        } finally {
          startedAppAt = nowMs();
          back = await probe;
        }
      }
      ctx.log(`broker back after ${Math.round((back ?? nowMs()) - startedAt)} ms`);
      return [
        {
          label: 'restart',
          startedAt,
          endedAt: back ?? startedAppAt,
          ref: back ?? startedAppAt,
          targetMs: 1000,
          detail: {
            stopAppMs: Math.round(stoppedAt - startedAt),
            downAfterStopMs: Math.round(startIssuedAt - stoppedAt),
            startAppMs: Math.round(startedAppAt - startIssuedAt),
            acceptingAfterStartIssuedMs: back === null ? null : Math.round(back - startIssuedAt),
          },
        },
      ];
    },
  },
  {
    id: 'stall',
    title: `proxy stalls every existing connection for 3 × heartbeat (${3 * HEARTBEAT_S} s)`,
    viaProxy: true,
    paceMs: 11_000,
    refNote: `resume counts from the stall's start (target 2 × heartbeat + 0.5 s = ${2 * HEARTBEAT_S + 0.5} s)`,
    async inject(ctx) {
      // Heartbeat checks tick at fixed intervals from connection set-up, so when a stall starts relative to them
      // decides when it is noticed: start anywhere within one heartbeat (BENCH_STALL_AT_MS pins it) so repeated runs
      // see the whole range instead of one lucky or unlucky phase.
      const atMs = Number(process.env.BENCH_STALL_AT_MS) || 2000 + Math.floor(Math.random() * HEARTBEAT_S * 1000);
      await ctx.at(atMs);
      const startedAt = nowMs();
      const stalled: Record<string, number> = {};
      for (const lane of ctx.lanes) stalled[lane.lib] = lane.proxy?.stallExisting() ?? 0;
      ctx.log(`stall: ${JSON.stringify(stalled)} connections frozen`);
      try {
        await sleep(3 * HEARTBEAT_S * 1000);
      } finally {
        for (const lane of ctx.lanes) lane.proxy?.resume();
      }
      const endedAt = nowMs();
      return [
        {
          label: 'stall',
          startedAt,
          endedAt,
          ref: startedAt,
          targetMs: 2 * HEARTBEAT_S * 1000 + 500,
          detail: { stalled, atMs, stallMs: Math.round(endedAt - startedAt) },
        },
      ];
    },
  },
  {
    id: 'cut',
    title: 'proxy cuts every connection (sockets destroyed), twice',
    viaProxy: true,
    paceMs: 9000,
    refNote: 'resume counts from the cut',
    async inject(ctx) {
      const faults: Fault[] = [];
      for (const [i, atMs] of [2500, 6000].entries()) {
        await ctx.at(atMs);
        const startedAt = nowMs();
        const cut: Record<string, number> = {};
        for (const lane of ctx.lanes) cut[lane.lib] = lane.proxy?.cut() ?? 0;
        ctx.log(`cut ${i + 1}: ${JSON.stringify(cut)} connections`);
        faults.push({
          label: `cut ${i + 1}`,
          startedAt,
          endedAt: startedAt,
          ref: startedAt,
          targetMs: 500,
          detail: { cut },
        });
      }
      return faults;
    },
  },
  {
    id: 'baseline',
    title: 'no fault (baseline)',
    viaProxy: true,
    paceMs: 6000,
    refNote: '',
    async inject() {
      return [];
    },
  },
];

// ---- harness (amqplib, its own short-lived connections) ----

async function withHarness<T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> {
  const conn = await amqp.connect(URL, { clientProperties: { connection_name: 'recovery-bench-harness' } });
  conn.on('error', () => undefined);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    return await fn(ch);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Takes every message left in the queue (their seqs), then deletes the queue. */
async function drainAndDelete(queue: string): Promise<number[]> {
  return withHarness(async (ch) => {
    const seqs: number[] = [];
    const { messageCount } = await ch.checkQueue(queue);
    if (messageCount > 0) {
      await ch.prefetch(1000);
      let done!: () => void;
      const finished = new Promise<void>((resolve) => (done = resolve));
      const { consumerTag } = await ch.consume(
        queue,
        (m) => {
          if (!m) return;
          seqs.push(m.content.length >= 4 ? m.content.readUInt32BE(0) : -1);
          ch.ack(m);
          if (seqs.length >= messageCount) done();
        },
        { noAck: false },
      );
      await Promise.race([finished, timeout(15_000)]);
      await ch.cancel(consumerTag);
    }
    await ch.deleteQueue(queue);
    return seqs;
  });
}

// ---- workers ----

function spawnWorker(lane: Lane, task: RecoveryTask, onReady: () => void): void {
  const script = path.join(RECOVERY_BUILD_DIR, 'bench', 'recovery', 'worker.js');
  const child = fork(script, [JSON.stringify(task)], {
    cwd: REPO_ROOT,
    execArgv: ['--enable-source-maps'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  lane.child = child;
  child.stdout?.setEncoding('utf8').on('data', () => undefined);
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    lane.stderr = (lane.stderr + s).slice(-4000);
  });
  child.on('message', (m: WorkerMessage) => {
    switch (m.type) {
      case 'ready':
        onReady();
        return;
      case 'result':
        lane.report = m.report;
        return;
      case 'closed':
        lane.close = { ms: m.ms, error: m.error };
        return;
      case 'failed':
        lane.failure = `${m.stage}: ${m.error}`;
        lane.failureEvents = m.events;
        return;
      case 'progress':
        return;
    }
  });
  lane.exited = new Promise((resolve) => child.once('exit', () => resolve()));
}

function sendTo(lane: Lane, message: ParentMessage): void {
  if (lane.child?.connected) lane.child.send(message);
}

// ---- analysis ----

interface FaultResult {
  label: string;
  /** Why this fault did not apply to the library (e.g. a kill that found none of its connections). */
  skipped?: string;
  /** ms from the fault's ref to the end of the confirm gap around it (null: no confirm afterwards). */
  publishResumeMs: number | null;
  consumerResumeMs: number | null;
  /** The library's own first report of the loss (its event log, s from t0): a cross-check on the harness's clock. */
  libraryNoticed?: { t: number; text: string };
  targetMs?: number;
  met?: boolean;
}

interface LaneResult {
  scenario: ScenarioId;
  lib: RecoveryLibrary;
  library: string;
  queue: string;
  messages: number;
  confirmed?: number;
  rejected?: number;
  unsettled?: number;
  lost?: number;
  stranded?: number;
  duplicated?: number;
  /** Of the duplicated: seqs that arrived as two or more fresh (not redelivered) copies, i.e. published twice. */
  duplicatedCopies?: number;
  deliveries?: number;
  redeliveries?: number;
  maxGapMs?: number;
  maxGapAt?: number;
  publishWallMs?: number;
  faults?: FaultResult[];
  rejections?: Record<string, number>;
  drain?: string;
  close?: { ms: number; error?: string };
  targets?: { met: boolean; missed: string[] };
  error?: string;
  /** The library's connections through the proxy (s from t0), as the proxy saw them. */
  connections?: Array<{ opened: number; closed: number | null }>;
  /** The worker's event-loop delay over the run, ms. */
  eventLoopDelayMs?: { p50: number; p99: number; max: number };
  /** Library events, times in s from t0. */
  events?: Array<{ t: number; text: string; count: number }>;
}

/**
 * The longest gap between consecutive times (sorted) that ends after `ref` and starts no later than `staleUntil` —
 * the outage around the fault, past any confirm that was already on its way — as ms from ref to the gap's end.
 */
function resumeAfter(times: number[], ref: number, staleUntil: number): number | null {
  let best: { gap: number; end: number } | null = null;
  for (let i = 0; i < times.length; i++) {
    if (times[i] <= ref) continue;
    const prev = i > 0 ? times[i - 1] : -Infinity;
    if (prev > staleUntil) break;
    const gap = times[i] - prev;
    if (!best || gap > best.gap) best = { gap, end: times[i] };
  }
  return best ? round(best.end - ref, 1) : null;
}

function analyse(spec: ScenarioSpec, lane: Lane, faults: Fault[], leftover: number[] | null): LaneResult {
  const base: LaneResult = {
    scenario: spec.id,
    lib: lane.lib,
    library: DISPLAY[lane.lib],
    queue: lane.queue,
    messages: MESSAGES,
  };
  const r = lane.report;
  if (!r) {
    const why =
      lane.failure ??
      `worker exited without a report${lane.stderr ? `: ${lane.stderr.trim().split('\n').slice(-1)[0]}` : ''}`;
    return { ...base, error: why, events: lane.failureEvents?.map((e) => ({ ...e, t: 0 })) };
  }
  const n = r.outcome.length;
  let confirmed = 0;
  let rejected = 0;
  const confirmTimes: number[] = [];
  const settleTimes: number[] = [];
  for (let i = 0; i < n; i++) {
    if (r.outcome[i] === 1) {
      confirmed++;
      confirmTimes.push(r.settledAt[i]);
    } else if (r.outcome[i] === 2) rejected++;
    if (r.outcome[i] !== 0) settleTimes.push(r.settledAt[i]);
  }
  confirmTimes.sort((a, b) => a - b);
  settleTimes.sort((a, b) => a - b);
  const unsettled = n - confirmed - rejected;

  const count = new Uint16Array(n);
  const fresh = new Uint16Array(n);
  let redeliveries = 0;
  for (let i = 0; i < r.deliveries.seq.length; i++) {
    const seq = r.deliveries.seq[i];
    if (r.deliveries.redelivered[i]) redeliveries++;
    if (seq < 0 || seq >= n) continue;
    count[seq]++;
    if (!r.deliveries.redelivered[i]) fresh[seq]++;
  }
  const left = new Set(leftover ?? []);
  let lost = 0;
  let stranded = 0;
  let duplicated = 0;
  let duplicatedCopies = 0;
  for (let i = 0; i < n; i++) {
    if (count[i] > 1) duplicated++;
    if (fresh[i] > 1) duplicatedCopies++;
    if (r.outcome[i] === 1 && count[i] === 0) {
      if (left.has(i)) stranded++;
      else lost++;
    }
  }

  let maxGapMs = 0;
  let maxGapAt = r.t0;
  for (let i = 1; i < settleTimes.length; i++) {
    const gap = settleTimes[i] - settleTimes[i - 1];
    if (gap > maxGapMs) {
      maxGapMs = gap;
      maxGapAt = settleTimes[i - 1];
    }
  }
  if (unsettled > 0 && settleTimes.length > 0) {
    // The publisher never settled the rest: the gap runs to the end of the wait.
    const tail = r.publishEndedAt - settleTimes[settleTimes.length - 1];
    if (tail > maxGapMs) {
      maxGapMs = tail;
      maxGapAt = settleTimes[settleTimes.length - 1];
    }
  }

  const deliveryTimes = [...r.deliveries.t].sort((a, b) => a - b);
  const faultResults: FaultResult[] = faults.map((f) => {
    const ref = f.refByLib ? f.refByLib[lane.lib] : f.ref;
    if (ref === undefined) {
      return {
        label: f.label,
        skipped:
          r.publishEndedAt < f.endedAt
            ? `the kill landed after its run had ended (the rabbitmqctl round took ${Math.round((f.endedAt - f.startedAt) / 100) / 10} s)`
            : 'none of its connections were open at that moment (it was reconnecting)',
        publishResumeMs: null,
        consumerResumeMs: null,
        targetMs: f.targetMs,
      };
    }
    // Through the proxy, the library's first connection opened after the fault marks when it had noticed the loss.
    // (Counted from the fault's start, not from ref: the proxies' timestamps come from this process's event loop,
    // which lags on a loaded box, so a reconnection can be stamped before the old connection's close.)
    const reconnectedAt = lane.proxy?.pairsLog.find((p) => p.openedAt > f.startedAt)?.openedAt;
    const staleUntil = ref + Math.min(STALE_SETTLE_CAP_MS, Math.max(STALE_SETTLE_MS, (reconnectedAt ?? ref) - ref));
    const publishResumeMs = resumeAfter(confirmTimes, ref, staleUntil);
    const noticed = r.events.find(
      (e) => e.t >= f.startedAt && /disconnect|error|timed out|closed/i.test(e.text) && !e.text.startsWith('debug'),
    );
    return {
      label: f.label,
      libraryNoticed: noticed && { t: round((noticed.t - r.t0) / 1000, 3), text: noticed.text.slice(0, 160) },
      publishResumeMs,
      consumerResumeMs: resumeAfter(deliveryTimes, ref, staleUntil),
      targetMs: f.targetMs,
      met: f.targetMs === undefined ? undefined : publishResumeMs !== null && publishResumeMs <= f.targetMs,
    };
  });

  const missed: string[] = [];
  if (lost > 0) missed.push(`${lost} lost`);
  if (rejected > 0) missed.push(`${rejected} rejected`);
  if (unsettled > 0) missed.push(`${unsettled} unsettled`);
  for (const f of faultResults) {
    if (f.met === false) {
      missed.push(
        `${f.label} resume ${f.publishResumeMs === null ? 'never' : `${Math.round(f.publishResumeMs)} ms`} > ${f.targetMs} ms`,
      );
    }
  }

  return {
    ...base,
    library: DISPLAY[lane.lib],
    confirmed,
    rejected,
    unsettled,
    lost,
    stranded,
    duplicated,
    duplicatedCopies,
    deliveries: r.deliveries.t.length,
    redeliveries,
    maxGapMs: round(maxGapMs, 1),
    maxGapAt: round((maxGapAt - r.t0) / 1000, 2),
    publishWallMs: Math.round(r.publishEndedAt - r.t0),
    faults: faultResults,
    rejections: r.rejections,
    drain: r.drainReason,
    close: lane.close,
    eventLoopDelayMs: r.eventLoopDelayMs,
    connections: lane.proxy?.pairsLog.map((p) => ({
      opened: round((p.openedAt - r.t0) / 1000, 3),
      closed: p.closedAt === undefined ? null : round((p.closedAt - r.t0) / 1000, 3),
    })),
    targets: { met: missed.length === 0, missed },
    error: leftover === null ? 'could not drain the queue afterwards: stranded/lost are approximate' : undefined,
    events: r.events.map((e) => ({ t: round((e.t - r.t0) / 1000, 3), text: e.text, count: e.count })),
  };
}

function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return 'never';
  return ms >= 10_000 ? `${round(ms / 1000, 1)} s` : `${Math.round(ms)}`;
}

function toRow(res: LaneResult): Row {
  if (res.error && res.confirmed === undefined) return { library: res.library, note: res.error };
  return {
    library: res.library,
    confirmed: res.confirmed,
    rejected: res.rejected,
    unsettled: res.unsettled,
    lost: res.lost,
    stranded: res.stranded,
    duplicated: res.duplicated,
    'published twice': res.duplicatedCopies,
    'max settle gap ms': res.maxGapMs === undefined ? undefined : Math.round(res.maxGapMs),
    'resume ms': res.faults?.length
      ? res.faults.map((f) => (f.skipped ? 'n/a' : fmtMs(f.publishResumeMs))).join(' / ')
      : '-',
    'consumer resume ms': res.faults?.length
      ? res.faults.map((f) => (f.skipped ? 'n/a' : fmtMs(f.consumerResumeMs))).join(' / ')
      : '-',
    'issue-4 targets': res.targets ? (res.targets.met ? 'met' : `missed: ${res.targets.missed.join('; ')}`) : '',
  };
}

/** Lines under the table: what each library reported that explains its row. */
function notes(results: LaneResult[]): string[] {
  const lines: string[] = [];
  for (const res of results) {
    const bits: string[] = [];
    for (const [text, count] of Object.entries(res.rejections ?? {})) bits.push(`rejected ×${count}: ${text}`);
    if (res.drain && res.drain !== 'all confirmed messages consumed') bits.push(`drain: ${res.drain}`);
    for (const f of res.faults ?? []) if (f.skipped) bits.push(`${f.label}: n/a, ${f.skipped}`);
    if (res.close?.error) bits.push(`close: ${res.close.error}`);
    if (res.error && res.confirmed !== undefined) bits.push(res.error);
    const bad = (res.events ?? []).filter(
      (e) => !e.text.startsWith('debug') && /^(warn|error)\b|fail|twice|channel error|consumer error/i.test(e.text),
    );
    for (const e of bad.slice(0, 4)) bits.push(`t=${e.t}s ${e.text}${e.count > 1 ? ` (×${e.count})` : ''}`);
    if (bits.length) lines.push(`- ${res.library}: ${bits.join(' | ')}`);
  }
  return lines;
}

// ---- one scenario ----

async function runScenario(
  spec: ScenarioSpec,
  libs: RecoveryLibrary[],
  live: Set<Lane>,
): Promise<{ faults: Fault[]; results: LaneResult[]; injectError?: string }> {
  const log = (m: string): void => void process.stderr.write(`bench recovery [${spec.id}] ${m}\n`);
  const lanes: Lane[] = [];
  for (const lib of libs) {
    const queue = `recovery-${spec.id}-${lib}-${RUN_TAG}-${randomBytes(3).toString('hex')}`;
    lanes.push({
      lib,
      queue,
      connectionName: `${NAME_PREFIX}${lib}`,
      stderr: '',
      exited: Promise.resolve(),
    });
  }
  const publishDeadlineMs = spec.paceMs + 35_000;
  const drainMaxMs = 15_000;
  let faults: Fault[] = [];
  let injectError: string | undefined;
  const leftovers = new Map<Lane, number[] | null>();
  try {
    await withHarness(async (ch) => {
      for (const lane of lanes) await ch.assertQueue(lane.queue, { durable: true });
    });
    for (const lane of lanes) {
      live.add(lane);
      if (spec.viaProxy) {
        const proxy = new TcpProxy({ host: BROKER_HOST, port: BROKER_PORT, clock: nowMs });
        await proxy.start();
        lane.proxy = proxy;
      }
    }
    // Ready, or failed before getting there: either way nobody waits for it any longer.
    const settledLanes = new Set<Lane>();
    let allReady!: () => void;
    const ready = new Promise<void>((resolve) => (allReady = resolve));
    const settleLane = (lane: Lane): void => {
      settledLanes.add(lane);
      if (settledLanes.size === lanes.length) allReady();
    };
    for (const lane of lanes) {
      const url = lane.proxy ? lane.proxy.url() : URL;
      const task: RecoveryTask = {
        lib: lane.lib,
        url,
        connectionName: lane.connectionName,
        heartbeat: HEARTBEAT_S,
        queue: lane.queue,
        messages: MESSAGES,
        bodySize: BODY_SIZE,
        inFlight: IN_FLIGHT,
        prefetch: PREFETCH,
        paceMs: spec.paceMs,
        publishDeadlineMs,
        drainMaxMs,
        drainQuietMs: 4000,
      };
      spawnWorker(lane, task, () => settleLane(lane));
      void lane.exited.then(() => {
        if (!lane.report && !lane.failure) lane.failure = 'worker exited early';
        settleLane(lane);
      });
    }
    await Promise.race([ready, timeout(30_000)]);
    const running = lanes.filter((l) => !l.failure && l.child?.connected);
    for (const lane of lanes) if (!running.includes(lane)) lane.failure ??= 'not ready within 30 s';
    const t0 = nowMs() + 20;
    for (const lane of running) sendTo(lane, { type: 'start', t0 });
    log(`started ${running.map((l) => l.lib).join(', ')} (${MESSAGES} messages over ${spec.paceMs / 1000} s each)`);

    const ctx: ScenarioContext = {
      t0,
      lanes: running,
      at: (ms) => sleep(t0 + ms - nowMs()),
      log,
    };
    const workerBudget = publishDeadlineMs + drainMaxMs + 10_000;
    const finished = Promise.all(
      running.map(async (lane) => {
        const timedOut = await Promise.race([lane.exited.then(() => false), timeout(workerBudget).then(() => true)]);
        if (timedOut) {
          lane.failure ??= `worker did not finish within ${workerBudget / 1000} s`;
          lane.child?.kill('SIGKILL');
        }
      }),
    );
    try {
      faults = await spec.inject(ctx);
    } catch (err) {
      injectError = err instanceof Error ? err.message : String(err);
      log(`fault injection failed: ${injectError}`);
    }
    await finished;
  } finally {
    // Children, proxies and queues go whatever happened above.
    for (const lane of lanes) {
      if (lane.child && lane.child.exitCode === null && lane.child.signalCode === null) {
        sendTo(lane, { type: 'stop' });
        lane.child.kill('SIGKILL');
      }
      await lane.proxy?.close().catch(() => undefined);
    }
    for (const lane of lanes) {
      try {
        leftovers.set(lane, await drainAndDelete(lane.queue));
      } catch (err) {
        log(`could not drain ${lane.queue}: ${err instanceof Error ? err.message : String(err)}`);
        leftovers.set(lane, null);
        await deleteQueue(lane.queue).catch(() => undefined);
      }
      live.delete(lane);
    }
  }
  const results = lanes.map((lane) => analyse(spec, lane, faults, leftovers.get(lane) ?? null));
  return { faults, results, injectError };
}

// ---- main ----

/** Scenario entries of the last bench/results/recovery.json with the same message count (none if unreadable). */
function previousScenarios(): Array<{ id: ScenarioId; table?: string } & Record<string, unknown>> {
  try {
    const prev = JSON.parse(readFileSync(path.join(RESULTS_DIR, 'recovery.json'), 'utf8')) as {
      config?: { messages?: number };
      scenarios?: Array<{ id: ScenarioId; date?: string; table?: string } & Record<string, unknown>>;
    };
    if (prev.config?.messages !== MESSAGES || !Array.isArray(prev.scenarios)) return [];
    return prev.scenarios.filter((s) => typeof s.date === 'string' && typeof s.table === 'string');
  } catch {
    return [];
  }
}

function list<T extends string>(env: string | undefined, all: readonly T[], fallback: readonly T[] = all): T[] {
  if (!env) return [...fallback];
  const wanted = env.split(',').map((s) => s.trim());
  return all.filter((x) => wanted.includes(x));
}

async function main(): Promise<void> {
  const t = nowMs();
  const libs = list(process.env.BENCH_LIBS, RECOVERY_LIBRARIES);
  const ids = SCENARIOS.map((s) => s.id);
  const scenarios = list(process.env.BENCH_SCENARIOS, ids, ['kill', 'restart', 'stall', 'cut']).map(
    (id) => SCENARIOS.find((s) => s.id === id) as ScenarioSpec,
  );
  const serial = process.env.BENCH_RECOVERY_SERIAL === '1';
  if (libs.length === 0 || scenarios.length === 0) throw new Error('nothing to run (BENCH_LIBS / BENCH_SCENARIOS)');

  const failures = buildRecoveryWorkers(['bench/recovery', 'lib/amqp']);
  for (const [file, error] of Object.entries(failures))
    process.stderr.write(`bench recovery: swc could not compile ${file}: ${error}\n`);

  // The scenarios read broker state through rabbitmqctl: fail early with a clear message if it is not usable.
  await rabbitmqctl(['status'], 30_000).catch((err: Error) => {
    throw new Error(`rabbitmqctl is needed for the recovery bench: ${err.message}`);
  });

  const live = new Set<Lane>();
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`bench recovery: ${signal}, cleaning up\n`);
    emergencyStartApp();
    for (const lane of live) lane.child?.kill('SIGKILL');
    for (const lane of live) void deleteQueue(lane.queue).catch(() => undefined);
    setTimeout(() => process.exit(130), 3000).unref();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', emergencyStartApp);

  const tables: string[] = [];
  const all: Array<{
    id: ScenarioId;
    title: string;
    refNote: string;
    faults: Fault[];
    results: LaneResult[];
    invalid: string[];
    loadAverage: { before: number; after: number; harnessEventLoopMaxMs: number };
    date: string;
  }> = [];
  try {
    for (const spec of scenarios) {
      const groups = serial ? libs.map((l) => [l]) : [libs];
      const faults: Fault[] = [];
      const results: LaneResult[] = [];
      const invalid: string[] = [];
      const loadBefore = round(loadavg()[0], 2);
      const parentLoop = monitorEventLoopDelay({ resolution: 10 });
      parentLoop.enable();
      for (const group of groups) {
        // A resource alarm (another process lowering vm_memory_high_watermark, say) blocks every publisher and
        // makes the run meaningless: wait for a clear broker, and run the scenario again once if it happened anyway.
        for (let attempt = 1; ; attempt++) {
          const before = await waitForCleanBroker(60_000);
          const out = await runScenario(spec, group, live);
          const after = await brokerState();
          const blocked = out.results.filter((r) => r.events?.some((e) => /^blocked\b/.test(e.text)));
          // Only the restart scenario may restart the app; a change otherwise means someone else did.
          const restartedByOthers =
            spec.id !== 'restart' && before.state !== null && (after === null || after.app !== before.state.app);
          const why = out.injectError
            ? `the fault could not be injected: ${out.injectError}`
            : before.problem
              ? `${before.problem} before the run`
              : restartedByOthers
                ? 'the broker app was stopped or restarted by another process during the run'
                : blocked.length
                  ? `the broker blocked publishers (resource alarm) during the run: ${blocked.map((r) => r.lib).join(', ')}`
                  : '';
          if (!why || attempt >= 2) {
            if (why) invalid.push(why);
            faults.push(...out.faults);
            results.push(...out.results);
            break;
          }
          process.stderr.write(`bench recovery [${spec.id}] ${why}; running it again\n`);
        }
      }
      parentLoop.disable();
      const loadAverage = {
        before: loadBefore,
        after: round(loadavg()[0], 2),
        harnessEventLoopMaxMs: round(parentLoop.max / 1e6, 1),
      };
      all.push({
        id: spec.id,
        title: spec.title,
        refNote: spec.refNote,
        faults,
        results,
        invalid,
        loadAverage,
        date: new Date().toISOString(),
      });
      const loopDelays = results
        .filter((r) => r.eventLoopDelayMs)
        .map((r) => `${r.lib} ${r.eventLoopDelayMs?.max} ms`)
        .join(', ');
      const load = `(box: 1-min load average ${loadAverage.before} → ${loadAverage.after} on ${cpus().length} CPUs; worst event-loop delay per worker: ${loopDelays}; in the harness, which runs the proxies and stamps the faults: ${loadAverage.harnessEventLoopMaxMs} ms)`;
      const title = `Recovery: ${spec.title} — ${MESSAGES.toLocaleString('en-US')} persistent confirmed publishes (≤ ${IN_FLIGHT} in flight), heartbeat ${HEARTBEAT_S} s`;
      const table = [
        formatTable(title, results.map(toRow)),
        spec.refNote ? `(${spec.refNote}; times per fault)` : '',
        load,
        ...invalid.map((w) => `**NOT VALID**: ${w}.`),
        ...notes(results),
      ]
        .filter(Boolean)
        .join('\n');
      tables.push(table);
      process.stdout.write(`\n${table}\n`);
    }
  } finally {
    emergencyStartApp();
  }

  const fresh = all.map((s, i) => ({
    id: s.id,
    date: s.date,
    title: s.title,
    refNote: s.refNote,
    invalid: s.invalid,
    loadAverage: s.loadAverage,
    faults: s.faults.map((f) => ({
      label: f.label,
      targetMs: f.targetMs,
      durationMs: Math.round(f.endedAt - f.startedAt),
      detail: f.detail,
    })),
    results: s.results,
    table: tables[i],
  }));
  // A run of some scenarios (BENCH_SCENARIOS) keeps the others' last results, each with its own date.
  const kept = previousScenarios().filter((p) => !fresh.some((s) => s.id === p.id));
  const order = SCENARIOS.map((s) => s.id);
  const merged = [...fresh, ...kept.map((p) => ({ ...p, carriedOver: true }))].sort(
    (a, b) => order.indexOf(a.id) - order.indexOf(b.id),
  );
  const file = writeResults('recovery', {
    environment: await benchEnvironment(URL),
    config: {
      url: URL.replace(/\/\/[^@]*@/, '//'),
      messages: MESSAGES,
      inFlight: IN_FLIGHT,
      prefetch: PREFETCH,
      bodySize: BODY_SIZE,
      heartbeatSeconds: HEARTBEAT_S,
      concurrentLibraries: !serial,
      staleSettleMs: { floor: STALE_SETTLE_MS, cap: STALE_SETTLE_CAP_MS },
      definitions: {
        lost: 'confirmed to the publisher, never delivered to the consumer and not left in the queue',
        stranded:
          'confirmed, never delivered to the consumer, but still in the queue afterwards (consumer did not recover)',
        duplicated: 'delivered to the consumer more than once (redeliveries of unacked messages included)',
        publishedTwice: 'two or more deliveries without the redelivered flag: the queue held two copies',
        maxSettleGap: 'longest time between two consecutive publish settlements (resolved or rejected)',
        resume:
          'ms from the fault reference point to the first confirm after the outage: the end of the longest confirm gap that ends after the reference point and starts before the library opened its first new connection after it (at least 100 ms, at most 5 s after it), so that confirms already under way when the fault hit do not count as resuming',
      },
    },
    scenarios: merged,
    tables: merged.map((s) => s.table),
  });
  process.stdout.write(
    `results: ${path.relative(REPO_ROOT, file)} (recovery bench took ${Math.round((nowMs() - t) / 1000)} s)\n`,
  );
}

main().catch((err: unknown) => {
  emergencyStartApp();
  process.stderr.write(`bench recovery failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
