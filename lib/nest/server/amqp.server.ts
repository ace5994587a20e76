import type { OnModuleDestroy } from '@nestjs/common';
import { Server, type CustomTransportStrategy, type MessageHandler } from '@nestjs/microservices';
import type { AmqpSession, Logger, SessionEvents } from '../../amqp';
import { checkServerOptions } from '../amqp-options.check';
import type { AmqpHandlerOptions, AmqpServerOptions } from '../amqp-options.interface';
import { DEFAULT_CONNECTION_NAME, DEFAULT_SHUTDOWN_TIMEOUT_MS, WARREN_TRANSPORT } from '../amqp.constants';
import { watchSessionStatus, type AmqpSessionStatus } from '../amqp.session-status';
import { createAmqpLogger, describeError } from '../amqp.logger';
import { createSession, startSession } from '../amqp.session-factory';
import type { AmqpBatchContext } from '../ctx-host/amqp-batch.context';
import type { AmqpContext } from '../ctx-host/amqp.context';
import { RetryPublisher } from '../retry/retry-publisher';
import { routingKeyFromPattern } from '../routing/pattern-matcher';
import { DefaultDeserializer, DefaultSerializer } from '../serialization/default.serializer';
import { TopologyPlan } from '../topology/topology-plan';
import { watchHandlerFailures } from './handler-failure';
import { planHandlers, type HandlerRegistration, type QueuePlan } from './handler-routes';
import { QueueConsumer, type ConsumerHost } from './queue-consumer';
import { SessionListeners } from '../session-listeners';
import { printAsJson } from '../../amqp/redact';

/** What an {@link AmqpServer}'s `status` stream emits: `connected`, `disconnected` or `reconnecting`. */
export type AmqpServerStatus = AmqpSessionStatus;

/**
 * Warren's Nest transport. Standalone: `NestFactory.createMicroservice(AppModule, { strategy: new AmqpServer(options) })`
 * (it opens and closes its own session). DI-managed: `app.connectMicroservice({ strategy: app.get(AmqpServer) })`
 * (it shares the module's session).
 *
 * `listen` declares the whole topology (shared, per controller, per handler, retry queues), then starts one consumer
 * per queue. `close` stops consuming, lets in-flight handlers finish within `shutdownTimeout`, then closes the
 * session if the server opened it.
 */
