import type { AmqpHandlerOptions, BatchOptions } from '../../lib/nest/amqp-options.interface';
import type { HandlerRegistration, QueuePlan } from '../../lib/nest/server/handler-routes';
import { configError } from '../support/config-error';
import { planRoutes, registration } from '../support/handler-plan';

function plan(registrations: HandlerRegistration[], defaults: AmqpHandlerOptions = {}): QueuePlan[] {
  return planRoutes(registrations, { defaults }).queues;
}

/** What a JavaScript caller (or a cast) may write: unchecked by the compiler. */
function loose(value: unknown): BatchOptions {
  return value as BatchOptions;
}

describe('batch handler options', () => {
  it('default to a 50 ms timeout and raise the default prefetch (10) to the batch size', () => {
    const [queue] = plan([registration('order.created', { queue: 'q', batch: { size: 100 } })]);
    expect(queue.routes.get('order.created')?.batch).toEqual({ size: 100, timeoutMs: 50 });
    expect(queue.prefetch).toBe(100);
    expect(queue.concurrency).toBe(100);
  });

  it('keep the default prefetch when the batch is smaller, and a prefetch given at or above the size', () => {
    expect(plan([registration('a', { queue: 'q', batch: { size: 4, timeoutMs: 20 } })])[0].prefetch).toBe(10);
    expect(plan([registration('a', { queue: 'q', prefetch: 250, batch: { size: 100 } })])[0].prefetch).toBe(250);
    expect(plan([registration('a', { queue: 'q', prefetch: 0, batch: { size: 100 } })])[0].prefetch).toBe(0);
  });

  it('raise the prefetch of a queue shared with other handlers to the largest batch size', () => {
    const [queue] = plan([
      registration('a', { queue: 'q' }),
      registration('b', { queue: 'q', batch: { size: 30 } }),
      registration('c', { queue: 'q', batch: { size: 60 } }),
    ]);
    expect(queue.prefetch).toBe(60);
    expect(queue.routes.get('a')?.batch).toBeUndefined();
  });

  it.each<[string, HandlerRegistration[], string]>([
    ['on a request handler', [registration('a', { queue: 'q', batch: { size: 10 } }, false)], "handler 'a'.batch"],
    ['not an object', [registration('a', { queue: 'q', batch: loose(10) })], "handler 'a'.batch"],
    ['without a size', [registration('a', { queue: 'q', batch: loose({ timeoutMs: 10 }) })], "handler 'a'.batch.size"],
    ['with a size of 0', [registration('a', { queue: 'q', batch: { size: 0 } })], "handler 'a'.batch.size"],
    ['with a fractional size', [registration('a', { queue: 'q', batch: { size: 2.5 } })], "handler 'a'.batch.size"],
    [
      'with a timeout below 1 ms',
      [registration('a', { queue: 'q', batch: { size: 5, timeoutMs: 0 } })],
      "handler 'a'.batch.timeoutMs",
    ],
    [
      'with a timeout that is not a number',
      [registration('a', { queue: 'q', batch: loose({ size: 5, timeoutMs: '50' }) })],
      "handler 'a'.batch.timeoutMs",
    ],
    [
      'with an unknown key',
      [registration('a', { queue: 'q', batch: loose({ size: 5, maxWait: 10 }) })],
      "handler 'a'.batch.maxWait",
    ],
    [
      'larger than the prefetch given',
      [registration('a', { queue: 'q', prefetch: 20, batch: { size: 100 } })],
      "queue 'q'.prefetch",
    ],
    [
      'larger than the prefetch another handler of the queue gives',
      [registration('a', { queue: 'q', prefetch: 20 }), registration('b', { queue: 'q', batch: { size: 100 } })],
      "queue 'q'.prefetch",
    ],
    [
      'different from the batch of another handler of the same pattern',
      [registration('a', { queue: 'q', batch: { size: 10 } }), registration('a', { queue: 'q' })],
      "handler 'a'.batch",
    ],
  ])('%s are a ConfigError naming the field', (_, registrations, field) => {
    expect(configError(() => plan(registrations)).field).toBe(field);
  });

  it('name the handler and the prefetch to set when the prefetch is below the batch size', () => {
    const err = configError(() =>
      plan([registration('order.created', { queue: 'q', prefetch: 20, batch: { size: 100 } })]),
    );
    expect(err.message).toContain("batch size 100 of handler 'order.created'");
  });

  it('from the server defaults apply to event handlers; a request handler then is a ConfigError', () => {
    const defaults: AmqpHandlerOptions = { queue: 'q', batch: { size: 5 } };
    expect(plan([registration('a', {})], defaults)[0].routes.get('a')?.batch).toEqual({ size: 5, timeoutMs: 50 });
    expect(configError(() => plan([registration('a', {}, false)], defaults)).field).toBe("handler 'a'.batch");
  });
});
