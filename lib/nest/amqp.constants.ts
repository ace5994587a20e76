/** Name of the connection used when none is given. */
export const DEFAULT_CONNECTION_NAME = 'default';

/**
 * Warren's transport id (`Server.transportId`). Pass it to `@MessagePattern(pattern, WARREN_TRANSPORT, extras)` to
 * keep a handler off the other transports of a hybrid app.
 */
export const WARREN_TRANSPORT: unique symbol = Symbol.for('nestjs-warren');

/** Headers Warren reads and writes. Everything else in a message is plain AMQP. */
export const WarrenHeaders = {
  /** The Nest pattern, when the routing key cannot carry it (default exchange, retries). */
  PATTERN: 'x-warren-pattern',
  /** Set (true) on an RPC reply whose body is an error envelope `{ status, message, code }`. */
  ERROR: 'x-warren-error',
  /**
   * Streamed RPC replies (a handler whose Observable emits several values): `'next'` on every value's reply, and
   * `'end'` on the empty reply that closes the stream. A reply without it is a whole (single) reply.
   */
  STREAM: 'x-warren-stream',
  /** 1-based delivery attempt of an event under a retry policy. */
  ATTEMPT: 'x-warren-attempt',
  /**
   * Retry and parking-lot copies: the class of the error the handler threw (`TypeError`); absent when what was
   * thrown is not an Error.
   */
  ERROR_NAME: 'x-warren-error-name',
  /** Retry and parking-lot copies: the thrown error's own message (not Nest's "Internal server error"), ≤ 1000 characters. */
  ERROR_MESSAGE: 'x-warren-error-message',
  /** Parking lot / retry copies: the `status` of the last failure (`error`, or an `RpcException`'s). */
  ERROR_STATUS: 'x-warren-error-status',
  /** Parking lot / retry copies: the `code` of the last failure, when it had one. */
  ERROR_CODE: 'x-warren-error-code',
  /** Parking lot: when the last attempt failed (ISO 8601). */
  FAILED_AT: 'x-warren-failed-at',
  /** Retry and parking-lot copies: where the message first came from. */
  ORIGINAL_EXCHANGE: 'x-warren-original-exchange',
  /** Retry and parking-lot copies: the routing key the message was first published with. */
  ORIGINAL_ROUTING_KEY: 'x-warren-original-routing-key',
  /** Retry and parking-lot copies: the queue whose handler failed. */
  QUEUE: 'x-warren-queue',
} as const;

/** Direct reply-to pseudo queue (RabbitMQ). */
export const DIRECT_REPLY_QUEUE = 'amq.rabbitmq.reply-to';

/** Unacked messages per server consumer when no handler of its queue sets `prefetch`. */
export const DEFAULT_PREFETCH = 10;
/** Default `batch.timeoutMs`, ms: how long a batch waits for more messages after its first. */
export const DEFAULT_BATCH_TIMEOUT_MS = 50;
/** Default `shutdownTimeout`, ms: how long a close waits for in-flight handlers and outstanding confirms. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
/** Default `startupTimeout`, ms: how long start-up waits for the broker. */
export const DEFAULT_STARTUP_TIMEOUT_MS = 30_000;
/** Default reply timeout of `AmqpClient.send`, ms (client option `timeout`). */
export const DEFAULT_RPC_TIMEOUT_MS = 30_000;

const token = (kind: string, name: string): string => `warren:${kind}:${name}`;

/** Token of a connection's resolved {@link AmqpModuleOptions}. */
export function getAmqpOptionsToken(connection: string = DEFAULT_CONNECTION_NAME): string {
  return token('options', connection);
}
/** Token of a connection's `AmqpSession` (what `@InjectAmqpSession(connection)` injects). */
export function getAmqpSessionToken(connection: string = DEFAULT_CONNECTION_NAME): string {
  return token('session', connection);
}
/** Token of a connection's DI-managed `AmqpServer` (what `@InjectAmqpServer(connection)` injects). */
export function getAmqpServerToken(connection: string = DEFAULT_CONNECTION_NAME): string {
  return token('server', connection);
}
/** Token of a connection's `AmqpClient` (what `@InjectAmqpClient(connection)` injects); e.g. for `overrideProvider`. */
export function getAmqpClientToken(connection: string = DEFAULT_CONNECTION_NAME): string {
  return token('client', connection);
}
/** Token of a connection's `AmqpHealthIndicator` (what `@InjectAmqpHealthIndicator(connection)` injects). */
export function getAmqpHealthIndicatorToken(connection: string = DEFAULT_CONNECTION_NAME): string {
  return token('health', connection);
}
/** Token of a connection's AsyncAPI document service (`AmqpAsyncApi`). */
export function getAmqpAsyncApiToken(connection: string = DEFAULT_CONNECTION_NAME): string {
  return token('asyncapi', connection);
}
/** Token of the provider that owns a connection's lifecycle (connect at init, graceful close at shutdown). */
export function getAmqpLifecycleToken(connection: string = DEFAULT_CONNECTION_NAME): string {
  return token('lifecycle', connection);
}
/** Token of a publisher declared in module options or by `forFeature`. */
export function getPublisherToken(name: string, connection: string = DEFAULT_CONNECTION_NAME): string {
  return token(`publisher:${connection}`, name);
}
