import { TimeoutError, UnroutableError, type AmqpError, type ReturnedMessage } from './errors';

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
 *
 * And it bounds the wait for a confirm: a publish unconfirmed after `timeoutMs` fails with a
 * TimeoutError (it may still have been delivered), and a late ack for it is ignored. One timer per
 * channel, armed for the oldest pending publish (pending publishes are in tag order, so oldest
 * first); when it fires it fails what has expired and re-arms for the new oldest. Acks never touch
 * the timer, except the one that leaves nothing pending, which clears it.
 */
export class Confirms {
  private next = 1;
  private base = 1;
  private slots: Array<Pending | null> = [];
  /** When each slot's publish was sent (Date.now()), parallel to `slots`; kept only with a timeout. */
  private sentAt: number[] = [];
  private head = 0;
  private count = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Pending mandatory publishes, oldest first (settled ones are pruned from the front). */
  private mandatory: MandatoryPublish[] = [];

  /**
   * `timeoutMs`: how long a publish may wait for its confirm (0: forever). `onTimedOut` runs after
   * publishes failed for lack of one (the channel re-checks whether it is idle).
   */
  constructor(
    private readonly timeoutMs = 0,
    private readonly onTimedOut: () => void = () => undefined,
  ) {}

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
    if (this.timeoutMs > 0) {
      this.sentAt.push(Date.now());
      if (this.timer === null) this.arm(this.timeoutMs);
    }
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
    this.disarm();
    for (let i = this.head; i < slots.length; i++) slots[i]?.onFail(err);
    this.slots = [];
    this.sentAt = [];
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
    this.advance();
    if (this.count === 0) this.disarm();
  }

  /** Advance past settled slots; compact now and then so the arrays do not grow forever. */
  private advance(): void {
    const slots = this.slots;
    while (this.head < slots.length && slots[this.head] === null) {
      this.head++;
      this.base++;
    }
    if (this.head > 1024 && this.head * 2 > slots.length) {
      this.slots = slots.slice(this.head);
      if (this.timeoutMs > 0) this.sentAt = this.sentAt.slice(this.head);
      this.head = 0;
    }
    if (this.mandatory.length > 0) this.pruneMandatory();
  }

  /** Not unref'd: a publish awaiting its confirm keeps the process alive, as its socket does. */
  private arm(ms: number): void {
    this.timer = setTimeout(this.expire, ms);
  }

  private disarm(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** The timer fired: fail every publish sent `timeoutMs` ago or earlier, re-arm for the oldest left. */
  private readonly expire = (): void => {
    // `timer` stays set while callbacks run, so a publish made from one does not arm a second timer.
    const ms = this.timeoutMs;
    const now = Date.now();
    const slots = this.slots;
    let failed = false;
    // Sent times grow with the tag: the expired publishes are a prefix of the pending ones.
    for (let i = this.head; i < slots.length && this.slots === slots; i++) {
      const p = slots[i];
      if (p === null) continue;
      if (now - this.sentAt[i] < ms) break;
      slots[i] = null;
      this.count--;
      failed = true;
      const tag = this.base + (i - this.head);
      p.onFail(
        new TimeoutError(
          `no publisher confirm for delivery tag ${tag} within ${ms} ms (the message may still have been delivered)`,
          'publish confirm',
          ms,
        ),
      );
    }
    if (this.slots === slots) this.advance();
    // A callback above may have closed the channel (failAll: nothing pending) or published more.
    this.timer = null;
    if (this.count > 0) this.arm(Math.max(1, this.sentAt[this.head] + ms - Date.now()));
    if (failed) this.onTimedOut();
  };

  /** Drop settled publishes from the front of the mandatory list. */
  private pruneMandatory(): void {
    const mandatory = this.mandatory;
    let i = 0;
    while (i < mandatory.length && this.get(mandatory[i].tag) === null) i++;
    if (i > 0) mandatory.splice(0, i);
  }
}
