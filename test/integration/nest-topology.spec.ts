import { Controller } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import {
  AmqpClient,
  AmqpController,
  TopologyConflictError,
  TopologyMismatchError,
  type ExchangeDefinition,
  type QueueDefinition,
  AmqpEventPattern,
} from '../../lib/nest';
import { ConfigError } from '../../lib/amqp';
import { amqpUrl, listBindings, rabbitmqctl, uniqueName } from '../support/broker';
import { BrokerProbe, closeAll, Recorder, rejection, startMicroservice } from '../support/nest-support';

jest.setTimeout(30_000);

/** The broker's type of a queue (`classic`, `quorum`, `stream`), or undefined if it does not exist. */
async function queueType(name: string): Promise<string | undefined> {
  const out = await rabbitmqctl(['list_queues', 'name', 'type', '--formatter', 'json']);
  const rows = JSON.parse(out.trim() || '[]') as Array<{ name: string; type: string }>;
  return rows.find((row) => row.name === name)?.type;
}

describe('topology declared by decorators', () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;

  beforeEach(async () => {
    probe = await BrokerProbe.open();
  });

  afterEach(async () => {
    await closeAll(apps);
    await probe.close();
  });

  it('subclasses inheriting handlers from one base class each keep their own @AmqpController defaults', async () => {
    const exchange: ExchangeDefinition = { name: probe.exchange('inherit'), type: 'topic', durable: false };
    const seen = new Recorder<string>();
    const queueA = probe.queue('audit-a');
    const queueB = probe.queue('audit-b');

    class AuditBase {
      protected readonly label: string = 'base';

      @EventPattern('audit.recorded')
      recorded(@Payload() entry: string) {
        seen.push(`${this.label}:${entry}`);
      }
    }

    @AmqpController({ queue: { name: queueA, durable: false }, exchange })
    class AuditA extends AuditBase {
      protected override readonly label = 'a';
    }

    @AmqpController({ queue: { name: queueB, durable: false }, exchange })
    class AuditB extends AuditBase {
      protected override readonly label = 'b';
    }

    const { app } = await startMicroservice({ controllers: [AuditA, AuditB] });
    apps.push(app);
    // One event, two queues (one per subclass): each subclass's handler sees it once, from its own queue.
    await probe.publish(exchange.name, 'audit.recorded', 'e1');
    expect((await seen.waitFor(2)).sort()).toEqual(['a:e1', 'b:e1']);
    const bindings = await listBindings();
    for (const q of [queueA, queueB]) {
      expect(bindings).toContainEqual(
        expect.objectContaining({ source: exchange.name, destination: q, routingKey: 'audit.recorded' }),
      );
    }
  });

  it('declares exchanges, queues with arguments, bindings and exchange-to-exchange bindings before consuming', async () => {
    const ingress = probe.exchange('ingress');
    const events: ExchangeDefinition = { name: probe.exchange('events'), type: 'topic', durable: true };
    const dlx = probe.exchange('dlx');
    const inventory: QueueDefinition = {
      name: probe.queue('inventory'),
      messageTtl: 60_000,
      maxLength: 1000,
      overflow: 'reject-publish',
      deadLetterExchange: dlx,
      deadLetterRoutingKey: 'inventory.dead',
      singleActiveConsumer: true,
      maxPriority: 5,
    };
    const ledger: QueueDefinition = { name: probe.queue('ledger'), type: 'quorum', deliveryLimit: 5 };
    const seen = new Recorder<string>();

    @AmqpController({ exchange: events })
    class InventoryController {
      @EventPattern('stock.*.changed', { queue: inventory })
      changed(@Payload() sku: string) {
        seen.push(`inventory:${sku}`);
      }

      @EventPattern('stock.#', { queue: ledger, concurrency: 1 })
      ledger(@Payload() sku: string) {
        seen.push(`ledger:${sku}`);
      }
    }

    const { app } = await startMicroservice(
      { controllers: [InventoryController] },
      {
        topology: {
          exchanges: [
            { name: ingress, type: 'fanout', durable: false },
            { name: dlx, type: 'direct', durable: false },
          ],
          exchangeBindings: [{ source: ingress, destination: events.name, routingKey: '' }],
        },
      },
    );
    apps.push(app);

    // Everything exists (passive declares)...
    for (const x of [ingress, events.name, dlx]) expect(await probe.exchangeExists(x)).toBe(true);
    expect(await probe.queueInfo(inventory.name)).toMatchObject({ consumerCount: 1 });
    expect(await probe.queueInfo(ledger.name)).toMatchObject({ consumerCount: 1 });
    // ...with the declared arguments: an equivalent declaration from another client is accepted.
    const ch = await probe.connection.createChannel();
    await ch.assertQueue(inventory.name, {
      durable: true,
      arguments: {
        'x-message-ttl': 60_000,
        'x-max-length': 1000,
        'x-overflow': 'reject-publish',
        'x-dead-letter-exchange': dlx,
        'x-dead-letter-routing-key': 'inventory.dead',
        'x-single-active-consumer': true,
        'x-max-priority': 5,
      },
    });
    await ch.assertQueue(ledger.name, {
      durable: true,
      arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5 },
    });
    await ch.close();
    const bindings = await listBindings();
    expect(bindings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ source: events.name, destination: inventory.name, routingKey: 'stock.*.changed' }),
        expect.objectContaining({ source: events.name, destination: ledger.name, routingKey: 'stock.#' }),
        expect.objectContaining({ source: ingress, destination: events.name, destinationKind: 'exchange' }),
      ]),
    );

    // A message through the fanout → topic chain reaches both queues' handlers.
    await probe.publish(ingress, 'stock.apple.changed', 'apple');
    expect((await seen.waitFor(2)).sort()).toEqual(['inventory:apple', 'ledger:apple']);
  });

  it('declaring again is idempotent: a second instance starts against the existing topology', async () => {
    const queue: QueueDefinition = { name: probe.queue('again'), messageTtl: 5000 };
    const exchange: ExchangeDefinition = { name: probe.exchange('again'), type: 'direct' };

    @Controller()
    class AgainController {
      @MessagePattern('again.ping', { queue, exchange })
      ping() {
        return 'pong';
      }
    }

    apps.push((await startMicroservice({ controllers: [AgainController] })).app);
    apps.push((await startMicroservice({ controllers: [AgainController] })).app);
    const client = new AmqpClient({ url: amqpUrl(), exchange: exchange.name });
    apps.push(client);
    await expect(firstValueFrom(client.send('again.ping', {}))).resolves.toBe('pong');
    expect(await probe.queueInfo(queue.name)).toMatchObject({ consumerCount: 2 });
  });

  it('a queue that exists with other arguments (406) stops start-up with an error naming it and the argument', async () => {
    const name = probe.queue('mismatch');
    const ch = await probe.connection.createChannel();
    await ch.assertQueue(name, { durable: true, arguments: { 'x-message-ttl': 1000 } });
    await ch.close();

    @Controller()
    class MismatchController {
      @AmqpEventPattern('mismatch.event', { queue: { name, messageTtl: 5000 } })
      handle() {}
    }

    const err = await rejection(startMicroservice({ controllers: [MismatchController] }));
    expect(err).toBeInstanceOf(TopologyMismatchError);
    expect(err).toMatchObject({ entity: 'queue', entityName: name, argument: 'x-message-ttl' });
    expect(err.message).toContain(`queue '${name}'`);
    expect(err.message).toContain('x-message-ttl');
    expect(await probe.queueInfo(name)).toMatchObject({ consumerCount: 0 });
  });

  it('a queue that exists as another queue type stops start-up with an error that says so in words', async () => {
    const name = probe.queue('wrong-queue-type');
    const ch = await probe.connection.createChannel();
    await ch.assertQueue(name, { durable: true });
    await ch.close();

    @Controller()
    class WrongQueueTypeController {
      @AmqpEventPattern('wrong.queue.type', { queue: { name, type: 'quorum' } })
      handle() {}
    }

    const err = await rejection(startMicroservice({ controllers: [WrongQueueTypeController] }));
    expect(err).toBeInstanceOf(TopologyMismatchError);
    expect(err).toMatchObject({ entity: 'queue', entityName: name, argument: 'x-queue-type' });
    expect(err.message).toContain(
      `queue '${name}' exists on the broker as a classic queue, but this application declares it as a quorum queue`,
    );
  });

  it('an exchange that exists with another type stops start-up, naming the exchange', async () => {
    const name = probe.exchange('wrong-type');
    const ch = await probe.connection.createChannel();
    await ch.assertExchange(name, 'direct', { durable: true });
    await ch.close();

    @Controller()
    class WrongTypeController {
      @AmqpEventPattern('wrong.type', { queue: { name: probe.queue('wrong-type') }, exchange: { name, type: 'topic' } })
      handle() {}
    }

    const err = await rejection(startMicroservice({ controllers: [WrongTypeController] }));
    expect(err).toBeInstanceOf(TopologyMismatchError);
    expect(err).toMatchObject({ entity: 'exchange', entityName: name, argument: 'type' });
  });

  it('two handlers defining one queue differently fail start-up before anything is declared', async () => {
    const name = uniqueName('nest-conflict');

    @Controller()
    class ConflictController {
      @AmqpEventPattern('a', { queue: { name, messageTtl: 1000 } }) a() {}
      @AmqpEventPattern('b', { queue: { name, messageTtl: 2000 } }) b() {}
    }

    const err = await rejection(startMicroservice({ controllers: [ConflictController] }));
    expect(err).toBeInstanceOf(TopologyConflictError);
    expect(err.message).toContain(`queue '${name}'`);
    expect(await probe.queueInfo(name)).toBeNull();
  });

  it('a queue named only by a string is used as it exists (here a quorum queue made by someone else)', async () => {
    const name = probe.queue('existing');
    const ch = await probe.connection.createChannel();
    await ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.close();
    const seen = new Recorder<unknown>();

    @Controller()
    class ExistingController {
      @EventPattern('existing.event', { queue: name })
      handle(@Payload() p: unknown) {
        seen.push(p);
      }
    }

    apps.push((await startMicroservice({ controllers: [ExistingController] })).app);
    await probe.publish('', name, { ok: true });
    expect(await seen.waitFor(1)).toEqual([{ ok: true }]);
  });

  it("@AmqpController({ queue: { name, type: 'quorum' } }) declares a quorum queue, as AmqpSession.queueDeclare does", async () => {
    const name = probe.queue('quorum');
    const seen = new Recorder<unknown>();

    @AmqpController({ queue: { name, type: 'quorum' } })
    class QuorumController {
      @EventPattern('quorum.event')
      handle(@Payload() p: unknown) {
        seen.push(p);
      }
    }

    apps.push((await startMicroservice({ controllers: [QuorumController] })).app);
    expect(await queueType(name)).toBe('quorum');
    await probe.publish('', name, { ok: true });
    expect(await seen.waitFor(1)).toEqual([{ ok: true }]);
  });

  it('an unknown queue key fails start-up with a ConfigError naming it, before anything is declared', async () => {
    const name = probe.queue('unknown-key');
    const exchange = probe.exchange('unknown-key');
    const queue = { name, typ: 'quorum' } as QueueDefinition;

    @AmqpController({ queue, exchange: { name: exchange, type: 'topic' } })
    class TypoController {
      @AmqpEventPattern('typo.event')
      handle() {}
    }

    const err = await rejection(startMicroservice({ controllers: [TypoController] }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ field: `queue '${name}'.typ` });
    expect(await probe.queueInfo(name)).toBeNull();
    expect(await probe.exchangeExists(exchange)).toBe(false);
  });
});
