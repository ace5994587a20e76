import type { MessageHandler } from '@nestjs/microservices';
import { ConfigError, type StreamOffset, type StreamOffsetStore } from '../../amqp';
import { describeQueue } from '../../amqp/declare-options';
import { checkHandlerOptions } from '../amqp-options.check';
import type { AckMode, AmqpHandlerOptions } from '../amqp-options.interface';
import { DEFAULT_CONNECTION_NAME, DEFAULT_PREFETCH } from '../amqp.constants';
import { resolveRetryPolicy, retryQueueDefinitions, type ResolvedRetryPolicy } from '../retry/retry-policy';
import { PatternMatcher } from '../routing/pattern-matcher';
import { resolvePayloadSchema, type PayloadSchema } from '../schema/payload-schema';
import type { AmqpDeserializer, AmqpSerializer } from '../serialization/amqp-serializer.interface';
import type { QueueRef, TopologyPlan } from '../topology/topology-plan';
import type { TopologyDefinition } from '../topology/topology.interface';
import { resolveBatchOptions, type ResolvedBatchOptions } from './batch-options';

/** A handler as Nest handed it to the server (already wrapped with guards, pipes, interceptors and filters). */
export interface HandlerRegistration {
  pattern: string;
  handler: MessageHandler;
  isEvent: boolean;
  extras: AmqpHandlerOptions;
}

/** One handler on one queue, with its settings resolved. */
export interface Route {
  pattern: string;
  handler: MessageHandler;
  isEvent: boolean;
  ack: AckMode;
  retry?: ResolvedRetryPolicy;
  /** Event handlers taking their messages in batches. */
  batch?: ResolvedBatchOptions;
  serializer: AmqpSerializer;
  deserializer: AmqpDeserializer;
  /** Checked on receipt, before the handler runs. */
  schema?: PayloadSchema;
}

/** One consumer: a queue, its routes and its consumer settings. */
export interface QueuePlan {
  queue: QueueRef;
  routes: PatternMatcher<Route>;
  prefetch: number;
  concurrency: number;
  priority?: number;
  noAck: boolean;
  /** Stream queues: where the consumer starts, and its offset store. */
  offset?: StreamOffset;
  offsetStore?: StreamOffsetStore;
}

export interface RouteDefaults {
  connection: string;
  defaults: AmqpHandlerOptions;
  serializer: AmqpSerializer;
  deserializer: AmqpDeserializer;
  topology?: TopologyDefinition;
}

const KNOWN_ACK_MODES: readonly AckMode[] = ['auto', 'manual', 'none'];

/**
 * Turns the handlers Nest registered into consumers: which queue each handler reads, the bindings and retry queues
 * it needs (added to `plan`), and one QueuePlan per queue. Handlers of another connection are skipped. Two event
 * handlers with the same pattern on the same queue are chained (both run for each message), as Nest does. A queue
 * with batch handlers gets a prefetch of at least the largest batch size.
 */
