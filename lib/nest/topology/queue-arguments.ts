import { ConfigError, type FieldTable, type QueueOptions } from '../../amqp';
import {
  describeExchange,
  describeQueue,
  checkExchangeType,
  resolveExchangeSettings,
  resolveQueueSettings,
} from '../../amqp/declare-options';
import type { ExchangeDefinition, QueueDefinition } from './topology.interface';

/** What `exchange.declare` receives. */
export interface ResolvedExchange {
  name: string;
  type: string;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  arguments: FieldTable;
}

/** What `queue.declare` receives. */
export interface ResolvedQueue {
  name: string;
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  arguments: FieldTable;
}

/** Runs `resolve`, adding where the definition came from to a ConfigError's message. */
export function withOrigin<T>(origin: string, resolve: () => T): T {
  try {
    return resolve();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const message = err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message;
    throw new ConfigError(err.field, `${message} (in ${origin})`);
  }
}

function checkName(what: 'queue' | 'exchange', name: unknown): string {
  if (typeof name !== 'string') throw new ConfigError(`${what}.name`, `must be a string, got a ${typeof name}`);
  return name;
}

/** An exchange definition checked (same options as `AmqpSession.exchangeDeclare`); a topic exchange by default. */
export function resolveExchange(def: ExchangeDefinition, origin: string): ResolvedExchange {
  return withOrigin(origin, () => {
    const { name, type = 'topic', ...settings } = def;
    const where = describeExchange(checkName('exchange', name));
    return { name, type: checkExchangeType(where, type), ...resolveExchangeSettings(where, settings) };
  });
}

/**
 * A queue definition checked (same options and shorthands as `AmqpSession.queueDeclare`). `name: ''` is a
 * server-named queue: exclusive and auto-delete, not durable, unless told otherwise.
 */
export function resolveQueue(def: QueueDefinition, origin: string): ResolvedQueue {
  return withOrigin(origin, () => {
    const { name, ...settings } = def;
    const serverNamed = checkName('queue', name) === '';
    const defaults = { durable: !serverNamed, exclusive: serverNamed, autoDelete: serverNamed };
    return { name, ...resolveQueueSettings(describeQueue(name), settings, defaults) };
  });
}

export function queueOptions(q: ResolvedQueue): QueueOptions {
  return { durable: q.durable, exclusive: q.exclusive, autoDelete: q.autoDelete, arguments: q.arguments };
}

/** Stable JSON for comparing definitions (sorted keys, Buffers and Dates by value). */
export function canonical(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null || typeof value !== 'object')
    return typeof value === 'bigint' ? `${value}n` : JSON.stringify(value);
  if (Buffer.isBuffer(value)) return `buffer:${value.toString('hex')}`;
  if (value instanceof Date) return `date:${value.toISOString()}`;
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const record = value as Record<string, unknown>;
  return `{${Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(record[k])}`)
    .join(',')}}`;
}

/** First field that differs between two resolved definitions, for error messages. */
export function firstDifference(a: object, b: object): string | undefined {
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const key of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
    if (key === 'arguments') {
      const aa = (ra.arguments ?? {}) as Record<string, unknown>;
      const ab = (rb.arguments ?? {}) as Record<string, unknown>;
      for (const arg of new Set([...Object.keys(aa), ...Object.keys(ab)])) {
        if (canonical(aa[arg]) !== canonical(ab[arg])) return arg;
      }
    } else if (canonical(ra[key]) !== canonical(rb[key])) return key;
  }
  return undefined;
}
