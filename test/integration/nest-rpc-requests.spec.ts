import { setTimeout as delay } from 'node:timers/promises';
import { Module } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import {
  Channel,
  ConnectionLostError,
  NackError,
  TimeoutError,
  UnroutableError,
  type PublishOptions,
} from '../../lib/amqp';
import { AmqpClient, AmqpController, AmqpRecordBuilder, type AmqpClientOptions } from '../../lib/nest';
import { DIRECT_REPLY_QUEUE } from '../../lib/nest/amqp.constants';
import { amqpUrl, listConnections, rabbitmqctl, uniqueName } from '../support/broker';
import { BrokerProbe, closeAll, rejection, startMicroservice } from '../support/nest-support';

jest.setTimeout(30_000);

const exchange = uniqueName('nest-rpcreq-x');
const queue = uniqueName('nest-rpcreq-q');

@AmqpController({
  queue: { name: queue, durable: false, autoDelete: true },
  exchange: { name: exchange, type: 'topic', durable: false },
})
class EchoController {
  @MessagePattern('req.get')
  get(@Payload() data: { id: number }) {
    return { id: data.id, ok: true };
  }

  @MessagePattern('req.echo')
  async echo(@Payload() n: number) {
    await delay(n % 5);
    return n;
  }

  @MessagePattern('req.slow')
  async slow(@Payload() ms: number) {
    slowReached?.();
    await delay(ms);
    return 'late';
  }
}

/** Called when a slow request has reached its handler (the server has it: it is in flight, not queued). */
let slowReached: (() => void) | undefined;

@Module({ controllers: [EchoController] })
class EchoModule {}

/** A request as the client's reply channel wrote it, and whether that channel was in confirm mode at the time. */
interface SentRequest {
  channel: Channel;
  confirmMode: boolean;
  exchange: string;
  routingKey: string;
  correlationId: string | undefined;
  messageId: string | undefined;
  timestamp: Date | number | undefined;
}

/** Whether the broker has the channel (publisher connection `connectionName`, number `id`) in confirm mode. */
async function brokerConfirmMode(connectionName: string, id: number): Promise<boolean> {
  const connection = (await listConnections()).find((c) => c.clientName === `${connectionName}:publisher`);
  if (!connection) throw new Error(`no broker connection named '${connectionName}:publisher'`);
  const out = await rabbitmqctl(['list_channels', 'connection', 'number', 'confirm', '--quiet', '--no-table-headers']);
  const row = out
    .split('\n')
    .map((line) => line.split('\t'))
    .find(([pid, number]) => pid === connection.pid && Number(number) === id);
  if (!row) throw new Error(`the broker has no channel ${id} on '${connectionName}:publisher'`);
  return row[2] === 'true';
}

