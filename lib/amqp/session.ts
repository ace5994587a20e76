import { EventEmitter } from 'node:events';
import type { BackoffOptions } from './backoff';
import type { Channel, ExchangeOptions, QueueDeclareResult, QueueOptions } from './channel';
import { ChannelPool, type ChannelPoolOptions } from './channel-pool';
import type { ConfirmWaiter } from './confirms';
import type { AmqpConnection, ConnectOptions } from './connection';
import type { ConsumeOptions } from './consumer';
import {
  AmqpError,
  BufferOverflowError,
  ChannelError,
  ClosedError,
  ConnectionLostError,
  NackError,
  ReplyCode,
  TimeoutError,
  UnroutableError,
} from './errors';
import { consoleLogger, type Logger } from './logger';
import { ManagedConnection } from './managed-connection';
import { RecoverableChannel } from './recoverable-channel';
import type { Message, PublishOptions } from './message';
import type { FieldTable } from './protocol/field-table';
import { TopologyRecord, type QueueRecord } from './topology';
import { resolveConnectionOptions } from './url';

export interface PublishBufferOptions {
  /** Publishes held while disconnected. Default 10 000. */
  maxMessages?: number;
  /** Bytes of bodies held while disconnected. Default 64 MiB. */
  maxBytes?: number;
  /** How long one publish may wait in the buffer, ms. Default 30 000. */
  timeoutMs?: number;
}

export interface SessionOptions extends ConnectOptions {
  /** Name used in logs and events (e.g. Nest's connection name). Default 'default'. */
  name?: string;
  /** 'split' (default): one connection for publishing, one for consuming, as RabbitMQ recommends. */
  connections?: 'split' | 'single';
  /** First connect fails at once instead of retrying in the background. Default false. */
  failFast?: boolean;
  reconnect?: BackoffOptions;
  pool?: ChannelPoolOptions;
  publishBuffer?: PublishBufferOptions;
}

export interface SessionConsumeOptions extends Omit<ConsumeOptions, 'onCancel' | 'noWait'> {
  /** Prefetch for this consumer's own channel. Default 100 (0 = unlimited). */
  prefetch?: number;
  /** Called when the broker cancels the consumer (its queue was deleted). */
  onCancel?: () => void;
}

/** A delivered message with acknowledgement bound to the channel that delivered it. */
export interface SessionMessage extends Message {
  /** Acknowledge. After a reconnect this is a logged no-op: the broker will redeliver the message. */
  ack(): void;
  nack(requeue?: boolean): void;
  /** False once the channel that delivered it is gone (the broker will redeliver it). */
  isLive(): boolean;
  reject(requeue?: boolean): void;
  /**
   * Publish on the channel that delivered this message, without a publisher confirm (the session's
   * consumer channels are not in confirm mode), and return true. Publishes nothing and returns false
   * when that channel is no longer open, or when its connection is blocked by a resource alarm
   * (`connection.blocked`): RabbitMQ stops reading from a blocked connection that publishes, which
   * would also stall the acks of every consumer on that connection. On false, publish through
   * {@link AmqpSession.publish} (the publisher connection, confirmed) instead.
   *
   * Made for a reply followed by `ack()`: the broker processes a channel's methods in order, so once
   * it has processed the ack it has already routed the reply; if the connection dies before, the ack
   * is lost with it and the request is redelivered (and answered again) — the guarantee of waiting
   * for a confirm before acking, without the confirm. Only routing is ordered before the ack, not
   * persistence: for a persistent message to a durable queue that must survive a broker crash, use
   * the confirmed `AmqpSession.publish`.
   *
   * Nothing to await: the frames are written at once (the ack that follows goes out after them; a
   * slow socket also holds back that ack, so prefetch bounds what piles up). A message that cannot be
   * encoded (e.g. a short string over 255 bytes) is not sent, and the failure is logged as an error.
   */
  publishOnChannel(exchange: string, routingKey: string, body: Buffer | string, options?: PublishOptions): boolean;
}

export type SessionHandler = (message: SessionMessage) => void | Promise<void>;

