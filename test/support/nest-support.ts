import { Logger, type INestMicroservice, type ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import * as amqp from 'amqplib';
import { AmqpServer, type AmqpServerOptions } from '../../lib/nest';
import { amqpUrl, uniqueName } from './broker';

/** Nest's logs stay quiet in tests unless WARREN_TEST_LOGS is set. */
if (!process.env.WARREN_TEST_LOGS) Logger.overrideLogger(false);

/** Values pushed by handlers, with waits for the n-th one (event based, no polling). */
export class Recorder<T> {
  readonly items: T[] = [];
  private waiters: Array<{ n: number; resolve: () => void }> = [];

  push(item: T): void {
    this.items.push(item);
    for (const w of this.waiters.filter((x) => this.items.length >= x.n)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }

  /** Resolves with the items once there are at least n; rejects after timeoutMs. */
  async waitFor(n: number, timeoutMs = 10_000): Promise<T[]> {
    if (this.items.length < n) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.waiters.push({ n, resolve })),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new Error(`timed out after ${timeoutMs} ms waiting for ${n} item(s), got ${this.items.length}`)),
            timeoutMs,
          );
        }),
      ]).finally(() => clearTimeout(timer));
    }
    return this.items;
  }
}

/** A promise with its resolve function outside. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Resolves with the error a promise rejects with; fails if it resolves. */
export async function rejection(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (err: unknown) => err as Error & Record<string, unknown>,
  );
}

/**
 * An amqplib connection for acting on and looking at the broker from outside Warren, which also remembers the
 * queues and exchanges a test used and deletes them afterwards.
 */
export class BrokerProbe {
  private readonly queues = new Set<string>();
  private readonly exchanges = new Set<string>();

  private constructor(
    readonly connection: amqp.ChannelModel,
    readonly channel: amqp.ConfirmChannel,
  ) {}

  static async open(): Promise<BrokerProbe> {
    const connection = await amqp.connect(amqpUrl());
    connection.on('error', () => undefined);
    const channel = await connection.createConfirmChannel();
    channel.on('error', () => undefined);
    return new BrokerProbe(connection, channel);
  }

  /** A unique queue name, deleted at cleanup. */
  queue(prefix = 'q'): string {
    const name = uniqueName(`nest-${prefix}`);
    this.queues.add(name);
    return name;
  }

  /** A unique exchange name, deleted at cleanup. */
  exchange(prefix = 'x'): string {
    const name = uniqueName(`nest-${prefix}`);
    this.exchanges.add(name);
    return name;
  }

  /** Remember a name that derives from another (retry queues, parking lots) for cleanup. */
  track(kind: 'queue' | 'exchange', name: string): string {
    (kind === 'queue' ? this.queues : this.exchanges).add(name);
    return name;
  }

  /** Passive declare on a throwaway channel. */
  async queueInfo(name: string): Promise<amqp.Replies.AssertQueue | null> {
    const ch = await this.connection.createChannel();
    ch.on('error', () => undefined);
    try {
      const info = await ch.checkQueue(name);
      await ch.close();
      return info;
    } catch {
      return null;
    }
  }

  async exchangeExists(name: string): Promise<boolean> {
    const ch = await this.connection.createChannel();
    ch.on('error', () => undefined);
    try {
      await ch.checkExchange(name);
      await ch.close();
      return true;
    } catch {
      return false;
    }
  }

  /** Messages currently ready in a queue. */
  async messageCount(queue: string): Promise<number> {
    return (await this.queueInfo(queue))?.messageCount ?? -1;
  }

  /** Fetch one message (basic.get, acked). */
  async get(queue: string): Promise<amqp.GetMessage | false> {
    const ch = await this.connection.createChannel();
    try {
      return await ch.get(queue, { noAck: true });
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  /** Publish with a confirm. */
  async publish(
    exchange: string,
    routingKey: string,
    body: unknown,
    options: amqp.Options.Publish = {},
  ): Promise<void> {
    const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const contentType = Buffer.isBuffer(body)
      ? undefined
      : typeof body === 'string'
        ? 'text/plain'
        : 'application/json';
    await new Promise<void>((resolve, reject) =>
      this.channel.publish(exchange, routingKey, content, { contentType, ...options }, (err) =>
        err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
      ),
    );
  }

  async cleanup(): Promise<void> {
    const ch = await this.connection.createChannel();
    ch.on('error', () => undefined);
    for (const q of this.queues) await ch.deleteQueue(q).catch(() => undefined);
    for (const x of this.exchanges) await ch.deleteExchange(x).catch(() => undefined);
    await ch.close().catch(() => undefined);
    this.queues.clear();
    this.exchanges.clear();
  }

  async close(): Promise<void> {
    await this.cleanup().catch(() => undefined);
    await this.connection.close().catch(() => undefined);
  }
}

/** A standalone microservice (its own AmqpServer and session) with the given controllers, listening. */
export async function startMicroservice(
  metadata: ModuleMetadata,
  options: AmqpServerOptions = {},
): Promise<{ app: INestMicroservice; server: AmqpServer }> {
  const moduleRef = await Test.createTestingModule(metadata).compile();
  const server = new AmqpServer({ url: amqpUrl(), ...options });
  const app = moduleRef.createNestMicroservice({ strategy: server, logger: false });
  await app.listen();
  return { app, server };
}

/** Closes apps, ignoring errors (for afterEach). */
export async function closeAll(apps: Array<{ close(): Promise<unknown> }>): Promise<void> {
  for (const app of apps.splice(0)) await app.close().catch(() => undefined);
}
