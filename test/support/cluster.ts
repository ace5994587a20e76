import { rabbitmqctlOn, startNode, type ExtraNode } from './rabbitmq-nodes';

/**
 * A three-node RabbitMQ cluster beside the default node (never joined to it): warren-c1 on 5701 is
 * started alone, warren-c2 (5702) and warren-c3 (5703) join it. One per test file (the machine has
 * two cores): start it in beforeAll, stop it in afterAll.
 */
export interface Cluster {
  readonly nodes: readonly ExtraNode[];
  /** Every node's AMQP URL, c1 first (the order a session tries them in). */
  readonly urls: string[];
  /** `rabbitmqctl -n <node> stop_app`: the node's listener closes and its connections are cut. */
  stopApp(node: ExtraNode): Promise<void>;
  /** `rabbitmqctl -n <node> start_app`, waiting until the node serves again. */
  startApp(node: ExtraNode): Promise<void>;
  /** The node a client connection (by its client-provided name) is on; undefined when none has it. */
  nodeOf(connectionName: string): Promise<ExtraNode | undefined>;
  /** The node a queue's leader (quorum) or home (classic) is on. */
  queueNode(queue: string): Promise<ExtraNode | undefined>;
  /** Stop every node, in reverse order (apps stopped earlier are started first, so the last one out is clean). */
  stop(): Promise<void>;
}

export const CLUSTER_PORTS = [5701, 5702, 5703] as const;
const NAMES = ['warren-c1', 'warren-c2', 'warren-c3'] as const;

export async function startCluster(): Promise<Cluster> {
  const nodes: ExtraNode[] = [];
  const appStopped = new Set<ExtraNode>();
  const nodeNamed = (erlangName: string) => nodes.find((n) => `${n.name}@localhost` === erlangName);
  const cluster: Cluster = {
    nodes,
    urls: [],
    async stopApp(node) {
      appStopped.add(node);
      await node.ctl(['stop_app']);
    },
    async startApp(node) {
      await node.ctl(['start_app'], 120_000);
      await node.ctl(['await_startup', '--timeout', '60'], 90_000);
      appStopped.delete(node);
    },
    async nodeOf(connectionName) {
      // Ask a node whose app runs: list_connections covers the whole cluster; the server port tells the node.
      const asker = nodes.find((n) => !appStopped.has(n));
      if (!asker) return undefined;
      const rows = await rows_(asker, ['list_connections', 'port', 'client_properties']);
      const row = rows.find(([, props]) => props?.includes(`"${connectionName}"`));
      return row ? nodes.find((n) => String(n.port) === row[0]) : undefined;
    },
    async queueNode(queue) {
      const asker = nodes.find((n) => !appStopped.has(n));
      if (!asker) return undefined;
      const rows = await rows_(asker, ['list_queues', 'name', 'leader', 'pid']);
      const row = rows.find(([name]) => name === queue);
      if (!row) return undefined;
      const [, leader, pid] = row;
      if (leader && leader.includes('@')) return nodeNamed(leader);
      // A classic queue's pid prints as <node.N.M.K>: its node is inside.
      const m = /<([^.>]+@[^.>]+)\./.exec(pid ?? '');
      return m ? nodeNamed(m[1] ?? '') : undefined;
    },
    async stop() {
      for (const node of [...nodes].reverse()) await node.stop().catch(() => undefined);
    },
  };
  try {
    // Boot all three at once (most of the bring-up), then join the 2nd and 3rd to the 1st one by one.
    const booted = await Promise.allSettled(NAMES.map((name, i) => startNode(name, CLUSTER_PORTS[i] as number)));
    for (const b of booted) if (b.status === 'fulfilled') nodes.push(b.value);
    const failed = booted.find((b) => b.status === 'rejected');
    if (failed) throw failed.reason;
    for (const node of nodes.slice(1)) {
      await node.ctl(['stop_app']);
      await node.ctl(['reset']);
      await node.ctl(['join_cluster', `${NAMES[0]}@localhost`], 120_000);
      await node.ctl(['start_app'], 120_000);
      await node.ctl(['await_startup', '--timeout', '60'], 90_000);
    }
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  cluster.urls.push(...nodes.map((n) => n.url));
  return cluster;
}

/** Tab-separated rows without headers. */
async function rows_(node: ExtraNode, args: string[]): Promise<string[][]> {
  const out = await rabbitmqctlOn(node.name, [...args, '--quiet', '--no-table-headers']);
  return out
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => line.split('\t'));
}
