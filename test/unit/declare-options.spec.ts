import {
  resolveExchangeOptions,
  resolveExchangeSettings,
  resolveQueueOptions,
  resolveQueueSettings,
  type QueueOptions,
} from '../../lib/amqp/declare-options';
import { configError } from '../support/config-error';

/** Options as a JavaScript caller (or a cast) may pass them: unchecked by the compiler. */
function untyped(options: Record<string, unknown>): QueueOptions {
  return options as QueueOptions;
}

describe('queue options: shorthands become x-arguments', () => {
  it.each<[keyof QueueOptions, unknown, string]>([
    ['type', 'quorum', 'x-queue-type'],
    ['type', 'stream', 'x-queue-type'],
    ['type', 'classic', 'x-queue-type'],
    ['deadLetterExchange', 'dlx', 'x-dead-letter-exchange'],
    ['deadLetterExchange', '', 'x-dead-letter-exchange'],
    ['deadLetterRoutingKey', 'dead', 'x-dead-letter-routing-key'],
    ['messageTtl', 60_000, 'x-message-ttl'],
    ['messageTtl', 0, 'x-message-ttl'],
    ['expires', 1000, 'x-expires'],
    ['maxLength', 10, 'x-max-length'],
    ['maxLengthBytes', 1 << 20, 'x-max-length-bytes'],
    ['overflow', 'reject-publish-dlx', 'x-overflow'],
    ['singleActiveConsumer', true, 'x-single-active-consumer'],
    ['maxPriority', 10, 'x-max-priority'],
    ['deliveryLimit', 5, 'x-delivery-limit'],
  ])('%s: %p → %s', (key, value, argument) => {
    const resolved = resolveQueueOptions('orders', untyped({ [key]: value }));
    expect(resolved.arguments).toEqual({ [argument]: value });
  });

  it('keeps explicit arguments next to the shorthands, and a shorthand that agrees with one', () => {
    const resolved = resolveQueueOptions('orders', {
      messageTtl: 1000,
      arguments: { 'x-message-ttl': 1000, 'x-queue-mode': 'lazy' },
    });
    expect(resolved.arguments).toEqual({ 'x-message-ttl': 1000, 'x-queue-mode': 'lazy' });
  });

  it('does not change the caller’s arguments table', () => {
    const args = { 'x-queue-mode': 'lazy' };
    resolveQueueOptions('orders', { maxLength: 3, arguments: args });
    expect(args).toEqual({ 'x-queue-mode': 'lazy' });
  });

  it('fills the flags: a named queue is durable, a server-named one not; call options pass through', () => {
    expect(resolveQueueOptions('orders', {})).toEqual({
      durable: true,
      exclusive: false,
      autoDelete: false,
      passive: false,
      noWait: false,
      arguments: {},
    });
    expect(resolveQueueOptions('', { exclusive: true })).toMatchObject({ durable: false, exclusive: true });
    expect(resolveQueueOptions('orders', { passive: true, noWait: true, timeout: 500 })).toMatchObject({
      passive: true,
      noWait: true,
      timeout: 500,
    });
  });
});

