import type { Channel } from './channel';
import { Deferred } from './deferred';
import { AmqpError, EncodeError } from './errors';
import type { FieldTable } from './protocol/field-table';
import type { Message } from './message';
import type { MethodArgs } from './protocol/spec.generated';

/** Options of {@link Channel.consume} (`basic.consume`). */
export interface ConsumeOptions {
  /** Our own tag; the broker generates one when omitted. */
  consumerTag?: string;
  /** Do not deliver messages published on this connection (RabbitMQ ignores this flag). Default false. */
  noLocal?: boolean;
  /** Automatic acknowledgement: the broker considers a message handled once sent. Default false (manual acks). */
  noAck?: boolean;
  /** Be the queue's only consumer: refused (403 ACCESS_REFUSED) if it has another one. Default false. */
  exclusive?: boolean;
  /** Consumer priority (`x-priority`): higher-priority consumers get messages first. Default 0. */
  priority?: number;
  /** Consumer arguments (`x-…`). */
  arguments?: FieldTable;
  /** basic.consume with no-wait: no consume-ok; requires `consumerTag`. */
  noWait?: boolean;
  /** Called when the broker cancels this consumer (queue deleted, node down...). */
  onCancel?: (consumerTag: string) => void;
}

/**
 * A consumer callback of {@link Channel.consume}. A throw or a rejection is reported (the channel's `consumerError`
 * event, else the logger) and never closes the channel; the message stays unacked unless the callback settled it.
 */
export type MessageHandler = (message: Message) => void | Promise<void>;

/** The broker cancelled the consumer (basic.cancel from the server). */
export class ConsumerCancelledError extends AmqpError {
  constructor(
    /** The cancelled consumer's tag. */
    readonly consumerTag: string,
  ) {
    super(`consumer ${consumerTag} was cancelled by the broker (queue deleted or unavailable)`);
  }
}

/** A registered consumer. */
export interface Consumer {
  /** The consumer's tag (ours, or the broker's when none was given). */
  readonly consumerTag: string;
  /** The queue it consumes. */
  readonly queue: string;
  /** Cancel it (`basic.cancel`); resolves on `cancel-ok`. */
  cancel(): Promise<void>;
}

/** @internal What the channel needs from a consumer registration. */
export interface ConsumerEntry {
  queue: string;
  /** Its deliveries expect no ack (set by the channel when it registers the consumer). */
  noAck?: boolean;
  deliver(message: Message): void;
  /** The broker cancelled it. */
  cancelledByServer(consumerTag: string): void;
  /** The channel closed: no more messages. */
  ended(err: Error): void;
}

/** A basic.consume about to be sent: its arguments, and how to register it once its tag is known. */
export interface ConsumerStart {
  readonly args: MethodArgs['basic.consume'];
  readonly consumer: Consumer;
  /** Register under `consumerTag` (the broker's, from consume-ok, or our own for no-wait). */
  register(consumerTag: string): Consumer;
}

/**
 * One channel's consumers by tag: what a basic.deliver is routed to, what a cancel (ours or the
 * broker's) removes, and what a closed channel ends. Handler consumers run here too, so a handler
 * that throws or rejects is reported (the channel's `consumerError` event, else the logger).
 * @internal
 */
export class ConsumerRegistry {
  private readonly entries = new Map<string, ConsumerEntry>();

  constructor(private readonly channel: Channel) {}

  /** The consumer a delivery is for (hot path). */
  get(consumerTag: string): ConsumerEntry | undefined {
    return this.entries.get(consumerTag);
  }

  /** The entry of a consumer with a callback: each message runs `handler`, failures are reported. */
  handlerEntry(queue: string, handler: MessageHandler): ConsumerEntry {
    return {
      queue,
      deliver: (m) => this.runHandler(handler, m),
      cancelledByServer: () => undefined,
      ended: () => undefined,
    };
  }

