import { lastValueFrom } from 'rxjs';
import type { AmqpSession } from '../../lib/amqp';
import { AmqpClient } from '../../lib/nest';
import { brokerAddress, deleteQueue, uniqueName } from '../support/broker';
import { BrokerProbe } from '../support/nest-support';
import { EventLog } from '../support/session-workload';
import { TcpProxy } from '../support/tcp-proxy';
import { TestTelemetry } from '../support/telemetry';

// Warren's own metrics across an outage: the client's connections go through a TCP proxy that cuts them and then
// refuses new ones for a while. Run serially: npx jest --selectProjects faults --runInBand <this file>

jest.setTimeout(60_000);

const telemetry = new TestTelemetry();

describe("Warren's metrics across a lost connection", () => {
  let proxy: TcpProxy;
  let probe: BrokerProbe;
  const queue = uniqueName('nest-otel-outage');

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    await probe.channel.assertQueue(queue, { durable: false });
    proxy = new TcpProxy(brokerAddress());
    await proxy.start();
  });

  afterAll(async () => {
    await proxy?.close();
    await deleteQueue(queue).catch(() => undefined);
    await probe?.close();
    await telemetry.shutdown();
  });

  it('counts the reconnect, the publish re-sent after the cut and the one buffered during the outage', async () => {
    const name = uniqueName('otel-outage');
    const client = new AmqpClient({
      url: proxy.url(),
      connectionName: name,
      name,
      queue,
      reconnect: { initialDelayMs: 200 },
    });
    try {
      await client.connect();
      const session = client.unwrap<AmqpSession>();
      const events = new EventLog(session);
      const told = { buffered: 0, republished: 0 };
      session.on('publishBuffered', (info) => {
        expect(info).toEqual({ exchange: '', routingKey: queue });
        told.buffered++;
      });
      session.on('publishRepublished', (info) => {
        expect(info).toEqual({ exchange: '', routingKey: queue });
        told.republished++;
      });

      const session_ = { 'warren.session.name': name };
      const down = events.next('disconnected', 'publisher');
      const retrying = events.next('reconnecting', 'publisher');
      const back = events.next('recovered', 'publisher');
      proxy.refuse(true);
      // On the wire, unconfirmed, when its connection goes: sent again once the session is back.
      const inFlight = lastValueFrom(client.emit('outage', { n: 1 }), { defaultValue: undefined });
      proxy.cut();
      await down;
      await retrying;
      // Nothing to publish on now: it waits in the outage buffer.
      const buffered = lastValueFrom(client.emit('outage', { n: 2 }), { defaultValue: undefined });
      proxy.refuse(false);
      await back;
      await Promise.all([inFlight, buffered]);

      expect(told).toEqual({ buffered: 1, republished: 1 });
      expect(
        await telemetry.value('warren.session.reconnects', { ...session_, 'warren.session.role': 'publisher' }),
      ).toBe(1);
      expect(
        await telemetry.value('warren.publish.republished', { ...session_, 'messaging.destination.name': '' }),
      ).toBe(1);
      expect(await telemetry.value('warren.publish.buffered', { ...session_, 'messaging.destination.name': '' })).toBe(
        1,
      );
    } finally {
      proxy.refuse(false);
      await client.close();
    }
  });

  it('counts a publish made while nothing is connected, the buffer empty, as buffered once', async () => {
    const name = uniqueName('otel-outage-idle');
    const client = new AmqpClient({
      url: proxy.url(),
      connectionName: name,
      name,
      queue,
      reconnect: { initialDelayMs: 200 },
    });
    try {
      await client.connect();
      const session = client.unwrap<AmqpSession>();
      const events = new EventLog(session);
      let told = 0;
      session.on('publishBuffered', () => told++);
      const retrying = events.next('reconnecting', 'publisher');
      const back = events.next('recovered', 'publisher');
      proxy.refuse(true);
      proxy.cut();
      await retrying;
      const buffered = lastValueFrom(client.emit('outage', { n: 3 }), { defaultValue: undefined });
      proxy.refuse(false);
      await back;
      await buffered;
      expect(told).toBe(1);
      expect(
        await telemetry.value('warren.publish.buffered', {
          'warren.session.name': name,
          'messaging.destination.name': '',
        }),
      ).toBe(1);
    } finally {
      proxy.refuse(false);
      await client.close();
    }
  });
});
