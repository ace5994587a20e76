import {
  AmqpError,
  ChannelError,
  ClosedError,
  ConfigError,
  ConnectionLostError,
  NackError,
  UnroutableError,
  type AmqpSession,
  type Channel,
  type Logger,
  type Message,
  type PublishOptions,
  type RecoverableChannel,
  type ReturnedMessage,
  type SessionConsumer,
} from '../../amqp';
import { DIRECT_REPLY_QUEUE } from '../amqp.constants';
import { describeError } from '../amqp.logger';
import { DirectReplyToUnavailableError } from './direct-reply-unavailable.error';

/** A request that expects a reply. */
export interface ReplyRequest {
  exchange: string;
  routingKey: string;
  body: Buffer;
  /** Its properties, `correlationId` included; the reply channel sets `replyTo` on this object (it is the request's own). */
  readonly options: PublishOptions;
  /** Checked right before the request is written: a call that timed out or failed meanwhile is not sent at all. */
  isWanted(): boolean;
}

/**
 * Where replies arrive and how requests that expect them are published. `lost` is called when replies that are on
 * their way can no longer arrive (the reply channel or queue went away): pending calls should fail at once.
 */
export interface ReplyChannel {
  /**
   * Publish a request whose reply comes back here. Resolves on the broker's confirm when requests are confirmed,
   * otherwise once written (at once if no longer wanted); rejects when the request is refused or cannot be sent.
   * Undefined instead of a promise when the request is already written and nothing more will be said about it here
   * (the common, unconfirmed case: no promise per call).
   */
  publish(request: ReplyRequest): Promise<void> | undefined;
  close(): Promise<void>;
}

export type ReplyListener = (message: Message) => void;
export type ReplyLostListener = (err: Error) => void;
/** A mandatory request the broker returned (nobody could route it), named by its correlation id. */
export type ReplyReturnedListener = (correlationId: string, err: UnroutableError) => void;

/** What a reply channel reports to its client. */
export interface ReplyListeners {
  onReply: ReplyListener;
  onLost: ReplyLostListener;
  onReturned: ReplyReturnedListener;
}

export interface DirectReplyOptions {
  /**
   * Put the channel in publisher-confirm mode: a request resolves on the broker's ack and a broker nack fails it at
   * once with NackError. Default false: the reply is the request's end-to-end confirmation.
   */
  confirm?: boolean;
}

/**
 * RabbitMQ direct reply-to: the reply consumer (`amq.rabbitmq.reply-to`, no-ack) and the requests must share one
 * channel. It is a recoverable channel of its own on the publisher connection (the session's publishing pool keeps
 * all its channels), re-opened with its reply consumer after every recovery or channel error. When it dies, the
 * replies on their way are lost (`onLost`); requests made while it is down wait for the next one.
 *
 * A broker that refuses the reply consumer (403/404/405/540 on its basic.consume: no direct reply-to) is not retried:
 * the channel is closed, the error logged once, and every pending and later call fails at once with
 * DirectReplyToUnavailableError.
 *
 * Requests are not confirmed by default (the reply confirms them end to end): `publish` resolves once the request is
 * written, and a broker nack goes unseen (the call times out). A returned mandatory request is reported through
 * `onReturned` by its correlation id, confirm mode or not, so its call fails at once with UnroutableError.
 */
export class DirectReplyChannel implements ReplyChannel {
  private readonly channel: RecoverableChannel;
  private readonly confirm: boolean;
  private closed = false;
  /** Set once the broker refused direct reply-to: what every call fails with from then on. */
  private unavailable: DirectReplyToUnavailableError | null = null;

  constructor(
    session: AmqpSession,
    private readonly listeners: ReplyListeners,
    private readonly logger: Logger,
    options: DirectReplyOptions = {},
  ) {
    const { onReply, onLost, onReturned } = listeners;
    const confirm = options.confirm ?? false;
    this.confirm = confirm;
    const returned = (message: ReturnedMessage) => {
      const id = message.properties.correlationId;
      if (typeof id === 'string') onReturned(id, new UnroutableError(message));
      else logger.debug?.(`a returned request without a correlation id was dropped (${message.routingKey})`);
    };
    this.channel = session.recoverableChannel('publisher', async (ch) => {
      if (confirm) await ch.confirmSelect();
      ch.on('return', returned);
      try {
        await ch.consume(DIRECT_REPLY_QUEUE, (m) => onReply(m), { noAck: true });
      } catch (err) {
        if (DirectReplyToUnavailableError.isRefusal(err, true)) this.refused(err);
        throw err;
      }
    });
    this.channel.on('lost', (err) => {
      if (this.unavailable) return;
      if (DirectReplyToUnavailableError.isRefusal(err)) {
        this.refused(err);
        return;
      }
      const why = describeError(err);
      logger.warn(`direct reply-to channel lost (${why}); replies on their way are lost`);
      onLost(new ConnectionLostError(`the reply channel was lost before the reply arrived (${why})`, { cause: err }));
    });
  }

