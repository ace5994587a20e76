import { EventEmitter } from 'node:events';
import type { Channel, ExchangeOptions, QueueDeclareResult, QueueOptions } from './channel';
import { ChannelPool } from './channel-pool';
import { DeliveredMessage, type SessionMessage } from './delivered-message';
import { Deferred, withTimeout, WaiterList } from './deferred';
import {
  AmqpError,
  ChannelError,
  ClosedError,
  ConnectionError,
  ConnectionLostError,
  NackError,
  type OversizedMessage,
  ReplyCode,
  SetupError,
  TimeoutError,
  UnroutableError,
} from './errors';
import { consoleLogger, type Logger } from './logger';
import { ManagedConnection } from './managed-connection';
import type { PublishOptions } from './message';
import type { FieldTable } from './protocol/field-table';
import { PendingPublish, PublishBuffer, type PublishOutcomes } from './publish-buffer';
import { RecoverableChannel, type SetupFailure } from './recoverable-channel';
import {
  ManagedConsumer,
  type ConsumerHost,
  type SessionConsumeOptions,
  type SessionConsumer,
  type SessionHandler,
} from './session-consumer';
import { checkSessionOptions, type SessionOptions } from './session-options';
import { TopologyRecord } from './topology';
import { TopologyRecovery } from './topology-recovery';
import { resolveConnectionOptions } from './resolve-options';
import { printAsJson } from './redact';

export type { SessionOptions } from './session-options';
export type { PublishBufferOptions } from './publish-buffer';
export type { SessionMessage } from './delivered-message';
export type { SessionConsumeOptions, SessionConsumer, SessionHandler } from './session-consumer';
export type { SetupFailure } from './recoverable-channel';

/**
 * Which of a session's two connections an event is about. With `connections: 'single'` the one connection plays both
 * roles: each of its events is emitted once per role.
 */
export type SessionRole = 'publisher' | 'consumer';

/** Events of an {@link AmqpSession}: `session.on('recovered', (role) => ...)`. */
export type SessionEvents = {
  /** A connection is up (the first time, or again after a loss). */
  connected: [role: SessionRole];
  /** A connection was lost; `cause` says why. Recovery starts at once. */
  disconnected: [role: SessionRole, cause: AmqpError];
  /** A reconnect round failed; the next one starts after `delayMs`. */
  reconnecting: [
    role: SessionRole,
    info: {
      /** Failed rounds in a row. */
      attempt: number;
      /** Wait before the next round, ms. */
      delayMs: number;
    },
  ];
  /** A connection is back and everything on it is set up again (topology, consumers, or publisher channels). */
  recovered: [role: SessionRole];
  /** Reconnecting stopped for good: a refused login, a vhost or configuration error, or `reconnect.maxAttempts`. */
  recoveryFailed: [role: SessionRole, error: Error];
  /**
   * One entity could not be (re)established — a consumer, a publisher channel, a recorded exchange,
   * queue or binding, a recoverable channel — and is retried with backoff (`entity` names it, `error`
   * is the broker's refusal). Everything else keeps working meanwhile.
   */
  setupFailed: [failure: SetupFailure];
  /**
   * A delivery over `maxMessageSize` was skipped without buffering it and rejected without requeue
   * (dead-lettered where its queue has a DLX); the consumer's channel and connection stay open.
   */
  messageTooLarge: [info: OversizedMessage];
  /** The broker blocks publishing on this connection (a resource alarm); `reason` is the broker's. */
  blocked: [role: SessionRole, reason: string];
  /** The broker lifted the block. */
  unblocked: [role: SessionRole];
  /** Rotating credentials: this connection's broker took the new secret (`connection.update-secret`). */
  secretUpdated: [role: SessionRole];
  /** Rotating credentials: refreshing failed; tried again after `retryInMs`. */
  secretRefreshFailed: [role: SessionRole, error: Error, retryInMs: number];
  /** A server-named queue was declared again after a reconnect and got a new name; bindings and consumers follow. */
  queueRenamed: [
    info: {
      /** Its name before. */
      from: string;
      /** Its new name. */
      to: string;
    },
  ];
  /** A publish waits in the outage buffer (no publisher channel, or its exchange is being re-declared); once per wait. */
  publishBuffered: [
    info: {
      /** The exchange it is published to (`''`: the default exchange). */
      exchange: string;
      /** Its routing key. */
      routingKey: string;
    },
  ];
  /**
   * A publish left unconfirmed by a lost connection or channel will be sent again (at-least-once: a possible
   * duplicate); once per publish, however many attempts it takes.
   */
  publishRepublished: [
    info: {
      /** The exchange it is published to (`''`: the default exchange). */
      exchange: string;
      /** Its routing key. */
      routingKey: string;
    },
  ];
};

