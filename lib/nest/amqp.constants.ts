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
  /** 1-based delivery attempt of an event under a retry policy. */
  ATTEMPT: 'x-warren-attempt',
  /**
   * Retry and parking-lot copies: the last failure — the thrown error's class (`TypeError`; absent when what was
   * thrown is not an Error) and message, the status of Nest's report, and the error's code when it has one.
   */
  ERROR_NAME: 'x-warren-error-name',
  ERROR_MESSAGE: 'x-warren-error-message',
  ERROR_STATUS: 'x-warren-error-status',
  ERROR_CODE: 'x-warren-error-code',
  /** Parking lot: when the last attempt failed (ISO 8601). */
  FAILED_AT: 'x-warren-failed-at',
  /** Retry and parking-lot copies: where the message first came from. */
  ORIGINAL_EXCHANGE: 'x-warren-original-exchange',
  ORIGINAL_ROUTING_KEY: 'x-warren-original-routing-key',
  /** Retry and parking-lot copies: the queue whose handler failed. */
  QUEUE: 'x-warren-queue',
} as const;

/** Direct reply-to pseudo queue (RabbitMQ). */
export const DIRECT_REPLY_QUEUE = 'amq.rabbitmq.reply-to';

export const DEFAULT_PREFETCH = 10;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
export const DEFAULT_STARTUP_TIMEOUT_MS = 30_000;
export const DEFAULT_RPC_TIMEOUT_MS = 30_000;

const token = (kind: string, name: string): string => `warren:${kind}:${name}`;

export function getAmqpOptionsToken(connection: string = DEFAULT_CONNECTION_NAME): string {
  return token('options', connection);
}
export function getAmqpSessionToken(connection: string = DEFAULT_CONNECTION_NAME): string {
  return token('session', connection);
}
export function getAmqpServerToken(connection: string = DEFAULT_CONNECTION_NAME): string {
  return token('server', connection);
}
export function getAmqpClientToken(connection: string = DEFAULT_CONNECTION_NAME): string {
  return token('client', connection);
}
export function getAmqpHealthIndicatorToken(connection: string = DEFAULT_CONNECTION_NAME): string {
  return token('health', connection);
}
export function getAmqpLifecycleToken(connection: string = DEFAULT_CONNECTION_NAME): string {
  return token('lifecycle', connection);
}
/** Token of a publisher declared in module options or by `forFeature`. */
export function getPublisherToken(name: string, connection: string = DEFAULT_CONNECTION_NAME): string {
  return token(`publisher:${connection}`, name);
}
