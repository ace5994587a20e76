import type { AmqpError, AmqpSession, SessionMessage, SessionRole } from '../../lib';

// The confirmed-publish workload shared by the session fault tests (connection kills, broker restart):
// a publisher with a bounded in-flight window, a tally of what the consumer saw, and an event log to
// wait on and to measure recovery with.

export function recordingLogger(): {
  lines: string[];
  debug: () => void;
  warn: (m: string) => void;
  error: (m: string) => void;
} {
  const lines: string[] = [];
  return {
    lines,
    debug: () => undefined,
    warn: (m) => lines.push(`warn: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
  };
}

/** Timestamps of every session event, per role, to wait on and to measure recovery with. */
export class EventLog {
  readonly entries: Array<{ at: number; event: string; role?: SessionRole; cause?: AmqpError }> = [];
  private waiters: Array<{ pred: (e: EventLog['entries'][number]) => boolean; resolve: () => void }> = [];

  constructor(session: AmqpSession) {
    for (const event of ['connected', 'recovered'] as const) session.on(event, (role) => this.push({ event, role }));
    session.on('disconnected', (role, cause) => this.push({ event: 'disconnected', role, cause }));
    session.on('reconnecting', (role) => this.push({ event: 'reconnecting', role }));
    session.on('recoveryFailed', (role) => this.push({ event: 'recoveryFailed', role }));
  }

  /** Resolves on the first matching event from now on. */
  next(event: string, role: SessionRole): Promise<void> {
    return new Promise((resolve) => this.waiters.push({ pred: (e) => e.event === event && e.role === role, resolve }));
  }

  last(event: string, role: SessionRole): EventLog['entries'][number] | undefined {
    return [...this.entries].reverse().find((e) => e.event === event && e.role === role);
  }

  /** ms from the last `disconnected` to the `recovered` that followed it, for this role. */
  recoveryMs(role: SessionRole): number {
    const down = this.last('disconnected', role);
    const up = this.last('recovered', role);
    if (!down || !up || up.at < down.at) return NaN;
    return up.at - down.at;
  }

  count(event: string, role?: SessionRole): number {
    return this.entries.filter((e) => e.event === event && (role === undefined || e.role === role)).length;
  }

  private push(e: Omit<EventLog['entries'][number], 'at'>): void {
    const entry = { ...e, at: Date.now() };
    this.entries.push(entry);
    for (const w of this.waiters.filter((x) => x.pred(entry))) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }
}

/** What a manual-ack consumer saw: unique message ids, total deliveries, and calls after a given moment. */
export class Tally {
  readonly ids = new Set<number>();
  deliveries = 0;
  redelivered = 0;
  callsAfterMark = 0;
  /** Deliveries whose ack is held back (see hold()). */
  readonly held: SessionMessage[] = [];
  private marked = false;
  private holding = false;
  private waiters: Array<{ done: () => boolean; resolve: () => void }> = [];

  readonly handler = (m: SessionMessage): void => {
    this.deliveries++;
    if (m.fields.redelivered) this.redelivered++;
    if (this.marked) this.callsAfterMark++;
    this.ids.add(Number(m.body.toString()));
    if (this.holding) this.held.push(m);
    // Ack a little later, as real handlers do.
    else setTimeout(() => m.ack(), 2);
    for (const w of this.waiters.filter((x) => x.done())) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  };

  /** From now on, count handler calls separately. */
  mark(): void {
    this.marked = true;
  }

  /** Stop acking: deliveries pile up unacked (up to the prefetch) until releaseHeld(). */
  hold(): void {
    this.holding = true;
  }

  /** Ack every held delivery now, and ack normally again. */
  releaseHeld(): void {
    this.holding = false;
    for (const m of this.held.splice(0)) m.ack();
  }

  uniqueAtLeast(n: number): Promise<void> {
    return this.until(() => this.ids.size >= n);
  }

  heldAtLeast(n: number): Promise<void> {
    return this.until(() => this.held.length >= n);
  }

  private until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ done, resolve }));
  }
}

/**
 * Publish `total` persistent messages (bodies '0'..'total-1') with at most `maxInFlight` unconfirmed;
 * `at(i)` runs before publish i is issued (it may wait, holding the publisher back).
 */
export async function publishAll(
  session: AmqpSession,
  queue: string,
  total: number,
  maxInFlight: number,
  at: (i: number) => Promise<void> | void,
  progress: { inFlight: number; issued: number } = { inFlight: 0, issued: 0 },
): Promise<{ confirmed: number; rejected: Error[] }> {
  let inFlight = 0;
  let confirmed = 0;
  const rejected: Error[] = [];
  let slot: (() => void) | null = null;
  let allDone: (() => void) | null = null;
  const settled = (): void => {
    inFlight--;
    progress.inFlight = inFlight;
    slot?.();
    slot = null;
    if (inFlight === 0) allDone?.();
  };
  for (let i = 0; i < total; i++) {
    await at(i);
    while (inFlight >= maxInFlight) await new Promise<void>((resolve) => (slot = resolve));
    inFlight++;
    progress.inFlight = inFlight;
    progress.issued = i + 1;
    session.publish('', queue, String(i), { persistent: true, messageId: String(i) }).then(
      () => {
        confirmed++;
        settled();
      },
      (err: Error) => {
        rejected.push(err);
        settled();
      },
    );
  }
  if (inFlight > 0) await new Promise<void>((resolve) => (allDone = resolve));
  return { confirmed, rejected };
}
