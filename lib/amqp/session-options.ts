import type { ChannelPoolOptions } from './channel-pool';
import type { ConnectOptions } from './connection';
import { ConfigError } from './errors';
import type { PublishBufferOptions } from './publish-buffer';
import type { ReconnectOptions } from './reconnect-policy';

/**
 * Options of {@link AmqpSession}: the connection options (URL or fields, see {@link ConnectionOptionsInput}) plus the
 * session's own. An unknown key, at the top level or inside `reconnect` / `pool` / `publishBuffer`, is a
 * {@link ConfigError} naming it.
 */
export interface SessionOptions extends ConnectOptions {
  /** Name used in logs and events (e.g. Nest's connection name). Default 'default'. */
  name?: string;
  /** 'split' (default): one connection for publishing, one for consuming, as RabbitMQ recommends. */
  connections?: 'split' | 'single';
  /**
   * The first connect rejects once its first `connectionAttempts` rounds have failed, or at the first
   * failed setup step (a publisher channel refused confirm mode...), instead of retrying in the background.
   */
  failFast?: boolean;
  /**
   * Backoff of the reconnect loop and of every self-healing channel. Defaults: `{ initialDelayMs: 100, maxDelayMs:
   * 1000, maxAttempts: Infinity, healthyAfterMs: 1000 }`.
   */
  reconnect?: ReconnectOptions;
  /** The pool of publisher channels in confirm mode. Defaults: `{ size: 4, acquireTimeoutMs: 5000 }`. */
  pool?: ChannelPoolOptions;
  /**
   * Bounds of the outage buffer, where publishes wait while the publisher is down. Defaults: `{ maxMessages: 10000,
   * maxBytes: 64 MiB, timeoutMs: 30000 }`.
   */
  publishBuffer?: PublishBufferOptions;
}

/** Every key a session takes; `true` marks a connection-level one (checked by resolveConnectionOptions). */
const SESSION_KEYS: Record<keyof SessionOptions, boolean> = {
  url: true,
  protocol: true,
  host: true,
  port: true,
  username: true,
  password: true,
  vhost: true,
  heartbeat: true,
  frameMax: true,
  channelMax: true,
  connectionAttempts: true,
  retryDelay: true,
  connectionTimeout: true,
  handshakeTimeout: true,
  blockedConnectionTimeout: true,
  operationTimeout: true,
  locale: true,
  clientProperties: true,
  connectionName: true,
  tls: true,
  noDelay: true,
  keepAlive: true,
  shuffleUrls: true,
  mechanisms: true,
  maxMessageSize: true,
  confirmTimeoutMs: true,
  credentials: true,
  logger: true,
  name: false,
  connections: false,
  failFast: false,
  reconnect: false,
  pool: false,
  publishBuffer: false,
};

/** The keys `AmqpSession` takes (for layers that carry more, such as the Nest options). */
export const SESSION_OPTION_KEYS: readonly string[] = Object.keys(SESSION_KEYS);

const NESTED_KEYS = {
  reconnect: ['initialDelayMs', 'maxDelayMs', 'maxAttempts', 'healthyAfterMs'],
  pool: ['size', 'acquireTimeoutMs'],
  publishBuffer: ['maxMessages', 'maxBytes', 'timeoutMs'],
} as const;

/** Session-level validation: an unknown key (top level or nested) or a bad value is a ConfigError naming it. */
export function checkSessionOptions(options: SessionOptions): void {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'expected an object');
  for (const key of Object.keys(options)) {
    if (!(key in SESSION_KEYS)) {
      throw new ConfigError(key, `unknown session option (known: ${Object.keys(SESSION_KEYS).join(', ')})`);
    }
  }
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name === ''))
    throw new ConfigError('name', 'must be a non-empty string');
  if (options.connections !== undefined && options.connections !== 'split' && options.connections !== 'single')
    throw new ConfigError('connections', `must be 'split' or 'single', got ${JSON.stringify(options.connections)}`);
  if (options.failFast !== undefined && typeof options.failFast !== 'boolean')
    throw new ConfigError('failFast', 'must be a boolean');
  for (const [group, keys] of Object.entries(NESTED_KEYS) as Array<[keyof typeof NESTED_KEYS, readonly string[]]>) {
    const value: unknown = options[group];
    if (value === undefined) continue;
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new ConfigError(group, 'must be an object');
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (!keys.includes(k)) throw new ConfigError(`${group}.${k}`, `unknown option (known: ${keys.join(', ')})`);
      const infiniteOk = k === 'maxAttempts';
      const min = k === 'size' || k === 'maxAttempts' ? 1 : 0;
      if (typeof v !== 'number' || Number.isNaN(v) || v < min || (!infiniteOk && !Number.isFinite(v)))
        throw new ConfigError(`${group}.${k}`, `must be a number >= ${min}, got ${String(v)}`);
    }
  }
  const r = options.reconnect;
  if (r?.initialDelayMs !== undefined && r.maxDelayMs !== undefined && r.initialDelayMs > r.maxDelayMs)
    throw new ConfigError('reconnect.initialDelayMs', 'must not exceed reconnect.maxDelayMs');
}