export interface SessionConsumer {
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

export type SessionRole = 'publisher' | 'consumer';

export type SessionEvents = {
  connected: [role: SessionRole];
  disconnected: [role: SessionRole, cause: AmqpError];
  reconnecting: [role: SessionRole, info: { attempt: number; delayMs: number }];
  recovered: [role: SessionRole];
  recoveryFailed: [role: SessionRole, error: Error];
  blocked: [role: SessionRole, reason: string];
  unblocked: [role: SessionRole];
  queueRenamed: [info: { from: string; to: string }];
};

/** What the session does when a publish on the wire is confirmed or fails. */
interface PublishOutcomes {
  confirmed(p: PendingPublish): void;
  failed(p: PendingPublish, err: Error): void;
}

/**
 * One `AmqpSession.publish` until its caller is told: `resolve`/`reject` settle the caller's promise.
 * On the wire it is the channel's confirm waiter itself (no promise per attempt), handing the outcome
 * to the session, which may send it again after a lost connection.
 */
class PendingPublish implements ConfirmWaiter {
  timer: NodeJS.Timeout | undefined = undefined;
  /** Retries after a 404 on a recorded exchange. */
  attempts: number | undefined = undefined;
  /** When waiting in the outage buffer must end (set on first wait). */
  deadline: number | undefined = undefined;
  /** A basic.return matched the current attempt (set by the channel). */
  returned: Error | undefined = undefined;

  constructor(
    private readonly outcomes: PublishOutcomes,
    readonly seq: number,
    readonly exchange: string,
    readonly routingKey: string,
    readonly body: Buffer,
    readonly options: PublishOptions | undefined,
    public resolve: () => void,
    public reject: (err: Error) => void,
  ) {}

  onConfirm(): void {
    this.outcomes.confirmed(this);
  }

  onFail(err: Error): void {
    this.outcomes.failed(this, err);
  }
}

interface ConsumerRecord {
  queue: QueueRecord | string;
  handler: SessionHandler;
  options: SessionConsumeOptions;
  consumerTag: string;
  channel: Channel | null;
  cancelled: boolean;
  starting: Promise<void> | null;
  /** Handler invocations that have not settled yet. */
  inFlight: number;
  /** Woken when inFlight drops to 0. */
  idle: Array<() => void>;
  /** Pre-bound continuations for an async handler's promise (no closure per delivery). */
  settled: () => void;
  failed: (err: unknown) => void;
}

const PUBLISH_BUFFER_DEFAULTS: Required<PublishBufferOptions> = {
  maxMessages: 10_000,
  maxBytes: 64 * 1024 * 1024,
  timeoutMs: 30_000,
};

/**
 * The managed client: two self-healing connections (publishing and consuming), a pool of confirm
 * channels, recorded topology and consumers that come back after any recoverable loss, and publishes
 * that survive an outage (buffered while down, re-published if unconfirmed when the link died).
 *
 * Delivery guarantee for `publish`: the promise settles exactly once — resolved on the broker's
 * confirm (possibly after re-publishing: at-least-once, duplicates possible), rejected on a nack,
 * a return (mandatory), a full buffer, or a buffer timeout. A confirmed message is never lost.
 */
export class AmqpSession extends EventEmitter<SessionEvents> {
  readonly name: string;
  readonly logger: Logger;
  private readonly publisher: ManagedConnection;
  private readonly consumerConn: ManagedConnection;
  private readonly topology = new TopologyRecord();
  private readonly consumers = new Set<ConsumerRecord>();
  private readonly recoverable = new Map<RecoverableChannel, SessionRole>();
  private readonly bufferOptions: Required<PublishBufferOptions>;
  private pool: ChannelPool | null = null;
  private topologyChannel: Channel | null = null;
  private topologyReady: Promise<void>;
  private markTopologyReady: () => void = () => undefined;
  /** The current topologyReady has resolved (a replay completed since the last consumer-side loss). */
  private topologyReplayed = false;
  private publisherReady = false;
  private consumerReady = false;
  private buffer: PendingPublish[] = [];
  private bufferBytes = 0;
  private seq = 0;
  private inFlight = new Set<PendingPublish>();
  private readyWaiters: Array<() => void> = [];
  private closed = false;
  private starting: Promise<void> | null = null;

