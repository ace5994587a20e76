import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom, timeout } from 'rxjs';
import { ConnectionLostError, TimeoutError, type AmqpSession, type SessionRole } from '../../lib/amqp';
import { AmqpClient, AmqpRecordBuilder, type AmqpClientOptions } from '../../lib/nest';
import { amqpUrl, brokerAddress, killConnection, uniqueName } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { BrokerProbe, closeAll, Recorder, rejection, startMicroservice } from '../support/nest-support';

// The direct reply-to channel of AmqpClient: a recoverable channel of its own on the session's publisher connection.
// These tests force-close their own client's connections only (found by its unique connection name).

jest.setTimeout(30_000);

const exchange = uniqueName('nest-rpcrec-x');
const queue = uniqueName('nest-rpcrec-q');
/** Requests the server received, by payload. */
const received = new Recorder<string>();
/** Resolvers of the held requests, in arrival order. */
const held: Array<() => void> = [];
const holdStarted = new Recorder<string>();

@Controller()
class PingController {
  @MessagePattern('rec.ping', { queue: { name: queue, durable: false, autoDelete: true }, exchange })
  ping(@Payload() tag: string) {
    received.push(tag);
    return `pong ${tag}`;
  }

  @MessagePattern('rec.hold', { queue: { name: queue, durable: false, autoDelete: true }, exchange })
  async hold(@Payload() tag: string) {
    received.push(tag);
    await new Promise<void>((resolve) => {
      held.push(resolve);
      holdStarted.push(tag);
    });
    return `held ${tag}`;
  }
}

/** Resolves on the session's next 'recovered' event for the role. */
function nextRecovery(session: AmqpSession, role: SessionRole): Promise<void> {
  return new Promise((resolve) => {
    const on = (r: SessionRole) => {
      if (r !== role) return;
      session.off('recovered', on);
      resolve();
    };
    session.on('recovered', on);
  });
}

describe('AmqpClient direct reply-to channel', () => {
  const closeables: Array<{ close(): Promise<unknown> }> = [];
  /** Closed after the clients that go through them. */
  const proxies: TcpProxy[] = [];
  let probe: BrokerProbe;

  const newClient = (options: AmqpClientOptions = {}) => {
    const client = new AmqpClient({ url: amqpUrl(), exchange, timeout: 20_000, ...options });
    closeables.push(client);
    return client;
  };

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    probe.track('queue', queue);
    probe.track('exchange', exchange);
    const { app } = await startMicroservice({ controllers: [PingController] });
    closeables.push(app);
  });

  afterEach(() => {
    for (const release of held.splice(0)) release();
  });

  afterAll(async () => {
    await closeAll(closeables);
    await closeAll(proxies);
    await probe?.close();
  });

  it('is not taken from the publishing pool: with a one-channel pool, events still go out while calls wait', async () => {
    const client = newClient({ pool: { size: 1 }, publishBuffer: { timeoutMs: 2000 } });
    const call = firstValueFrom(client.send<string>('rec.hold', 'pool'));
    await holdStarted.waitFor(1);
    // Routed nowhere (no binding for this key): it only needs a publishing channel and the broker's confirm.
    const emitted = client.emit('rec.noted', { n: 1 }).pipe(timeout({ first: 5000 }));
    await expect(lastValueFrom(emitted, { defaultValue: undefined })).resolves.toBeUndefined();
    held.shift()!();
    await expect(call).resolves.toBe('held pool');
  });

  it('a call in flight when the reply channel dies rejects at once with ConnectionLostError; send() works after recovery', async () => {
    const connectionName = uniqueName('nest-rpcrec');
    const client = newClient({ connectionName });
    await expect(firstValueFrom(client.send('rec.ping', 'warm-up'))).resolves.toBe('pong warm-up');
    const session = client.unwrap<AmqpSession>();
    const recovered = nextRecovery(session, 'publisher');

    const before = holdStarted.items.length;
    const call = rejection(firstValueFrom(client.send('rec.hold', 'doomed')));
    await holdStarted.waitFor(before + 1);
    const killedAt = Date.now();
    await killConnection(`${connectionName}:publisher`);

    const err = await call;
    expect(err).toBeInstanceOf(ConnectionLostError);
    expect(err.message).toContain('reply channel was lost');
    expect(Date.now() - killedAt).toBeLessThan(5000); // the call's timeout is 20 s
    expect(client.pendingCalls).toBe(0);

    await recovered;
    await expect(firstValueFrom(client.send('rec.ping', 'after'))).resolves.toBe('pong after');
  });

  it('a call that timed out while the reply channel was down is never sent', async () => {
    const proxy = new TcpProxy(brokerAddress());
    await proxy.start();
    proxies.push(proxy);
    const client = newClient({ url: proxy.url(), connectionName: uniqueName('nest-rpcrec-proxy') });
    await expect(firstValueFrom(client.send('rec.ping', 'proxied'))).resolves.toBe('pong proxied');
    const session = client.unwrap<AmqpSession>();
    const disconnected = new Promise<void>((resolve) =>
      session.on('disconnected', (role) => role === 'publisher' && resolve()),
    );
    const recovered = nextRecovery(session, 'publisher');

    proxy.refuse(true);
    proxy.cut();
    await disconnected;
    const stale = await rejection(
      firstValueFrom(client.send('rec.ping', new AmqpRecordBuilder('stale').setOptions({ timeout: 300 }).build())),
    );
    expect(stale).toBeInstanceOf(TimeoutError);
    proxy.refuse(false);
    await recovered;
    await expect(firstValueFrom(client.send('rec.ping', 'fresh'))).resolves.toBe('pong fresh');
    expect(received.items).toContain('fresh');
    expect(received.items).not.toContain('stale');
  });
});
