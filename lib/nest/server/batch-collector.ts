import { Deferred } from '../../amqp/deferred';
import type { ResolvedBatchOptions } from './batch-options';

/**
 * Gathers the messages of one batch handler until `size` of them arrived, or `timeoutMs` after the first one, then
 * hands them over as one batch. Each `add` returns the promise of its batch being handled: the delivery's promise for
 * the session, whose draining cancel waits for it.
 */
export class BatchCollector<T> {
  private items: T[] = [];
  private handled: Deferred | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;

  /** `handOver` runs the handler on a batch; it never rejects (the consumer logs failures itself). */
  constructor(
    private readonly options: ResolvedBatchOptions,
    private readonly handOver: (items: T[]) => Promise<void>,
  ) {}

  /** Messages in the open batch. */
  get length(): number {
    return this.items.length;
  }

  add(item: T): Promise<void> {
    if (!this.handled) {
      this.handled = new Deferred();
      this.timer = setTimeout(this.flush, this.options.timeoutMs);
    }
    const handled = this.handled;
    this.items.push(item);
    if (this.items.length >= this.options.size) this.flush();
    return handled.promise;
  }

  /** Hand the open batch over now (full, timed out, or its consumer is stopping); a no-op when none is open. */
  readonly flush = (): void => {
    const handled = this.handled;
    if (!handled) return;
    if (this.timer) clearTimeout(this.timer);
    const items = this.items;
    this.items = [];
    this.handled = null;
    this.timer = null;
    const done = (): void => handled.resolve();
    this.handOver(items).then(done, done);
  };
}
