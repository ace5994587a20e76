import { Controller } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import type { AmqpSession } from '../../lib/amqp';
import { AmqpClient } from '../../lib/nest';
import { uniqueName } from '../support/broker';
import { startCluster, type Cluster } from '../support/cluster';
import { closeAll, Recorder, startMicroservice } from '../support/nest-support';

jest.setTimeout(120_000);

const exchange = uniqueName('cluster-nest-x');
const rpcQueue = uniqueName('cluster-nest-rpc');
const eventQueue = uniqueName('cluster-nest-events');
const events = new Recorder<number>();

@Controller()
class ClusterController {
  @MessagePattern('cluster.ping', { queue: { name: rpcQueue, type: 'quorum' }, exchange })
  ping(@Payload() n: number) {
    return n + 1;
  }

  @EventPattern('cluster.event', { queue: { name: eventQueue, type: 'quorum' }, exchange })
  event(@Payload() n: number) {
    events.push(n);
  }
}

/**
 * A Nest app (server and client) on a three-node cluster with quorum queues: when the node the server
 * consumes on is stopped, RPC keeps answering and events keep flowing once the session has moved.
 */
describe('Nest on a 3-node cluster', () => {
  let cluster: Cluster;
  const closeables: Array<{ close(): Promise<unknown> }> = [];

  beforeAll(async () => {
    cluster = await startCluster();
  }, 180_000);

  afterAll(async () => {
    await closeAll(closeables);
    await cluster?.stop();
  }, 120_000);

  it('RPC keeps answering and events keep flowing through a stop_app of the node the server consumes on', async () => {
    const serverName = uniqueName('cluster-nest-server');
    const { app, server } = await startMicroservice(
      { controllers: [ClusterController] },
      { url: cluster.urls, connectionName: serverName },
    );
    closeables.push(app);
    const client = new AmqpClient({ url: cluster.urls, exchange, timeout: 30_000 });
    closeables.push(client);
    expect(await firstValueFrom(client.send<number>('cluster.ping', 1))).toBe(2);
    await lastValueFrom(client.emit('cluster.event', 0), { defaultValue: undefined });
    await events.waitFor(1);

    const node = await cluster.nodeOf(`${serverName}:consumer`);
    expect(node).toBeDefined();
    const session = server.unwrap<AmqpSession>();
    const consumerBack = new Promise<void>((resolve) =>
      session.on('recovered', (role) => role === 'consumer' && resolve()),
    );
    await cluster.stopApp(node!);
    try {
      // Sent while the server's consumer connection moves: each call is answered (the requests wait in the
      // quorum queue), every event is delivered (confirmed publishes, at-least-once).
      const calls = [10, 20, 30].map((n) => firstValueFrom(client.send<number>('cluster.ping', n)));
      for (let n = 1; n <= 20; n++) await lastValueFrom(client.emit('cluster.event', n), { defaultValue: undefined });
      await consumerBack;
      expect(await Promise.all(calls)).toEqual([11, 21, 31]);
      await events.waitFor(21);
      expect(new Set(events.items)).toEqual(new Set(Array.from({ length: 21 }, (_, i) => i)));
      const movedTo = await cluster.nodeOf(`${serverName}:consumer`);
      expect(movedTo?.name).not.toBe(node!.name);
    } finally {
      await cluster.startApp(node!);
    }
    expect(await firstValueFrom(client.send<number>('cluster.ping', 41))).toBe(42);
  });
});
