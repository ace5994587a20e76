/**
 * Chaos soak (`npm run soak`): confirmed persistent publishes and manual-ack consumption through an
 * AmqpSession for SOAK_MINUTES (default 10), with a fault injected at random times (exponential, mean
 * SOAK_FAULT_EVERY_S, default 20 s): `rabbitmqctl close_connection` on the session's connections, a
 * proxy stall past the heartbeat timeout, a proxy cut, and `stop_app` / `start_app`.
 *
 * With SOAK_CLUSTER=1 it runs against a 3-node cluster started beside the default node (test/support/
 * cluster.ts; the default node is not touched): a quorum queue holds the work, the session gets every
 * node (each through its own proxy), and the faults are stalls, cuts and a node stop (`stop_app` of the
 * node the publisher is on, `start_app` a few seconds later); the cluster is stopped on the way out.
 *
 * Prints published / confirmed / rejected / consumed / lost / duplicated and the longest publish stall,
 * and exits non-zero if a confirmed message was lost or any publish was rejected (every fault is far
 * shorter than the outage buffer's bound, so none may be). Runs under the broker lock (`npm run soak`):
 * it restarts the shared broker's application and always starts it again.
 */
import { AmqpSession, type SessionMessage } from '../lib';
import {
  brokerAddress,
  closeConnectionsWhere,
  rabbitmqctl,
  startApp,
  stopApp,
  uniqueName,
} from '../test/support/broker';
import { startCluster, type Cluster } from '../test/support/cluster';
import { TcpProxy } from '../test/support/tcp-proxy';

const MINUTES = Number(process.env.SOAK_MINUTES ?? '10');
const FAULT_EVERY_S = Number(process.env.SOAK_FAULT_EVERY_S ?? '20');
const HEARTBEAT_S = 2;
const MAX_IN_FLIGHT = 200;
const CLUSTER = process.env.SOAK_CLUSTER === '1';
const NODE_DOWN_MS = 5000;

type Fault = 'close_connection' | 'stall' | 'cut' | 'restart' | 'node_stop';

/** One bit of state per message id, in 1 Mi-id chunks: tens of millions of ids cost a few MiB, not a Set's GiBs. */
class IdMarks {
  private readonly chunks: Uint8Array[] = [];
  size = 0;

  /** Mark `id`; false when it was marked already. */
  mark(id: number): boolean {
    const chunk = (this.chunks[id >>> 20] ??= new Uint8Array(1 << 20));
    const at = id & 0xfffff;
    if (chunk[at] === 1) return false;
    chunk[at] = 1;
    this.size++;
    return true;
  }

  has(id: number): boolean {
    return this.chunks[id >>> 20]?.[id & 0xfffff] === 1;
  }
}
const FAULTS: Fault[] = CLUSTER ? ['stall', 'cut', 'node_stop'] : ['close_connection', 'stall', 'cut', 'restart'];

/** Where the soak runs: the default broker through one proxy, or a started cluster through one proxy per node. */
interface Target {
  proxies: TcpProxy[];
  cluster?: Cluster;
}

const quiet = { debug: () => undefined, warn: () => undefined, error: (m: string) => console.error(`error: ${m}`) };

async function main(): Promise<number> {
  const queue = uniqueName('warren-soak');
  const name = uniqueName('warren-soak');
  const target: Target = { proxies: [] };
  try {
    return await soak(queue, name, target);
  } finally {
    for (const proxy of target.proxies) await proxy.close();
    await target.cluster?.stop();
  }
}