  constructor(private readonly options: SessionOptions = {}) {
    super();
    this.name = options.name ?? 'default';
    this.logger = options.logger ?? consoleLogger;
    this.bufferOptions = { ...PUBLISH_BUFFER_DEFAULTS, ...options.publishBuffer };
    const resolved = resolveConnectionOptions(options);
    const split = (options.connections ?? 'split') === 'split';
    const named = (role: string) => ({
      ...resolved,
      connectionName: `${resolved.connectionName ?? `warren:${this.name}`}:${role}`,
    });
    this.publisher = new ManagedConnection(
      split ? 'publisher' : 'shared',
      named(split ? 'publisher' : 'shared'),
      this.logger,
      options.reconnect,
    );
    this.consumerConn = split
      ? new ManagedConnection('consumer', named('consumer'), this.logger, options.reconnect)
      : this.publisher;
    this.topologyReady = new Promise((r) => (this.markTopologyReady = r));
    this.wire(this.publisher, 'publisher');
    if (split) this.wire(this.consumerConn, 'consumer');
  }

  /** True when both roles are connected and recovered. */
  get isReady(): boolean {
    return this.publisherReady && this.consumerReady && !this.closed;
  }

  /**
   * Connect both roles. Resolves once connected. With `failFast` the first failure rejects; otherwise
   * the session keeps trying in the background (refused logins still reject at once).
   */
  connect(): Promise<void> {
    if (!this.starting) {
      const failFast = this.options.failFast ?? false;
      this.starting = Promise.all([
        this.publisher.start(failFast),
        this.consumerConn === this.publisher ? Promise.resolve() : this.consumerConn.start(failFast),
      ]).then(() => this.whenReady());
    }
    return this.starting;
  }

  /** Resolves when connected and recovered; rejects with TimeoutError after `timeoutMs` (if given). */
  whenReady(timeoutMs?: number): Promise<void> {
    if (this.isReady) return Promise.resolve();
    if (this.closed) return Promise.reject(new ClosedError(`session ${this.name} is closed`));
    const p = new Promise<void>((resolve) => this.readyWaiters.push(resolve));
    if (timeoutMs === undefined) return p;
    let timer: NodeJS.Timeout;
    return Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new TimeoutError(
                `session ${this.name}: broker not reachable within ${timeoutMs} ms`,
                'connect',
                timeoutMs,
              ),
            ),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  }

  // ---- printing: never the raw options, which hold the password and the TLS key ----

  /** What `JSON.stringify` shows: name, state and endpoints as `describeEndpoint` gives them (no password). */
  toJSON(): { name: string; state: 'connecting' | 'ready' | 'closed'; endpoints: string[] } {
    return {
      name: this.name,
      state: this.closed ? 'closed' : this.isReady ? 'ready' : 'connecting',
      endpoints: this.publisher.targets,
    };
  }

  /** What `util.inspect` shows: the same as `toJSON`. (The symbol is `util.inspect.custom`.) */
  [Symbol.for('nodejs.util.inspect.custom')](
    _depth: number,
    options: object,
    show: (value: unknown, options: object) => string,
  ): string {
    return `AmqpSession ${show(this.toJSON(), options)}`;
  }

  // ---- topology (recorded) ----

  async exchangeDeclare(name: string, type: string, options: ExchangeOptions = {}): Promise<void> {
    this.topology.addExchange(name, type, options);
    try {
      await this.onTopologyChannel((ch) => ch.exchangeDeclare(name, type, options));
    } catch (err) {
      // A failed passive check says nothing about what we declared before: keep the record.
      if (err instanceof ChannelError && !options.passive) this.topology.removeExchange(name);
      throw err;
    }
  }

  async exchangeDelete(name: string, options: { ifUnused?: boolean } = {}): Promise<void> {
    this.topology.removeExchange(name);
    await this.onTopologyChannel((ch) => ch.exchangeDelete(name, options));
  }

  async exchangeBind(destination: string, source: string, routingKey = '', args?: FieldTable): Promise<void> {
    this.topology.addBinding('exchange', destination, source, routingKey, args);
    await this.onTopologyChannel((ch) => ch.exchangeBind(destination, source, routingKey, { arguments: args }));
  }

  async exchangeUnbind(destination: string, source: string, routingKey = '', args?: FieldTable): Promise<void> {
    this.topology.removeBinding('exchange', destination, source, routingKey, args);
    await this.onTopologyChannel((ch) => ch.exchangeUnbind(destination, source, routingKey, { arguments: args }));
  }

