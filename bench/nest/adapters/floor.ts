import * as amqplib from 'amqplib';
import { AmqpSession, type RecoverableChannel } from '../../../lib/amqp';
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
 * transport floor on this machine (broker round trips and broker CPU) and what the Nest layers add on top. Same
 * delivery semantics as Warren's Nest rows, done the cheapest correct way: default exchange to a non-durable queue,
 * direct reply-to, requests without publisher confirms (the reply confirms them), the reply published on the channel
 * that delivered the request and the request acked right after it on that channel (the broker handles a channel's
 * methods in order: the reply is routed before the ack counts), events with publisher confirms and acked after the
 * "handler", prefetch as configured, JSON bodies. Server and client in one process.
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
  private replyChannel: RecoverableChannel | null = null;

  protected async start(): Promise<void> {
    const s = new AmqpSession({ url: this.task.url, name: `warren-bench-nest-floor-${process.pid}` });
    this.session = s;
    await s.connect();
    const { rpcQueue, eventQueue, prefetch } = this.task;
    await s.queueDeclare(rpcQueue, { durable: false });
    await s.queueDeclare(eventQueue, { durable: false });
    await s.consume(
      rpcQueue,
      (m) => {
        const replyTo = m.properties.replyTo;
        if (replyTo)
          m.publishOnChannel('', replyTo, this.handle(m.body), { correlationId: m.properties.correlationId });
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
    // Direct reply-to: the reply consumer and the requests share one channel (not in confirm mode).
    const rc = s.recoverableChannel('publisher', async (ch) => {
      await ch.consume(REPLY_TO, (m) => this.onReply(m.properties.correlationId, m.body), { noAck: true });
    });
    this.replyChannel = rc;
    await rc.channel();
  }

  protected async sendRequest(body: Buffer, correlationId: string): Promise<void> {
    const ch = this.replyChannel!.current ?? (await this.replyChannel!.channel());
    await ch.publish('', this.task.rpcQueue, body, { correlationId, replyTo: REPLY_TO });
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
    await this.replyChannel?.close();
    await this.session?.close();
  }
}

/** amqplib with TCP_NODELAY, no Nest, no connection manager. */
export class AmqplibFloor extends FloorBench {
  readonly name = 'amqplib, no Nest (floor)';
  private model: amqplib.ChannelModel | null = null;
  /** Events (confirmed). */
  private pub: amqplib.ConfirmChannel | null = null;
  /** Requests (not confirmed) and their direct reply-to consumer. */
  private requests: amqplib.Channel | null = null;
  private server: amqplib.Channel | null = null;

  protected async start(): Promise<void> {
    const { url, rpcQueue, eventQueue, prefetch } = this.task;
    const model = await amqplib.connect(url, { noDelay: true });
    this.model = model;
    const pub = await model.createConfirmChannel();
    this.pub = pub;
    const requests = await model.createChannel();
    this.requests = requests;
    const server = await model.createChannel();
    this.server = server;
    await server.assertQueue(rpcQueue, { durable: false });
    await server.assertQueue(eventQueue, { durable: false });
    await server.prefetch(prefetch);
    await server.consume(rpcQueue, (m) => {
      if (!m) return;
      server.publish('', m.properties.replyTo as string, this.handle(m.content), {
        correlationId: m.properties.correlationId as string,
      });
      server.ack(m);
    });
    await server.consume(eventQueue, (m) => {
      if (!m) return;
      JSON.parse(m.content.toString());
      this.sink.hit();
      server.ack(m);
    });
    await requests.consume(REPLY_TO, (m) => m && this.onReply(m.properties.correlationId as string, m.content), {
      noAck: true,
    });
  }

  protected sendRequest(body: Buffer, correlationId: string): Promise<void> {
    this.requests!.publish('', this.task.rpcQueue, body, { correlationId, replyTo: REPLY_TO });
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
    await this.server?.close();
    await this.model?.close();
  }
}
