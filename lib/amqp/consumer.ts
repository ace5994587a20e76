import { AmqpError } from './errors';
import type { FieldTable } from './protocol/field-table';
import type { Message } from './message';

export interface ConsumeOptions {
  /** Our own tag; the broker generates one when omitted. */
  consumerTag?: string;
  noLocal?: boolean;
  /** Automatic acknowledgement: the broker considers a message handled once sent. */
  noAck?: boolean;
  exclusive?: boolean;
  /** Consumer priority (`x-priority`). */
  priority?: number;
  arguments?: FieldTable;
  /** basic.consume with no-wait: no consume-ok; requires `consumerTag`. */
  noWait?: boolean;
  /** Called when the broker cancels this consumer (queue deleted, node down...). */
  onCancel?: (consumerTag: string) => void;
}

export type MessageHandler = (message: Message) => void | Promise<void>;

/** The broker cancelled the consumer (basic.cancel from the server). */
export class ConsumerCancelledError extends AmqpError {
  constructor(readonly consumerTag: string) {
    super(`consumer ${consumerTag} was cancelled by the broker (queue deleted or unavailable)`);
  }
}

/** A registered consumer. */
export interface Consumer {
  readonly consumerTag: string;
  readonly queue: string;
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

/**
 * Messages of one consumer as an async iterator. Messages queue here until read; with manual acks,
 * the channel's prefetch bounds that queue. Leaving the loop (`break`, `return`, a throw) cancels the consumer.
 */
export class ConsumerStream implements AsyncIterable<Message> {
  private readonly buffered: Message[] = [];
  private waiter: { resolve: (r: IteratorResult<Message>) => void; reject: (e: Error) => void } | null = null;
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
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
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