/**
 * The managed client: two self-healing connections (publishing and consuming) run by the one
 * reconnect loop, and on them self-healing channels — a pool of confirm channels, one per consumer,
 * one for topology operations — each of which reopens itself with the one backoff. Recorded topology
 * is replayed before consumers attach; publishes survive an outage (buffered while down,
 * re-published if unconfirmed when the link died).
 *
 * Delivery guarantee for `publish`: the promise settles exactly once — resolved on the broker's
 * confirm (possibly after re-publishing: at-least-once, duplicates possible), rejected on a nack,
 * a return (mandatory), a full buffer, a buffer or confirm timeout. A confirmed message is never lost.
 */
export class AmqpSession extends EventEmitter<SessionEvents> {
  /** The session's name (option `name`, default `default`): in logs, errors and the connection names. */
  readonly name: string;
  /** Where the session logs what it cannot throw (option `logger`, default the console). */
  readonly logger: Logger;
  private readonly publisher: ManagedConnection;
  private readonly consumerConn: ManagedConnection;
  private readonly topology = new TopologyRecord();
  private readonly consumers = new Set<ManagedConsumer>();
  private readonly recoverable = new Set<RecoverableChannel>();
  private readonly buffer: PublishBuffer;
  private readonly pool: ChannelPool;
  private readonly topologyChannel: RecoverableChannel;
  /** Replays the recorded topology on each new consumer connection before anything consumes on it. */
  private readonly recovery: TopologyRecovery;
  private readonly readyWaiters = new WaiterList();
  private recovering = { publisher: false, consumer: false };
  private seq = 0;
  private readonly inFlight = new Set<PendingPublish>();
  private closed = false;
  private starting: Promise<void> | null = null;
  /** A failFast connect learns the first failed setup step here. */
  private firstFailure: Deferred<never> | null = null;
  private readonly consumerHost: ConsumerHost;

  constructor(private readonly options: SessionOptions = {}) {
    super();
    checkSessionOptions(options);
    this.name = options.name ?? 'default';
    this.logger = options.logger ?? consoleLogger;
    this.buffer = new PublishBuffer(this.name, options.publishBuffer);
    this.consumerHost = this.makeConsumerHost();
    this.recovery = new TopologyRecovery(this.topology, this.logger, {
      renamed: (from, to) => this.renamed(from, to),
      setupFailed: (f) => this.onSetupFailed(f),
      // Publishes held back while their exchange was being re-declared can go now.
      replayed: () => {
        this.flushBuffer();
        this.checkReady();
      },
    });
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
    this.wire(this.publisher, 'publisher');
    if (split) this.wire(this.consumerConn, 'consumer');
    this.pool = new ChannelPool(() => this.publisher.connection(), this.logger, options.pool ?? {}, options.reconnect, {
      available: () => this.onPublisherAvailable(),
      setupFailed: (f) => this.onSetupFailed(f),
    });
    this.topologyChannel = new RecoverableChannel({
      entity: 'topology channel',
      setup: async () => undefined,
      connection: () => this.recovery.connection(),
      logger: this.logger,
      reconnect: options.reconnect,
      // A refused declare closes it: the caller's mistake, not a reason to slow the next operation down.
      backoffAfterError: false,
    });
  }

