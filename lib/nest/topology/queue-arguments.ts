import type { FieldTable, QueueOptions } from '../../amqp';
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

export function resolveExchange(def: ExchangeDefinition): ResolvedExchange {
  return {
    name: def.name,
    type: def.type ?? 'topic',
    durable: def.durable ?? true,
    autoDelete: def.autoDelete ?? false,
    internal: def.internal ?? false,
    arguments: { ...def.arguments },
  };
}

/** Friendly queue fields → `x-` arguments (explicit `arguments` win). */
export function queueArguments(def: QueueDefinition): FieldTable {
  const args: FieldTable = {};
  if (def.type !== undefined) args['x-queue-type'] = def.type;
  if (def.deadLetterExchange !== undefined) args['x-dead-letter-exchange'] = def.deadLetterExchange;
  if (def.deadLetterRoutingKey !== undefined) args['x-dead-letter-routing-key'] = def.deadLetterRoutingKey;
  if (def.messageTtl !== undefined) args['x-message-ttl'] = def.messageTtl;
  if (def.expires !== undefined) args['x-expires'] = def.expires;
  if (def.maxLength !== undefined) args['x-max-length'] = def.maxLength;
  if (def.maxLengthBytes !== undefined) args['x-max-length-bytes'] = def.maxLengthBytes;
  if (def.overflow !== undefined) args['x-overflow'] = def.overflow;
  if (def.singleActiveConsumer !== undefined) args['x-single-active-consumer'] = def.singleActiveConsumer;
  if (def.maxPriority !== undefined) args['x-max-priority'] = def.maxPriority;
  if (def.deliveryLimit !== undefined) args['x-delivery-limit'] = def.deliveryLimit;
  return { ...args, ...def.arguments };
}

export function resolveQueue(def: QueueDefinition): ResolvedQueue {
  const serverNamed = def.name === '';
  return {
    name: def.name,
    durable: def.durable ?? !serverNamed,
    exclusive: def.exclusive ?? serverNamed,
    autoDelete: def.autoDelete ?? serverNamed,
    arguments: queueArguments(def),
  };
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
