import { AmqpConnection, AmqpSession, type SessionMessage } from '../../lib/amqp';
import { uniqueName } from '../support/broker';
import { deferred, Recorder } from '../support/nest-support';
import { startNode, type ExtraNode } from '../support/rabbitmq-nodes';

jest.setTimeout(60_000);

/** The broker's delivery acknowledgement timeout on this node, ms: short, so the test is fast. */
const CONSUMER_TIMEOUT_MS = 2000;

/**
 * RabbitMQ 3.10 checks the timeout on each channel's tick (`rabbit_channel:evaluate_consumer_timeout`), and that
 * tick runs every `channel_tick_interval` ms — 60 000 by default, with no rabbitmq.conf key. Set it on the node as
 * RabbitMQ's own consumer_timeout suite does; channels opened afterwards tick at this rate.
 */
const TICK_MS = 200;

let node: ExtraNode;

beforeAll(async () => {
  const started = Date.now();
  node = await startNode('warren-ctimeout', 5686, { config: `consumer_timeout = ${CONSUMER_TIMEOUT_MS}\n` });
  await node.ctl(['eval', `ok = application:set_env(rabbit, channel_tick_interval, ${TICK_MS}).`]);
  process.stdout.write(`consumer-timeout node up in ${Date.now() - started} ms\n`);
}, 120_000);

afterAll(async () => {
  await node?.stop();
});

describe('delivery acknowledgement timeout (consumer_timeout)', () => {
  it('a handler slower than the timeout: the broker closes the channel with 406, the consumer comes back on a new channel, the message is redelivered and handled, and one warning says why', async () => {
    const warnings = new Recorder<string>();
    const logger = {
      debug: () => undefined,
      warn: (m: string) => warnings.push(m),
      error: (m: string) => warnings.push(m),
    };
    const session = new AmqpSession({ url: node.url, logger });
    const q = uniqueName('ctimeout');
    try {
      await session.connect();
      await session.queueDeclare(q, { durable: false });
      const deliveries = new Recorder<{ redelivered: boolean; body: string; channelLive: boolean }>();
      const firstChannelClosed = deferred();
      await session.consume(q, async (m: SessionMessage) => {
        deliveries.push({ redelivered: m.fields.redelivered, body: m.body.toString(), channelLive: m.isLive() });
        if (!m.fields.redelivered) {
          // Too slow: still working when the broker's timeout fires; it acks only after its channel is gone.
          await firstChannelClosed.promise;
          expect(m.isLive()).toBe(false);
        }
        m.ack();
      });
      const started = Date.now();
      await session.publish('', q, 'slow job');

      const [warning] = await warnings.waitFor(1, CONSUMER_TIMEOUT_MS + 10_000);
      firstChannelClosed.resolve();
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(CONSUMER_TIMEOUT_MS);
      expect(warning).toContain(`consumer on queue '${q}'`);
      expect(warning).toMatch(/406 PRECONDITION_FAILED - delivery acknowledgement on channel \d+ timed out/);
      expect(warning).toContain(`Timeout value used: ${CONSUMER_TIMEOUT_MS} ms`);
      expect(warning).toMatch(/reopening/);

      const handled = await deliveries.waitFor(2, 10_000);
      expect(handled).toEqual([
        { redelivered: false, body: 'slow job', channelLive: true },
        { redelivered: true, body: 'slow job', channelLive: true },
      ]);
      // One line for the one timeout: the late ack on the dead channel is not a warning.
      expect(warnings.items).toEqual([warning]);
    } finally {
      await session.close();
    }
    // The redelivery's ack reached the broker: nothing is left in the queue.
    const conn = await AmqpConnection.connect(node.url);
    try {
      const ch = await conn.channel();
      expect(await ch.get(q, { noAck: true })).toBeNull();
      await ch.queueDelete(q);
    } finally {
      await conn.close();
    }
  });
});
