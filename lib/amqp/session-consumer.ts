import type { Channel } from './channel';
import type { AmqpConnection } from './connection';
import type { ConsumeOptions } from './consumer';
import { DeliveredMessage, type SessionMessage } from './delivered-message';
import { withTimeout, WaiterList } from './deferred';
import { ChannelError, ConfigError, ReplyCode, type OversizedMessage } from './errors';
import type { Logger } from './logger';
import type { Message } from './message';
import type { FieldTable } from './protocol/field-table';
import type { ReconnectOptions } from './reconnect-policy';
import { RecoverableChannel, type SetupFailure } from './recoverable-channel';
import {
  deliveryStreamOffset,
  streamOffsetArgument,
  StreamPosition,
  type StreamOffset,
  type StreamOffsetStore,
} from './stream-offset';
import type { QueueRecord, TopologyRecord } from './topology';
import { printAsJson } from './redact';

/**
 * RabbitMQ's 404 for a queue that does not exist ("no queue 'q' in vhost '/'"). Its other 404s for an existing
 * queue — "home node … of durable queue … is down or inaccessible", "… process is stopped by supervisor" while
 * the node goes down — mean the queue comes back with its node.
 */
const NO_SUCH_QUEUE = /\bno queue '/;

/**
 * Options of {@link AmqpSession.consume}: those of `basic.consume` (without `noWait`) plus the consumer channel's
 * prefetch. They are applied again at every re-attach.
 */
export interface SessionConsumeOptions extends Omit<ConsumeOptions, 'onCancel' | 'noWait'> {
  /** Prefetch for this consumer's own channel. Default 100 (0 = unlimited). */
  prefetch?: number;
  /** Called when the broker cancels the consumer for good (its queue was deleted; not while its node is down). */
  onCancel?: () => void;
  /**
   * Consume a stream queue from this position (`x-stream-offset`; see {@link StreamOffset}). Makes this a
   * stream consumer: manual acks and a prefetch are required (prefetch 0 and `noAck` are ConfigErrors), and
   * after a recovery it re-attaches from the oldest delivery not yet settled — not from `offset` again.
   */
  offset?: StreamOffset;
  /** Persists a stream consumer's position across application restarts (implies a stream consumer). */
  offsetStore?: StreamOffsetStore;
}

/**
 * A session consumer's callback. It settles the message (`ack()`, `nack()`, `reject()`) unless consuming with
 * `noAck`; a throw or a rejection is logged as an error and leaves the message unacked.
 */
export type SessionHandler = (message: SessionMessage) => void | Promise<void>;

/** A consumer started by {@link AmqpSession.consume}: re-attached by the session after every recovery. */
export interface SessionConsumer {
  /** The consumer tag of the current attachment (the broker's, unless `consumerTag` was given). */
  readonly consumerTag: string;
  /** The queue's current name (a server-named queue is renamed on recovery). */
  readonly queue: string;
  /** Handlers of this consumer still running. */
  readonly inFlight: number;
  /**
   * Stop consuming: basic.cancel at once, then wait for running handlers (at most `drainTimeoutMs`,
   * default 30 s) so their acks still reach the broker, then close the consumer's channel.
   */
  cancel(options?: { drainTimeoutMs?: number }): Promise<void>;
}

/** @internal what a consumer needs from its session. */
export interface ConsumerHost {
  topology: TopologyRecord;
  /** The consumer connection once its topology has been replayed. */
  connection: () => Promise<AmqpConnection>;
  logger: Logger;
  reconnect?: ReconnectOptions;
  onRename(from: string, to: string): void;
  setupFailed(failure: SetupFailure): void;
  /** A delivery over maxMessageSize was rejected (its channel stays open). */
  messageTooLarge(info: OversizedMessage): void;
  /** The consumer is attached (again). */
  attached(): void;
  /** The consumer is gone (cancelled by the application or the broker). */
  removed(consumer: ManagedConsumer): void;
}

/**
 * One session consumer: its own self-healing channel whose setup is "declare my queue again if its
 * replay was refused → qos → basic.consume". So it comes back after every reconnect and after every
 * channel error (a 404 while its queue's node is down, a 403/405 while another connection holds it
 * exclusively, a 406 delivery-acknowledgement timeout), retrying with backoff until it succeeds or
 * is cancelled. Acks and replies go from the delivered message straight to the channel that
 * delivered it.
 * @internal
 */
