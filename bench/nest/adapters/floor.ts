import * as amqplib from 'amqplib';
import { AmqpSession, type Channel } from '../../../lib/amqp';
import {
  type BenchEvent,
  type EventSink,
  type NestBench,
  type NestTask,
  type RpcReply,
  type RpcRequest,
  pkgVersion,
} from '../protocol';

/**
 * Reference rows without Nest: the same request/reply and event traffic straight on an AMQP client, to show the
 * transport floor on this machine (broker round trips) and what the Nest layers add on top. Same shape as the Nest
 * rows: default exchange to a non-durable queue, direct reply-to, consumer acks after the "handler" (after the reply's
 * confirm for RPC), publisher confirms, prefetch as configured, JSON bodies. Server and client in one process.
 */

const REPLY_TO = 'amq.rabbitmq.reply-to';

abstract class FloorBench implements NestBench {
  abstract readonly name: string;
  protected task!: NestTask;
  protected sink!: EventSink;
  private readonly waiting = new Map<string, (reply: RpcReply) => void>();
  private nextId = 0;

  async setup(task: NestTask, sink: EventSink): Promise<void> {
    this.task = task;
    this.sink = sink;
    await this.start();
  }

  protected abstract start(): Promise<void>;
  protected abstract sendRequest(body: Buffer, correlationId: string): Promise<void>;
  abstract emit(event: BenchEvent): Promise<void>;
  abstract describe(): Record<string, string>;
  abstract teardown(): Promise<void>;

  /** The server side's work on one request: its reply. */
  protected handle(body: Buffer): Buffer {
    const req = JSON.parse(body.toString()) as RpcRequest;
    return Buffer.from(JSON.stringify({ n: req.n + 1 }));
  }

  protected onReply(correlationId: string | undefined, body: Buffer): void {
    const resolve = correlationId === undefined ? undefined : this.waiting.get(correlationId);
    if (!resolve || correlationId === undefined) return;
    this.waiting.delete(correlationId);
    resolve(JSON.parse(body.toString()) as RpcReply);
  }

  call(req: RpcRequest): Promise<RpcReply> {
    const id = String(this.nextId++);
    return new Promise<RpcReply>((resolve, reject) => {
      this.waiting.set(id, resolve);
      this.sendRequest(Buffer.from(JSON.stringify(req)), id).catch((err: unknown) => {
        this.waiting.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      });
    });
  }
}

/** Warren's own client (AmqpSession) with no Nest on top. */
export class WarrenSessionFloor extends FloorBench {
  readonly name = 'Warren AmqpSession, no Nest (floor)';
  private session: AmqpSession | null = null;
  private replyChannel: Channel | null = null;

  protected async start(): Promise<void> {
    const s = new AmqpSession({ url: this.task.url, name: `warren-bench-nest-floor-${process.pid}` });
    this.session = s;
    await s.connect();
    const { rpcQueue, eventQueue, prefetch } = this.task;
    await s.queueDeclare(rpcQueue, { durable: false });
    await s.queueDeclare(eventQueue, { durable: false });
    await s.consume(
      rpcQueue,
      async (m) => {
        const replyTo = m.properties.replyTo;
        if (replyTo) await s.publish('', replyTo, this.handle(m.body), { correlationId: m.properties.correlationId });
        m.ack();
      },
      { prefetch },
    );
    await s.consume(
      eventQueue,
      (m) => {
        JSON.parse(m.body.toString());
        this.sink.hit();
        m.ack();
      },
      { prefetch },
    );
    // Direct reply-to: the reply consumer and the requests share one channel, taken out of the publishing pool.
    const ch = await s.acquire();
    this.replyChannel = ch;
    await ch.consume(REPLY_TO, (m) => this.onReply(m.properties.correlationId, m.body), { noAck: true });
  }

  protected async sendRequest(body: Buffer, correlationId: string): Promise<void> {
    await this.replyChannel!.publish('', this.task.rpcQueue, body, { correlationId, replyTo: REPLY_TO });
  }

  async emit(event: BenchEvent): Promise<void> {
    await this.session!.publish('', this.task.eventQueue, Buffer.from(JSON.stringify(event)), {
      contentType: 'application/json',
    });
  }

  describe(): Record<string, string> {
    return { warren: 'lib/amqp (working tree)' };
  }

  async teardown(): Promise<void> {
    if (this.replyChannel) this.session?.release(this.replyChannel);
    await this.session?.close();
  }
}

/** amqplib with TCP_NODELAY, no Nest, no connection manager. */
export class AmqplibFloor extends FloorBench {
  readonly name = 'amqplib, no Nest (floor)';
  private model: amqplib.ChannelModel | null = null;
  private pub: amqplib.ConfirmChannel | null = null;
  /** Requests whose reply is published but not yet confirmed (so not yet acked). */
  private unacked = 0;
  private server: amqplib.ConfirmChannel | null = null;

  protected async start(): Promise<void> {
    const { url, rpcQueue, eventQueue, prefetch } = this.task;
    const model = await amqplib.connect(url, { noDelay: true });
    this.model = model;
    const pub = await model.createConfirmChannel();
    this.pub = pub;
    const server = await model.createConfirmChannel();
    this.server = server;
    await server.assertQueue(rpcQueue, { durable: false });
    await server.assertQueue(eventQueue, { durable: false });
    await server.prefetch(prefetch);
    await server.consume(rpcQueue, (m) => {
      if (!m) return;
      this.unacked++;
      server.publish(
        '',
        m.properties.replyTo as string,
        this.handle(m.content),
        {
          correlationId: m.properties.correlationId as string,
        },
        () => {
          server.ack(m);
          this.unacked--;
        },
      );
    });
    await server.consume(eventQueue, (m) => {
      if (!m) return;
      JSON.parse(m.content.toString());
      this.sink.hit();
      server.ack(m);
    });
    await pub.consume(REPLY_TO, (m) => m && this.onReply(m.properties.correlationId as string, m.content), {
      noAck: true,
    });
  }

  protected sendRequest(body: Buffer, correlationId: string): Promise<void> {
    this.pub!.publish('', this.task.rpcQueue, body, { correlationId, replyTo: REPLY_TO });
    return Promise.resolve();
  }

  emit(event: BenchEvent): Promise<void> {
    return new Promise((resolve, reject) =>
      this.pub!.publish(
        '',
        this.task.eventQueue,
        Buffer.from(JSON.stringify(event)),
        { contentType: 'application/json' },
        (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
      ),
    );
  }

  describe(): Record<string, string> {
    return { amqplib: pkgVersion('amqplib') };
  }

  async teardown(): Promise<void> {
    // Let the last replies' confirms (and so their requests' acks) arrive before closing.
    for (let i = 0; i < 100 && this.unacked > 0; i++) await new Promise((r) => setTimeout(r, 20));
    await this.server?.close();
    await this.model?.close();
  }
}
