/**
 * A channel's unsettled deliveries, so that acks can be coalesced: acks made during one tick leave
 * together at the connection's next write, as one `basic.ack multiple=true` for the settled prefix of
 * the delivery order (plus single acks for any settled past a delivery still being handled).
 *
 * Why: with acks after the handler, a busy consumer otherwise sends one ack frame per message, and the
 * broker spends a large share of its CPU on them. A multiple ack is only safe when every earlier
 * delivery still outstanding on the channel is settled too — hence the ledger of every delivery that
 * expects an ack, in delivery-tag order (tags grow with each delivery on a channel).
 */

/** Handled by the caller, not yet settled. */
const OUTSTANDING = 0;
/** Acked by the caller; the ack leaves at the next flush. */
const ACK_PENDING = 1;
/** Settled on the wire already (a single ack, nack or reject): a later multiple ack may cover it. */
const SETTLED = 2;

type State = typeof OUTSTANDING | typeof ACK_PENDING | typeof SETTLED;

/** What a flush sends: `basic.ack` frames, in order. */
export type AckSink = (deliveryTag: number, multiple: boolean) => void;

export class AckLedger {
  private tags: number[] = [];
  private states: State[] = [];
  private head = 0;
  private pending = 0;

  /** Acks waiting for the next flush. */
  get pendingAcks(): number {
    return this.pending;
  }

  /** Deliveries not yet settled on the wire (outstanding or with an ack pending). */
  get size(): number {
    return this.tags.length - this.head;
  }

  /** A delivery that expects an ack (not no-ack). Tags must grow. */
  delivered(deliveryTag: number): void {
    this.tags.push(deliveryTag);
    this.states.push(OUTSTANDING);
  }

  /**
   * Record an ack for the next flush. False when the ack cannot be deferred — the tag is unknown or
   * already settled — and must go out at once (after a flush), so the broker judges it as sent.
   */
  deferAck(deliveryTag: number): boolean {
    const i = this.indexOf(deliveryTag);
    if (i < 0 || this.states[i] !== OUTSTANDING) return false;
    this.states[i] = ACK_PENDING;
    this.pending++;
    return true;
  }

  /**
   * A single nack/reject (or an ack that could not be deferred) is going out now. Returns whether the
   * tag was outstanding here (false: unknown or already settled — let the broker judge it).
   */
  settledNow(deliveryTag: number): boolean {
    const i = this.indexOf(deliveryTag);
    if (i < 0 || this.states[i] !== OUTSTANDING) return false;
    this.states[i] = SETTLED;
    this.dropSettledPrefix();
    return true;
  }

  /** A multiple ack/nack up to `deliveryTag` went out (after a flush): everything up to it is settled. */
  settledUpTo(deliveryTag: number): void {
    while (this.head < this.tags.length && this.tags[this.head] <= deliveryTag) {
      if (this.states[this.head] === ACK_PENDING) this.pending--;
      this.head++;
    }
    this.compact();
  }

  /** Send the pending acks: one multiple ack for the settled prefix, single acks for the rest. */
  flush(send: AckSink): void {
    if (this.pending === 0) return;
    const { tags, states } = this;
    let i = this.head;
    let last = -1;
    for (; i < tags.length && states[i] !== OUTSTANDING; i++) {
      if (states[i] === ACK_PENDING) {
        last = tags[i];
        this.pending--;
      }
    }
    this.head = i;
    if (last >= 0) send(last, true);
    // Acks past a delivery still being handled cannot wait for it: send them one by one.
    for (; i < tags.length && this.pending > 0; i++) {
      if (states[i] === ACK_PENDING) {
        states[i] = SETTLED;
        this.pending--;
        send(tags[i], false);
      }
    }
    this.compact();
  }

  /** Forget everything (the channel closed, or basic.recover requeued every unacked delivery). */
  clear(): void {
    this.tags = [];
    this.states = [];
    this.head = 0;
    this.pending = 0;
  }

  private dropSettledPrefix(): void {
    const { tags, states } = this;
    // Only entries settled on the wire: a pending ack at the head must stay for the next flush.
    while (this.head < tags.length && states[this.head] === SETTLED) this.head++;
    this.compact();
  }

  private indexOf(deliveryTag: number): number {
    const { tags } = this;
    let lo = this.head;
    // Handlers mostly finish in delivery order: the head is the usual answer.
    if (lo < tags.length && tags[lo] === deliveryTag) return lo;
    let hi = tags.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const t = tags[mid];
      if (t === deliveryTag) return mid;
      if (t < deliveryTag) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Drop the settled head once it is a large share of the arrays (amortised O(1) per delivery). */
  private compact(): void {
    if (this.head === this.tags.length) {
      if (this.head > 0) {
        this.tags.length = 0;
        this.states.length = 0;
        this.head = 0;
      }
      return;
    }
    if (this.head >= 1024 && this.head * 2 >= this.tags.length) {
      this.tags = this.tags.slice(this.head);
      this.states = this.states.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * A channel's acks: single acks of tracked deliveries are deferred to the connection's next write
 * (where the tick's acks are coalesced by the AckLedger); every other settlement goes out at once,
 * after the deferred acks, so the broker sees settlements in call order.
 */
export class AckDeferral {
  private readonly ledger = new AckLedger();
  /** A flush is scheduled with the connection. */
  private queued = false;
  /**
   * tx.select was sent: every ack leaves at once as a single ack. A tx.rollback un-settles the acks it
   * undoes, which the ledger cannot follow, so a later multiple ack could cover them.
   */
  private txMode = false;

  /**
   * `send` writes one basic.ack; `schedule` asks the connection to call `scheduledFlush` before its
   * next write.
   */
  constructor(
    private readonly send: AckSink,
    private readonly schedule: () => void,
  ) {}

  /** Deliveries not yet settled on the wire. */
  get size(): number {
    return this.ledger.size;
  }

  /** A delivery that expects an ack. */
  delivered(deliveryTag: number): void {
    this.ledger.delivered(deliveryTag);
  }

  /** tx.select: from now on no ack is deferred. */
  enterTxMode(): void {
    this.txMode = true;
  }

  /**
   * A single ack: deferred to the next write when the delivery is tracked and outstanding. False: it
   * must go out now (see `settledNow`).
   */
  defer(deliveryTag: number): boolean {
    if (this.txMode || !this.ledger.deferAck(deliveryTag)) return false;
    if (!this.queued) {
      this.queued = true;
      this.schedule();
    }
    return true;
  }

  /** Send the deferred acks now (before any other method leaves). */
  flush(): void {
    if (this.ledger.pendingAcks > 0) this.ledger.flush(this.send);
  }

  /** The connection is about to write: send the deferred acks if the channel can still carry them. */
  scheduledFlush(channelOpen: boolean): void {
    this.queued = false;
    if (channelOpen) this.flush();
  }

  /** A settlement of `deliveryTag` (or, `multiple`, of everything up to it) just went out. */
  settled(deliveryTag: number, multiple: boolean): void {
    if (multiple) this.ledger.settledUpTo(deliveryTag);
    else this.ledger.settledNow(deliveryTag);
  }

  /** Forget every delivery (the channel closed, or basic.recover requeued every unacked one). */
  clear(): void {
    this.ledger.clear();
  }
}