export function planHandlers(registrations: HandlerRegistration[], d: RouteDefaults, plan: TopologyPlan): QueuePlan[] {
  plan.add(d.topology, 'server options');
  plan.add(d.defaults.topology, 'server defaults');
  const byQueue = new Map<QueueRef, { routes: PatternMatcher<Route>; options: AmqpHandlerOptions[] }>();
  for (const r of registrations) delete r.handler.next;
  /** Each route's `schema` option as given, to compare with a handler chained to it. */
  const schemas = new Map<Route, unknown>();

  for (const r of registrations) {
    const o: AmqpHandlerOptions = { ...d.defaults, ...r.extras };
    if ((o.connection ?? DEFAULT_CONNECTION_NAME) !== d.connection) continue;
    const origin = `handler '${r.pattern}'`;
    checkHandlerOptions(origin, o);
    if (o.queue === undefined) {
      throw new ConfigError(
        `${origin}.queue`,
        'missing: set one in its @MessagePattern/@EventPattern extras, @AmqpController or the server defaults',
      );
    }
    const ack = o.ack ?? 'auto';
    if (!KNOWN_ACK_MODES.includes(ack)) {
      throw new ConfigError(`${origin}.ack`, `must be one of 'auto', 'manual', 'none', got '${String(ack)}'`);
    }
    let batch: ResolvedBatchOptions | undefined;
    if (o.batch !== undefined) {
      if (!r.isEvent) {
        throw new ConfigError(`${origin}.batch`, 'only event handlers take batches (a request gets its own reply)');
      }
      batch = resolveBatchOptions(o.batch, origin);
    }
    plan.add(o.topology, origin);
    const queue = plan.queue(o.queue, origin);

    // Bindings: explicit ones, or the handler's exchange with its pattern as routing key.
    const bindings = o.bindings ?? (o.exchange !== undefined ? [{}] : []);
    for (const [i, b] of bindings.entries()) {
      const exchange = b.exchange ?? o.exchange;
      if (exchange === undefined) {
        throw new ConfigError(`${origin}.bindings[${i}].exchange`, "missing, and the handler has no 'exchange' either");
      }
      plan.bindQueue(queue, exchange, b.routingKey ?? r.pattern, b.arguments, origin);
    }

    let retry: ResolvedRetryPolicy | undefined;
    if (o.retry) {
      if (queue.serverNamed) {
        throw new ConfigError(`${origin}.retry`, 'a retry policy needs a named queue (this one is server-named)');
      }
      retry = resolveRetryPolicy(o.retry, queue.name);
      for (const q of retryQueueDefinitions(queue.name, retry)) plan.queue(q, `retry policy of ${origin}`);
      plan.queue({ name: retry.parkingLot, durable: true }, `retry policy of ${origin}`);
      if (retry.exchange !== '') {
        plan.exchange({ name: retry.exchange, type: 'direct', durable: true }, `retry policy of ${origin}`);
        plan.bindQueue(queue, retry.exchange, queue.name, undefined, `retry policy of ${origin}`);
      }
    }

    const route: Route = {
      pattern: r.pattern,
      handler: r.handler,
      isEvent: r.isEvent,
      ack,
      retry,
      batch,
      serializer: o.serializer ?? d.serializer,
      deserializer: o.deserializer ?? d.deserializer,
      schema: o.schema === undefined ? undefined : resolvePayloadSchema(o.schema, `${origin}.schema`),
    };
    let entry = byQueue.get(queue);
    if (!entry) {
      entry = { routes: new PatternMatcher<Route>(), options: [] };
      byQueue.set(queue, entry);
    }
    entry.options.push(o);
    const existing = entry.routes.get(r.pattern);
    if (existing) {
      if (!existing.isEvent || !route.isEvent) {
        throw new ConfigError(
          origin,
          `a second handler for this pattern on ${describeQueue(queue.name)} (only event handlers may share one)`,
        );
      }
      if (existing.batch?.size !== batch?.size || existing.batch?.timeoutMs !== batch?.timeoutMs) {
        // Chained handlers get the same call: one batch of messages, or one message.
        throw new ConfigError(
          `${origin}.batch`,
          `differs from the other handler of this pattern on ${describeQueue(queue.name)}; give both the same`,
        );
      }
      // One message, one check: chained handlers would otherwise each believe their own schema holds.
      if (schemas.get(existing) !== o.schema) {
        throw new ConfigError(
          `${origin}.schema`,
          `event handlers sharing this pattern on ${describeQueue(queue.name)} must give the same schema (or none)`,
        );
      }
      let tail = existing.handler;
      while (tail.next) tail = tail.next as MessageHandler;
      tail.next = r.handler;
      continue;
    }
    entry.routes.add(r.pattern, route);
    schemas.set(route, o.schema);
  }

  return [...byQueue.entries()].map(([queue, { routes, options }]) => {
    const modes = new Set(routes.values().map((r) => r.ack));
    const where = describeQueue(queue.name);
    if (modes.has('none') && modes.size > 1) {
      throw new ConfigError(`${where}.ack`, "its handlers mix ack 'none' with other ack modes; no-ack is per consumer");
    }
    const explicit = (pick: (o: AmqpHandlerOptions) => number | undefined): number | undefined => {
      const values = options.map(pick).filter((v): v is number => v !== undefined);
      return values.length > 0 ? Math.max(...values) : undefined;
    };
    const prefetch = consumerPrefetch(
      explicit((o) => o.prefetch),
      routes.values(),
      where,
    );
    const concurrency = explicit((o) => o.concurrency) ?? (prefetch > 0 ? prefetch : Infinity);
    if (concurrency !== Infinity && (!Number.isInteger(concurrency) || concurrency < 1)) {
      throw new ConfigError(`${where}.concurrency`, `must be an integer >= 1, got ${concurrency}`);
    }
    return {
      queue,
      routes,
      prefetch,
      concurrency,
      priority: explicit((o) => o.priority),
      noAck: modes.has('none'),
      offset: agreed(options, 'offset', where),
      offsetStore: agreed(options, 'offsetStore', where),
    };
  });
}

/**
 * The prefetch of a queue's consumer: the one given, else the default raised to the largest batch size. A batch
 * larger than a given prefetch could never fill (the broker stops delivering at the prefetch): a ConfigError.
 */
function consumerPrefetch(given: number | undefined, routes: Route[], where: string): number {
  let largest: Route | undefined;
  for (const r of routes) if (r.batch && r.batch.size > (largest?.batch?.size ?? 0)) largest = r;
  const size = largest?.batch?.size ?? 0;
  if (given === undefined) return Math.max(DEFAULT_PREFETCH, size);
  if (given !== 0 && given < size) {
    throw new ConfigError(
      `${where}.prefetch`,
      `${given} is below the batch size ${size} of handler '${largest?.pattern}': set it to ${size} or more, or leave it out (the default is raised to the batch size)`,
    );
  }
  return given;
}

/** A consumer setting the handlers of one queue must agree on (undefined when none sets it). */
function agreed<K extends 'offset' | 'offsetStore'>(
  options: AmqpHandlerOptions[],
  key: K,
  where: string,
): AmqpHandlerOptions[K] {
  const values = options.map((o) => o[key]).filter((v) => v !== undefined);
  const first = values[0];
  const same = (v: unknown): boolean =>
    v === first || (v instanceof Date && first instanceof Date && v.getTime() === first.getTime());
  if (!values.every(same)) throw new ConfigError(`${where}.${key}`, 'its handlers give different values; give one');
  return first;
}