async function soak(queue: string, name: string, target: Target): Promise<number> {
  if (CLUSTER) {
    const startedAt = Date.now();
    target.cluster = await startCluster();
    console.log(`[soak] 3-node cluster up in ${Date.now() - startedAt} ms`);
    for (const node of target.cluster.nodes) target.proxies.push(new TcpProxy({ port: node.port }));
  } else {
    target.proxies.push(new TcpProxy(brokerAddress()));
  }
  for (const proxy of target.proxies) await proxy.start();
  const session = new AmqpSession({
    url: target.proxies.map((proxy) => proxy.url('guest', 'guest', `heartbeat=${HEARTBEAT_S}`)),
    connectionName: name,
    logger: quiet,
  });
  await session.connect();
  // A soak that dies half-way leaves no queue behind for long: unused for a minute, the broker deletes it.
  await session.queueDeclare(queue, { durable: true, expires: 60_000, ...(CLUSTER ? { type: 'quorum' } : {}) });

  const confirmed = new IdMarks();
  const consumed = new IdMarks();
  let deliveries = 0;
  let rejected = 0;
  let published = 0;
  let inFlight = 0;
  let lastConfirmAt = Date.now();
  let longestStallMs = 0;
  const faults: string[] = [];
  await session.consume(
    queue,
    (m: SessionMessage) => {
      deliveries++;
      consumed.mark(Number(m.body.toString()));
      m.ack();
    },
    { prefetch: 200 },
  );

  const endAt = Date.now() + MINUTES * 60_000;
  let stopping = false;
  let slot: (() => void) | null = null;
  const publisher = (async () => {
    while (!stopping) {
      while (inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => (slot = r));
      const i = published++;
      inFlight++;
      session
        .publish('', queue, String(i), { persistent: true, messageId: String(i) })
        .then(
          () => {
            confirmed.mark(i);
            const now = Date.now();
            longestStallMs = Math.max(longestStallMs, now - lastConfirmAt);
            lastConfirmAt = now;
          },
          (err: Error) => {
            rejected++;
            console.error(`rejected publish ${i}: ${err.name}: ${err.message}`);
          },
        )
        .finally(() => {
          inFlight--;
          slot?.();
          slot = null;
        });
      // Yield now and then so faults, timers and the consumer run.
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
  })();

  const started = Date.now();
  try {
    while (Date.now() < endAt) {
      const waitMs = Math.min(endAt - Date.now(), -Math.log(1 - Math.random()) * FAULT_EVERY_S * 1000);
      await new Promise((r) => setTimeout(r, waitMs));
      if (Date.now() >= endAt) break;
      const fault = FAULTS[Math.floor(Math.random() * FAULTS.length)];
      const at = ((Date.now() - started) / 1000).toFixed(1);
      faults.push(`${at}s ${fault}`);
      console.log(
        `[soak] t=${at}s ${fault} (published ${published}, confirmed ${confirmed.size}, consumed ${consumed.size})`,
      );
      await inject(fault, name, target);
    }
  } finally {
    stopping = true;
    (slot as (() => void) | null)?.();
    await publisher;
  }
  // Everything still in flight settles (bounded by the buffer's own timeout), then the consumer drains.
  const drainDeadline = Date.now() + 60_000;
  while (inFlight > 0 && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 100));
  let missing: number[] = [];
  for (let i = 0; i < published; i++) if (confirmed.has(i) && !consumed.has(i)) missing.push(i);
  while (missing.length > 0 && Date.now() < drainDeadline) {
    await new Promise((r) => setTimeout(r, 100));
    missing = missing.filter((i) => !consumed.has(i));
  }
  const lost = missing.length;
  await session.queueDelete(queue).catch(() => undefined);
  await session.close({ timeoutMs: 5000 });

  console.log(
    `[soak] ${CLUSTER ? '3-node cluster, ' : ''}${MINUTES} min, ${faults.length} faults (${countBy(faults)}): published ${published}, confirmed ${confirmed.size}, ` +
      `rejected ${rejected}, consumed ${consumed.size} (${deliveries} deliveries, ${deliveries - consumed.size} duplicated), ` +
      `lost ${lost}, longest publish stall ${longestStallMs} ms`,
  );
  return lost > 0 || rejected > 0 ? 1 : 0;
}

async function inject(fault: Fault, name: string, target: Target): Promise<void> {
  switch (fault) {
    case 'close_connection':
      await closeConnectionsWhere((c) => c.clientName?.startsWith(`${name}:`) ?? false, 'soak');
      return;
    case 'stall':
      // Past the heartbeat timeout (2 × heartbeat): only missed heartbeats can tell.
      for (const proxy of target.proxies) proxy.stallExisting();
      await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_S * 1000));
      for (const proxy of target.proxies) proxy.resume();
      return;
    case 'cut':
      for (const proxy of target.proxies) proxy.cut();
      return;
    case 'node_stop': {
      const cluster = target.cluster as Cluster;
      const node = (await cluster.nodeOf(`${name}:publisher`)) ?? cluster.nodes[0];
      console.log(`[soak]   stop_app ${node?.name}`);
      if (!node) return;
      try {
        await cluster.stopApp(node);
        await new Promise((r) => setTimeout(r, NODE_DOWN_MS));
      } finally {
        await cluster.startApp(node);
      }
      return;
    }
    case 'restart':
      try {
        await stopApp();
        await new Promise((r) => setTimeout(r, 3000));
      } finally {
        await startApp();
      }
      return;
  }
}

function countBy(items: string[]): string {
  const counts = new Map<string, number>();
  for (const f of items) {
    const kind = f.split(' ')[1];
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${k} ×${n}`).join(', ');
}

// Interrupted (Ctrl-C) in the middle of a stop_app: start the broker again on the way out.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // (In cluster mode the cluster's own exit hooks stop its nodes.)
    void (CLUSTER ? Promise.resolve('') : rabbitmqctl(['start_app'], 120_000))
      .catch(() => undefined)
      .finally(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    console.error(`[soak] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    // Never leave the shared broker stopped.
    if (!CLUSTER) await rabbitmqctl(['start_app'], 120_000).catch(() => undefined);
    process.exit(2);
  },
);
