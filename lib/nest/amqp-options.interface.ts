import type { InjectionToken, ModuleMetadata, OptionalFactoryDependency } from '@nestjs/common';
import type { AmqpSession, FieldTable, Logger, SessionOptions, StreamOffset, StreamOffsetStore } from '../amqp';
import type { HandlerSchema } from './schema/payload-schema';
import type { AmqpDeserializer, AmqpSerializer } from './serialization/amqp-serializer.interface';
import type { ExchangeDefinition, QueueDefinition, TopologyDefinition } from './topology/topology.interface';

/** `auto`: ack once the handler succeeds · `manual`: the handler settles through `AmqpContext` · `none`: no-ack. */
export type AckMode = 'auto' | 'manual' | 'none';

/** Exponential backoff between retries: `initial × factor^(n-1)`, capped at `max`. */
export interface RetryBackoff {
  /** ms before the first retry. */
  initial: number;
  /** Default 2. */
  factor?: number;
  /** Cap, ms. Default: none. */
  max?: number;
}

/**
 * Declarative retry for an event handler. A failed delivery is re-published (with a confirm, before the original is
 * acked) to a retry queue `<queue>.retry.<delay>` whose TTL dead-letters it back to the work queue; the attempt is
 * counted in `x-warren-attempt`. After the last attempt the message goes to `<queue>.parking-lot` with the error in
 * its headers.
 */
export interface RetryPolicy {
  /** Deliveries in all, the first one included (3 = the first try and two retries). */
  attempts: number;
  /** Delay before each retry, ms; the last one repeats. Give `delays` or `backoff`. */
  delays?: number[];
  /** Computed delays instead of a list: `initial × factor^(n-1)`, capped at `max`. Used when `delays` is empty. */
  backoff?: RetryBackoff;
  /**
   * Route retries back through a dedicated direct exchange (declared, and bound to the work queue with the queue's
   * name as routing key) instead of the default exchange.
   */
  exchange?: string;
  /** Parking-lot queue. Default `<queue>.parking-lot`. */
  parkingLot?: string;
}

/**
 * An event handler that takes its messages in batches: it is called with an array of payloads (and an
 * `AmqpBatchContext`) once `size` messages of its pattern arrived, or `timeoutMs` after the first of them.
 */
export interface BatchOptions {
  /** Messages per batch at most; an integer >= 1. Required. The consumer's prefetch is raised to at least this. */
  size: number;
  /** How long the first message of a batch waits for the others, ms (>= 1). Default 50. */
  timeoutMs?: number;
}

/** A binding of the handler's queue. Missing fields come from the handler: its exchange, its pattern. */
export interface HandlerBinding {
  /** The exchange to bind to (a name: used if it exists, else a durable topic exchange). Default: the handler's. */
  exchange?: string | ExchangeDefinition;
  /** The binding key (topic wildcards allowed). Default: the handler's pattern. */
  routingKey?: string;
  /** Binding arguments (headers exchanges: `{ 'x-match': 'all', ... }`). */
  arguments?: FieldTable;
}

/**
 * Warren's options for one handler: the `extras` of `@MessagePattern(pattern, extras)` / `@EventPattern(pattern,
 * extras)`, or defaults for a whole controller with `@AmqpController(options)`.
 *
 * A name given as a string means "use it if it exists, create it with defaults otherwise" (a durable topic exchange,
 * a durable classic queue); give the full definition to declare it with specific settings.
 */
export interface AmqpHandlerOptions {
  /** Which Warren connection's server serves this handler. Default 'default'. */
  connection?: string;
  /** The queue the handler consumes. Several handlers may share one: they are dispatched by routing key. */
  queue?: string | QueueDefinition;
  /** Exchange the queue is bound to, with the handler's pattern as routing key. */
  exchange?: string | ExchangeDefinition;
  /** Explicit bindings instead of the default one (exchange + pattern). `[]`: bind nothing. */
  bindings?: HandlerBinding[];
  /** Unacked messages per consumer. Default 10. Handlers sharing a queue share the consumer: the largest wins. */
  prefetch?: number;
  /** Handlers of this consumer running at once. Default: the prefetch (1 = one at a time, in order). */
  concurrency?: number;
  /** Default 'auto'. */
  ack?: AckMode;
  /** Consumer priority (`x-priority`). */
  priority?: number;
  /**
   * Stream queues: where the consumer starts (`'first'`, `'last'`, `'next'`, an offset, a Date, or an interval such
   * as `'1h'`; `x-stream-offset`). After a recovery it resumes after what it processed, not from here again. Handlers
   * sharing a queue must agree. Default for a queue declared with `type: 'stream'`: `'next'`.
   */
  offset?: StreamOffset;
  /** Stream queues: keeps the consumer's position across restarts (`load()` / `save(offset)`). */
  offsetStore?: StreamOffsetStore;
  /** Event handlers only. Without a policy a failed event is nacked without requeue (dead-lettered if the queue has a DLX). */
  retry?: RetryPolicy;
  /**
   * Event handlers only: take messages in batches (`@Payload()` an array, `@Ctx()` an `AmqpBatchContext`). Success
   * acks the whole batch; a failure applies the retry policy (or the nack) to each of its messages.
   */
  batch?: BatchOptions;
  /** How this handler's replies are encoded. Default: the server's (JSON, text or binary by value). */
  serializer?: AmqpSerializer;
  /** How this handler's messages are decoded. Default: the server's (by content type). */
  deserializer?: AmqpDeserializer;
  /**
   * The payload's schema, checked on receipt before the handler runs (and shown in the AsyncAPI document): a JSON
   * Schema of the subset Warren enforces, or a Standard Schema validator. An invalid payload is rejected without
   * requeue (dead-lettered if the queue has a DLX, never retried), and a request gets a `VALIDATION_FAILED` error reply.
   */
  schema?: HandlerSchema;
  /** More topology to declare with this handler. */
  topology?: TopologyDefinition;
}