  /**
   * basic.consume arguments for `options`, and the registration to run when the consumer starts
   * (before any later frame is read: deliveries may follow consume-ok in the same chunk).
   * Throws EncodeError for a no-wait consumer without its own tag.
   */
  prepare(queue: string, options: ConsumeOptions, entry: ConsumerEntry): ConsumerStart {
    const args = {
      queue,
      consumerTag: options.consumerTag ?? '',
      noLocal: options.noLocal ?? false,
      noAck: options.noAck ?? false,
      exclusive: options.exclusive ?? false,
      noWait: options.noWait ?? false,
      arguments:
        options.priority === undefined
          ? (options.arguments ?? {})
          : { ...options.arguments, 'x-priority': options.priority },
    };
    if (args.noWait && !args.consumerTag) {
      throw new EncodeError('consumerTag', 'noWait consumers need their own consumerTag');
    }
    const registered: ConsumerEntry = {
      ...entry,
      noAck: args.noAck,
      cancelledByServer: (tag) => {
        options.onCancel?.(tag);
        entry.cancelledByServer(tag);
      },
    };
    const consumer = {
      consumerTag: args.consumerTag,
      queue,
      cancel: () => this.channel.cancel(consumer.consumerTag),
    };
    return {
      args,
      consumer,
      register: (consumerTag) => {
        consumer.consumerTag = consumerTag;
        this.entries.set(consumerTag, registered);
        return consumer;
      },
    };
  }

  /** We cancelled it (cancel-ok, or a no-wait cancel sent). */
  remove(consumerTag: string): void {
    this.entries.delete(consumerTag);
  }

  /** The broker cancelled it (basic.cancel from the server): forget it and tell its owner. */
  cancelledByServer(consumerTag: string): void {
    const entry = this.entries.get(consumerTag);
    this.entries.delete(consumerTag);
    entry?.cancelledByServer(consumerTag);
  }

  /** The channel ended: every consumer ends with `err`. */
  endAll(err: Error): void {
    for (const entry of this.entries.values()) entry.ended(err);
    this.entries.clear();
  }

  private runHandler(handler: MessageHandler, message: Message): void {
    try {
      const r = handler(message);
      if (r && typeof (r as Promise<void>).then === 'function') {
        (r as Promise<void>).then(undefined, (err: unknown) => this.reportError(err, message));
      }
    } catch (err) {
      this.reportError(err, message);
    }
  }

  private reportError(err: unknown, message: Message): void {
    const channel = this.channel;
    if (channel.listenerCount('consumerError') > 0) channel.emit('consumerError', err, message);
    else {
      channel.connection.logger.error(
        `consumer handler failed on channel ${channel.id} (routing key '${message.fields.routingKey}', delivery tag ${message.fields.deliveryTag}): ${
          err instanceof Error ? err.stack : String(err)
        }`,
      );
    }
  }
}

/**
 * Messages of one consumer as an async iterator. Messages queue here until read; with manual acks,
 * the channel's prefetch bounds that queue. Leaving the loop (`break`, `return`, a throw) cancels the consumer.
 */
export class ConsumerStream implements AsyncIterable<Message> {
  private readonly buffered: Message[] = [];
  private waiter: Deferred<IteratorResult<Message>> | null = null;
  private error: Error | null = null;
  private done = false;
  private started: Promise<Consumer> | null = null;

  /** @internal */
  constructor(
    private readonly start: (entry: ConsumerEntry) => Promise<Consumer>,
    private readonly queue: string,
  ) {}

  /** The consumer, once basic.consume-ok has arrived. */
  consumer(): Promise<Consumer> {
    if (!this.started) {
      this.started = this.start({
        queue: this.queue,
        deliver: (m) => this.push(m),
        cancelledByServer: (tag) => this.fail(new ConsumerCancelledError(tag)),
        ended: (err) => this.fail(err),
      });
      this.started.catch((err: Error) => this.fail(err));
    }
    return this.started;
  }

  /** Starts the consumer on first use; `for await (const m of stream)` reads its messages in order. */
  [Symbol.asyncIterator](): AsyncIterator<Message> {
    void this.consumer();
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  /** Cancel the consumer and end the iteration. */
  async close(): Promise<void> {
    this.done = true;
    this.waiter?.resolve({ done: true, value: undefined });
    this.waiter = null;
    if (this.started) {
      const c = await this.started.catch(() => null);
      await c?.cancel().catch(() => undefined);
    }
  }

  private next(): Promise<IteratorResult<Message>> {
    const m = this.buffered.shift();
    if (m) return Promise.resolve({ done: false, value: m });
    if (this.error) return Promise.reject(this.error);
    if (this.done) return Promise.resolve({ done: true, value: undefined });
    this.waiter = new Deferred<IteratorResult<Message>>();
    return this.waiter.promise;
  }

  private push(m: Message): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ done: false, value: m });
    } else this.buffered.push(m);
  }

  private fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.error = err;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(err);
    }
  }
}
