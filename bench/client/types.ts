/** What every client library adapter implements; one instance per worker process. */
export interface ClientBench {
  name: string;
  /** Connect (not measured). */
  setup(url: string): Promise<void>;
  /** Publish n messages to the default exchange, routing key = queue, no confirms; resolve once the queue holds n. */
  publishNoConfirm(queue: string, n: number, body: Buffer): Promise<void>;
  /** Publish n messages with publisher confirms, at most `inFlight` unconfirmed; resolve once all are confirmed. */
  publishConfirm(queue: string, n: number, inFlight: number, body: Buffer): Promise<void>;
  /** Consume n messages (already in the queue) with the given prefetch, one ack per message. */
  consume(queue: string, n: number, prefetch: number): Promise<void>;
  /** Disconnect (not measured). */
  teardown(): Promise<void>;
}

/**
 * How many unresolved publish promises a promise-based adapter keeps for publishNoConfirm (BENCH_PUBLISH_WINDOW,
 * default 1: `await` each publish, which is how those libraries document backpressure).
 */
export function publishWindow(): number {
  const w = Number(process.env.BENCH_PUBLISH_WINDOW ?? '1');
  return Number.isInteger(w) && w >= 1 ? w : 1;
}

export { pipelined } from '../lib/pipelined';

/**
 * Polls `count()` until it reports at least n (broker state has no event to wait on); short pause between polls so
 * the client does not spin. Throws after timeoutMs.
 */
export async function waitForCount(count: () => Promise<number>, n: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await count();
    if (c >= n) return;
    if (Date.now() > deadline) throw new Error(`queue holds ${c} of ${n} messages after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
