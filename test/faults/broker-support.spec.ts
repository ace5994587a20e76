import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as amqp from 'amqplib';
import {
  amqpUrl,
  closeConnectionsWhere,
  decodeTable,
  deleteQueue,
  listBindings,
  listConnections,
  queueExists,
  uniqueName,
  waitFor,
} from '../support/broker';

jest.setTimeout(60_000);

describe('test/support/broker', () => {
  const models: amqp.ChannelModel[] = [];

  afterEach(async () => {
    for (const model of models.splice(0)) await model.close().catch(() => undefined);
  });

  const open = async (connectionName: string): Promise<amqp.ChannelModel> => {
    const model = await amqp.connect(amqpUrl(), { clientProperties: { connection_name: connectionName } });
    model.on('error', () => undefined);
    models.push(model);
    return model;
  };

  it('uniqueName is prefixed, carries the pid and differs between calls', () => {
    const a = uniqueName('q');
    const b = uniqueName('q');
    expect(a.startsWith(`q-${process.pid}-`)).toBe(true);
    expect(a).not.toBe(b);
  });

  it('decodeTable handles nested tables and arrays', () => {
    expect(
      decodeTable([
        ['a', 'longstr', 'b'],
        ['n', 'byte', 5],
        ['t', 'table', [['ok', 'bool', true]]],
        [
          'l',
          'array',
          [
            ['longstr', 'x'],
            ['signedint', 2],
          ],
        ],
      ]),
    ).toEqual({ a: 'b', n: 5, t: { ok: true }, l: ['x', 2] });
  });

  it('lists a connection with its client-provided name and closes it by name', async () => {
    const name = uniqueName('broker-support-conn');
    const model = await open(name);
    const other = await open(uniqueName('broker-support-other'));

    const found = await waitFor(
      async () => (await listConnections()).find((c) => c.clientName === name),
      15_000,
      `connection ${name} to be listed`,
    );
    expect(found.user).toBe('guest');
    expect(found.port).toBe(new URL(amqpUrl()).port ? Number(new URL(amqpUrl()).port) : 5672);
    expect(found.pid).toMatch(/^<.+>$/);
    expect(found.clientProperties.product).toBe('amqplib');
    expect(found.name).toContain('->');
    // The broker's peer port is the client's local port.
    const stream = (model.connection as unknown as { stream: { address(): AddressInfo } }).stream;
    expect(found.peerPort).toBe(stream.address().port);

    const closedEvent = once(model, 'close') as Promise<[Error | undefined]>;
    const closed = await closeConnectionsWhere((c) => c.clientName === name, 'broker-support test');
    expect(closed.map((c) => c.clientName)).toEqual([name]);
    const [err] = await closedEvent;
    expect(err?.message).toContain('CONNECTION_FORCED');
    expect(err?.message).toContain('broker-support test');
    models.splice(models.indexOf(model), 1);

    // The other connection is untouched.
    const channel = await other.createChannel();
    await channel.close();
  });

  it('queueExists, listBindings and deleteQueue', async () => {
    const queue = uniqueName('broker-support-q');
    const model = await open(uniqueName('broker-support-q-conn'));
    const channel = await model.createChannel();
    try {
      expect(await queueExists(queue)).toBe(false);
      await channel.assertQueue(queue, { durable: false, autoDelete: false });
      expect(await queueExists(queue)).toBe(true);

      const bindings = await listBindings();
      expect(bindings).toContainEqual({
        source: '',
        sourceKind: 'exchange',
        destination: queue,
        destinationKind: 'queue',
        routingKey: queue,
        arguments: {},
      });

      expect(await deleteQueue(queue)).toBe(true);
      expect(await queueExists(queue)).toBe(false);
      expect(await deleteQueue(queue)).toBe(false);
    } finally {
      await channel.deleteQueue(queue).catch(() => undefined);
    }
  });

  it('waitFor times out with a clear message', async () => {
    await expect(waitFor(() => false, 150, 'nothing in particular', 20)).rejects.toThrow(
      'Timed out after 150 ms waiting for nothing in particular',
    );
    await expect(
      waitFor(
        () => {
          throw new Error('boom');
        },
        50,
        'a throwing probe',
        10,
      ),
    ).rejects.toThrow('(last error: boom)');
    await expect(waitFor(() => 42, 50, 'a value')).resolves.toBe(42);
  });
});
