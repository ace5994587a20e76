import {
  AmqpConnection,
  AmqpSession,
  ConfigError,
  type Channel,
  type ExchangeOptions,
  type QueueOptions,
} from '../../lib/amqp';
import { amqpUrl, deleteQueue, queueExists, rabbitmqctl, uniqueName } from '../support/broker';

jest.setTimeout(30_000);

const silentLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** The broker's type of a queue (`classic`, `quorum`, `stream`), or undefined if it does not exist. */
async function queueType(name: string): Promise<string | undefined> {
  const out = await rabbitmqctl(['list_queues', 'name', 'type', '--formatter', 'json']);
  const rows = JSON.parse(out.trim() || '[]') as Array<{ name: string; type: string }>;
  return rows.find((row) => row.name === name)?.type;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (err: unknown) => err as Error,
  );
}

/** Options as a JavaScript caller (or a cast) may pass them: unchecked by the compiler. */
function untyped<T>(options: Record<string, unknown>): T {
  return options as T;
}

describe('queue and exchange options against the broker', () => {
  let conn: AmqpConnection;
  let ch: Channel;
  const queues = new Set<string>();
  const exchanges = new Set<string>();

  const qName = (prefix: string): string => {
    const name = uniqueName(prefix);
    queues.add(name);
    return name;
  };

  beforeAll(async () => {
    conn = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
  });

  beforeEach(async () => {
    ch = await conn.channel();
  });

  afterEach(async () => {
    if (ch.isOpen) await ch.close();
  });

  afterAll(async () => {
    for (const q of queues) await deleteQueue(q);
    const cleanup = await conn.channel();
    for (const ex of exchanges) await cleanup.exchangeDelete(ex).catch(() => undefined);
    await conn.close();
  });

  it("Channel.queueDeclare with type: 'quorum' creates a quorum queue", async () => {
    const name = qName('opts-quorum');
    await ch.queueDeclare(name, { type: 'quorum', deliveryLimit: 2 });
    expect(await queueType(name)).toBe('quorum');
  });

  it('queue shorthands reach the broker as x-arguments (an equivalent explicit redeclare is accepted)', async () => {
    const name = qName('opts-args');
    const options: QueueOptions = { messageTtl: 5000, maxLength: 10, overflow: 'reject-publish', maxPriority: 3 };
    await ch.queueDeclare(name, options);
    const explicit = { 'x-message-ttl': 5000, 'x-max-length': 10, 'x-overflow': 'reject-publish', 'x-max-priority': 3 };
    await expect(ch.queueDeclare(name, { arguments: explicit })).resolves.toMatchObject({ queue: name });
  });

  it('an unknown queue key rejects with a ConfigError naming it, before anything is sent', async () => {
    const name = qName('opts-unknown');
    const err = await rejection(ch.queueDeclare(name, untyped<QueueOptions>({ typ: 'quorum' })));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ field: `queue '${name}'.typ` });
    expect(await queueExists(name)).toBe(false);
    expect(ch.isOpen).toBe(true);
  });

  it('an exclusive quorum queue is a ConfigError, not a 406 that closes the channel', async () => {
    const name = qName('opts-exclusive-quorum');
    const err = await rejection(ch.queueDeclare(name, { type: 'quorum', exclusive: true }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ field: `queue '${name}'.exclusive` });
    expect(ch.isOpen).toBe(true);
    expect(await queueExists(name)).toBe(false);
  });

  it('alternateExchange: a message no binding routes goes to the alternate exchange', async () => {
    const alternate = uniqueName('opts-ae');
    const main = uniqueName('opts-main');
    exchanges.add(alternate).add(main);
    const catchAll = qName('opts-ae-q');
    await ch.exchangeDeclare(alternate, 'fanout', { durable: false });
    await ch.queueDeclare(catchAll, { durable: false });
    await ch.queueBind(catchAll, alternate);
    const options: ExchangeOptions = { durable: false, alternateExchange: alternate };
    await ch.exchangeDeclare(main, 'direct', options);
    await ch.confirmSelect();
    await ch.publish(main, 'nobody', Buffer.from('lost?'));
    const message = await ch.get(catchAll, { noAck: true });
    expect(message?.body.toString()).toBe('lost?');
  });

  it('an unknown exchange key rejects with a ConfigError naming it; the exchange is not declared', async () => {
    const name = uniqueName('opts-unknown-x');
    exchanges.add(name);
    const err = await rejection(ch.exchangeDeclare(name, 'topic', untyped<ExchangeOptions>({ durabel: false })));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ field: `exchange '${name}'.durabel` });
    const probe = await conn.channel();
    await expect(probe.exchangeDeclare(name, 'topic', { passive: true })).rejects.toMatchObject({ replyCode: 404 });
  });

  describe('through AmqpSession (it passes the options to the channel)', () => {
    let session: AmqpSession;

    beforeEach(async () => {
      session = new AmqpSession({ url: amqpUrl(), logger: silentLogger });
      await session.connect();
    });

    afterEach(async () => {
      await session.close();
    });

    it("session.queueDeclare(q, { type: 'quorum' }) creates a quorum queue", async () => {
      const name = qName('opts-session-quorum');
      await session.queueDeclare(name, { type: 'quorum' });
      expect(await queueType(name)).toBe('quorum');
    });

    it('an unknown key rejects with a ConfigError and declares nothing', async () => {
      const name = qName('opts-session-unknown');
      const err = await rejection(session.queueDeclare(name, untyped<QueueOptions>({ typ: 'quorum' })));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err).toMatchObject({ field: `queue '${name}'.typ` });
      expect(await queueExists(name)).toBe(false);
    });
  });
});