/** Connection settings shared by the module, a standalone server and a standalone client. */
export interface AmqpConnectionOptions extends SessionOptions {
  /** Connection name: tokens, logs, `connection_name`. Default 'default'. */
  name?: string;
  /** How long start-up waits for the broker, ms. Default 30 000. */
  startupTimeout?: number;
  /**
   * Start even if the broker is unreachable: recovery keeps trying in the background, health reports down, and
   * servers declare topology and start consuming once it is up. Default false (start-up fails after `startupTimeout`).
   */
  startWithoutBroker?: boolean;
  /** Logger for the AMQP client; default Nest's Logger with context `Warren:<name>`. */
  logger?: Logger;
}

/**
 * Options of {@link AmqpServer}: a standalone server's connection options (it opens its own session) or a `session`
 * to share, plus handler defaults and topology. Inside `AmqpModule` the same settings go in the module's `server`
 * field.
 */
export interface AmqpServerOptions extends AmqpConnectionOptions {
  /** Use this session instead of opening one (it is not closed by the server). */
  session?: AmqpSession;
  /** Defaults for every handler (queue, exchange, prefetch, ack, retry...). */
  defaults?: AmqpHandlerOptions;
  /** Topology declared before the handlers' own. */
  topology?: TopologyDefinition;
  /** How replies are encoded, unless a handler sets its own. Default {@link DefaultSerializer}. */
  serializer?: AmqpSerializer;
  /** How messages are decoded, unless a handler sets its own. Default {@link DefaultDeserializer}. */
  deserializer?: AmqpDeserializer;
  /** How long `close()` waits for in-flight handlers, ms. Default 10 000. */
  shutdownTimeout?: number;
}

/**
 * How {@link AmqpClient.send} receives replies: `direct` uses RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`),
 * `queue` a reply queue of the client's own.
 */
export type ReplyMode = 'direct' | 'queue';

/**
 * Options of {@link AmqpClient}: a standalone client's connection options (it opens its own session) or a `session` to
 * share, plus where requests and events go and how. Inside `AmqpModule` the same settings go in the module's `client`
 * field. `replyTo` and `replyQueue` are checked in the constructor ({@link ConfigError}).
 */
export interface AmqpClientOptions extends AmqpConnectionOptions {
  /** Use this session instead of opening one (it is not closed by the client). */
  session?: AmqpSession;
  /** Exchange requests and events are published to. Default '' (the default exchange). */
  exchange?: string;
  /** Fixed routing key; default: the pattern. */
  routingKey?: string;
  /** Shorthand: publish to this queue through the default exchange (the pattern travels in `x-warren-pattern`). */
  queue?: string;
  /**
   * How replies come back: 'direct' (default) uses RabbitMQ direct reply-to (`amq.rabbitmq.reply-to`); 'queue' a
   * private exclusive, server-named reply queue (or the `replyQueue`). A broker without direct reply-to fails every
   * 'direct' call at once with DirectReplyToUnavailableError: use 'queue' there.
   */
  replyTo?: ReplyMode;
  /**
   * With `replyTo: 'queue'`: a fixed name for the reply queue instead of a server-named one. Unique per client
   * instance (opening a reply queue another consumer reads fails with a ConfigError); a non-durable queue that keeps
   * replies through a reconnect, deleted on close or after 5 minutes unused.
   */
  replyQueue?: string;
  /**
   * Publish requests (`send`) with publisher confirms. Default false: the reply already confirms a request end to
   * end, and confirms cost broker and client CPU on every call. Unroutable mandatory requests fail at once with
   * UnroutableError either way; what only confirms report is a broker nack (e.g. a full queue with
   * `x-overflow: reject-publish`): with this option the call fails at once with NackError, without it the request is
   * dropped and the call ends with its TimeoutError. Events (`emit`) are always confirmed, and so are requests with
   * `replyTo: 'queue'` (they go through the session's confirmed, buffered publishing).
   */
  confirmRequests?: boolean;
  /** Default reply timeout for `send`, ms. Default 30 000. */
  timeout?: number;
  /**
   * Requests expire with their call: each `send` request carries `expiration` = its timeout (unless the client or
   * the record sets an `expiration`), so the broker drops a request whose caller has given up instead of a server
   * handling it later. Default true; false sends requests without a TTL.
   */
  expireRequests?: boolean;
  /** Persistent messages (delivery mode 2). Default false for requests, true for events. */
  persistent?: boolean;
  /** Requests/events nobody can route fail at once with UnroutableError. Default true for requests, false for events. */
  mandatory?: boolean;
  /** Headers added to every request and event (per-message headers from `AmqpRecordBuilder` win). */
  headers?: FieldTable;
  /** Message priority (0-255; used by queues with `maxPriority`). Default: none. */
  priority?: number;
  /** Per-message TTL, ms. */
  expiration?: string | number;
  /** The `app-id` property of every message. */
  appId?: string;
  /** How request and event payloads are encoded. Default {@link DefaultSerializer}. */
  serializer?: AmqpSerializer;
  /** How replies are decoded. Default {@link DefaultDeserializer}. */
  deserializer?: AmqpDeserializer;
}