export class ManagedConsumer implements SessionConsumer {
  consumerTag: string;
  cancelled = false;
  private running = 0;
  private readonly idle = new WaiterList();
  private readonly rc: RecoverableChannel;
  /** A stream consumer's position; null for other consumers. */
  private readonly position: StreamPosition | null;
  private offsetLoaded = false;

  constructor(
    private readonly host: ConsumerHost,
    readonly record: QueueRecord | string,
    private readonly handler: SessionHandler,
    private readonly options: SessionConsumeOptions,
  ) {
    this.consumerTag = options.consumerTag ?? '';
    this.position = streamConsumer(this.queue, options, declaredStream(record))
      ? new StreamPosition((at) => this.saveOffset(at))
      : null;
    this.rc = new RecoverableChannel({
      entity: `consumer on queue '${this.queue}'`,
      setup: (ch) => this.setup(ch),
      connection: host.connection,
      logger: host.logger,
      reconnect: host.reconnect,
      // A new consumer on a queue the broker refuses is the caller's to hear about, not to retry.
      failFirstSetup: true,
    });
    this.rc.on('setupFailed', (f) => host.setupFailed(f));
    this.rc.on('ready', () => host.attached());
  }

  get queue(): string {
    return typeof this.record === 'string' ? this.record : this.record.name;
  }

  get inFlight(): number {
    return this.running;
  }

  /** Attached to the broker right now. */
  get isReady(): boolean {
    return this.rc.isReady;
  }

  /** Why it is not attached (its last setup error), or null. */
  get failure(): Error | null {
    return this.rc.failure;
  }

  get entity(): string {
    return this.rc.entity;
  }

  /** What `JSON.stringify` shows: its queue and state, never its session or channel. */
  toJSON(): { queue: string; consumerTag: string; ready: boolean; inFlight: number; cancelled: boolean } {
    return {
      queue: this.queue,
      consumerTag: this.consumerTag,
      ready: this.isReady,
      inFlight: this.inFlight,
      cancelled: this.cancelled,
    };
  }

  /** Resolves once consuming for the first time; rejects if the broker refuses the first attempt. */
  started(): Promise<void> {
    return this.rc.opened().then(() => undefined);
  }

  cancel(options?: { drainTimeoutMs?: number }): Promise<void> {
    return this.stop(options?.drainTimeoutMs ?? 30_000);
  }

  /** @internal */
  async stop(drainTimeoutMs: number): Promise<void> {
    if (this.cancelled) return;
    this.cancelled = true;
    this.host.removed(this);
    const ch = this.rc.current;
    if (ch?.isOpen && this.consumerTag) {
      await ch.cancel(this.consumerTag).catch(() => undefined);
      // Keep the channel open until running handlers are done, so their acks still count.
      if (this.running > 0) await withTimeout(this.idle.wait(), drainTimeoutMs, 'drain').catch(() => undefined);
    }
    await this.rc.close();
  }

  private async setup(ch: Channel): Promise<void> {
    ch.on('messageTooLarge', (info) => this.host.messageTooLarge(info));
    const q = this.record;
    if (typeof q !== 'string' && q.replayFailed) await this.host.topology.replayQueue(ch, q, this.host.onRename);
    const prefetch = this.options.prefetch ?? 100;
    if (prefetch > 0) await ch.qos(prefetch);
    const o = this.options;
    const consumer = await ch.consume(this.queue, (m) => this.deliver(ch, m), {
      consumerTag: o.consumerTag,
      noAck: o.noAck,
      exclusive: o.exclusive,
      priority: o.priority,
      arguments: this.position ? await this.streamArguments() : o.arguments,
      noLocal: o.noLocal,
      onCancel: () => void this.brokerCancelled(ch),
    });
    this.consumerTag = consumer.consumerTag;
  }