  /** Declare a queue ('' = server-named). Recorded: after a reconnect it is declared again, under a new name if server-named. */
  async queueDeclare(name = '', options: QueueOptions = {}): Promise<QueueDeclareResult> {
    const result = await this.onTopologyChannel((ch) => ch.queueDeclare(name, options));
    this.topology.addQueue(name, result.queue, options);
    return result;
  }

  async queueBind(queue: string, exchange: string, routingKey = '', args?: FieldTable): Promise<void> {
    await this.onTopologyChannel((ch) =>
      ch.queueBind(this.currentQueueName(queue), exchange, routingKey, { arguments: args }),
    );
    this.topology.addBinding('queue', queue, exchange, routingKey, args);
  }

  async queueUnbind(queue: string, exchange: string, routingKey = '', args?: FieldTable): Promise<void> {
    this.topology.removeBinding('queue', queue, exchange, routingKey, args);
    await this.onTopologyChannel((ch) =>
      ch.queueUnbind(this.currentQueueName(queue), exchange, routingKey, { arguments: args }),
    );
  }

  async queueDelete(
    queue: string,
    options: { ifUnused?: boolean; ifEmpty?: boolean } = {},
  ): Promise<{ messageCount: number }> {
    const name = this.currentQueueName(queue);
    this.topology.removeQueue(name);
    return this.onTopologyChannel((ch) => ch.queueDelete(name, options));
  }

  async queuePurge(queue: string): Promise<{ messageCount: number }> {
    return this.onTopologyChannel((ch) => ch.queuePurge(this.currentQueueName(queue)));
  }

  /** Fetch one message (or null). An operation in flight when the connection drops rejects with ConnectionLostError. */
  async get(queue: string, options: { noAck?: boolean } = {}): Promise<SessionMessage | null> {
    const m = await this.onTopologyChannel((ch) => ch.get(this.currentQueueName(queue), options));
    const ch = this.topologyChannel;
    return m && ch ? this.bindAck(m, ch) : null;
  }

  // ---- publishing ----

