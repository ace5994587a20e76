import { UnroutableError, type AmqpError, type ReturnedMessage } from './errors';

/** A publish waiting for its confirm: told once, by the broker's ack or nack or the channel's end. */
export interface ConfirmWaiter {
  onConfirm(): void;
  onFail(err: Error): void;
  /** Set when a basic.return matched this publish: the ack that follows settles it as unroutable. */
  returned?: Error;
}

type Pending = ConfirmWaiter;

/** A pending mandatory publish: where a basic.return for it would come from. */
interface MandatoryPublish {
  tag: number;
  exchange: string;
  routingKey: string;
}

/**
 * Publisher-confirm bookkeeping for one channel. Delivery tags are sequential from 1, so pending
 * publishes live in a deque indexed by `tag - base`: O(1) to add, settle one, or settle a
 * `multiple` range; out-of-order single acks leave holes that the base skips over.
 *
 * It also pairs a basic.return with the publish it answers: the broker sends the return before the
 * ack of a mandatory publish it could not route, and a return carries no delivery tag, so the oldest
 * pending mandatory publish to the same exchange and routing key is the one (as amqp091-go does).
 */
export class Confirms {
  private next = 1;
  private base = 1;
  private slots: Array<Pending | null> = [];
  private head = 0;
  private count = 0;
  /** Pending mandatory publishes, oldest first (settled ones are pruned from the front). */
  private mandatory: MandatoryPublish[] = [];

  /** Tag the next publish will carry. */
  get nextTag(): number {
    return this.next;
  }

  get unconfirmed(): number {
    return this.count;
  }

  /**
   * Register a publish; returns its delivery tag. A `mandatory` publish may be answered by a
   * basic.return from `exchange` with `routingKey` (see matchReturn).
   */
  add(entry: Pending, mandatory = false, exchange = '', routingKey = ''): number {
    const tag = this.next++;
    this.slots.push(entry);
    this.count++;
    if (mandatory) this.mandatory.push({ tag, exchange, routingKey });
    return tag;
  }

  /** Look up a pending publish. */
  get(tag: number): Pending | null {
    const i = this.head + (tag - this.base);
    return i >= this.head && i < this.slots.length ? this.slots[i] : null;
  }

  /** A basic.return: the oldest pending mandatory publish to its exchange and key will fail as unroutable. */
  matchReturn(returned: ReturnedMessage): void {
    for (const p of this.mandatory) {
      const pending = this.get(p.tag);
      if (pending && !pending.returned && p.exchange === returned.exchange && p.routingKey === returned.routingKey) {
        pending.returned = new UnroutableError(returned);
        return;
      }
    }
  }

  ack(tag: number, multiple: boolean): void {
    this.settle(tag, multiple, null);
  }

  nack(tag: number, multiple: boolean, makeError: (tag: number) => Error): void {
    this.settle(tag, multiple, makeError);
  }

  /** Reject everything still pending (channel or connection closed). */
  failAll(err: AmqpError): void {
    const slots = this.slots;
    this.mandatory = [];
    for (let i = this.head; i < slots.length; i++) slots[i]?.onFail(err);
    this.slots = [];
    this.head = 0;
    this.base = this.next;
    this.count = 0;
  }

  private settle(tag: number, multiple: boolean, makeError: ((tag: number) => Error) | null): void {
    const slots = this.slots;
    const last = this.head + (tag - this.base);
    if (last >= slots.length) return; // a tag we never issued: ignore rather than throw on the read path
    const first = multiple ? this.head : last;
    for (let i = Math.max(first, this.head); i <= last; i++) {
      const p = slots[i];
      if (!p) continue;
      slots[i] = null;
      this.count--;
      const t = this.base + (i - this.head);
      if (makeError) p.onFail(makeError(t));
      else if (p.returned) p.onFail(p.returned);
      else p.onConfirm();
    }
    // Advance past settled slots; compact now and then so the array does not grow forever.
    while (this.head < slots.length && slots[this.head] === null) {
      this.head++;
      this.base++;
    }
    if (this.head > 1024 && this.head * 2 > slots.length) {
      this.slots = slots.slice(this.head);
      this.head = 0;
    }
    if (this.mandatory.length > 0) this.pruneMandatory();
  }

  /** Drop settled publishes from the front of the mandatory list. */
  private pruneMandatory(): void {
    const mandatory = this.mandatory;
    let i = 0;
    while (i < mandatory.length && this.get(mandatory[i].tag) === null) i++;
    if (i > 0) mandatory.splice(0, i);
  }
}