export class AmqpServer
  extends Server<Record<string, (...args: never[]) => unknown>, AmqpServerStatus>
  implements CustomTransportStrategy, OnModuleDestroy
{
  override readonly transportId = WARREN_TRANSPORT;
  /** Event handler failures are ours to handle (retry, nack), not only logged by Nest. */
  override readonly propagatesEventHandlerErrors = true;
  /** The connection name (option `name`, or the shared session's name; default `default`). */
  readonly name: string;
  protected override readonly logger: ReturnType<typeof createAmqpLogger>['nest'];
  private readonly amqpLogger: Logger;
  private readonly registrations: HandlerRegistration[] = [];
  private consumers: QueueConsumer[] = [];
  private session: AmqpSession | null;
  private readonly ownsSession: boolean;
  private state: 'idle' | 'starting' | 'listening' | 'closing' | 'closed' = 'idle';
  private closing: Promise<void> | null = null;
  private settingUp: Promise<void> = Promise.resolve();
  private readonly detach: Array<() => void> = [];
  private readonly listeners = new SessionListeners();

  constructor(private readonly options: AmqpServerOptions = {}) {
    super();
    checkServerOptions(options);
    this.name = options.name ?? options.session?.name ?? DEFAULT_CONNECTION_NAME;
    const logger = createAmqpLogger(this.name);
    this.logger = logger.nest;
    this.amqpLogger = options.logger ?? logger;
    this.session = options.session ?? null;
    this.ownsSession = !options.session;
    if (this.session) this.listeners.attach(this.session);
    // Event failures are recorded with the error the handler threw, not the one Nest's filters reply with.
    watchHandlerFailures();
  }

  /** The session (once listening, or from the start when shared). */
  unwrap<T = AmqpSession>(): T {
    if (!this.session) throw new Error('AmqpServer: not listening yet (no session)');
    return this.session as T;
  }

  /** What `JSON.stringify` shows: never the options (they may hold the URL's password and the TLS key). */
  toJSON(): {
    /** The connection name. */
    name: string;
    /** Where the server is: `idle` before `listen`, `listening` once consuming, `closed` after `close()`. */
    state: 'idle' | 'starting' | 'listening' | 'closing' | 'closed';
    /** The session's own summary (endpoints without passwords), or null before it exists. */
    session: ReturnType<AmqpSession['toJSON']> | null;
  } {
    return { name: this.name, state: this.state, session: this.session?.toJSON() ?? null };
  }

  /**
   * Listen to the session's events ('connected', 'disconnected', 'reconnecting', 'recovered', ...). Before
   * `listen()` the listener waits, as with Nest's own transports, and is attached to the session as soon as there is
   * one, before it connects.
   */
  on(event: keyof SessionEvents | (string & Record<never, never>), callback: (...args: never[]) => unknown): void {
    this.listeners.add(event, callback);
  }

  /**
   * Called by Nest for each `@MessagePattern` / `@EventPattern` handler (pattern normalised to its routing key, extras
   * being the handler's {@link AmqpHandlerOptions}); the handlers are planned into queues and consumers at `listen`.
   */
  override addHandler(
    pattern: unknown,
    callback: MessageHandler,
    isEventHandler = false,
    extras: Record<string, unknown> = {},
  ): void {
    const normalized = this.normalizePattern(pattern as string);
    callback.isEventHandler = isEventHandler;
    callback.extras = extras;
    this.registrations.push({
      pattern: normalized,
      handler: callback,
      isEvent: isEventHandler,
      extras: extras as AmqpHandlerOptions,
    });
    if (!this.messageHandlers.has(normalized)) this.messageHandlers.set(normalized, callback);
  }

  protected override normalizePattern(pattern: unknown): string {
    return routingKeyFromPattern(pattern);
  }

  /**
   * Called by Nest (`app.startAllMicroservices()`, `app.listen()`): connects (own session, bounded by
   * `startupTimeout`), declares every exchange, queue and binding, then starts the consumers. A configuration mistake
   * ({@link ConfigError}), a topology mismatch ({@link TopologyMismatchError}) or an unreachable broker
   * ({@link AmqpStartupError}) fails start-up; with `startWithoutBroker` the consumers start once the broker is up.
   */
  async listen(callback: (err?: unknown, ...info: unknown[]) => void): Promise<void> {
    try {
      await this.start();
    } catch (err) {
      await this.abortStart();
      callback(err);
      return;
    }
    callback();
  }

  /** Stop consuming, let in-flight handlers finish (bounded by shutdownTimeout), close the session if ours. */
  async close(): Promise<void> {
    if (!this.closing) this.closing = this.shutdown();
    return this.closing;
  }

  /** DI-managed servers drain before the rest of the app is torn down. */
  async onModuleDestroy(): Promise<void> {
    if (this.state === 'listening' || this.state === 'starting') await this.drain();
  }

  private async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error(`AmqpServer '${this.name}' cannot listen: it is ${this.state}`);
    this.state = 'starting';
    if (!this.session) {
      this.session = createSession({ ...this.options, name: this.name, logger: this.amqpLogger });
      this.listeners.attach(this.session);
      await startSession(this.session, { ...this.options, name: this.name }, this.amqpLogger);
    }
    const session = this.session;
    this.watchStatus(session);
    if (session.isReady) {
      await this.runSetup(session);
      return;
    }
    // Starting without the broker: serve once it is up.
    this.logger.warn(`broker not reachable yet: handlers start when connection '${this.name}' is up`);
    session.whenReady().then(
      () =>
        this.runSetup(session).catch((err: unknown) =>
          this.logger.error(`could not start consuming: ${describeError(err)}`),
        ),
      () => undefined,
    );
  }

  /** Start-up failed: stop what started, close our own session, so that the process can exit (or listen again). */
  private async abortStart(): Promise<void> {
    const consumers = this.consumers;
    this.consumers = [];
    await Promise.all(consumers.map((c) => c.stop(0)));
    for (const off of this.detach.splice(0)) off();
    if (this.ownsSession && this.session) {
      await this.session.close().catch(() => undefined);
      this.listeners.detach();
      this.session = null;
    }
    this.state = 'idle';
  }

  /** Setup, remembered so that a close during start-up waits for it (and then stops what it started). */
  private runSetup(session: AmqpSession): Promise<void> {
    const running = this.setup(session);
    this.settingUp = running.catch(() => undefined);
    return running;
  }

  private async setup(session: AmqpSession): Promise<void> {
    if (this.state !== 'starting') return;
    const plan = new TopologyPlan();
    const queues = this.planConsumers(plan);
    await plan.declare(session);
    const host: ConsumerHost = {
      session,
      logger: this.amqpLogger,
      retries: new RetryPublisher(session, this.amqpLogger),
      invoke: (handler, data, ctx) => this.invoke(handler, data, ctx),
    };
    const consumers = queues.map((q) => new QueueConsumer(q, host));
    this.consumers = consumers;
    for (const c of consumers) await c.start();
    if (this.state !== 'starting') return;
    this.state = 'listening';
    const patterns = consumers.map(
      (c) =>
        `${c.queue} [${c.plan.routes
          .values()
          .map((r) => r.pattern)
          .join(', ')}]`,
    );
    this.logger.log(`consuming ${patterns.length} queue(s): ${patterns.join('; ') || '(none)'}`);
  }

  /**
   * The consumers `listen` starts for the handlers registered so far, adding their topology to `plan`: what setup
   * declares, and what the AsyncAPI document describes. Planning again is harmless: it rebuilds the same routes (and
   * the same chains of event handlers sharing a pattern) from the same registrations. @internal
   */
  planConsumers(plan: TopologyPlan): QueuePlan[] {
    return planHandlers(
      this.registrations,
      {
        connection: this.name,
        defaults: this.options.defaults ?? {},
        serializer: this.options.serializer ?? new DefaultSerializer(),
        deserializer: this.options.deserializer ?? new DefaultDeserializer(),
        topology: this.options.topology,
      },
      plan,
    );
  }

  /** The consumer waits for the result (Promise: its value; Observable: its last value). */
  private invoke(handler: MessageHandler, data: unknown, ctx: AmqpContext | AmqpBatchContext): unknown {
    return handler(data, ctx);
  }

  private async drain(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    await this.settingUp;
    const timeout = this.options.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    const consumers = this.consumers;
    this.consumers = [];
    await Promise.all(consumers.map((c) => c.stop(timeout)));
  }

  private async shutdown(): Promise<void> {
    await this.drain();
    for (const off of this.detach.splice(0)) off();
    if (this.ownsSession && this.session) {
      await this.session
        .close({ timeoutMs: this.options.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT_MS })
        .catch((err: unknown) => this.logger.error(`closing the session failed: ${describeError(err)}`));
    }
    this.listeners.detach();
    this.state = 'closed';
    this._status$.next('disconnected');
  }

  private watchStatus(session: AmqpSession): void {
    this.detach.push(watchSessionStatus(session, (status) => this._status$.next(status)));
  }
}

// `util.inspect` prints it as its toJSON().
printAsJson(AmqpServer, 'AmqpServer');
