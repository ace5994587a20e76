import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { ConnectionLostError, type AmqpSession, type SessionRole } from '../../lib/amqp';
import { AmqpClient, AmqpController, type AmqpClientOptions, type AmqpContext } from '../../lib/nest';
import { amqpUrl, killConnection, uniqueName } from '../support/broker';
import { BrokerProbe, closeAll, Recorder, rejection, startMicroservice } from '../support/nest-support';

// AmqpClient with `replyTo: 'queue'` across a loss of its consumer connection (the one its reply queue lives on).
// These tests force-close their own client's connections only (found by its unique connection name).

jest.setTimeout(30_000);

const exchange = uniqueName('nest-rqrec-x');
const queue = uniqueName('nest-rqrec-q');
/** reply_to of each request the server got, by payload. */
const replyToOf = new Map<string, string | undefined>();
const holdStarted = new Recorder<string>();
/** Resolvers of the held requests, in arrival order. */
const held: Array<() => void> = [];

@AmqpController({ queue: { name: queue, durable: false }, exchange: { name: exchange, type: 'topic', durable: false } })
class HoldController {
  @MessagePattern('rqrec.ping')
  ping(@Payload() tag: string, @Ctx() ctx: AmqpContext) {
    replyToOf.set(tag, ctx.getProperties().replyTo);
    return `pong ${tag}`;
  }

  @MessagePattern('rqrec.hold')
  async hold(@Payload() tag: string, @Ctx() ctx: AmqpContext) {
    replyToOf.set(tag, ctx.getProperties().replyTo);
    await new Promise<void>((resolve) => {
      held.push(resolve);
      holdStarted.push(tag);
    });
    return `held ${tag}`;
  }
}

function nextEvent(session: AmqpSession, event: 'recovered' | 'disconnected', role: SessionRole): Promise<void> {
  return new Promise((resolve) => {
    const on = (r: SessionRole) => {
      if (r !== role) return;
      session.off(event, on);
      resolve();
    };
    session.on(event, on);
  });
}

describe("AmqpClient replyTo: 'queue' across a reconnect", () => {
  const closeables: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;

  const newClient = (options: AmqpClientOptions) => {
    const client = new AmqpClient({ url: amqpUrl(), exchange, timeout: 20_000, replyTo: 'queue', ...options });
    closeables.push(client);
    return client;
  };

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    probe.track('queue', queue);
    probe.track('exchange', exchange);
    closeables.push((await startMicroservice({ controllers: [HoldController] })).app);
  });

  afterEach(() => {
    for (const release of held.splice(0)) release();
  });

  afterAll(async () => {
    await closeAll(closeables);
    await probe?.close();
  });

  it('a fixed replyQueue keeps the reply of a call in flight through a loss of the consumer connection', async () => {
    const connectionName = uniqueName('nest-rqrec-fixed');
    const replyQueue = probe.queue('rqrec-fixed');
    const client = newClient({ connectionName, replyQueue });
    await expect(firstValueFrom(client.send('rqrec.ping', 'fixed-warm'))).resolves.toBe('pong fixed-warm');
    const session = client.unwrap<AmqpSession>();

    const call = firstValueFrom(client.send('rqrec.hold', 'fixed-held'));
    await holdStarted.waitFor(holdStarted.items.length + 1);
    const disconnected = nextEvent(session, 'disconnected', 'consumer');
    const recovered = nextEvent(session, 'recovered', 'consumer');
    await killConnection(`${connectionName}:consumer`);
    await disconnected;
    held.shift()!(); // replied while the client's reply consumer is gone: the reply waits in the queue

    await expect(call).resolves.toBe('held fixed-held');
    await recovered;
    await expect(firstValueFrom(client.send('rqrec.ping', 'fixed-after'))).resolves.toBe('pong fixed-after');
    expect(replyToOf.get('fixed-held')).toBe(replyQueue);
    expect(replyToOf.get('fixed-after')).toBe(replyQueue);
  });

  it('a server-named reply queue: the call in flight fails at once, later calls reply to the re-created queue', async () => {
    const connectionName = uniqueName('nest-rqrec-gen');
    const client = newClient({ connectionName });
    await expect(firstValueFrom(client.send('rqrec.ping', 'gen-warm'))).resolves.toBe('pong gen-warm');
    const before = replyToOf.get('gen-warm');
    expect(before).toMatch(/^amq\.gen-/);
    const session = client.unwrap<AmqpSession>();
    const recovered = nextEvent(session, 'recovered', 'consumer');

    const call = rejection(firstValueFrom(client.send('rqrec.hold', 'gen-held')));
    await holdStarted.waitFor(holdStarted.items.length + 1);
    const killedAt = Date.now();
    await killConnection(`${connectionName}:consumer`);

    const err = await call;
    expect(err).toBeInstanceOf(ConnectionLostError);
    expect(err.message).toContain('re-created');
    expect(Date.now() - killedAt).toBeLessThan(10_000); // the call's timeout is 20 s
    await recovered;

    await expect(firstValueFrom(client.send('rqrec.ping', 'gen-after'))).resolves.toBe('pong gen-after');
    const after = replyToOf.get('gen-after');
    expect(after).toMatch(/^amq\.gen-/);
    expect(after).not.toBe(before);
  });
});
