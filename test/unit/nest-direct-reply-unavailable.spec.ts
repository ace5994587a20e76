import { firstValueFrom } from 'rxjs';
import { ChannelError, ConfigError, type Logger } from '../../lib/amqp';
import { AmqpClient, DirectReplyToUnavailableError, type AmqpClientOptions } from '../../lib/nest';
import { FakeAmqpServer, type FakePeer } from '../support/fake-amqp-server';
import { rejection } from '../support/nest-support';

jest.setTimeout(15_000);

const DIRECT_REPLY_QUEUE = 'amq.rabbitmq.reply-to';
/** Far longer than any of these calls may take: a call that waits for it has not failed "at once". */
const CLIENT_TIMEOUT_MS = 10_000;

/** A broker without direct reply-to: it answers everything as RabbitMQ does, but closes the channel on that consume. */
function refusingBroker(replyCode: number, replyText: string): Promise<FakeAmqpServer> {
  return FakeAmqpServer.start(async (peer: FakePeer) => {
    await peer.handshake();
    peer.autoReply([], ({ channel, method }) => {
      if (method.name !== 'basic.consume' || method.args.queue !== DIRECT_REPLY_QUEUE) return false;
      peer.send(channel, 'channel.close', { replyCode, replyText, classId: 60, methodId: 20 });
      return true;
    });
  });
}

function recordingLogger(): Logger & { errors: string[] } {
  const errors: string[] = [];
  return { errors, debug: () => undefined, warn: () => undefined, error: (m: string) => errors.push(m) };
}

/** basic.consume calls on the reply-to pseudo queue, over every connection the client made. */
function replyConsumes(server: FakeAmqpServer): number {
  return server.peers
    .flatMap((p) => p.received)
    .filter((r) => r.method.name === 'basic.consume' && r.method.args.queue === DIRECT_REPLY_QUEUE).length;
}

describe('AmqpClient on a broker without direct reply-to', () => {
  let server: FakeAmqpServer | undefined;
  let client: AmqpClient | undefined;

  afterEach(async () => {
    await client?.close();
    await server?.close();
    client = undefined;
    server = undefined;
  });

  it.each([
    [404, 'NOT_FOUND - no queue amq.rabbitmq.reply-to'],
    [403, 'ACCESS_REFUSED - direct reply-to not permitted'],
    [540, 'NOT_IMPLEMENTED - direct reply-to'],
  ])(
    'a %d on its basic.consume fails the pending and every later send at once, naming the cause and replyTo: queue',
    async (replyCode, replyText) => {
      server = await refusingBroker(replyCode, replyText);
      const logger = recordingLogger();
      client = new AmqpClient({ url: server.url(), timeout: CLIENT_TIMEOUT_MS, logger });
      const started = Date.now();

      const pending = await rejection(firstValueFrom(client.send('orders.get', { id: 1 })));
      expect(pending).toBeInstanceOf(DirectReplyToUnavailableError);
      expect(pending).toBeInstanceOf(ChannelError);
      expect(pending).toMatchObject({ replyCode, replyText });
      expect(pending.message).toContain(`${replyCode} ${replyText}`);
      expect(pending.message).toContain("replyTo: 'queue'");

      const later = await rejection(firstValueFrom(client.send('orders.get', { id: 2 })));
      expect(later).toBe(pending);
      expect(Date.now() - started).toBeLessThan(CLIENT_TIMEOUT_MS / 5);
      expect(client.pendingCalls).toBe(0);
      // Not retried, and said once at error level.
      expect(replyConsumes(server)).toBe(1);
      expect(logger.errors.filter((m) => m.includes('direct reply-to'))).toHaveLength(1);
      // Nothing was published: there was never a channel replies could come back on.
      expect(server.peers.flatMap((p) => p.received).filter((r) => r.method.name === 'basic.publish')).toHaveLength(0);
    },
  );

  it('calls already waiting for the reply channel all fail with the same error', async () => {
    server = await refusingBroker(404, 'NOT_FOUND');
    client = new AmqpClient({ url: server.url(), timeout: CLIENT_TIMEOUT_MS, logger: recordingLogger() });
    const calls = [1, 2, 3].map((id) => rejection(firstValueFrom(client!.send('orders.get', { id }))));
    const errors = await Promise.all(calls);
    for (const err of errors) expect(err).toBeInstanceOf(DirectReplyToUnavailableError);
    expect(new Set(errors).size).toBe(1);
  });
});

describe('AmqpClient reply options', () => {
  const build = (o: Record<string, unknown>) => () => new AmqpClient(o as AmqpClientOptions);

  it('rejects an unknown replyTo mode, naming the field', () => {
    expect(build({ replyTo: 'amq.rabbitmq.reply-to' })).toThrow(ConfigError);
    expect(build({ replyTo: 'amq.rabbitmq.reply-to' })).toThrow(/^replyTo: /);
  });

  it('rejects a replyQueue without replyTo: queue, empty, or reserved', () => {
    expect(build({ replyQueue: 'mine' })).toThrow(/^replyQueue: needs replyTo: 'queue'/);
    expect(build({ replyTo: 'direct', replyQueue: 'mine' })).toThrow(ConfigError);
    expect(build({ replyTo: 'queue', replyQueue: '' })).toThrow(/^replyQueue: /);
    expect(build({ replyTo: 'queue', replyQueue: 'amq.mine' })).toThrow(/reserved/);
    expect(build({ replyTo: 'queue', replyQueue: 'x'.repeat(256) })).toThrow(/255 bytes/);
    expect(build({ replyTo: 'queue', replyQueue: 'mine' })).not.toThrow();
  });
});
