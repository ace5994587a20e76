import { AmqpSession, UnroutableError } from '../../lib';
import { withTimeout } from '../../lib/amqp/deferred';
import { uniqueName } from '../support/broker';
import { startCluster, type Cluster } from '../support/cluster';
import type { ExtraNode } from '../support/rabbitmq-nodes';
import { EventLog, recordingLogger, Tally } from '../support/session-workload';

// A durable classic queue lives on one node of the cluster. While that node is stopped, RabbitMQ still confirms
// publishes routed to it and drops them; with `mandatory` they come back as UnroutableError instead, and a consumer
// of that queue connected to another node comes back once the queue's node does.
// Run: bash scripts/broker-lock.sh npx jest --selectProjects nodes --runInBand test/nodes/cluster-classic-queue.spec.ts

jest.setTimeout(120_000);

describe('a classic queue whose node is stopped (three-node cluster)', () => {
  let cluster: Cluster;
  let home: ExtraNode;
  let homeStopped = false;
  const sessions: AmqpSession[] = [];

  beforeAll(async () => {
    cluster = await startCluster();
    home = cluster.nodes[2] as ExtraNode;
  }, 180_000);

  afterAll(async () => {
    for (const s of sessions) await s.close().catch(() => undefined);
    if (homeStopped) await cluster.startApp(home).catch(() => undefined);
    await cluster?.stop();
  }, 120_000);

  it('publishes to it reject with UnroutableError when mandatory (and are confirmed and dropped when not); its consumer on another node resumes once the node is back', async () => {
    const queue = uniqueName('classic-on-c3');
    // Declared through c3, a classic queue lives on c3; the application's session is on c1.
    const declarer = new AmqpSession({ url: home.url, connectionName: uniqueName('declarer') });
    sessions.push(declarer);
    await declarer.connect();
    await declarer.queueDeclare(queue, { durable: true });
    await declarer.close();
    expect((await cluster.queueNode(queue))?.name).toBe(home.name);

    const name = uniqueName('warren-classic');
    const logger = recordingLogger();
    const session = new AmqpSession({
      url: cluster.urls,
      connectionName: name,
      logger,
      reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
    });
    sessions.push(session);
    const events = new EventLog(session);
    await session.connect();
    const tally = new Tally();
    let cancelledByBroker = 0;
    await session.consume(queue, tally.handler, { prefetch: 10, onCancel: () => cancelledByBroker++ });
    expect((await cluster.nodeOf(`${name}:consumer`))?.name).toBe(cluster.nodes[0]?.name);
    await session.publish('', queue, '0', { persistent: true, mandatory: true });
    await tally.uniqueAtLeast(1);

    const setupFailed = new Promise<void>((resolve) => session.once('setupFailed', () => resolve()));
    homeStopped = true;
    await cluster.stopApp(home);
    // Not mandatory: the broker confirms and drops it (nothing Warren can see).
    await expect(session.publish('', queue, '1', { persistent: true })).resolves.toBeUndefined();
    // Mandatory: returned, so the publish rejects.
    const returned = await session
      .publish('', queue, '2', { persistent: true, mandatory: true })
      .catch((e: Error) => e);
    expect(returned).toBeInstanceOf(UnroutableError);
    expect((returned as UnroutableError).replyCode).toBe(312);
    // The consumer (on c1) lost its queue: it retries its setup while the queue's node is down.
    // Bounded: a consumer that took the broker's cancel for a deletion would never retry.
    await withTimeout(setupFailed, 20_000, 'consumer setup retry');
    expect(cancelledByBroker).toBe(0);

    // Ready again once the consumer is attached again (the connections never dropped).
    expect(session.isReady).toBe(false);
    const consumerBack = session.whenReady();
    await cluster.startApp(home);
    homeStopped = false;
    await withTimeout(consumerBack, 30_000, 'consumer re-attach');
    await session.publish('', queue, '3', { persistent: true, mandatory: true });
    await tally.uniqueAtLeast(2);
    expect([...tally.ids]).toEqual([0, 3]);
    expect(events.count('recoveryFailed')).toBe(0);
    console.log(
      `cluster-classic-queue: server cancels ${cancelledByBroker}; setup retries ${logger.lines.filter((l) => /setup failed/.test(l)).length}; log: ${logger.lines.slice(0, 6).join(' | ')}`,
    );
    await session.queueDelete(queue).catch(() => undefined);
  });
});
