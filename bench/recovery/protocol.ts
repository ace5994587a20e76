/**
 * What the recovery bench's parent (run.ts) and its workers (worker.ts, one process per library and scenario) say to
 * each other over the IPC channel, and the adapter shape every library implements. No runtime dependencies: the
 * worker is compiled with swc and runs on plain node.
 */

export const RECOVERY_LIBRARIES = ['warren', 'amqp-connection-manager', 'rabbitmq-client'] as const;
export type RecoveryLibrary = (typeof RECOVERY_LIBRARIES)[number];

export interface RecoveryTask {
  lib: RecoveryLibrary;
  url: string;
  /** client property connection_name (prefix, for libraries with several connections); the parent kills by it. */
  connectionName: string;
  heartbeat: number;
  queue: string;
  messages: number;
  bodySize: number;
  inFlight: number;
  prefetch: number;
  /** Publishing is paced over this many ms, so that the faults land in the middle of the run. */
  paceMs: number;
  /** Stop waiting for publish settlements this many ms after the start. */
  publishDeadlineMs: number;
  /** After publishing: wait at most this long for the consumer to see every confirmed message... */
  drainMaxMs: number;
  /** ...and give up early once nothing was delivered for this long. */
  drainQuietMs: number;
}

/** Monotonic milliseconds (CLOCK_MONOTONIC on Linux), comparable between the parent and its workers. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export interface LibraryEvent {
  /** nowMs() of the first occurrence. */
  t: number;
  text: string;
  /** Occurrences of this text with digits masked (e.g. one line per dropped ack). */
  count: number;
}

export interface WorkerReport {
  library: string;
  t0: number;
  /** Per seq: 0 unsettled, 1 confirmed (resolved), 2 rejected. */
  outcome: number[];
  /** Per seq: nowMs() of the settlement, 0 when unsettled. */
  settledAt: number[];
  /** Rejection messages with counts. */
  rejections: Record<string, number>;
  /** Every delivery to the consumer, in order. */
  deliveries: { t: number[]; seq: number[]; redelivered: number[] };
  publishEndedAt: number;
  drainEndedAt: number;
  drainReason: string;
  events: LibraryEvent[];
  /** This process's event-loop delay over the run (perf_hooks), ms: a loaded box shows here, not in the library. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  error?: string;
}

export type WorkerMessage =
  | { type: 'ready'; t: number }
  | { type: 'progress'; settled: number; confirmed: number; rejected: number; consumed: number }
  | { type: 'result'; report: WorkerReport }
  | { type: 'closed'; ms: number; error?: string }
  | { type: 'failed'; stage: string; error: string; events: LibraryEvent[] };

export type ParentMessage = { type: 'start'; t0: number } | { type: 'stop' };

export interface AdapterOptions {
  url: string;
  connectionName: string;
  heartbeat: number;
  queue: string;
  prefetch: number;
  /** Library events and log lines worth keeping (connects, disconnects, errors). */
  onEvent: (text: string) => void;
}

/** One library as Nest users get it: its own recovery, no retries added here. */
export interface RecoveryAdapter {
  readonly name: string;
  /** Connect and declare the durable queue. */
  connect(options: AdapterOptions): Promise<void>;
  /** Start a manual-ack consumer with options.prefetch; onMessage runs before the ack. */
  consume(onMessage: (body: Buffer, redelivered: boolean) => void): Promise<void>;
  /** One persistent publish to the default exchange, routing key = queue, headers { seq }; settles on the confirm. */
  publish(seq: number, body: Buffer): Promise<void>;
  close(): Promise<void>;
}
