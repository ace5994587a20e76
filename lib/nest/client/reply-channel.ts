import {
  AmqpError,
  ChannelError,
  ClosedError,
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
 * Requests are not confirmed by default (the reply confirms them end to end): `publish` resolves once the request is
 * written, and a broker nack goes unseen (the call times out). A returned mandatory request is reported through
 * `onReturned` by its correlation id, confirm mode or not, so its call fails at once with UnroutableError.
 */
export class DirectReplyChannel implements ReplyChannel {
  private readonly channel: RecoverableChannel;
  private readonly confirm: boolean;
  private closed = false;

  constructor(session: AmqpSession, listeners: ReplyListeners, logger: Logger, options: DirectReplyOptions = {}) {
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
      await ch.consume(DIRECT_REPLY_QUEUE, (m) => onReply(m), { noAck: true });
    });
    this.channel.on('lost', (err) => {
      const why = describeError(err);
      logger.warn(`direct reply-to channel lost (${why}); replies on their way are lost`);
      onLost(new ConnectionLostError(`the reply channel was lost before the reply arrived (${why})`, { cause: err }));
    });
  }

  publish(request: ReplyRequest): Promise<void> | undefined {
    if (this.closed) return Promise.reject(new ClosedError('the client is closed'));
    const current = this.channel.current;
    if (current?.isOpen) return this.send(current, request);
    return this.channel.channel().then((ch) => this.send(ch, request));
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
    const { queue } = await this.session.queueDeclare('', { exclusive: true, autoDelete: true, durable: false });
    this.current = queue;
    const consumer = await this.session.consume(queue, (m) => this.onReply(m), { noAck: true });
    return consumer;
  }
}
