import { inspect, type InspectOptionsStylized } from 'node:util';
import type { OnApplicationShutdown } from '@nestjs/common';
import { ClosedError, TimeoutError, type AmqpSession, type Logger } from '../amqp';
import { withTimeout } from '../amqp/deferred';
import type { AmqpModuleOptions, AmqpPublisherDefinition } from './amqp-options.interface';
import { DEFAULT_CONNECTION_NAME, DEFAULT_SHUTDOWN_TIMEOUT_MS } from './amqp.constants';
import { createAmqpLogger, describeError } from './amqp.logger';
import { createSession, startSession } from './amqp.session-factory';
import { isDescribeOnly } from './asyncapi/describe-only';
import { AmqpClient } from './client/amqp.client';
import { AmqpHealthIndicator } from './health/amqp.health-indicator';
import { AmqpPublisher } from './publisher/amqp.publisher';
import { AmqpServer } from './server/amqp.server';
import { mergeTopology } from './topology/merge-topology';
import { TopologyPlan } from './topology/topology-plan';
import type { TopologyDefinition } from './topology/topology.interface';

/**
 * One named connection of the module: its session (connected during module init, per the start-up policy), the
 * module-level topology (declared before any publisher or server uses it), and its graceful close on application
 * shutdown. The module's server, client, publishers and health indicator are made here.
 */
export class AmqpConnectionHost implements OnApplicationShutdown {
  readonly name: string;
  readonly logger: Logger;
  /** Resolves once the module-level topology is declared (at once, or when the broker first comes up). */
  readonly topologyReady: Promise<void>;
  private closing: Promise<void> | null = null;
  /** Publishers of `forFeature` modules, in the order they were made (the module's own are in the options). */
  private readonly featurePublishers: AmqpPublisherDefinition[] = [];

  private constructor(
    readonly session: AmqpSession,
    readonly options: AmqpModuleOptions,
    logger: Logger,
    topologyReady: Promise<void>,
    /** Booted only to be described (`generateAsyncApi`): the session is never opened. */
    private readonly describeOnly = false,
  ) {
    this.name = session.name;
    this.logger = logger;
    this.topologyReady = topologyReady;
  }

  /** Connect and declare the module topology; fails start-up unless `startWithoutBroker`. */
  static async create(options: AmqpModuleOptions): Promise<AmqpConnectionHost> {
    const name = options.name ?? DEFAULT_CONNECTION_NAME;
    const logger = options.logger ?? createAmqpLogger(name);
    const session = createSession({ ...options, name, logger });
    if (isDescribeOnly()) return new AmqpConnectionHost(session, { ...options, name }, logger, notOpened(name), true);
    await startSession(session, { ...options, name }, logger);
    const topology = moduleTopology(options);
    const publishers = options.publishers ?? [];
    let topologyReady: Promise<void>;
    if (session.isReady) {
      try {
        await declare(session, topology, 'module options', publishers);
      } catch (err) {
        await session.close().catch(() => undefined);
        throw err;
      }
      topologyReady = Promise.resolve();
    } else {
      topologyReady = session.whenReady().then(() => declare(session, topology, 'module options', publishers));
      topologyReady.catch((err: unknown) =>
        logger.error(`declaring the module topology failed: ${describeError(err)}`),
      );
    }
    return new AmqpConnectionHost(session, { ...options, name }, logger, topologyReady);
  }

  /** Close the session: outstanding confirms are waited for, bounded by shutdownTimeout. */
  onApplicationShutdown(): Promise<void> {
    if (!this.closing) {
      const timeout = this.options.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
      this.closing = withTimeout(this.session.close({ timeoutMs: timeout }), timeout, 'close').catch((err: unknown) => {
        if (err instanceof TimeoutError)
          this.logger.warn(`closing connection '${this.name}' took longer than ${timeout} ms; giving up waiting`);
        else this.logger.error(`closing connection '${this.name}' failed: ${describeError(err)}`);
      });
    }
    return this.closing;
  }

  /** What `JSON.stringify` shows: never the options (they may hold the URL's password and the TLS key). */
  toJSON(): { name: string; session: ReturnType<AmqpSession['toJSON']> } {
    return { name: this.name, session: this.session.toJSON() };
  }