/** A publisher bound to an exchange, injected with `@InjectPublisher(name)`. */
export interface AmqpPublisherDefinition {
  /** The publisher's name: its injection token together with the connection name. */
  name: string;
  /** Exchange to publish to; a definition is declared at start-up. */
  exchange: string | ExchangeDefinition;
  /** Routing key used when `publish` is given none. */
  routingKey?: string;
  /** Default true. */
  persistent?: boolean;
  /** Default false. */
  mandatory?: boolean;
  /** Headers added to every message (per-call headers win). */
  headers?: FieldTable;
  /** The `app-id` property of every message. */
  appId?: string;
  /** How payloads are encoded. Default: the module's `serializer`, else {@link DefaultSerializer}. */
  serializer?: AmqpSerializer;
}

/**
 * Options of {@link AmqpModule.forRoot} (and what `forRootAsync`'s factory returns): one connection's settings, its
 * shared topology and publishers, and the settings of its DI-managed server and client.
 */
export interface AmqpModuleOptions extends AmqpConnectionOptions {
  /** Topology declared when the module starts (exchanges shared by publishers and servers). */
  topology?: TopologyDefinition;
  /** Publishers of this connection. */
  publishers?: AmqpPublisherDefinition[];
  /** The DI-managed `AmqpServer`'s settings. */
  server?: Omit<AmqpServerOptions, keyof AmqpConnectionOptions | 'session'>;
  /** The injectable `AmqpClient`'s settings. */
  client?: Omit<AmqpClientOptions, keyof AmqpConnectionOptions | 'session'>;
  /** Graceful shutdown bound for in-flight handlers and outstanding confirms, ms. Default 10 000. */
  shutdownTimeout?: number;
  /** Default serializer of the connection's server, client and publishers. Default {@link DefaultSerializer}. */
  serializer?: AmqpSerializer;
  /** Default deserializer of the connection's server and client. Default {@link DefaultDeserializer}. */
  deserializer?: AmqpDeserializer;
}

/** Options of {@link AmqpModule.forRoot}: the module options and the module's visibility. */
export interface AmqpModuleRootOptions extends AmqpModuleOptions {
  /** Make the module's providers (publishers, client, server, health) visible everywhere. Default false. */
  isGlobal?: boolean;
}

/**
 * Options of {@link AmqpModule.forRootAsync}: the module options come from `useFactory` (e.g. from `ConfigService`),
 * with its `imports` and `inject`.
 */
export interface AmqpModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** Connection name; must be known before the factory runs. Default 'default'. */
  name?: string;
  /** Make the module's providers (publishers, client, server, health) visible everywhere. Default false. */
  isGlobal?: boolean;
  /** Returns the module options (its `name` is ignored: the `name` above is used). */
  useFactory: (...args: never[]) => AmqpModuleOptions | Promise<AmqpModuleOptions>;
  /** Providers passed to `useFactory`, in order. */
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  /** Publishers must be known before the factory runs (their tokens); their settings may come from the factory too. */
  publishers?: AmqpPublisherDefinition[];
}

/** Options of {@link AmqpModule.forFeature}: a feature module's own publishers on one of the app's connections. */
export interface AmqpFeatureOptions {
  /** The connection (its `forRoot` name) the publishers use. Default 'default'. */
  connection?: string;
  /** The publishers; each exchange is declared when the feature module starts (a mismatch fails start-up). */
  publishers: AmqpPublisherDefinition[];
}