  publish(request: ReplyRequest): Promise<void> | undefined {
    if (this.unavailable) return Promise.reject(this.unavailable);
    if (this.closed) return Promise.reject(new ClosedError('the client is closed'));
    const current = this.channel.current;
    if (current?.isOpen) return this.send(current, request);
    return this.channel.channel().then(
      (ch) => this.send(ch, request),
      (err: unknown) => {
        throw this.unavailable ?? err;
      },
    );
  }

  /** No direct reply-to on this broker: stop trying, fail every call now and later. Once. */
  private refused(refusal: ChannelError): void {
    if (this.unavailable) return;
    const err = new DirectReplyToUnavailableError(refusal);
    this.unavailable = err;
    this.logger.error(err.message);
    this.listeners.onLost(err);
    void this.channel.close();
  }

  private send(ch: Channel, request: ReplyRequest): Promise<void> | undefined {
    if (!request.isWanted()) return undefined;
    request.options.replyTo = DIRECT_REPLY_QUEUE;
    if (!this.confirm && !ch.connection.isBlocked) {
      // Unconfirmed: written now, no promise; only bad input or a closed channel can fail it here.
      try {
        ch.publishUnconfirmed(request.exchange, request.routingKey, request.body, request.options);
        return undefined;
      } catch (err) {
        return Promise.reject(refusedOrLost(err, 'could be sent'));
      }
    }
    // Confirmed, or waiting while the broker blocks publishers.
    return ch.publish(request.exchange, request.routingKey, request.body, request.options).catch((err: unknown) => {
      throw refusedOrLost(err, this.confirm ? 'was confirmed' : 'could be sent');
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.channel.close();
  }
}

/**
 * A refused request (nack, return, a channel error it caused) says so; anything else means the channel went away
 * under it (before the request `until`).
 */
function refusedOrLost(err: unknown, until: string): unknown {
  if (err instanceof NackError || err instanceof UnroutableError || err instanceof ChannelError) return err;
  if (err instanceof AmqpError) {
    return new ConnectionLostError(`the reply channel was lost before the request ${until} (${err.message})`, {
      cause: err,
    });
  }
  return err;
}

/** How long the broker keeps a fixed-name reply queue nobody consumes (x-expires, ms): a crashed client's goes away. */
export const FIXED_REPLY_QUEUE_EXPIRES_MS = 5 * 60_000;

export interface QueueReplyOptions {
  /**
   * A fixed name for the reply queue instead of a server-named one. It must be unique per client instance: two
   * clients consuming one reply queue would take each other's replies.
   */
  queue?: string;
}

/**
 * A reply queue of the client's own, consumed through the session; requests go through the session's publishing
 * pool (buffered through outages).
 *
 * By default the queue is private (exclusive, server-named): after a recovery it has a new name, so replies addressed
 * to the old one are lost (`onLost`). A fixed name (`queue`) is a durable, non-exclusive queue that outlives a
 * reconnect (replies wait in it) and that the broker deletes once unused for FIXED_REPLY_QUEUE_EXPIRES_MS; opening
 * it fails with a ConfigError when another consumer already reads it. Both are deleted on close. (Durable, because
 * RabbitMQ 4.3 refuses transient non-exclusive queues by default; its expiry still removes it.)
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
  private readonly fixedName: string | undefined;

  constructor(
    private readonly session: AmqpSession,
    private readonly onReply: ReplyListener,
    private readonly onLost: ReplyLostListener,
    options: QueueReplyOptions = {},
  ) {
    this.fixedName = options.queue;
    session.on('queueRenamed', this.onRenamed);
  }

  async publish(request: ReplyRequest): Promise<void> {
    const consumer = await this.open();
    if (!request.isWanted()) return;
    request.options.replyTo = consumer.queue;
    await this.session.publish(request.exchange, request.routingKey, request.body, request.options);
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
    if (this.closed) return Promise.reject(new ClosedError('the client is closed'));
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
    const fixed = this.fixedName;
    const { queue, consumerCount } =
      fixed === undefined
        ? await this.session.queueDeclare('', { exclusive: true, autoDelete: true, durable: false })
        : await this.session.queueDeclare(fixed, {
            durable: true,
            exclusive: false,
            autoDelete: false,
            arguments: { 'x-expires': FIXED_REPLY_QUEUE_EXPIRES_MS },
          });
    if (consumerCount > 0) {
      throw new ConfigError(
        'replyQueue',
        `reply queue '${queue}' already has ${consumerCount} consumer(s): another client reads it and would take ` +
          `its replies; give every client instance a reply queue of its own`,
      );
    }
    this.current = queue;
    return this.session.consume(queue, (m) => this.onReply(m), { noAck: true });
  }
}
