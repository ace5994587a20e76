import { RABBIT_DURATION } from './declare-options';
import { ConfigError } from './errors';
import type { FieldTable, FieldValue } from './protocol/field-table';

/**
 * Where a stream consumer starts (`x-stream-offset`): `'first'` (the oldest message kept), `'last'` (the
 * last chunk written), `'next'` (only what is published from now on; RabbitMQ's default), an offset (a
 * message's position in the stream, from 0), a `Date` (the first chunk written at or after it, to the
 * second), or an interval back from now such as `'1h'` or `'7D'` (units Y, M, D, h, m, s).
 */
export type StreamOffset = 'first' | 'last' | 'next' | number | bigint | Date | string;

/**
 * Keeps a stream consumer's position across restarts of the application. `load()` is called before the
 * consumer's first attach: the offset it returns is the last one processed, so consuming resumes at the
 * one after it (`undefined`: start at the consumer's `offset`). `save(offset)` is called, not awaited,
 * each time the position moves on, with the highest offset below which everything has been processed
 * (acked, nacked or rejected); a rejection of it is logged. Debounce in `save` if writing is costly.
 */
export interface StreamOffsetStore {
  /**
   * The last offset processed, or `undefined` to start at the consumer's `offset`. Called once, before the consumer's
   * first attach, which waits for it. A throw or a rejection fails that attach, and so does a value that is not an
   * integer 0 or more (a `ConfigError`): `consume` rejects.
   */
  load(): Promise<number | undefined> | number | undefined;
  /**
   * Record `offset`: everything up to and including it has been processed. Called, not awaited, each time the
   * position moves on; a throw or a rejection is logged, and the next move calls it again.
   */
  save(offset: number): Promise<void> | void;
}

/** A consumer's `offset` option checked and turned into the `x-stream-offset` argument's value. */
export function streamOffsetArgument(field: string, offset: unknown): FieldValue {
  if (offset === 'first' || offset === 'last' || offset === 'next') return offset;
  if (typeof offset === 'string') {
    if (RABBIT_DURATION.test(offset)) return offset;
    throw new ConfigError(
      field,
      `must be 'first', 'last', 'next', an offset, a Date or an interval such as '30m', '1h', '7D' (units Y, M, D, h, m, s); got '${offset}'`,
    );
  }
  // Sent as int64 (`l`) whatever its size: that is how RabbitMQ's own clients send an offset.
  if (typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0) return BigInt(offset);
  if (typeof offset === 'bigint' && offset >= 0n) return offset;
  if (offset instanceof Date && !Number.isNaN(offset.getTime())) return offset;
  throw new ConfigError(
    field,
    `must be 'first', 'last', 'next', an offset (an integer, 0 or more), a Date or an interval; got ${describe(offset)}`,
  );
}

function describe(value: unknown): string {
  if (value instanceof Date) return 'an invalid Date';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return `a ${value === null ? 'null' : typeof value}`;
}

/** The offset RabbitMQ gives a delivery from a stream (header `x-stream-offset`), or undefined. */
export function deliveryStreamOffset(headers: FieldTable | undefined): number | undefined {
  const v = headers?.['x-stream-offset'];
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/**
 * A stream consumer's position: the offset after which nothing delivered is still unprocessed. Deliveries
 * arrive in offset order; they may be settled out of order (handlers run concurrently), so the position
 * only moves past an offset once it and every earlier delivery are settled. On a re-attach the consumer
 * resumes at `resumeAt` — the oldest delivery not yet settled — instead of its original `offset`, so at
 * most the in-flight window is seen twice and nothing is skipped.
 */
export class StreamPosition {
  /** Offsets delivered on the current channel and not yet settled, oldest first, from `head` on. */
  private pending: number[] = [];
  private head = 0;
  private readonly settledEarly = new Set<number>();
  /** One past the highest offset below which everything is settled; undefined before the first. */
  private next: number | undefined;

  constructor(private readonly onAdvance?: (processed: number) => void) {}

  /** Start from `processed` + 1 (an offset store's saved position). */
  restore(processed: number): void {
    this.next = processed + 1;
  }

  /** Where a re-attach resumes: the oldest unsettled delivery, else one past the last settled; undefined if none yet. */
  get resumeAt(): number | undefined {
    return this.head < this.pending.length ? this.pending[this.head] : this.next;
  }

  /** A new channel: what was delivered on the old one and not settled comes again from `resumeAt`. */
  reattached(): void {
    const at = this.resumeAt;
    this.pending = [];
    this.head = 0;
    this.settledEarly.clear();
    this.next = at;
  }

  delivered(offset: number): void {
    this.pending.push(offset);
  }

  settled(offset: number): void {
    if (this.pending[this.head] !== offset) {
      this.settledEarly.add(offset);
      return;
    }
    let last = offset;
    this.head++;
    while (this.head < this.pending.length && this.settledEarly.delete(this.pending[this.head] as number)) {
      last = this.pending[this.head] as number;
      this.head++;
    }
    // Compact now and then instead of shifting per settle.
    if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
    this.next = last + 1;
    this.onAdvance?.(last);
  }
}
