import { once } from 'node:events';
import { AmqpConnection, AmqpSession, type Message, type OversizedMessage } from '../../lib';
import { amqpUrl, uniqueName } from '../support/broker';

jest.setTimeout(30_000);

const silentLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

describe('a message over maxMessageSize (real broker)', () => {
  let admin: AmqpConnection;
  const queues: string[] = [];
  const exchanges: string[] = [];

  beforeAll(async () => {
    admin = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
  });

  afterAll(async () => {
    const ch = await admin.channel();
    for (const q of queues) await ch.queueDelete(q).catch(() => undefined);
    for (const e of exchanges) await ch.exchangeDelete(e).catch(() => undefined);
    await admin.close();
  });

  it('is dead-lettered unread while the next message is consumed, with the channel and connection left open', async () => {
    const dlx = uniqueName('size-dlx');
    const dead = uniqueName('size-dead');
    const work = uniqueName('size-work');
    exchanges.push(dlx);
    queues.push(dead, work);
    const setup = await admin.channel();
    await setup.exchangeDeclare(dlx, 'fanout', { durable: false, autoDelete: false });
    await setup.queueDeclare(dead, { durable: false });
    await setup.queueBind(dead, dlx);
    await setup.queueDeclare(work, { durable: false, arguments: { 'x-dead-letter-exchange': dlx } });
    await setup.confirmSelect();
    await setup.publish('', work, Buffer.alloc(20_000, 1), { messageId: 'big-1' });
    await setup.publish('', work, Buffer.from('small'), { messageId: 'small-1' });

    const warnings: string[] = [];
    const conn = await AmqpConnection.connect({
      url: amqpUrl(),
      maxMessageSize: 10_000,
      logger: { ...silentLogger, warn: (m: string) => warnings.push(m) },
    });
    try {
      const connClosed = jest.fn();
      conn.on('close', connClosed);
      const ch = await conn.channel();
      const chClosed = jest.fn();
      ch.on('close', chClosed);
      const reported = once(ch, 'messageTooLarge') as Promise<[OversizedMessage]>;
      const consumed = new Promise<Message>((resolve) => {
        void ch.consume(work, (m) => {
          ch.ack(m);
          resolve(m);
        });
      });

      const small = await consumed;
      const [report] = await reported;
      expect(small.body.toString()).toBe('small');
      expect(small.properties.messageId).toBe('small-1');
      expect(report).toEqual({
        kind: 'deliver',
        size: 20_000,
        limit: 10_000,
        queue: work,
        exchange: '',
        routingKey: work,
        messageId: 'big-1',
        deliveryTag: 1,
      });
      expect(warnings.some((w) => w.includes('20000 bytes') && w.includes(work) && w.includes('big-1'))).toBe(true);

      // The big one went to the DLX queue (read with the default limit), not back to the work queue.
      const check = await admin.channel();
      let deadLettered: Message | null = null;
      for (let i = 0; i < 50 && deadLettered === null; i++) {
        deadLettered = await check.get(dead, { noAck: true });
        if (deadLettered === null) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(deadLettered?.body.length).toBe(20_000);
      expect(deadLettered?.properties.messageId).toBe('big-1');
      expect((await check.queueDeclare(work, { passive: true })).messageCount).toBe(0);

      expect(ch.isOpen).toBe(true);
      expect(conn.isOpen).toBe(true);
      expect(chClosed).not.toHaveBeenCalled();
      expect(connClosed).not.toHaveBeenCalled();
      // Still usable both ways.
      await ch.queueDeclare(work, { passive: true });
    } finally {
      await conn.close();
    }
  });

  it('an AmqpSession consumer skips it too: messageTooLarge on the session, no reconnect, the next message handled', async () => {
    const work = uniqueName('size-session');
    queues.push(work);
    const session = new AmqpSession({ url: amqpUrl(), maxMessageSize: 10_000, logger: silentLogger });
    try {
      await session.connect();
      await session.queueDeclare(work, { durable: false });
      const disconnected = jest.fn();
      session.on('disconnected', disconnected);
      const reported = once(session, 'messageTooLarge') as Promise<[OversizedMessage]>;
      const handled = new Promise<string>((resolve) => {
        void session.consume(work, (m) => {
          m.ack();
          resolve(m.body.toString());
        });
      });
      await session.publish('', work, Buffer.alloc(20_000, 1), { messageId: 'big-s' });
      await session.publish('', work, 'small');
      expect(await handled).toBe('small');
      const [info] = await reported;
      expect(info).toMatchObject({ kind: 'deliver', size: 20_000, limit: 10_000, queue: work, messageId: 'big-s' });
      expect(disconnected).not.toHaveBeenCalled();
    } finally {
      await session.close();
    }
  });
});