  /** True when both roles are connected, topology is replayed, the pool is in confirm mode and every consumer is attached. */
  get isReady(): boolean {
    return !this.closed && this.roleReady('publisher') && this.roleReady('consumer');
  }

  /**
   * True while the broker blocks one of the session's open connections (`connection.blocked`: a resource alarm), as
   * the connections say now: set at once on a block that came with `open-ok`, and gone with a connection that died.
   */
  get isBlocked(): boolean {
    return (this.publisher.current?.isBlocked ?? false) || (this.consumerConn.current?.isBlocked ?? false);
  }

  /**
   * Connect both roles; resolves once the session is ready. Without `failFast` the session keeps trying
   * in the background (refused logins, vhost and configuration errors still reject at once); with it, the
   * first `connectionAttempts` failed rounds, or the first failed setup step, reject with the real cause.
   */
  connect(): Promise<void> {
    if (!this.starting) {
      const failFast = this.options.failFast ?? false;
      const connections = Promise.all([
        this.publisher.start(failFast),
        this.consumerConn === this.publisher ? Promise.resolve() : this.consumerConn.start(failFast),
      ]);
      if (failFast) {
        this.firstFailure = new Deferred<never>();
        this.starting = Promise.race([connections.then(() => this.whenReady()), this.firstFailure.promise]).finally(
          () => (this.firstFailure = null),
        );
      } else this.starting = connections.then(() => this.whenReady());
    }
    return this.starting;
  }

  /**
   * Resolves when ready; rejects with TimeoutError after `timeoutMs` (if given), naming what is not
   * ready and why (the entity and the broker's last refusal, or the connection that is down).
   */
  whenReady(timeoutMs?: number): Promise<void> {
    if (this.isReady) return Promise.resolve();
    if (this.closed) return Promise.reject(new ClosedError(`session ${this.name} is closed`));
    return this.readyWaiters.wait(
      timeoutMs ?? 0,
      'connect',
      () => `session ${this.name} not ready within ${timeoutMs} ms: ${this.notReadyReasons().join('; ')}`,
    );
  }

  /** What keeps the session from being ready, in words. */
  notReadyReasons(): string[] {
    const reasons: string[] = [];
    if (this.closed) return ['closed'];
    if (!this.publisher.isOpen) reasons.push(`${this.publisher.role} connection: broker not reachable`);
    if (!this.consumerConn.isOpen) {
      if (this.consumerConn !== this.publisher) reasons.push('consumer connection: broker not reachable');
    } else if (!this.recovery.isReplayed) reasons.push('topology being replayed');
    if (this.publisher.isOpen) reasons.push(...this.pool.failures);
    for (const c of this.consumers)
      if (!c.isReady && this.recovery.isReplayed) reasons.push(`${c.entity}: ${c.failure?.message ?? 'attaching'}`);
    return reasons.length > 0 ? reasons : ['starting'];
  }

  // ---- printing: never the raw options, which hold the password and the TLS key ----

  /** What `JSON.stringify` shows: name, state and endpoints as `describeEndpoint` gives them (no password). */
  toJSON(): {
    /** The session's name. */
    name: string;
    /** `ready` when {@link AmqpSession.isReady}, `closed` after `close()`, else `connecting`. */
    state: 'connecting' | 'ready' | 'closed';
    /** The endpoints, as `describeEndpoint` gives them (no password). */
    endpoints: string[];
  } {
    return {
      name: this.name,
      state: this.closed ? 'closed' : this.isReady ? 'ready' : 'connecting',
      endpoints: this.publisher.targets,
    };
  }

  // ---- topology (recorded after the broker accepted it) ----

  /**
   * Declare an exchange (durable unless `durable: false`), recorded once the broker accepted it: declared again after
   * every reconnect. Same options and errors as {@link Channel.exchangeDeclare}; a refusal leaves nothing recorded.
   */
  async exchangeDeclare(name: string, type: string, options: ExchangeOptions = {}): Promise<void> {
    await this.onTopologyChannel((ch) => ch.exchangeDeclare(name, type, options));
    this.topology.addExchange(name, type, options);
  }