  /**
   * Publish with a confirm. Waits through an outage within the buffer bounds; re-publishes what was
   * unconfirmed when a connection died. Rejects with NackError, UnroutableError (mandatory),
   * BufferOverflowError or TimeoutError (buffer wait), and ClosedError after close().
   */
  publish(exchange: string, routingKey: string, body: Buffer | string, options?: PublishOptions): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedError(`session ${this.name} is closed`));
    const content = typeof body === 'string' ? Buffer.from(body) : body;
    return new Promise<void>((resolve, reject) => {
      const p = new PendingPublish(this.outcomes, ++this.seq, exchange, routingKey, content, options, resolve, reject);
      if (this.publisherReady && this.buffer.length === 0) this.send(p);
      else {
        this.enqueue(p, false);
        if (this.publisherReady) this.flushBuffer();
      }
    });
  }

  /** Exclusive use of a pooled confirm channel (for transactions or batches); give it back with `release`. */
  async acquire(): Promise<Channel> {
    await this.whenReady(this.bufferOptions.timeoutMs);
    if (!this.pool) throw new ConnectionLostError('publisher connection is down');
    return this.pool.acquire();
  }

  release(ch: Channel): void {
    this.pool?.release(ch);
  }

  /**
   * A channel of your own on the publisher or consumer connection, re-opened (and `setup` re-run)
   * after every recovery. Used e.g. for direct reply-to, where requests and the reply consumer must
   * share one channel.
   */
  recoverableChannel(role: SessionRole, setup: (ch: Channel) => Promise<void>): RecoverableChannel {
    const rc = new RecoverableChannel(setup, this.logger, (r) => this.recoverable.delete(r));
    this.recoverable.set(rc, role);
    const conn = (role === 'publisher' ? this.publisher : this.consumerConn).current;
    if (conn?.isOpen)
      void rc.attach(conn).catch((e: Error) => this.logger.warn(`recoverable channel setup failed: ${e.message}`));
    return rc;
  }

  // ---- consuming ----

  /**
   * Start a consumer on its own channel (its own prefetch). It is re-attached with the same handler
   * after every recovery, following its queue's new name if the queue is server-named.
   */
  async consume(queue: string, handler: SessionHandler, options: SessionConsumeOptions = {}): Promise<SessionConsumer> {
    if (this.closed) throw new ClosedError(`session ${this.name} is closed`);
    const record: ConsumerRecord = {
      queue: this.topology.findQueue(queue) ?? queue,
      handler,
      options,
      consumerTag: options.consumerTag ?? '',
      channel: null,
      cancelled: false,
      starting: null,
      inFlight: 0,
      idle: [],
      settled: () => this.handlerDone(record),
      // A rejected handler is reported here, so the channel attaches nothing per delivery.
      failed: (err: unknown): void => {
        this.handlerDone(record);
        const queueName = typeof record.queue === 'string' ? record.queue : record.queue.name;
        this.logger.error(
          `consumer handler on queue '${queueName}' failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        );
      },
    };
    this.consumers.add(record);
    await this.whenReady(this.options.operationTimeout ? this.options.operationTimeout * 1000 : 30_000);
    try {
      // Connected while we waited: recovery has started this consumer already (it is in `consumers`).
      if (!record.channel) await this.startConsumer(record);
    } catch (err) {
      this.consumers.delete(record);
      throw err;
    }
    const cancel = (o?: { drainTimeoutMs?: number }): Promise<void> => this.cancelConsumer(record, o?.drainTimeoutMs);
    return {
      get inFlight() {
        return record.inFlight;
      },
      get consumerTag() {
        return record.consumerTag;
      },
      get queue() {
        return typeof record.queue === 'string' ? record.queue : record.queue.name;
      },
      cancel,
    };
  }

  /**
   * Stop: cancel consumers (letting running handlers finish), wait for outstanding confirms, close
   * both connections. `timeoutMs` bounds each wait (default: the publish buffer's timeoutMs).
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    const timeoutMs = options.timeoutMs ?? this.bufferOptions.timeoutMs;
    await Promise.all([...this.consumers].map((c) => this.cancelConsumer(c, timeoutMs).catch(() => undefined)));
    const pending = [...this.inFlight].map(
      (p) =>
        new Promise<void>((r) => {
          const done = () => r();
          p.resolve = wrap(p.resolve, done);
          p.reject = wrap(p.reject, done);
        }),
    );
    const deadline = new Promise<void>((r) => setTimeout(r, timeoutMs).unref());
    await Promise.race([Promise.all(pending), deadline]);
    this.closed = true;
    const closedErr = new ClosedError(`session ${this.name} closed before the publish could be sent`);
    for (const p of this.buffer.splice(0)) {
      clearTimeout(p.timer);
      p.reject(closedErr);
    }
    this.pool?.close();
    await Promise.all([
      this.publisher.close(),
      this.consumerConn === this.publisher ? undefined : this.consumerConn.close(),
    ]);
    for (const w of this.readyWaiters.splice(0)) w();
  }

  // ---- internals ----

  private wire(mc: ManagedConnection, role: SessionRole): void {
    const roles: SessionRole[] = mc === this.consumerConn && mc === this.publisher ? ['publisher', 'consumer'] : [role];
    mc.on('connected', (conn, recovering) => {
      for (const r of roles) this.emit('connected', r);
      // The broker is reachable again: the sibling connection need not sleep out its backoff.
      const sibling = mc === this.publisher ? this.consumerConn : this.publisher;
      if (sibling !== mc) sibling.retryNow();
      void this.onConnected(conn, roles, recovering);
    });
    mc.on('disconnected', (cause) => {
      for (const r of roles) {
        this.emit('disconnected', r, cause);
        this.onDisconnected(r);
      }
    });
    mc.on('reconnecting', (info) => {
      for (const r of roles) this.emit('reconnecting', r, info);
    });
    mc.on('failed', (err) => {
      for (const r of roles) this.emit('recoveryFailed', r, err);
      // Nothing will come back: fail everything that waits for it.
      for (const p of this.buffer.splice(0)) {
        clearTimeout(p.timer);
        p.reject(err);
      }
      this.bufferBytes = 0;
    });
    mc.on('blocked', (reason) => roles.forEach((r) => this.emit('blocked', r, reason)));
    mc.on('unblocked', () => roles.forEach((r) => this.emit('unblocked', r)));
  }

  private async onConnected(conn: AmqpConnection, roles: SessionRole[], recovering: boolean): Promise<void> {
    try {
      if (roles.includes('consumer')) {
        this.topologyChannel = await conn.channel();
        await this.topology.replay(this.topologyChannel, (from, to) => {
          this.logger.warn?.(`server-named queue ${from} is now ${to}`);
          this.emit('queueRenamed', { from, to });
        });
        this.markTopologyReady();
        this.topologyReplayed = true;
        for (const c of this.consumers) if (!c.cancelled) await this.startConsumer(c);
        await this.attachRecoverable(conn, 'consumer');
        this.consumerReady = true;
      }
      if (roles.includes('publisher')) {
        this.pool = new ChannelPool(conn, this.logger, this.options.pool, () => {
          if (this.publisherReady) this.flushBuffer();
        });
        await this.pool.fill();
        await this.attachRecoverable(conn, 'publisher');
        this.publisherReady = true;
        this.flushBuffer();
      }
      if (recovering) for (const r of roles) this.emit('recovered', r);
      if (this.isReady) for (const w of this.readyWaiters.splice(0)) w();
    } catch (err) {
      const e = err as Error;
      // A connection that died mid-recovery triggers another recovery; anything else (a 406 on
      // re-declare...) needs a human.
      if (!conn.isOpen) {
        this.logger.debug?.(`session ${this.name}: connection lost during recovery: ${e.message}`);
        return;
      }
      this.logger.error(`session ${this.name}: recovery on a new connection failed: ${e.message}`);
      for (const r of roles) this.emit('recoveryFailed', r, e);
    }
  }

  private async attachRecoverable(conn: AmqpConnection, role: SessionRole): Promise<void> {
    for (const [rc, r] of this.recoverable) {
      if (r !== role) continue;
      // One owner's failing setup must not hold back the rest of recovery.
      await rc.attach(conn).catch((e: Error) => this.logger.warn(`recoverable channel setup failed: ${e.message}`));
    }
  }

  private onDisconnected(role: SessionRole): void {
    if (role === 'consumer') {
      this.consumerReady = false;
      this.topologyChannel = null;
      // Replace the gate only once it has opened: whoever waits on a still-closed one (a publisher
      // connection waiting for this replay) must be released by the next replay, not stranded.
      if (this.topologyReplayed) {
        this.topologyReplayed = false;
        this.topologyReady = new Promise((r) => (this.markTopologyReady = r));
      }
      for (const c of this.consumers) c.channel = null;
    } else {
      this.publisherReady = false;
      this.pool?.close();
      this.pool = null;
    }
  }

  private send(p: PendingPublish): void {
    if (!this.topologyReplayed && this.topology.hasExchange(p.exchange)) {
      // Its exchange is being re-declared (consumer-side recovery): a publish now could hit a 404 and
      // close its channel. Hold it until the replay is done. Default-exchange publishes need not wait.
      this.enqueue(p, true);
      void this.topologyReady.then(() => {
        if (this.publisherReady) this.flushBuffer();
      });
      return;
    }
    const ch = this.pool?.pick();
    if (!ch) {
      this.enqueue(p, true);
      return;
    }
    p.deadline = undefined; // on the wire: a later outage gets a fresh time bound
    p.returned = undefined; // a return belongs to one attempt
    this.inFlight.add(p);
    ch.publishAwaiting(p.exchange, p.routingKey, p.body, p.options, p);
  }

  /** Outcomes of publishes on the wire (bound once: no closures per publish). */
  private readonly outcomes: PublishOutcomes = {
    confirmed: (p) => {
      this.inFlight.delete(p);
      p.resolve();
    },
    failed: (p, err) => {
      this.inFlight.delete(p);
      if (err instanceof NackError || err instanceof UnroutableError || !(err instanceof AmqpError)) {
        p.reject(err);
      } else if (err instanceof ChannelError && this.causedBy(err, p)) {
        // An exchange we declared can be briefly missing (auto-delete, being recovered): retry a
        // few times once topology is back; one we never declared is the caller's mistake.
        if (this.topology.hasExchange(p.exchange) && (p.attempts = (p.attempts ?? 0) + 1) <= 3) {
          void this.topologyReady.then(() => {
            this.enqueue(p, true);
            if (this.publisherReady) this.flushBuffer();
          });
        } else p.reject(err);
      } else if (this.closed) {
        p.reject(err);
      } else {
        // The link died (or a sibling publish broke the channel) before the confirm: send again.
        this.enqueue(p, true);
        if (this.publisherReady) this.flushBuffer();
      }
    },
  };

  /** A 404 on basic.publish names the exchange: only publishes to that exchange are at fault. */
  private causedBy(err: ChannelError, p: PendingPublish): boolean {
    if (err.failedMethod?.methodName !== 'basic.publish') return err.replyCode !== ReplyCode.NOT_FOUND;
    return err.replyText.includes(`exchange '${p.exchange}'`);
  }

  /** Hold a publish until the publisher is back. `accepted`: already taken before (never refused for space). */
  private enqueue(p: PendingPublish, accepted: boolean): void {
    const o = this.bufferOptions;
    if (!accepted && (this.buffer.length >= o.maxMessages || this.bufferBytes + p.body.length > o.maxBytes)) {
      p.reject(
        new BufferOverflowError(
          `session ${this.name}: publish buffer full (${this.buffer.length} messages, ${this.bufferBytes} bytes; limits ${o.maxMessages} / ${o.maxBytes})`,
        ),
      );
      return;
    }
    // Every wait in the buffer is bounded: the deadline is fixed when the publish first waits.
    p.deadline ??= Date.now() + o.timeoutMs;
    if (!p.timer) {
      p.timer = setTimeout(
        () => {
          const i = this.buffer.indexOf(p);
          if (i < 0) return;
          this.buffer.splice(i, 1);
          this.bufferBytes -= p.body.length;
          p.reject(
            new TimeoutError(
              `publish to '${p.exchange}' / '${p.routingKey}' waited ${o.timeoutMs} ms for the broker`,
              'publish',
              o.timeoutMs,
            ),
          );
        },
        Math.max(0, p.deadline - Date.now()),
      );
    }
    this.buffer.push(p);
    this.bufferBytes += p.body.length;
  }

  private flushBuffer(): void {
    if (this.buffer.length === 0) return;
    // Oldest first: re-published in-flight messages interleave with buffered ones by original order.
    const items = this.buffer.sort((a, b) => a.seq - b.seq);
    this.buffer = [];
    this.bufferBytes = 0;
    for (const p of items) {
      clearTimeout(p.timer);
      p.timer = undefined;
      if (this.publisherReady) this.send(p);
      else this.enqueue(p, true);
    }
  }

  private async startConsumer(record: ConsumerRecord): Promise<void> {
    const conn = this.consumerConn.current;
    if (!conn || record.cancelled) return;
    const ch = await conn.channel();
    record.channel = ch;
    const prefetch = record.options.prefetch ?? 100;
    if (prefetch > 0) await ch.qos(prefetch);
    const queueName = typeof record.queue === 'string' ? record.queue : record.queue.name;
    const consumer = await ch.consume(queueName, (m) => this.deliver(record, ch, m), {
      consumerTag: record.options.consumerTag,
      noAck: record.options.noAck,
      exclusive: record.options.exclusive,
      priority: record.options.priority,
      arguments: record.options.arguments,
      noLocal: record.options.noLocal,
      onCancel: () => {
        record.cancelled = true;
        this.consumers.delete(record);
        record.options.onCancel?.();
      },
    });
    record.consumerTag = consumer.consumerTag;
    ch.once('close', (err) => {
      // A channel error (not a connection loss): reopen the consumer's channel after a pause.
      if (!err || record.cancelled || this.closed || record.channel !== ch || !conn.isOpen) return;
      record.channel = null;
      this.logger.warn(`consumer ${record.consumerTag} channel closed (${err.message}); reopening`);
      setTimeout(
        () =>
          void this.startConsumer(record).catch((e: Error) =>
            this.logger.error(`cannot restart consumer: ${e.message}`),
          ),
        1000,
      ).unref();
    });
  }

  /** Run the handler, counting it in flight until it settles (for a draining cancel). */
  private deliver(record: ConsumerRecord, ch: Channel, m: Message): void {
    record.inFlight++;
    let result: void | Promise<void>;
    try {
      result = record.handler(this.bindAck(m, ch));
    } catch (err) {
      this.handlerDone(record);
      throw err;
    }
    if (result && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(record.settled, record.failed);
      return;
    }
    this.handlerDone(record);
  }

  private handlerDone(record: ConsumerRecord): void {
    if (--record.inFlight === 0) for (const w of record.idle.splice(0)) w();
  }

  /** Acks go to the channel that delivered the message, and only while it lives. */
  private bindAck(m: Message, ch: Channel): SessionMessage {
    return new BoundMessage(m, ch, this.logger);
  }

  private async cancelConsumer(record: ConsumerRecord, drainTimeoutMs = 30_000): Promise<void> {
    if (record.cancelled) return;
    record.cancelled = true;
    this.consumers.delete(record);
    const ch = record.channel;
    if (ch?.isOpen) {
      await ch.cancel(record.consumerTag).catch(() => undefined);
      // Keep the channel open until running handlers are done, so their acks still count.
      if (record.inFlight > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((r) => record.idle.push(r)),
          new Promise<void>((r) => (timer = setTimeout(r, drainTimeoutMs))),
        ]);
        clearTimeout(timer);
      }
      record.channel = null;
      await ch.close().catch(() => undefined);
    }
    record.channel = null;
    // An auto-delete queue disappears with its last consumer: stop re-declaring it.
    const q = record.queue;
    if (typeof q !== 'string' && q.options.autoDelete && ![...this.consumers].some((c) => c.queue === q)) {
      this.topology.removeQueue(q.name);
    }
  }

  private currentQueueName(queue: string): string {
    return this.topology.findQueue(queue)?.name ?? queue;
  }

  /** Run a topology operation on the consumer connection's channel, reopening it after a channel error. */
  private async onTopologyChannel<T>(op: (ch: Channel) => Promise<T>): Promise<T> {
    await this.whenReady(this.options.operationTimeout ? this.options.operationTimeout * 1000 : 30_000);
    let ch = this.topologyChannel;
    if (!ch || !ch.isOpen) {
      const conn = this.consumerConn.current;
      if (!conn) throw new ConnectionLostError(`session ${this.name}: consumer connection is down`);
      ch = await conn.channel();
      this.topologyChannel = ch;
    }
    try {
      return await op(ch);
    } catch (err) {
      if (err instanceof ChannelError || err instanceof TimeoutError || err instanceof NackError) throw err;
      if (err instanceof AmqpError)
        throw new ConnectionLostError(`connection lost during the operation: ${err.message}`, { cause: err });
      throw err;
    }
  }
}

function wrap<A extends unknown[]>(f: (...a: A) => void, after: () => void): (...a: A) => void {
  return (...a: A) => {
    f(...a);
    after();
  };
}

/**
 * A delivered message bound to the channel that delivered it: acks go there while it lives and are
 * dropped (with a debug line) once it is gone — the broker redelivers such messages. A class, so the
 * methods are shared instead of closures per delivery.
 */
class BoundMessage implements SessionMessage {
  readonly body: Buffer;
  readonly properties: Message['properties'];
  readonly fields: Message['fields'];

  constructor(
    m: Message,
    private readonly channel: Channel,
    private readonly logger: Logger,
  ) {
    this.body = m.body;
    this.properties = m.properties;
    this.fields = m.fields;
  }

  ack(): void {
    if (this.live('ack')) this.channel.ack(this.fields.deliveryTag);
  }

  nack(requeue = true): void {
    if (this.live('nack')) this.channel.nack(this.fields.deliveryTag, false, requeue);
  }

  reject(requeue = true): void {
    if (this.live('reject')) this.channel.reject(this.fields.deliveryTag, requeue);
  }

  isLive(): boolean {
    return this.channel.isOpen;
  }

  publishOnChannel(exchange: string, routingKey: string, body: Buffer | string, options?: PublishOptions): boolean {
    const ch = this.channel;
    if (!ch.isOpen || ch.connection.isBlocked || ch.confirmMode) return false;
    // Open and not blocked: the frames are queued now, no promise. Bad input (an encoding error) sends
    // nothing and is logged.
    try {
      ch.publishUnconfirmed(exchange, routingKey, typeof body === 'string' ? Buffer.from(body) : body, options);
    } catch (err) {
      this.logger.error(
        `publish to '${exchange}' / '${routingKey}' on the delivering channel failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    return true;
  }

  private live(what: string): boolean {
    if (this.channel.isOpen) return true;
    this.logger.debug?.(
      `${what} of delivery ${this.fields.deliveryTag} dropped: its channel is gone (the broker redelivers it)`,
    );
    return false;
  }
}