  [inspect.custom](_depth: number, options: InspectOptionsStylized, show: typeof inspect): string {
    return `AmqpConnectionHost ${show(this.toJSON(), options)}`;
  }

  createServer(): AmqpServer {
    const o = this.options;
    const s = o.server ?? {};
    return new AmqpServer({
      ...s,
      name: this.name,
      session: this.session,
      logger: this.logger,
      startWithoutBroker: o.startWithoutBroker,
      topology: mergeTopology(moduleTopology(o), s.topology),
      serializer: s.serializer ?? o.serializer,
      deserializer: s.deserializer ?? o.deserializer,
      shutdownTimeout: s.shutdownTimeout ?? o.shutdownTimeout,
    });
  }

  createClient(): AmqpClient {
    const o = this.options;
    const c = o.client ?? {};
    const client = new AmqpClient({
      ...c,
      name: this.name,
      session: this.session,
      logger: this.logger,
      serializer: c.serializer ?? o.serializer,
      deserializer: c.deserializer ?? o.deserializer,
    });
    return Object.assign(client, { onApplicationShutdown: () => client.close() });
  }

  createHealthIndicator(): AmqpHealthIndicator {
    return new AmqpHealthIndicator(this.session);
  }

  /** A module-level publisher (its exchange is part of the module topology). */
  createPublisher(definition: AmqpPublisherDefinition): AmqpPublisher {
    const resolved = this.options.publishers?.find((p) => p.name === definition.name) ?? definition;
    return new AmqpPublisher(this.session, resolved, this.topologyReady, this.options.serializer);
  }

  /** Every publisher of this connection: the module's, then those of `forFeature` modules. */
  publisherDefinitions(): AmqpPublisherDefinition[] {
    return [...(this.options.publishers ?? []), ...this.featurePublishers];
  }

  /** A feature publisher: declares its exchange now (failing start-up on a mismatch) or once the broker is up. */
  async createFeaturePublisher(definition: AmqpPublisherDefinition): Promise<AmqpPublisher> {
    this.featurePublishers.push(definition);
    if (this.describeOnly)
      return new AmqpPublisher(this.session, definition, this.topologyReady, this.options.serializer);
    const topology = mergeTopology(moduleTopology(this.options), publisherTopology([definition]));
    const origin = `publisher '${definition.name}'`;
    let ready: Promise<void>;
    if (this.session.isReady) {
      await this.topologyReady;
      await declare(this.session, topology, origin, [definition]);
      ready = Promise.resolve();
    } else {
      ready = this.topologyReady.then(() => declare(this.session, topology, origin, [definition]));
      ready.catch((err: unknown) =>
        this.logger.error(`declaring the exchange of publisher '${definition.name}' failed: ${describeError(err)}`),
      );
    }
    return new AmqpPublisher(this.session, definition, ready, this.options.serializer);
  }
}

/** What a publisher of a connection booted only to be described waits for: a rejection saying so. */
function notOpened(name: string): Promise<void> {
  const never = Promise.reject(
    new ClosedError(`connection '${name}' is not opened: the application was booted only to describe it (AsyncAPI)`),
  );
  never.catch(() => undefined);
  return never;
}

/** The module's own topology: `topology` plus the exchanges its publishers define. */
function moduleTopology(options: AmqpModuleOptions): TopologyDefinition {
  return mergeTopology(options.topology, publisherTopology(options.publishers ?? []));
}

function publisherTopology(publishers: AmqpPublisherDefinition[]): TopologyDefinition {
  return { exchanges: publishers.flatMap((p) => (typeof p.exchange === 'string' ? [] : [p.exchange])) };
}

/** Declare a topology; publishers' exchanges named only by a string are used if they exist, created otherwise. */
async function declare(
  session: AmqpSession,
  topology: TopologyDefinition,
  origin: string,
  publishers: AmqpPublisherDefinition[] = [],
): Promise<void> {
  const plan = new TopologyPlan();
  plan.add(topology, origin);
  for (const p of publishers) plan.exchange(p.exchange, `publisher '${p.name}'`);
  await plan.declare(session);
}
