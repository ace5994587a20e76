import {
  ConnectionLostError,
  type AmqpSession,
  type Channel,
  type Logger,
  type Message,
  type PublishOptions,
  type SessionConsumer,
} from '../../amqp';
import { DIRECT_REPLY_QUEUE } from '../amqp.constants';
import { describeError } from '../amqp.logger';

/**
 * Where replies arrive and how requests that expect them are published. `lost` is called when replies that are on
 * their way can no longer arrive (the reply channel or queue went away): pending calls should fail at once.
 */
export interface ReplyChannel {
  /** Publish a request whose reply comes back here. Resolves on the broker's confirm. */
  publish(exchange: string, routingKey: string, body: Buffer, options: PublishOptions): Promise<void>;
  close(): Promise<void>;
}

export type ReplyListener = (message: Message) => void;
export type ReplyLostListener = (err: Error) => void;

/**
 * RabbitMQ direct reply-to: the reply consumer (`amq.rabbitmq.reply-to`, no-ack) and the requests must share one
 * channel, so the channel is taken out of the session's publishing pool for the client's lifetime. When it dies, the
 * replies on their way are lost (`onLost`), and the next request takes a new one.
 */
export class DirectReplyChannel implements ReplyChannel {
  private channel: Promise<Channel> | null = null;
  private consumerTag: string | null = null;
  private closed = false;

  constructor(
    private readonly session: AmqpSession,
    private readonly onReply: ReplyListener,
    private readonly onLost: ReplyLostListener,
    private readonly logger: Logger,
  ) {}

  async publish(exchange: string, routingKey: string, body: Buffer, options: PublishOptions): Promise<void> {
    const ch = await this.open();
    await ch.publish(exchange, routingKey, body, { ...options, replyTo: DIRECT_REPLY_QUEUE });
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending = this.channel;
    this.channel = null;
    const ch = pending ? await pending.catch(() => null) : null;
    if (!ch) return;
    if (ch.isOpen && this.consumerTag) await ch.cancel(this.consumerTag).catch(() => undefined);
    this.session.release(ch);
  }

  private open(): Promise<Channel> {
    if (this.closed) return Promise.reject(new ConnectionLostError('the client is closed'));
    if (!this.channel) {
      const opening = this.acquire();
      this.channel = opening;
      opening.catch(() => {
        if (this.channel === opening) this.channel = null;
      });
    }
    return this.channel;
  }

  private async acquire(): Promise<Channel> {
    const ch = await this.session.acquire();
    try {
      const consumer = await ch.consume(DIRECT_REPLY_QUEUE, (m) => this.onReply(m), { noAck: true });
      this.consumerTag = consumer.consumerTag;
    } catch (err) {
      this.session.release(ch);
      throw err;
    }
    ch.once('close', (err) => {
      this.channel = null;
      this.consumerTag = null;
      if (this.closed) return;
      const why = err ? describeError(err) : 'closed';
      this.logger.warn(`direct reply-to channel lost (${why}); replies on their way are lost`);
      this.onLost(new ConnectionLostError(`the reply channel was lost before the reply arrived (${why})`));
    });
    return ch;
  }
}

/**
 * A private, exclusive, server-named reply queue consumed through the session. Requests go through the session's
 * publishing pool (buffered through outages). After a recovery the queue has a new name: replies addressed to the
 * old one are lost (`onLost`).
 */
export class QueueReplyChannel implements ReplyChannel {
  private consumer: Promise<SessionConsumer> | null = null;
  private closed = false;
  private readonly onRenamed = (info: { from: string; to: string }) => {
    if (!this.current || info.from !== this.current) return;
    this.current = info.to;
    this.onLost(
      new ConnectionLostError(`the reply queue was re-created as '${info.to}' after a reconnect; the reply is lost`),
    );
  };
  private current: string | null = null;

  constructor(
    private readonly session: AmqpSession,
    private readonly onReply: ReplyListener,
    private readonly onLost: ReplyLostListener,
  ) {
    session.on('queueRenamed', this.onRenamed);
  }

  async publish(exchange: string, routingKey: string, body: Buffer, options: PublishOptions): Promise<void> {
    const consumer = await this.open();
    await this.session.publish(exchange, routingKey, body, { ...options, replyTo: consumer.queue });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.session.off('queueRenamed', this.onRenamed);
    const pending = this.consumer;
    this.consumer = null;
    const consumer = pending ? await pending.catch(() => null) : null;
    if (!consumer) return;
    const queue = consumer.queue;
    await consumer.cancel().catch(() => undefined);
    await this.session.queueDelete(queue).catch(() => undefined);
  }

  private open(): Promise<SessionConsumer> {
    if (this.closed) return Promise.reject(new ConnectionLostError('the client is closed'));
    if (!this.consumer) {
      const opening = this.start();
      this.consumer = opening;
      opening.catch(() => {
        if (this.consumer === opening) this.consumer = null;
      });
    }
    return this.consumer;
  }

  private async start(): Promise<SessionConsumer> {
    const { queue } = await this.session.queueDeclare('', { exclusive: true, autoDelete: true, durable: false });
    this.current = queue;
    const consumer = await this.session.consume(queue, (m) => this.onReply(m), { noAck: true });
    return consumer;
  }
}
