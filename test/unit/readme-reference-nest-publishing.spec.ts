import { Test, type TestingModule } from '@nestjs/testing';
import { firstValueFrom } from 'rxjs';
import { ClosedError, NackError, TimeoutError, type Logger } from '../../lib/amqp';
import {
  AmqpClient,
  AmqpModule,
  getPublisherToken,
  WarrenHeaders,
  type AmqpClientOptions,
  type AmqpModuleOptions,
  type AmqpPublisher,
} from '../../lib/nest';
import { FakeBroker, type PublishedMessage } from '../support/fake-broker';
import { Recorder, rejection } from '../support/nest-support';

/** README, Reference → AmqpPublisher and AmqpClient: what they publish and how they fail, on a fake broker. */
jest.setTimeout(20_000);

const quiet: Logger = { debug: () => undefined, warn: () => undefined, error: () => undefined };
const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  jest.useRealTimers();
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function fakeBroker(options?: Parameters<typeof FakeBroker.start>[0]): Promise<FakeBroker> {
  const b = await FakeBroker.start(options);
  cleanups.push(() => b.close());
  return b;
}

async function moduleWith(options: AmqpModuleOptions): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    imports: [AmqpModule.forRoot({ heartbeat: 0, logger: quiet, ...options })],
  }).compile();
  cleanups.push(() => moduleRef.close());
  await moduleRef.init();
  return moduleRef;
}

function client(options: AmqpClientOptions): AmqpClient {
  const c = new AmqpClient({ heartbeat: 0, logger: quiet, ...options });
  cleanups.push(() => c.close());
  return c;
}

/** Real I/O keeps working under fake timers: only the timer functions and the clock are faked. */
const fakeTimersKeepingIo = (): void => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
};

