import fc from 'fast-check';
import { AckLedger } from '../../lib/amqp/ack-ledger';

/**
 * The ledger against a model of the broker's side of one channel: every frame it would send is applied
 * to a set of outstanding deliveries exactly as RabbitMQ does (a single settle of an unknown tag is a
 * channel error; a multiple ack settles every outstanding tag up to it). The channel's rules are the
 * ones in Channel: single acks are deferred when the ledger takes them; nacks, rejects and acks it
 * refuses leave at once, after a flush of the deferred ones.
 */
class BrokerModel {
  readonly outstanding = new Set<number>();
  readonly acked = new Set<number>();
  readonly nacked = new Set<number>();
  ackFrames = 0;

  deliver(tag: number): void {
    this.outstanding.add(tag);
  }

  ack(tag: number, multiple: boolean): void {
    this.ackFrames++;
    if (multiple) {
      for (const t of [...this.outstanding]) if (t <= tag) this.settle(t, this.acked);
      return;
    }
    if (!this.outstanding.has(tag)) throw new Error(`PRECONDITION_FAILED - unknown delivery tag ${tag}`);
    this.settle(tag, this.acked);
  }

  nack(tag: number): void {
    if (!this.outstanding.has(tag)) throw new Error(`PRECONDITION_FAILED - unknown delivery tag ${tag}`);
    this.settle(tag, this.nacked);
  }

  private settle(tag: number, into: Set<number>): void {
    this.outstanding.delete(tag);
    into.add(tag);
  }
}

/** The channel's side, as Channel drives its ledger. */
class ChannelModel {
  readonly ledger = new AckLedger();
  constructor(private readonly broker: BrokerModel) {}

  deliver(tag: number): void {
    this.broker.deliver(tag);
    this.ledger.delivered(tag);
  }

  ack(tag: number): void {
    if (this.ledger.deferAck(tag)) return;
    this.flush();
    this.broker.ack(tag, false);
    this.ledger.settledNow(tag);
  }

  nack(tag: number): void {
    this.flush();
    this.broker.nack(tag);
    this.ledger.settledNow(tag);
  }

  flush(): void {
    this.ledger.flush((tag, multiple) => this.broker.ack(tag, multiple));
  }
}

type Op = { kind: 'ack' | 'nack' | 'keep'; flushAfter: boolean };

describe('AckLedger', () => {
  it('coalesces in-order acks of one tick into one multiple ack', () => {
    const broker = new BrokerModel();
    const ch = new ChannelModel(broker);
    for (let tag = 1; tag <= 100; tag++) ch.deliver(tag);
    for (let tag = 1; tag <= 100; tag++) ch.ack(tag);
    expect(broker.ackFrames).toBe(0);
    ch.flush();
    expect(broker.ackFrames).toBe(1);
    expect(broker.acked.size).toBe(100);
    expect(ch.ledger.size).toBe(0);
  });

  it('never covers a delivery still being handled: acks past it leave one by one', () => {
    const broker = new BrokerModel();
    const ch = new ChannelModel(broker);
    for (let tag = 1; tag <= 5; tag++) ch.deliver(tag);
    ch.ack(1);
    ch.ack(2);
    ch.ack(4);
    ch.ack(5);
    ch.flush();
    expect([...broker.outstanding]).toEqual([3]);
    expect(broker.ackFrames).toBe(3); // multiple up to 2, then 4 and 5 alone
    ch.ack(3);
    ch.flush();
    expect(broker.outstanding.size).toBe(0);
    expect(ch.ledger.size).toBe(0);
  });

  it('a second ack of a tag is sent as is, so the broker judges it (406) as it would without coalescing', () => {
    const broker = new BrokerModel();
    const ch = new ChannelModel(broker);
    ch.deliver(1);
    ch.ack(1);
    expect(() => ch.ack(1)).toThrow(/unknown delivery tag 1/);
  });

  it('keeps every delivery settled exactly as the caller settled it, in any order and with any flush points', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            kind: fc.constantFrom<Op['kind']>('ack', 'ack', 'ack', 'nack', 'keep'),
            flushAfter: fc.boolean(),
          }),
          { minLength: 1, maxLength: 200 },
        ),
        fc.infiniteStream(fc.nat()),
        fc.nat({ max: 5 }),
        (ops, randomness, tagGap) => {
          const broker = new BrokerModel();
          const ch = new ChannelModel(broker);
          // Tags grow but need not be contiguous (no-ack deliveries on the same channel take numbers too).
          const tags = ops.map((_, i) => 1 + i * (1 + (tagGap % 2)));
          const order = [...tags.keys()];
          const rnd = randomness[Symbol.iterator]();
          // Handlers finish in a random order; deliveries keep arriving meanwhile.
          for (let i = order.length - 1; i > 0; i--) {
            const j = rnd.next().value % (i + 1);
            [order[i], order[j]] = [order[j], order[i]];
          }
          let delivered = 0;
          for (const i of order) {
            while (delivered <= i || (delivered < tags.length && rnd.next().value % 3 === 0))
              ch.deliver(tags[delivered++]);
            const op = ops[i];
            if (op.kind === 'ack') ch.ack(tags[i]);
            else if (op.kind === 'nack') ch.nack(tags[i]);
            if (op.flushAfter) ch.flush();
          }
          ch.flush();
          ops.forEach((op, i) => {
            const tag = tags[i];
            if (op.kind === 'ack') expect(broker.acked.has(tag)).toBe(true);
            if (op.kind === 'nack') expect(broker.nacked.has(tag)).toBe(true);
            if (op.kind === 'keep') expect(broker.outstanding.has(tag)).toBe(true);
          });
          expect(ch.ledger.pendingAcks).toBe(0);
          expect(ch.ledger.size).toBe(ops.filter((o) => o.kind === 'keep').length + countSettledBehindKept(ops));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('stays compact: a long run of in-order deliveries leaves nothing behind', () => {
    const broker = new BrokerModel();
    const ch = new ChannelModel(broker);
    for (let tag = 1; tag <= 50_000; tag++) {
      ch.deliver(tag);
      ch.ack(tag);
      if (tag % 37 === 0) ch.flush();
    }
    ch.flush();
    expect(broker.acked.size).toBe(50_000);
    expect(ch.ledger.size).toBe(0);
    expect(broker.ackFrames).toBeLessThan(50_000 / 30);
  });
});

/**
 * Entries the ledger still holds besides the kept (never settled) deliveries: those settled on the wire
 * behind the first kept one wait there until the head moves past them.
 */
function countSettledBehindKept(ops: Op[]): number {
  const firstKept = ops.findIndex((o) => o.kind === 'keep');
  if (firstKept < 0) return 0;
  return ops.slice(firstKept).filter((o) => o.kind !== 'keep').length;
}