describe('queue options: mistakes are ConfigErrors naming the field', () => {
  it('an unknown key names the queue and the key, and lists the known ones', () => {
    const err = configError(() => resolveQueueOptions('orders', untyped({ typ: 'quorum' })));
    expect(err.field).toBe("queue 'orders'.typ");
    expect(err.message).toContain('unknown queue option');
    expect(err.message).toContain('type');
  });

  it('an unknown key of a server-named queue names it so', () => {
    expect(configError(() => resolveQueueOptions('', untyped({ exlusive: true }))).field).toBe(
      'server-named queue.exlusive',
    );
  });

  it.each<[string, unknown]>([
    ['type', 'qorum'],
    ['type', 1],
    ['overflow', 'drop-tail'],
    ['messageTtl', -1],
    ['messageTtl', 1.5],
    ['messageTtl', '1000'],
    ['messageTtl', 2 ** 32],
    ['expires', 0],
    ['maxLength', -1],
    ['maxLength', NaN],
    ['maxLengthBytes', Infinity],
    ['maxPriority', 0],
    ['maxPriority', 256],
    ['deliveryLimit', -1],
    ['deadLetterExchange', 42],
    ['deadLetterRoutingKey', null],
    ['singleActiveConsumer', 'yes'],
    ['durable', 'true'],
    ['exclusive', 1],
    ['autoDelete', null],
    ['passive', 'no'],
    ['noWait', 0],
    ['timeout', -1],
    ['timeout', '5s'],
    ['arguments', []],
    ['arguments', 'x-queue-type=quorum'],
  ])('%s: %p is refused', (key, value) => {
    const err = configError(() => resolveQueueOptions('orders', untyped({ [key]: value })));
    expect(err.field).toBe(`queue 'orders'.${key}`);
  });

  it('options that are not an object are refused', () => {
    expect(configError(() => resolveQueueOptions('orders', 'durable' as unknown as QueueOptions)).field).toBe(
      "queue 'orders'",
    );
  });

  it('a shorthand that contradicts its explicit x-argument is refused, naming both', () => {
    const err = configError(() =>
      resolveQueueOptions('orders', { type: 'quorum', arguments: { 'x-queue-type': 'classic' } }),
    );
    expect(err.field).toBe("queue 'orders'.type");
    expect(err.message).toContain("arguments['x-queue-type']");
  });

  it.each<[string, QueueOptions, string]>([
    ['quorum', { type: 'quorum', durable: false }, 'durable'],
    ['quorum', { type: 'quorum', exclusive: true }, 'exclusive'],
    ['quorum', { type: 'quorum', autoDelete: true }, 'autoDelete'],
    ['stream', { type: 'stream', durable: false }, 'durable'],
    ['quorum (explicit argument)', { arguments: { 'x-queue-type': 'quorum' }, exclusive: true }, 'exclusive'],
  ])('a %s queue must be durable, not exclusive, not auto-delete: %p', (_, options, field) => {
    expect(configError(() => resolveQueueOptions('orders', options)).field).toBe(`queue 'orders'.${field}`);
  });

  it('a server-named quorum queue is refused: it would not be durable', () => {
    expect(configError(() => resolveQueueOptions('', { type: 'quorum' })).field).toBe('server-named queue.durable');
  });

  it('a passive declare is not held to its queue type (the broker ignores the flags)', () => {
    expect(resolveQueueOptions('orders', { passive: true, type: 'quorum', durable: false }).passive).toBe(true);
  });
});

describe('queue settings (topology definitions): the same checks without the call options', () => {
  const defaults = { durable: true, exclusive: false, autoDelete: false };

  it('turns shorthands into arguments like the channel options', () => {
    expect(resolveQueueSettings("queue 'q'", { type: 'quorum', deliveryLimit: 3 }, defaults)).toEqual({
      ...defaults,
      arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 3 },
    });
  });

  it('refuses the call options: a definition is what a queue is, not how one call is made', () => {
    const err = configError(() => resolveQueueSettings("queue 'q'", untyped({ passive: true }), defaults));
    expect(err.field).toBe("queue 'q'.passive");
  });
});

describe('exchange options', () => {
  it('alternateExchange becomes the alternate-exchange argument; durable by default', () => {
    expect(resolveExchangeOptions('orders', 'topic', { alternateExchange: 'unrouted' })).toEqual({
      durable: true,
      autoDelete: false,
      internal: false,
      passive: false,
      noWait: false,
      arguments: { 'alternate-exchange': 'unrouted' },
    });
  });

  it('an unknown key names the exchange and the key', () => {
    const err = configError(() =>
      resolveExchangeOptions('orders', 'topic', { autodelete: true } as unknown as Record<string, never>),
    );
    expect(err.field).toBe("exchange 'orders'.autodelete");
    expect(err.message).toContain('unknown exchange option');
  });

  it.each<[string, unknown]>([
    ['durable', 'yes'],
    ['internal', 1],
    ['alternateExchange', 7],
    ['timeout', NaN],
    ['arguments', null],
  ])('%s: %p is refused', (key, value) => {
    const err = configError(() => resolveExchangeOptions('orders', 'topic', { [key]: value } as Record<string, never>));
    expect(err.field).toBe(`exchange 'orders'.${key}`);
  });

  it('alternateExchange contradicting arguments is refused', () => {
    const err = configError(() =>
      resolveExchangeSettings("exchange 'e'", { alternateExchange: 'a', arguments: { 'alternate-exchange': 'b' } }),
    );
    expect(err.field).toBe("exchange 'e'.alternateExchange");
  });

  it('an empty exchange type is refused, except for a passive declare', () => {
    expect(configError(() => resolveExchangeOptions('orders', '', {})).field).toBe("exchange 'orders'.type");
    expect(resolveExchangeOptions('orders', '', { passive: true }).passive).toBe(true);
  });
});