/** Whether a promise has settled by now (after pending callbacks ran). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('AmqpPublisher (README)', () => {
  const definitions: AmqpModuleOptions['publishers'] = [
    { name: 'orders', exchange: 'orders', routingKey: 'order.default', headers: { source: 'shop', tier: 'gold' } },
    { name: 'bare', exchange: 'bare' },
  ];

  async function publishers(): Promise<{ broker: FakeBroker; orders: AmqpPublisher; bare: AmqpPublisher }> {
    const broker = await fakeBroker();
    const moduleRef = await moduleWith({ url: broker.url(), publishers: definitions });
    return {
      broker,
      orders: moduleRef.get<AmqpPublisher>(getPublisherToken('orders')),
      bare: moduleRef.get<AmqpPublisher>(getPublisherToken('bare')),
    };
  }

  const lastTo = (broker: FakeBroker, exchange: string): PublishedMessage => {
    const m = broker.published.filter((p) => p.exchange === exchange).pop();
    if (!m) throw new Error(`nothing published to '${exchange}'`);
    return m;
  };

  it("an undefined routing key falls back to options.routingKey, then the definition's, then ''", async () => {
    const { broker, orders, bare } = await publishers();
    await orders.publish('order.given', { id: 1 }, { routingKey: 'order.option' });
    expect(lastTo(broker, 'orders').routingKey).toBe('order.given');
    await orders.publish(undefined, { id: 2 }, { routingKey: 'order.option' });
    expect(lastTo(broker, 'orders').routingKey).toBe('order.option');
    await orders.publish(undefined, { id: 3 });
    expect(lastTo(broker, 'orders').routingKey).toBe('order.default');
    await bare.publish(undefined, { id: 4 });
    expect(lastTo(broker, 'bare').routingKey).toBe('');
  });

  it("headers are merged over the definition's; `pattern` travels in x-warren-pattern when it differs from the key", async () => {
    const { broker, orders } = await publishers();
    await orders.publish('order.created', {}, { headers: { tier: 'silver', trace: 't-1' } });
    expect(lastTo(broker, 'orders').properties.headers).toEqual({ source: 'shop', tier: 'silver', trace: 't-1' });
    await orders.publish('orders.v2', {}, { pattern: 'order.created' });
    expect(lastTo(broker, 'orders').properties.headers).toEqual({
      source: 'shop',
      tier: 'gold',
      [WarrenHeaders.PATTERN]: 'order.created',
    });
    await orders.publish('order.created', {}, { pattern: 'order.created' });
    expect(lastTo(broker, 'orders').properties.headers).toEqual({ source: 'shop', tier: 'gold' });
  });

  it('until its exchange is declared (startWithoutBroker) a publish waits 30 s, then rejects with TimeoutError', async () => {
    // A broker that takes the TCP connection and never answers the handshake: nothing gets declared.
    const broker = await fakeBroker({ accept: () => new Promise<void>(() => undefined) });
    const moduleRef = await moduleWith({ url: broker.url(), startWithoutBroker: true, publishers: definitions });
    const orders = moduleRef.get<AmqpPublisher>(getPublisherToken('orders'));

    fakeTimersKeepingIo();
    const publishing = orders.publish('order.created', { id: 1 });
    publishing.catch(() => undefined);
    await jest.advanceTimersByTimeAsync(29_999);
    expect(await settled(publishing)).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    const err = await rejection(publishing);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toContain("exchange 'orders' not declared within 30000 ms");
    expect(broker.published).toEqual([]);
  });
});

describe('AmqpClient (README)', () => {
  it('send() times out after 30 000 ms by default, with a TimeoutError naming the pattern', async () => {
    const broker = await fakeBroker(); // never replies
    const c = client({ url: broker.url() });
    fakeTimersKeepingIo();
    const call = firstValueFrom(c.send('orders.get', { id: 1 }));
    call.catch(() => undefined);
    await broker.publishedMessage((m) => m.routingKey === 'orders.get');
    await jest.advanceTimersByTimeAsync(29_999);
    expect(await settled(call)).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    const err = await rejection(call);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toBe("no reply to 'orders.get' within 30000 ms");
  });

  it('with a fixed routingKey, requests and events carry their pattern in x-warren-pattern', async () => {
    const broker = await fakeBroker();
    const c = client({ url: broker.url(), exchange: 'orders', routingKey: 'orders.inbox', timeout: 10_000 });
    await firstValueFrom(c.emit('order.created', { id: 1 }));
    const call = firstValueFrom(c.send('order.get', { id: 1 }));
    call.catch(() => undefined);
    const request = await broker.publishedMessage((m) => m.properties.replyTo !== undefined);
    const event = broker.published[0];
    expect(event).toMatchObject({ exchange: 'orders', routingKey: 'orders.inbox' });
    expect(event.properties.headers).toEqual({ [WarrenHeaders.PATTERN]: 'order.created' });
    expect(request).toMatchObject({ exchange: 'orders', routingKey: 'orders.inbox' });
    expect(request.properties.headers).toEqual({ [WarrenHeaders.PATTERN]: 'order.get' });
  });

  it('close() fails the pending calls with ClosedError', async () => {
    const broker = await fakeBroker(); // never replies
    const c = client({ url: broker.url(), timeout: 10_000 });
    const calls = [firstValueFrom(c.send('a', 1)), firstValueFrom(c.send('b', 2))];
    for (const call of calls) call.catch(() => undefined);
    await broker.publishedMessage((m) => m.routingKey === 'b');
    await broker.publishedMessage((m) => m.routingKey === 'a');
    expect(c.pendingCalls).toBe(2);
    await c.close();
    for (const call of calls) expect(await rejection(call)).toBeInstanceOf(ClosedError);
  });

  it('a failed emit nobody subscribed to is logged as an error; one somebody subscribed to is not', async () => {
    const broker = await fakeBroker();
    broker.confirm = () => 'nack';
    const errors = new Recorder<string>();
    const c = client({ url: broker.url(), logger: { ...quiet, error: (m) => errors.push(m) } });

    const observed = await rejection(firstValueFrom(c.emit('seen.event', {})));
    expect(observed).toBeInstanceOf(NackError);
    c.emit('unseen.event', {}); // hot: published at once, nobody subscribes
    const [logged] = await errors.waitFor(1);
    expect(logged).toContain("emit 'unseen.event' failed and nobody subscribed to it");
    expect(errors.items).toHaveLength(1);
  });
});
