import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { LoggerService } from '@nestjs/common';

/** Shared between run.ts (parent), worker.ts and the adapters. */

/**
 * warren, nest-rmq, golevelup: same delivery semantics (acked after the handler, prefetch BENCH_PREFETCH) and TCP_NODELAY
 * on (amqplib's default is off: Nagle + the kernel's delayed ACK add ~40 ms to every request/reply). Opt-in references:
 * nest-rmq-noack (Nest RMQ's no-ack consumer and unlimited prefetch, i.e. at-most-once; TCP_NODELAY on),
 * nest-rmq-stock and golevelup-stock (every setting at the library's default, Nagle included), warren-publisher
 * (events through Warren's AmqpPublisher instead of AmqpClient.emit; events scenario only), warren-no-otel and
 * warren-otel (Warren without @opentelemetry/api at all, and with the OpenTelemetry SDK tracing every message and
 * recording every metric; 'warren' itself has the API, the repository's dev dependency, and no SDK), floor-warren and
 * floor-amqplib (the same traffic on Warren's AmqpSession / on amqplib with no Nest at all: the transport floor).
 */
export const NEST_LIBRARIES = [
  'warren',
  'nest-rmq',
  'golevelup',
  'nest-rmq-noack',
  'nest-rmq-stock',
  'golevelup-stock',
  'warren-publisher',
  'warren-no-otel',
  'warren-otel',
  'floor-warren',
  'floor-amqplib',
] as const;
export type NestLibrary = (typeof NEST_LIBRARIES)[number];
/** Run unless BENCH_LIBS says otherwise; the reference variants but Warren's no-Nest floor are opt-in. */
export const DEFAULT_LIBRARIES: readonly NestLibrary[] = ['warren', 'nest-rmq', 'golevelup', 'floor-warren'];
/** Peers Warren is measured against (targets, ratios): same delivery semantics as Warren (acked after the handler). */
export const TARGET_PEERS: readonly NestLibrary[] = ['nest-rmq', 'golevelup'];

export type NestScenario = 'rpc-seq' | 'rpc-conc' | 'events';
export const NEST_SCENARIOS: readonly NestScenario[] = ['rpc-seq', 'rpc-conc', 'events'];
/** Libraries that only make sense in some scenarios (skipped elsewhere). */
export const ONLY_IN: Partial<Record<NestLibrary, readonly NestScenario[]>> = { 'warren-publisher': ['events'] };

export interface NestTask {
  lib: NestLibrary;
  scenario: NestScenario;
  url: string;
  /** Queue of the RPC handler (and, for Nest RMQ, of the event handler too: one queue per server). */
  rpcQueue: string;
  /** Queue of the event handler (Warren, golevelup). */
  eventQueue: string;
  /** Direct exchange the Warren and golevelup handlers are bound to (Nest RMQ publishes to the queue). */
  exchange: string;
  /** Measured calls or events. */
  messages: number;
  /** Unmeasured calls or events first (JIT, channels, reply consumers). */
  warmup: number;
  /** Calls in flight (1 = sequential). */
  inFlight: number;
  /** Unconfirmed emits at most (events). */
  emitWindow: number;
  /** Consumer prefetch of every handler queue. */
  prefetch: number;
  /** Per-scenario stall limit inside the worker, ms: reports progress instead of hanging. */
  stallMs: number;
  /** pid of the local RabbitMQ node (beam.smp), to read its CPU time around the timed part; absent if not local. */
  brokerPid?: number;
}

export const RPC_PATTERN = 'bench.rpc';
export const EVENT_PATTERN = 'bench.event';

export interface RpcRequest {
  n: number;
}
export interface RpcReply {
  n: number;
}
export interface BenchEvent {
  i: number;
}

/** What each library adapter implements; one instance per worker process (server and client in the same process). */
export interface NestBench {
  readonly name: string;
  /** Build the Nest app(s), start the server, connect the client (not measured). */
  setup(task: NestTask, sink: EventSink, logger: LoggerService): Promise<void>;
  /** One RPC round trip: resolves with the handler's reply. */
  call(req: RpcRequest): Promise<RpcReply>;
  /** One event; resolves when the library says it is sent (on the broker's confirm for all three). */
  emit(event: BenchEvent): Promise<void>;
  /** Versions and resolution facts for the report. */
  describe(): Record<string, string>;
  teardown(): Promise<void>;
}

/** Counts events seen by the handler; resolves when the expected number has arrived. */
export class EventSink {
  seen = 0;
  /** Called after each counted event (the worker tracks stalls with it). */
  onHit: (() => void) | null = null;
  private target = Infinity;
  private resolveDone: (() => void) | null = null;

  /** Reset the count and wait for n more events. */
  expect(n: number): Promise<void> {
    this.seen = 0;
    this.target = n;
    return new Promise((resolve) => {
      this.resolveDone = resolve;
      if (this.seen >= this.target) resolve();
    });
  }

  hit(): void {
    this.seen++;
    this.onHit?.();
    if (this.seen >= this.target && this.resolveDone) {
      const done = this.resolveDone;
      this.resolveDone = null;
      done();
    }
  }
}

export interface LatencyStats {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
  /** Calls slower than 10 × p50 (outliers), and the slowest few with their index. */
  over10xP50: number;
  slowest: Array<{ index: number; ms: number }>;
}

export interface WorkerResult {
  library?: string;
  messages?: number;
  wallMs?: number;
  perSec?: number;
  cpuMs?: number;
  cpuMsPer1k?: number;
  peakRssMiB?: number;
  latency?: LatencyStats;
  /** CPU time of the local RabbitMQ node over the timed part (shared with whatever else uses the broker). */
  brokerCpuMs?: number;
  /** Longest event-loop delay during the timed part (GC pauses, long synchronous work, CPU starvation). */
  eventLoopMaxMs?: number;
  /** Longest time without a completed call / handled event during the timed part, and the count it ended at. */
  longestGapMs?: number;
  longestGapAt?: number;
  /** When that gap ended, ms since the worker process started (to line up with --trace-gc output). */
  longestGapEndedAtMs?: number;
  /** Events: when the last emit was confirmed, ms after the first emit. */
  emitsConfirmedMs?: number;
  versions?: Record<string, string>;
  /** Warnings and errors the libraries logged (deduplicated, counted). */
  logs?: Array<{ level: string; text: string; count: number }>;
  error?: string;
  errorStack?: string;
}

export const RESULT_PREFIX = 'RESULT ';

export { pipelined } from '../lib/pipelined';

export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/** A package's version as this process resolves it (works for packages whose `exports` hide package.json). */
export function pkgVersion(name: string, from: string = __dirname): string {
  try {
    let dir = path.dirname(require.resolve(name, { paths: [from] }));
    for (;;) {
      const file = path.join(dir, 'package.json');
      if (existsSync(file)) {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return `${pkg.version ?? '?'} (${path.relative(process.cwd(), dir)})`;
      }
      const up = path.dirname(dir);
      if (up === dir) return '?';
      dir = up;
    }
  } catch {
    return '?';
  }
}

/** utime + stime of a process, ms (Linux /proc; CLK_TCK 100); undefined when not readable. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}