  /** Delete an exchange and forget it (and the bindings that hang off it). */
  async exchangeDelete(name: string, options: { ifUnused?: boolean } = {}): Promise<void> {
    await this.onTopologyChannel((ch) => ch.exchangeDelete(name, options));
    this.topology.removeExchange(name);
  }

  /** Bind exchange `destination` to `source` (messages flow from `source` to `destination`); recorded. */
  async exchangeBind(destination: string, source: string, routingKey = '', args?: FieldTable): Promise<void> {
    await this.onTopologyChannel((ch) => ch.exchangeBind(destination, source, routingKey, { arguments: args }));
    this.topology.addBinding('exchange', destination, source, routingKey, args);
  }

  /** Remove an exchange-to-exchange binding, and from the record. */
  async exchangeUnbind(destination: string, source: string, routingKey = '', args?: FieldTable): Promise<void> {
    await this.onTopologyChannel((ch) => ch.exchangeUnbind(destination, source, routingKey, { arguments: args }));
    this.topology.removeBinding('exchange', destination, source, routingKey, args);
  }

  /** Declare a queue ('' = server-named). Recorded: after a reconnect it is declared again, under a new name if server-named. */
  async queueDeclare(name = '', options: QueueOptions = {}): Promise<QueueDeclareResult> {
    const result = await this.onTopologyChannel((ch) => ch.queueDeclare(name, options));
    this.topology.addQueue(name, result.queue, options);
    return result;
  }

  /**
   * Bind a queue to an exchange; recorded, and replayed after every reconnect (under the queue's new name if it is
   * server-named).
   */
  async queueBind(queue: string, exchange: string, routingKey = '', args?: FieldTable): Promise<void> {
    await this.onTopologyChannel((ch) =>
      ch.queueBind(this.currentQueueName(queue), exchange, routingKey, { arguments: args }),
    );
    this.topology.addBinding('queue', queue, exchange, routingKey, args);
  }

  /** Remove a binding, and from the record. */
  async queueUnbind(queue: string, exchange: string, routingKey = '', args?: FieldTable): Promise<void> {
    await this.onTopologyChannel((ch) =>
      ch.queueUnbind(this.currentQueueName(queue), exchange, routingKey, { arguments: args }),
    );
    this.topology.removeBinding('queue', queue, exchange, routingKey, args);
  }

  /** Delete a queue and forget it (and its bindings); resolves with how many messages were deleted. */
  async queueDelete(
    queue: string,
    options: { ifUnused?: boolean; ifEmpty?: boolean } = {},
  ): Promise<{
    /** Messages deleted with the queue. */
    messageCount: number;
  }> {
    const name = this.currentQueueName(queue);
    const result = await this.onTopologyChannel((ch) => ch.queueDelete(name, options));
    this.topology.removeQueue(name);
    return result;
  }

  /** Remove all ready messages of a queue; resolves with how many were purged. */
  async queuePurge(queue: string): Promise<{
    /** Messages purged. */
    messageCount: number;
  }> {
    return this.onTopologyChannel((ch) => ch.queuePurge(this.currentQueueName(queue)));
  }

