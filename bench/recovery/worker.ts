import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  type LibraryEvent,
  type ParentMessage,
  type RecoveryAdapter,
  type RecoveryLibrary,
  type RecoveryTask,
  type WorkerMessage,
  type WorkerReport,
  nowMs,
} from './protocol';

/**
 * One library through one fault scenario, in its own process (started by run.ts, compiled to plain JS, with an IPC
 * channel). Connects, starts the consumer, says 'ready'; on 'start' publishes `messages` persistent messages with
 * confirms (at most `inFlight` unsettled, paced over `paceMs`), records every settlement and delivery, then waits for
 * the consumer to catch up and sends its report. The parent injects the faults; this process only observes.
 */

const MAX_EVENTS = 400;

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, undefined, () => resolve());
  });
}

async function load(lib: RecoveryLibrary): Promise<RecoveryAdapter> {
  switch (lib) {
    case 'warren':
      return new (await import('./adapters/warren')).WarrenRecovery();
    case 'amqp-connection-manager':
      return new (await import('./adapters/amqp-connection-manager')).AmqpConnectionManagerRecovery();
    case 'rabbitmq-client':
      return new (await import('./adapters/rabbitmq-client')).RabbitmqClientRecovery();
  }
}

/** First line of an error, with runs of a repeated '; X' suffix collapsed (rabbitmq-client chains them), ≤ 200 chars. */
function message(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message.split('\n')[0]}` : String(err);
  return text.replace(/(; [^;]+)(?:\1)+/g, '$1 (repeated)').slice(0, 200);
}

/** Keeps the first occurrence of each event text (digits masked) with a count, up to MAX_EVENTS texts. */
class EventLog {
  readonly list: LibraryEvent[] = [];
  private readonly byKey = new Map<string, LibraryEvent>();
  dropped = 0;

  add(raw: string): void {
    const text = raw.replace(/(; [^;]+)(?:\1)+/g, '$1 (repeated)').slice(0, 300);
    const key = text.replace(/\d+/g, '#');
    const seen = this.byKey.get(key);
    // Repeats of a recent text only count; a text that comes back after others is logged again (sequence matters).
    const last = this.list[this.list.length - 1];
    if (seen && (seen === last || seen.count > 20)) {
      seen.count++;
      return;
    }
    if (this.list.length >= MAX_EVENTS) {
      this.dropped++;
      return;
    }
    const ev = { t: nowMs(), text, count: 1 };
    this.list.push(ev);
    this.byKey.set(key, ev);
  }
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '') as RecoveryTask;
  const events = new EventLog();
  const n = task.messages;
  const outcome = new Uint8Array(n);
  const settledAt = new Float64Array(n);
  const rejections: Record<string, number> = {};
  const deliveries = { t: [] as number[], seq: [] as number[], redelivered: [] as number[] };
  const seen = new Uint8Array(n);
  let confirmed = 0;
  let rejected = 0;
  let consumedConfirmedMissing = 0; // confirmed seqs not yet seen by the consumer
  let lastDelivery = 0;
  let wakeDrain: (() => void) | null = null;

  let stage = 'load';
  let adapter: RecoveryAdapter;
  try {
    adapter = await load(task.lib);
    stage = 'connect';
    await adapter.connect({
      url: task.url,
      connectionName: task.connectionName,
      heartbeat: task.heartbeat,
      queue: task.queue,
      prefetch: task.prefetch,
      onEvent: (text) => events.add(text),
    });
    stage = 'consume';
    await adapter.consume((body, redelivered) => {
      const t = nowMs();
      const seq = body.length >= 4 ? body.readUInt32BE(0) : -1;
      deliveries.t.push(t);
      deliveries.seq.push(seq);
      deliveries.redelivered.push(redelivered ? 1 : 0);
      lastDelivery = t;
      if (seq >= 0 && seq < n) {
        if (seen[seq] === 0 && outcome[seq] === 1) consumedConfirmedMissing--;
        if (seen[seq] < 255) seen[seq]++;
      }
      if (wakeDrain && consumedConfirmedMissing === 0) wakeDrain();
    });
  } catch (err) {
    await send({ type: 'failed', stage, error: message(err), events: events.list });
    process.exit(1);
  }

  const start = await new Promise<number>((resolve) => {
    process.on('message', (m: ParentMessage) => {
      if (m.type === 'start') resolve(m.t0);
      if (m.type === 'stop') process.exit(2);
    });
    void send({ type: 'ready', t: nowMs() });
  });

  // ---- publish: paced, at most inFlight unsettled ----
  stage = 'publish';
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const perMessageMs = task.paceMs / n;
  const deadline = start + task.publishDeadlineMs;
  let next = 0;
  let pending = 0;
  let settled = 0;
  await new Promise<void>((resolve) => {
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearInterval(ticker);
      clearInterval(reporter);
      resolve();
    };
    const settle = (seq: number, ok: boolean, err?: unknown): void => {
      if (outcome[seq] !== 0) {
        events.add(`publish ${seq} settled twice`);
        return;
      }
      settledAt[seq] = nowMs();
      outcome[seq] = ok ? 1 : 2;
      pending--;
      settled++;
      if (ok) {
        confirmed++;
        if (seen[seq] === 0) consumedConfirmedMissing++;
      } else {
        rejected++;
        const text = message(err);
        rejections[text] = (rejections[text] ?? 0) + 1;
      }
      pump();
    };
    const pump = (): void => {
      if (finished) return;
      const now = nowMs();
      while (pending < task.inFlight && next < n && now >= start + next * perMessageMs) {
        const seq = next++;
        pending++;
        const body = Buffer.alloc(task.bodySize);
        body.writeUInt32BE(seq, 0);
        let p: Promise<void>;
        try {
          p = adapter.publish(seq, body);
        } catch (err) {
          p = Promise.reject(err);
        }
        p.then(
          () => settle(seq, true),
          (err: unknown) => settle(seq, false, err),
        );
      }
      if (settled === n || now >= deadline) finish();
    };
    const ticker = setInterval(pump, 2);
    const reporter = setInterval(
      () => void send({ type: 'progress', settled, confirmed, rejected, consumed: deliveries.t.length }),
      1000,
    );
    pump();
  });
  const publishEndedAt = nowMs();

  // ---- drain: until the consumer has seen every confirmed message, or it went quiet ----
  stage = 'drain';
  const drainDeadline = publishEndedAt + task.drainMaxMs;
  let drainReason = 'all confirmed messages consumed';
  while (consumedConfirmedMissing > 0) {
    const now = nowMs();
    if (now >= drainDeadline) {
      drainReason = `drain deadline (${task.drainMaxMs} ms)`;
      break;
    }
    if (now - Math.max(lastDelivery, publishEndedAt) >= task.drainQuietMs) {
      drainReason = `no delivery for ${task.drainQuietMs} ms`;
      break;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 100);
      wakeDrain = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    wakeDrain = null;
  }
  const drainEndedAt = nowMs();
  loopDelay.disable();
  const ms = (ns: number): number => Math.round(ns / 1e5) / 10;

  const report: WorkerReport = {
    library: adapter.name,
    t0: start,
    outcome: Array.from(outcome),
    settledAt: Array.from(settledAt, (t) => Math.round(t * 1000) / 1000),
    rejections,
    deliveries,
    publishEndedAt,
    drainEndedAt,
    drainReason,
    eventLoopDelayMs: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) },
    events: events.dropped
      ? [...events.list, { t: nowMs(), text: `(${events.dropped} more events dropped)`, count: 1 }]
      : events.list,
  };
  await send({ type: 'result', report });

  // ---- close (bounded): a library that hangs here still delivered its report ----
  const c0 = nowMs();
  let closeError: string | undefined;
  await Promise.race([
    adapter.close().catch((err: unknown) => {
      closeError = message(err);
    }),
    new Promise<void>((resolve) =>
      setTimeout(() => {
        closeError = 'close() did not finish within 5 s';
        resolve();
      }, 5000).unref(),
    ),
  ]);
  await send({ type: 'closed', ms: Math.round(nowMs() - c0), error: closeError });
}

if (require.main === module) {
  main().then(
    // Libraries may keep timers or sockets after close(); the report is out, so leave now.
    () => process.exit(0),
    async (err: unknown) => {
      await send({ type: 'failed', stage: 'worker', error: message(err), events: [] });
      process.exit(1);
    },
  );
}