  /**
   * The broker cancelled the consumer: its queue was deleted — or, in a cluster, the node of its classic
   * queue went down (the queue comes back with the node). A passive declare tells them apart: only a
   * queue that no longer exists ends the consumer for good; otherwise its channel is closed and the
   * consumer re-attaches through the usual setup retries, with backoff, until the node is back.
   */
  private async brokerCancelled(ch: Channel): Promise<void> {
    if (this.cancelled) return;
    const gone = await ch.queueDeclare(this.queue, { passive: true }).then(
      () => false,
      (err: unknown) =>
        err instanceof ChannelError && err.replyCode === ReplyCode.NOT_FOUND && NO_SUCH_QUEUE.test(err.replyText),
    );
    if (this.cancelled) return;
    if (!gone) {
      this.host.logger.warn(
        `consumer on queue '${this.queue}' cancelled by the broker; the queue exists: re-attaching`,
      );
      if (ch.isOpen) await ch.close().catch(() => undefined);
      return;
    }
    this.cancelled = true;
    this.host.removed(this);
    void this.rc.close();
    this.options.onCancel?.();
  }

  /**
   * `x-stream-offset` for this attach: where the last channel left off once anything was settled (or
   * the offset store's saved position), else the consumer's `offset`.
   */
  private async streamArguments(): Promise<FieldTable> {
    const position = this.position as StreamPosition;
    if (!this.offsetLoaded) {
      this.offsetLoaded = true;
      const saved = await this.options.offsetStore?.load();
      if (saved !== undefined)
        position.restore(
          Number(streamOffsetArgument(`offsetStore.load() of consumer on queue '${this.queue}'`, saved)),
        );
    }
    position.reattached();
    const at = position.resumeAt;
    const offset = at !== undefined ? BigInt(at) : streamOffsetArgument('offset', this.options.offset ?? 'next');
    return { ...this.options.arguments, 'x-stream-offset': offset };
  }

  private saveOffset(processed: number): void {
    const store = this.options.offsetStore;
    if (!store) return;
    try {
      const saving = store.save(processed);
      if (saving && typeof saving.then === 'function') saving.then(undefined, this.saveFailed);
    } catch (err) {
      this.saveFailed(err);
    }
  }

  private readonly saveFailed = (err: unknown): void => {
    this.host.logger.error(
      `consumer on queue '${this.queue}': offsetStore.save failed: ${err instanceof Error ? err.message : String(err)}`,
    );
  };

  /** Run the handler, counting it in flight until it settles (for a draining cancel). */
  private deliver(ch: Channel, m: Message): void {
    this.running++;
    let position: StreamPosition | undefined;
    if (this.position) {
      const offset = deliveryStreamOffset(m.properties.headers);
      if (offset !== undefined) {
        this.position.delivered(offset);
        position = this.position;
      }
    }
    let result: void | Promise<void>;
    try {
      result = this.handler(new DeliveredMessage(m, ch, this.host.logger, position));
    } catch (err) {
      this.done();
      throw err;
    }
    if (result && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(this.done, this.failed);
      return;
    }
    this.done();
  }

  private readonly done = (): void => {
    if (--this.running === 0) this.idle.resolveAll();
  };

  /** A rejected handler is reported here, so the channel attaches nothing per delivery. */
  private readonly failed = (err: unknown): void => {
    this.done();
    this.host.logger.error(
      `consumer handler on queue '${this.queue}' failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
  };
}

/** The session declared this queue as a stream. */
function declaredStream(record: QueueRecord | string): boolean {
  if (typeof record === 'string') return false;
  return record.options.type === 'stream' || record.options.arguments?.['x-queue-type'] === 'stream';
}

/**
 * Whether this is a stream consumer (an `offset` or `offsetStore`, or a queue the session declared as a
 * stream); checks what streams require of it.
 */
function streamConsumer(queue: string, options: SessionConsumeOptions, onStream: boolean): boolean {
  if (options.offset === undefined && options.offsetStore === undefined && !onStream) return false;
  const where = `consumer on queue '${queue}'`;
  if (options.offset !== undefined) streamOffsetArgument('offset', options.offset);
  if (options.noAck)
    throw new ConfigError('noAck', `${where}: a stream consumer needs manual acks (noAck must be false)`);
  if (options.prefetch === 0)
    throw new ConfigError('prefetch', `${where}: a stream consumer needs a prefetch (1 or more)`);
  const store = options.offsetStore;
  if (store !== undefined && (typeof store?.load !== 'function' || typeof store?.save !== 'function')) {
    throw new ConfigError('offsetStore', `${where}: must have load() and save(offset) functions`);
  }
  return true;
}

// `util.inspect` prints it as its toJSON().
printAsJson(ManagedConsumer, 'SessionConsumer');