  /** Fetch one message (or null). An operation in flight when the connection drops rejects with ConnectionLostError. */
  async get(queue: string, options: { noAck?: boolean } = {}): Promise<SessionMessage | null> {
    let on: Channel | null = null;
    const m = await this.onTopologyChannel((ch) => {
      on = ch;
      return ch.get(this.currentQueueName(queue), options);
    });
    return m && on ? new DeliveredMessage(m, on, this.logger) : null;
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
      if (this.buffer.length === 0) this.send(p);
      else if (this.buffer.hold(p, false)) {
        this.emit('publishBuffered', { exchange, routingKey });
        this.flushBuffer();
      }
    });
  }

  /** Exclusive use of a pooled confirm channel (for a batch of publishes); give it back with `release`. */
  async acquire(): Promise<Channel> {
    if (this.closed) throw new ClosedError(`session ${this.name} is closed`);
    return this.pool.acquire();
  }

  /** Give back a channel taken with {@link AmqpSession.acquire}: it rejoins the pool's rotation. */
  release(ch: Channel): void {
    this.pool.release(ch);
  }

  /**
   * A channel of your own on the publisher or consumer connection, set up by `setup` and reopened
   * (and set up again) after every channel error and every recovery, with the session's backoff. Used
   * e.g. for direct reply-to, where requests and the reply consumer must share one channel.
   */
  recoverableChannel(
    role: SessionRole,
    setup: (ch: Channel) => Promise<void>,
    entity = `recoverable ${role} channel`,
  ): RecoverableChannel {
    const rc = new RecoverableChannel({
      entity,
      setup,
      connection: role === 'publisher' ? () => this.publisher.connection() : () => this.recovery.connection(),
      logger: this.logger,
      reconnect: this.options.reconnect,
      onClosed: () => this.recoverable.delete(rc),
    });
    this.recoverable.add(rc);
    rc.on('setupFailed', (f) => this.onSetupFailed(f));
    return rc;
  }

  // ---- consuming ----

  /**
   * Start a consumer on its own self-healing channel (its own prefetch). It is re-attached with the same
   * handler after every recovery and every channel error, following its queue's new name if the queue is
   * server-named. Rejects if the broker refuses this first attach (nothing is recorded then).
   */
  async consume(queue: string, handler: SessionHandler, options: SessionConsumeOptions = {}): Promise<SessionConsumer> {
    if (this.closed) throw new ClosedError(`session ${this.name} is closed`);
    const consumer = new ManagedConsumer(this.consumerHost, this.topology.findQueue(queue) ?? queue, handler, options);
    this.consumers.add(consumer);
    const timeoutMs = this.options.operationTimeout ? this.options.operationTimeout * 1000 : 30_000;
    try {
      await withTimeout(
        consumer.started(),
        timeoutMs,
        'consume',
        () => `consume on '${queue}': not attached within ${timeoutMs} ms: ${this.notReadyReasons().join('; ')}`,
      );
    } catch (err) {
      this.consumers.delete(consumer);
      await consumer.stop(0);
      throw err;
    }
    this.checkReady();
    return consumer;
  }

  /**
   * Stop: cancel consumers (letting running handlers finish), wait for outstanding confirms, close
   * both connections (aborting a connect in progress). `timeoutMs` bounds each wait (default: the
   * publish buffer's timeoutMs). Afterwards nothing of the session's — socket, timer, listener — remains.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    const timeoutMs = options.timeoutMs ?? this.buffer.timeoutMs;
    await Promise.all([...this.consumers].map((c) => c.stop(timeoutMs).catch(() => undefined)));
    if (this.inFlight.size > 0) {
      const pending = [...this.inFlight].map((p) => {
        const d = new Deferred();
        p.onSettled = () => d.resolve();
        return d.promise;
      });
      await withTimeout(Promise.all(pending), timeoutMs, 'close').catch(() => undefined);
    }
    this.closed = true;
    this.buffer.rejectAll(new ClosedError(`session ${this.name} closed before the publish could be sent`));
    const closedErr = new ClosedError(`session ${this.name} is closed`);
    this.readyWaiters.rejectAll(closedErr);
    this.recovery.close(closedErr);
    this.firstFailure?.reject(closedErr);
    await Promise.all([
      this.pool.close(),
      this.topologyChannel.close(),
      ...[...this.recoverable].map((rc) => rc.close()),
    ]);
    await Promise.all([
      this.publisher.close(),
      this.consumerConn === this.publisher ? undefined : this.consumerConn.close(),
    ]);
  }

  // ---- internals ----

  private makeConsumerHost(): ConsumerHost {
    return {
      topology: this.topology,
      connection: () => this.recovery.connection(),
      logger: this.logger,
      reconnect: this.options.reconnect,
      onRename: (from, to) => this.renamed(from, to),
      setupFailed: (f) => this.onSetupFailed(f),
      attached: () => this.checkReady(),
      messageTooLarge: (info) => this.emit('messageTooLarge', info),
      removed: (c) => {
        this.consumers.delete(c);
        // An auto-delete queue disappears with its last consumer: stop re-declaring it.
        const q = c.record;
        if (typeof q !== 'string' && q.options.autoDelete && ![...this.consumers].some((o) => o.record === q))
          this.topology.removeQueue(q.name);
        this.checkReady();
      },
    };
  }

  private wire(mc: ManagedConnection, role: SessionRole): void {
    const roles: SessionRole[] = mc === this.consumerConn && mc === this.publisher ? ['publisher', 'consumer'] : [role];
    mc.on('connected', (conn, recovering) => {
      for (const r of roles) {
        this.recovering[r] = recovering;
        this.emit('connected', r);
      }
      // The broker is reachable again: the sibling connection need not sleep out its backoff.
      const sibling = mc === this.publisher ? this.consumerConn : this.publisher;
      if (sibling !== mc) sibling.retryNow();
      if (roles.includes('consumer')) void this.recovery.connected(conn);
    });
    mc.on('disconnected', (cause) => {
      if (roles.includes('consumer')) this.recovery.disconnected();
      for (const r of roles) this.emit('disconnected', r, cause);
    });
    mc.on('reconnecting', (info) => {
      for (const r of roles) this.emit('reconnecting', r, info);
    });
    mc.on('failed', (err) => {
      // Final: an operator must see it even with debug logging off.
      this.logger.error(`session ${this.name} (${roles.join(', ')}): gave up connecting for good: ${err.message}`);
      for (const r of roles) this.emit('recoveryFailed', r, err);
      this.firstFailure?.reject(err);
      // Nothing will come back: fail everything that waits for it.
      this.buffer.rejectAll(err);
      this.readyWaiters.rejectAll(err);
      if (roles.includes('consumer')) this.recovery.fail(err);
    });
    mc.on('blocked', (reason) => roles.forEach((r) => this.emit('blocked', r, reason)));
    mc.on('unblocked', () => roles.forEach((r) => this.emit('unblocked', r)));
    mc.on('secretUpdated', () => roles.forEach((r) => this.emit('secretUpdated', r)));
    mc.on('secretRefreshFailed', (err, retryInMs) =>
      roles.forEach((r) => this.emit('secretRefreshFailed', r, err, retryInMs)),
    );
  }

  private renamed(from: string, to: string): void {
    this.logger.warn(`server-named queue ${from} is now ${to}`);
    this.emit('queueRenamed', { from, to });
  }

  private onSetupFailed(f: SetupFailure): void {
    this.emit('setupFailed', f);
    this.firstFailure?.reject(new SetupError(f.entity, f.error));
  }

  private onPublisherAvailable(): void {
    this.flushBuffer();
    this.checkReady();
  }

  /** One role is back: the pool in confirm mode, or the topology replayed and every consumer attached. */
  private roleReady(role: SessionRole): boolean {
    if (role === 'publisher') return this.pool.isReady;
    return this.recovery.isReplayed && [...this.consumers].every((c) => c.isReady);
  }

  /** Report each role's recovery once it is back, and wake whoever waits for readiness. */
  private checkReady(): void {
    for (const r of ['publisher', 'consumer'] as const) {
      if (this.recovering[r] && this.roleReady(r)) {
        this.recovering[r] = false;
        this.emit('recovered', r);
      }
    }
    if (this.isReady) this.readyWaiters.resolveAll();
  }

  private send(p: PendingPublish): void {
    if (!this.recovery.isReplayed && this.topology.hasExchange(p.exchange)) {
      // Its exchange is being re-declared (consumer-side recovery): a publish now could hit a 404 and
      // close its channel. Hold it until the replay is done. Default-exchange publishes need not wait.
      this.holdUntilReady(p);
      return;
    }
    const ch = this.pool.pick();
    if (!ch) {
      this.holdUntilReady(p);
      return;
    }
    p.deadline = undefined; // on the wire: a later outage gets a fresh time bound
    p.returned = undefined; // a return belongs to one attempt
    this.inFlight.add(p);
    ch.publishAwaiting(p.exchange, p.routingKey, p.body, p.options, p);
  }

  /** Hold an accepted publish until the publisher is ready; `publishBuffered` once per wait, not per re-hold. */
  private holdUntilReady(p: PendingPublish): void {
    const waiting = p.deadline !== undefined;
    this.buffer.hold(p, true);
    if (!waiting) this.emit('publishBuffered', { exchange: p.exchange, routingKey: p.routingKey });
  }

  /** Outcomes of publishes on the wire (bound once: no closures per publish). */
  private readonly outcomes: PublishOutcomes = {
    confirmed: (p) => {
      this.inFlight.delete(p);
      p.resolve();
    },
    failed: (p, err) => {
      this.inFlight.delete(p);
      if (
        err instanceof NackError ||
        err instanceof UnroutableError ||
        err instanceof TimeoutError ||
        !(err instanceof AmqpError)
      ) {
        // A confirm timeout too: the message may have arrived, and sending it again would not tell.
        p.reject(err);
      } else if (err instanceof ChannelError && this.causedBy(err, p)) {
        // An exchange we declared can be briefly missing (auto-delete, being recovered): retry a
        // few times once topology is back; one we never declared is the caller's mistake.
        if (this.topology.hasExchange(p.exchange) && (p.attempts = (p.attempts ?? 0) + 1) <= 3) {
          this.buffer.hold(p, true);
          this.flushBuffer();
        } else p.reject(err);
      } else if (this.closed) {
        p.reject(err);
      } else {
        // The link died (or a sibling publish broke the channel) before the confirm: send again.
        if (!p.republished) {
          p.republished = true;
          this.emit('publishRepublished', { exchange: p.exchange, routingKey: p.routingKey });
        }
        this.buffer.hold(p, true);
        this.flushBuffer();
      }
    },
  };

  /** A 404 on basic.publish names the exchange: only publishes to that exchange are at fault. */
  private causedBy(err: ChannelError, p: PendingPublish): boolean {
    if (err.failedMethod?.methodName !== 'basic.publish') return err.replyCode !== ReplyCode.NOT_FOUND;
    return err.replyText.includes(`exchange '${p.exchange}'`);
  }

  private flushBuffer(): void {
    if (this.buffer.length === 0 || this.pool.pick() === null) return;
    for (const p of this.buffer.takeAll()) this.send(p);
  }

  private currentQueueName(queue: string): string {
    return this.topology.findQueue(queue)?.name ?? queue;
  }

  /**
   * Run a topology operation on the session's topology channel (reopened by itself after a refusal),
   * once the consumer connection is up and replayed. The broker's error reaches the caller as it is.
   */
  private async onTopologyChannel<T>(op: (ch: Channel) => Promise<T>): Promise<T> {
    if (this.closed) throw new ClosedError(`session ${this.name} is closed`);
    const timeoutMs = this.options.operationTimeout ? this.options.operationTimeout * 1000 : 30_000;
    const ch = await withTimeout(
      this.topologyChannel.channel(),
      timeoutMs,
      'topology operation',
      () =>
        `session ${this.name}: no channel for the operation within ${timeoutMs} ms: ${this.notReadyReasons().join('; ')}`,
    );
    try {
      return await op(ch);
    } catch (err) {
      // A broker refusal (channel error, or a connection error naming the method) is the caller's answer;
      // a connection that went away for another reason (320 forced, socket, heartbeat) is a loss.
      if (err instanceof ConnectionError && !err.failedMethod?.classId && !(err instanceof ConnectionLostError))
        throw new ConnectionLostError(`connection lost during the operation: ${err.message}`, { cause: err });
      throw err;
    }
  }
}

// `util.inspect` prints it as its toJSON().
printAsJson(AmqpSession, 'AmqpSession');