describe('Nest RPC requests: publisher confirms off by default, confirmRequests on demand', () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;
  let sent: SentRequest[] = [];
  /** Other publishes to the test exchange (events). */
  let published: Array<{ routingKey: string; options: PublishOptions | undefined }> = [];
  let publishSpy: jest.SpiedFunction<Channel['publish']>;
  let awaitingSpy: jest.SpiedFunction<Channel['publishAwaiting']>;
  let unconfirmedSpy: jest.SpiedFunction<Channel['publishUnconfirmed']>;

  const newClient = (options: AmqpClientOptions = {}) => {
    const c = new AmqpClient({
      url: amqpUrl(),
      connectionName: uniqueName('nest-rpcreq-client'),
      exchange,
      timeout: 10_000,
      ...options,
    });
    apps.push(c);
    return c;
  };

  beforeAll(async () => {
    // Records every request (a publish with direct reply-to) and the state of the channel that carried it:
    // confirmed requests go through publish(), unconfirmed ones through publishUnconfirmed().
    const record = (ch: Channel, ex: string, routingKey: string, options: PublishOptions | undefined): void => {
      if (options?.replyTo === DIRECT_REPLY_QUEUE) {
        sent.push({
          channel: ch,
          confirmMode: ch.confirmMode,
          exchange: ex,
          routingKey,
          correlationId: options.correlationId,
          messageId: options.messageId,
          timestamp: options.timestamp,
        });
      } else if (ex === exchange) published.push({ routingKey, options });
    };
    const original = Channel.prototype.publish;
    publishSpy = jest.spyOn(Channel.prototype, 'publish').mockImplementation(function (
      this: Channel,
      ex: string,
      routingKey: string,
      body: Buffer | Uint8Array | string,
      options?: PublishOptions,
    ) {
      record(this, ex, routingKey, options);
      return original.call(this, ex, routingKey, body, options);
    });
    const originalUnconfirmed = Channel.prototype.publishUnconfirmed;
    unconfirmedSpy = jest.spyOn(Channel.prototype, 'publishUnconfirmed').mockImplementation(function (
      this: Channel,
      ex,
      routingKey,
      body,
      options,
    ) {
      record(this, ex, routingKey, options);
      return originalUnconfirmed.call(this, ex, routingKey, body, options);
    });
    const originalAwaiting = Channel.prototype.publishAwaiting;
    // Events go through the session's confirmed path.
    awaitingSpy = jest.spyOn(Channel.prototype, 'publishAwaiting').mockImplementation(function (
      this: Channel,
      ex,
      routingKey,
      body,
      options,
      waiter,
    ) {
      if (ex === exchange) published.push({ routingKey, options });
      return originalAwaiting.call(this, ex, routingKey, body, options, waiter);
    });
    probe = await BrokerProbe.open();
    probe.track('queue', queue);
    probe.track('exchange', exchange);
    const { app } = await startMicroservice({ imports: [EchoModule] });
    apps.push(app);
  });

  beforeEach(() => {
    sent = [];
    published = [];
  });

  it('a request carries its correlation id but no message id or timestamp unless the record sets them; an event carries both', async () => {
    const c = newClient();
    await firstValueFrom(c.send('req.get', { id: 7 }));
    const at = new Date(1_700_000_000_000);
    await firstValueFrom(
      c.send('req.get', new AmqpRecordBuilder({ id: 8 }).setOptions({ messageId: 'm-8', timestamp: at }).build()),
    );
    expect(sent).toHaveLength(2);
    expect(sent[0].correlationId).toEqual(expect.any(String));
    expect(sent[0]).toMatchObject({ messageId: undefined, timestamp: undefined });
    expect(sent[1]).toMatchObject({ messageId: 'm-8', timestamp: at });

    await firstValueFrom(c.emit('evt.nobody', { id: 9 }), { defaultValue: undefined });
    const event = published.find((p) => p.routingKey === 'evt.nobody');
    expect(event?.options?.messageId).toEqual(expect.any(String));
    expect(event?.options?.timestamp).toBeInstanceOf(Date);
  });

  afterAll(async () => {
    await closeAll(apps);
    await probe?.close();
    publishSpy?.mockRestore();
    awaitingSpy?.mockRestore();
    unconfirmedSpy?.mockRestore();
  });

  it('by default a request goes out on a channel that is not in confirm mode, and the call still works', async () => {
    const connectionName = uniqueName('nest-rpcreq-noconfirm');
    const c = newClient({ connectionName });
    await expect(firstValueFrom(c.send('req.get', { id: 1 }))).resolves.toEqual({ id: 1, ok: true });
    expect(sent).toHaveLength(1);
    const [request] = sent;
    expect(request).toMatchObject({ confirmMode: false, exchange, routingKey: 'req.get' });
    expect(request.channel.confirmMode).toBe(false);
    expect(request.channel.unconfirmedCount).toBe(0);
    // The broker agrees: it sends no confirms on that channel.
    await expect(brokerConfirmMode(connectionName, request.channel.id)).resolves.toBe(false);
  });

  it('with confirmRequests the request channel is in confirm mode, and the call works', async () => {
    const connectionName = uniqueName('nest-rpcreq-confirm');
    const c = newClient({ connectionName, confirmRequests: true });
    await expect(firstValueFrom(c.send('req.get', { id: 2 }))).resolves.toEqual({ id: 2, ok: true });
    expect(sent).toHaveLength(1);
    expect(sent[0].confirmMode).toBe(true);
    await expect(brokerConfirmMode(connectionName, sent[0].channel.id)).resolves.toBe(true);
  });

  it.each([
    ['without confirms (default)', {}],
    ['with confirmRequests', { confirmRequests: true }],
  ])(
    'an unroutable mandatory request fails at once with UnroutableError, %s; other calls are untouched',
    async (_, options: AmqpClientOptions) => {
      const c = newClient({ ...options, timeout: 10_000 });
      const started = Date.now();
      const [err, ok] = await Promise.all([
        rejection(firstValueFrom(c.send('nobody.listens', { id: 3 }))),
        firstValueFrom(c.send('req.get', { id: 4 })),
      ]);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(ok).toEqual({ id: 4, ok: true });
      expect(err).toBeInstanceOf(UnroutableError);
      const unroutable = err as unknown as UnroutableError;
      expect(unroutable.message).toContain(`exchange '${exchange}'`);
      expect(unroutable.message).toContain("routing key 'nobody.listens'");
      expect(unroutable.replyCode).toBe(312);
      const request = sent.find((s) => s.routingKey === 'nobody.listens');
      expect(request?.confirmMode).toBe(options.confirmRequests ?? false);
      // Matched by correlation id: the error is the returned copy of this very request.
      expect(unroutable.returned).toMatchObject({ exchange, routingKey: 'nobody.listens' });
      expect(unroutable.returned.properties.correlationId).toBe(request?.correlationId);
      expect(c.pendingCalls).toBe(0);
    },
  );

  it('an unroutable request through the default exchange (queue shorthand) fails at once too', async () => {
    const missing = uniqueName('nest-rpcreq-missing');
    const c = newClient({ exchange: '', queue: missing });
    const started = Date.now();
    const err = await rejection(firstValueFrom(c.send('req.get', { id: 5 })));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err).toBeInstanceOf(UnroutableError);
    expect(err.message).toContain(`exchange '' with routing key '${missing}'`);
    expect(c.pendingCalls).toBe(0);
  });

  describe('a request the broker refuses (full queue with x-overflow: reject-publish)', () => {
    let full: string;

    beforeAll(async () => {
      full = probe.queue('rpcreq-full');
      await probe.channel.assertQueue(full, {
        durable: false,
        arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' },
      });
      await probe.publish('', full, { filler: true });
      expect(await probe.messageCount(full)).toBe(1);
    });

    it('fails at once with NackError with confirmRequests', async () => {
      const c = newClient({ exchange: '', queue: full, confirmRequests: true, timeout: 10_000 });
      const started = Date.now();
      const err = await rejection(firstValueFrom(c.send('req.get', { id: 6 })));
      expect(Date.now() - started).toBeLessThan(2000);
      expect(err).toBeInstanceOf(NackError);
      expect(c.pendingCalls).toBe(0);
      expect(await probe.messageCount(full)).toBe(1);
    });

    it('ends with its TimeoutError without confirms (the nack goes unseen)', async () => {
      const c = newClient({ exchange: '', queue: full, timeout: 500 });
      const started = Date.now();
      const err = await rejection(firstValueFrom(c.send('req.get', { id: 7 })));
      expect(err).toBeInstanceOf(TimeoutError);
      expect(Date.now() - started).toBeGreaterThanOrEqual(450);
      expect(sent.map((s) => s.confirmMode)).toEqual([false]);
      expect(c.pendingCalls).toBe(0);
      expect(await probe.messageCount(full)).toBe(1);
    });
  });

  it('300 concurrent calls without confirms are each correlated to their own reply', async () => {
    const c = newClient();
    const ns = Array.from({ length: 300 }, (_, i) => i);
    const replies = await Promise.all(ns.map((n) => firstValueFrom(c.send<number>('req.echo', n))));
    expect(replies).toEqual(ns);
    expect(c.pendingCalls).toBe(0);
    expect(sent).toHaveLength(300);
    expect(sent.every((s) => !s.confirmMode)).toBe(true);
    expect(new Set(sent.map((s) => s.correlationId)).size).toBe(300);
  });

  it('losing the reply channel still fails pending calls at once, and the next call works', async () => {
    const c = newClient();
    const reached = new Promise<void>((resolve) => (slowReached = resolve));
    const pending = rejection(firstValueFrom(c.send('req.slow', 3000)));
    await reached;
    // A request to an exchange that does not exist closes the reply channel (404): replies on their way are lost.
    const missing = uniqueName('nest-rpcreq-nox');
    const doomed = rejection(
      firstValueFrom(c.send('req.get', new AmqpRecordBuilder({ id: 9 }).setOptions({ exchange: missing }).build())),
    );
    const started = Date.now();
    const [err, doomedErr] = await Promise.all([pending, doomed]);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err).toBeInstanceOf(ConnectionLostError);
    expect(doomedErr).toBeInstanceOf(ConnectionLostError);
    expect(c.pendingCalls).toBe(0);
    await expect(firstValueFrom(c.send('req.get', { id: 8 }))).resolves.toEqual({ id: 8, ok: true });
  });
});
