import type { AmqpHandlerOptions, RetryPolicy } from '../../lib/nest/amqp-options.interface';
import { resolveRetryPolicy } from '../../lib/nest/retry/retry-policy';
import type { HandlerRegistration } from '../../lib/nest/server/handler-routes';
import type { TopologyPlan } from '../../lib/nest/topology/topology-plan';
import type { QueueDefinition, TopologyDefinition } from '../../lib/nest/topology/topology.interface';
import { configError } from '../support/config-error';
import { planRoutes, registration } from '../support/handler-plan';

function plan(registrations: HandlerRegistration[], topology?: TopologyDefinition): TopologyPlan {
  return planRoutes(registrations, { topology }).topology;
}

/** What a JavaScript caller (or a cast) may write: unchecked by the compiler. */
function loose<T>(value: Record<string, unknown>): T {
  return value as T;
}

describe('Nest topology definitions use the client’s queue and exchange options', () => {
  it('queue shorthands become the same x-arguments as with AmqpSession.queueDeclare', () => {
    const topology = plan([registration('a', { queue: { name: 'orders', type: 'quorum', deliveryLimit: 3 } })]);
    const queue = topology.queue('orders', 'test');
    expect(topology.queueDefinition(queue)).toEqual({
      name: 'orders',
      durable: true,
      exclusive: false,
      autoDelete: false,
      arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 3 },
    });
  });

  it('an unknown queue key is a ConfigError naming the queue, the key and where it was defined', () => {
    const queue = loose<QueueDefinition>({ name: 'orders', typ: 'quorum' });
    const err = configError(() => plan([registration('order.created', { queue })]));
    expect(err.field).toBe("queue 'orders'.typ");
    expect(err.message).toContain("handler 'order.created'");
  });

  it('an unknown exchange key is a ConfigError, even on a predeclared exchange', () => {
    const exchange = loose<{ name: string }>({ name: 'amq.topic', durabel: true });
    const err = configError(() => plan([registration('a', { queue: 'q', exchange })]));
    expect(err.field).toBe("exchange 'amq.topic'.durabel");
  });

  it('a server-named quorum queue is refused before anything is declared', () => {
    const err = configError(() => plan([registration('a', { queue: { name: '', type: 'quorum' } })]));
    expect(err.field).toBe('server-named queue.durable');
  });

  it('an unknown key of a topology definition or of its bindings is refused', () => {
    expect(configError(() => plan([], loose<TopologyDefinition>({ queue: [{ name: 'q' }] }))).field).toBe(
      'topology.queue',
    );
    const bindings = [loose<{ queue: string; exchange: string }>({ queue: 'q', exchange: 'x', routing: 'k' })];
    expect(configError(() => plan([], { bindings })).field).toBe('topology.bindings[0].routing');
  });
});

describe('handler configuration mistakes are ConfigErrors naming the field', () => {
  it.each<[string, HandlerRegistration[], string]>([
    ['a handler without a queue', [registration('a', {})], "handler 'a'.queue"],
    [
      'an unknown ack mode',
      [registration('a', loose<AmqpHandlerOptions>({ queue: 'q', ack: 'later' }))],
      "handler 'a'.ack",
    ],
    [
      'a binding without an exchange',
      [registration('a', { queue: 'q', bindings: [{ routingKey: 'k' }] })],
      "handler 'a'.bindings[0].exchange",
    ],
    [
      'a retry policy on a server-named queue',
      [registration('a', { queue: { name: '' }, retry: { attempts: 2, delays: [10] } })],
      "handler 'a'.retry",
    ],
    [
      'two request handlers for one pattern on one queue',
      [registration('a', { queue: 'q' }, false), registration('a', { queue: 'q' }, false)],
      "handler 'a'",
    ],
    [
      "ack 'none' mixed with another mode on one queue",
      [registration('a', { queue: 'q', ack: 'none' }), registration('b', { queue: 'q' })],
      "queue 'q'.ack",
    ],
    ['a concurrency below 1', [registration('a', { queue: 'q', concurrency: 0.5 })], "queue 'q'.concurrency"],
    ['a bad retry policy', [registration('a', { queue: 'q', retry: { attempts: 0, delays: [10] } })], 'retry.attempts'],
  ])('%s', (_, registrations, field) => {
    expect(configError(() => plan(registrations)).field).toBe(field);
  });
});

describe('retry policies', () => {
  it.each<[string, RetryPolicy, string]>([
    ['attempts below 1', { attempts: 0, delays: [10] }, 'retry.attempts'],
    ['no delays and no backoff', { attempts: 2 }, 'retry.delays'],
    ['a delay below 1 ms', { attempts: 2, delays: [0] }, 'retry.delays'],
    ['a backoff below 1 ms', { attempts: 2, backoff: { initial: 0.1 } }, 'retry.backoff'],
    ['an unknown key', loose<RetryPolicy>({ attempts: 2, delays: [10], parkinglot: 'p' }), 'retry.parkinglot'],
    [
      'an unknown backoff key',
      loose<RetryPolicy>({ attempts: 2, backoff: { initial: 10, multiplier: 2 } }),
      'retry.backoff.multiplier',
    ],
  ])('%s is a ConfigError naming the field and the queue', (_, policy, field) => {
    const err = configError(() => resolveRetryPolicy(policy, 'work'));
    expect(err.field).toBe(field);
    expect(err.message).toContain("retry policy of queue 'work'");
  });
});
