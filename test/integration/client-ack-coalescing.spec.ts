import { AmqpConnection, type Channel, type Message } from '../../lib';
import { amqpUrl, queueCounts, settledQueueCounts, uniqueName, waitFor } from '../support/broker';

jest.setTimeout(30_000);

const silentLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** A small deterministic generator: the same "random" handler timings on every run. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Consumes on `ch`, running `handle` on each message; resolves once `n` messages were handled. */
async function consumeN(ch: Channel, queue: string, n: number, handle: (m: Message) => void): Promise<void> {
  let seen = 0;
  let all!: () => void;
  const done = new Promise<void>((r) => (all = r));
  await ch.consume(queue, (m: Message) => {
    handle(m);
    if (++seen === n) all();
  });
  await done;
}

/** Waits `n` turns of the event loop: handlers finish out of delivery order and across writes. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

describe('coalesced consumer acks against the broker', () => {
  let conn: AmqpConnection;
  let pub: Channel;
  const queues: string[] = [];
  const exchanges: string[] = [];

  beforeAll(async () => {
    conn = await AmqpConnection.connect({
      url: amqpUrl(),
      logger: silentLogger,
      connectionName: 'warren-test-ack-coalescing',
    });
    pub = await conn.channel();
    await pub.confirmSelect();
  });

  afterAll(async () => {
    const ch = await conn.channel();
    for (const q of queues) await ch.queueDelete(q).catch(() => undefined);
    for (const x of exchanges) await ch.exchangeDelete(x).catch(() => undefined);
    await conn.close();
  });

  async function fill(queue: string, n: number): Promise<void> {
    await Promise.all(Array.from({ length: n }, (_, i) => pub.publish('', queue, Buffer.from(String(i)))));
  }

  /**
   * Ready messages once the broker holds none unacknowledged: what a closed channel left unacked goes back to the
   * queue asynchronously (a passive declare right after the close can be answered ahead of that requeue).
   */
  async function counts(queue: string): Promise<number> {
    return (await settledQueueCounts(queue)).ready;
  }

  /** Ready messages in a dead-letter queue once at least `n` arrived (dead-lettering trails the nack). */
  async function deadLettered(queue: string, n: number): Promise<number> {
    const c = await waitFor(
      async () => {
        const now = await queueCounts(queue);
        return now && now.ready >= n ? now : undefined;
      },
      10_000,
      `${n} dead-lettered message(s) in ${queue}`,
    );
    return c.ready;
  }

  it('sends far fewer ack frames than messages, and every message is acked', async () => {
    const queue = uniqueName('warren-ack-coalesce');
    queues.push(queue);
    await pub.queueDeclare(queue, { durable: false });
    await fill(queue, 500);

    // A connection of its own, so only this consumer's acks are counted.
    const consumerConn = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
    const settle = jest.spyOn(consumerConn.encoder, 'settle');
    const ch = await consumerConn.channel();
    await ch.qos(500);
    await consumeN(ch, queue, 500, (m) => ch.ack(m));
    await ch.close();
    const ackFrames = settle.mock.calls.filter(([, methodId]) => methodId === 80).length;
    await consumerConn.close();

    expect(await counts(queue)).toBe(0); // nothing was left unacked (it would be requeued by the close)
    expect(ackFrames).toBeGreaterThan(0);
    expect(ackFrames).toBeLessThan(100);
  });

  it('acks, nacks and unsettled deliveries in any order end exactly as the handler settled them', async () => {
    const queue = uniqueName('warren-ack-mixed');
    const dlx = uniqueName('warren-ack-mixed-dlx');
    const dead = uniqueName('warren-ack-mixed-dead');
    queues.push(queue, dead);
    exchanges.push(dlx);
    await pub.exchangeDeclare(dlx, 'fanout', { durable: false });
    await pub.queueDeclare(dead, { durable: false });
    await pub.queueBind(dead, dlx);
    await pub.queueDeclare(queue, { durable: false, arguments: { 'x-dead-letter-exchange': dlx } });
    const total = 400;
    await fill(queue, total);

    const random = lcg(42);
    const decisions = Array.from({ length: total }, () => {
      const r = random();
      return r < 0.6 ? 'ack' : r < 0.85 ? 'nack' : 'keep';
    });
    const expectNacked = decisions.filter((d) => d === 'nack').length;
    const expectKept = decisions.filter((d) => d === 'keep').length;

    const consumerConn = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
    const ch = await consumerConn.channel();
    await ch.qos(total);
    let handled = 0;
    let all!: () => void;
    const done = new Promise<void>((r) => (all = r));
    await ch.consume(queue, (m: Message) => {
      const i = Number(m.body.toString());
      void turns(Math.floor(random() * 6)).then(() => {
        if (decisions[i] === 'ack') ch.ack(m);
        else if (decisions[i] === 'nack') ch.nack(m, false, false);
        if (++handled === total) all();
      });
    });
    await done;
    // Closing the channel requeues what is still unacked: exactly the kept ones.
    await ch.close();
    await consumerConn.close();

    expect(await deadLettered(dead, expectNacked)).toBe(expectNacked);
    expect(await counts(queue)).toBe(expectKept);
  });

  it('a basic.get message left unacked is not covered by the coalesced acks of a consumer on its channel', async () => {
    const queue = uniqueName('warren-ack-get');
    queues.push(queue);
    await pub.queueDeclare(queue, { durable: false });
    await fill(queue, 4);

    const ch = await conn.channel();
    const kept = await ch.get(queue); // delivery tag 1, left unacked
    const free = await ch.get(queue, { noAck: true }); // tag 2, needs no ack
    expect(kept && free).toBeTruthy();
    // Tags 3 and 4: acked in one tick, so they leave as one multiple ack, which must stop short of tag 1.
    await consumeN(ch, queue, 2, (m) => ch.ack(m));
    await ch.close(); // deferred acks leave before channel.close
    expect(await counts(queue)).toBe(1); // only the kept one came back
  });

  it('acks in a transaction follow its commit and rollback', async () => {
    const queue = uniqueName('warren-ack-tx');
    queues.push(queue);
    await pub.queueDeclare(queue, { durable: false });
    await fill(queue, 2);

    const ch = await conn.channel();
    await ch.txSelect();
    const a = await ch.get(queue);
    ch.ack(a!);
    await ch.txRollback(); // the ack is undone: the message stays unacked
    const b = await ch.get(queue);
    ch.ack(b!);
    await ch.txCommit(); // this one counts
    await ch.close();
    expect(await counts(queue)).toBe(1);
  });
});
