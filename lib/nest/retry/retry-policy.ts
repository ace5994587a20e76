import { ConfigError } from '../../amqp';
import { checkKnownKeys } from '../../amqp/declare-options';
import type { RetryPolicy } from '../amqp-options.interface';
import { withOrigin } from '../topology/queue-arguments';
import type { QueueDefinition } from '../topology/topology.interface';

/** A retry policy checked and made concrete for one work queue. */
export interface ResolvedRetryPolicy {
  attempts: number;
  /** Delay before retry n (index n-1), one per retry. */
  delays: number[];
  /** '' = default exchange. */
  exchange: string;
  parkingLot: string;
}

const POLICY_KEYS = ['attempts', 'delays', 'backoff', 'exchange', 'parkingLot'];
const BACKOFF_KEYS = ['initial', 'factor', 'max'];

/** Validates a policy (a ConfigError names the field) and computes the delay of every retry. */
export function resolveRetryPolicy(policy: RetryPolicy, queue: string): ResolvedRetryPolicy {
  return withOrigin(`retry policy of queue '${queue}'`, () => {
    checkKnownKeys('retry', policy, POLICY_KEYS, 'retry policy');
    if (policy.backoff) checkKnownKeys('retry.backoff', policy.backoff, BACKOFF_KEYS, 'backoff');
    const attempts = policy.attempts;
    if (!Number.isInteger(attempts) || attempts < 1) {
      throw new ConfigError('retry.attempts', `must be an integer >= 1, got ${attempts}`);
    }
    const retries = attempts - 1;
    const delays: number[] = [];
    for (let n = 1; n <= retries; n++) delays.push(retryDelay(policy, n));
    return {
      attempts,
      delays,
      exchange: policy.exchange ?? '',
      parkingLot: policy.parkingLot ?? parkingLotName(queue),
    };
  });
}

function retryDelay(policy: RetryPolicy, n: number): number {
  let delay: number;
  const listed = policy.delays && policy.delays.length > 0 ? policy.delays : undefined;
  if (listed) delay = listed[Math.min(n, listed.length) - 1];
  else if (policy.backoff) {
    const { initial, factor = 2, max = Infinity } = policy.backoff;
    delay = Math.min(max, initial * factor ** (n - 1));
  } else throw new ConfigError('retry.delays', 'give delays or backoff');
  if (!Number.isFinite(delay) || delay < 1) {
    throw new ConfigError(
      listed ? 'retry.delays' : 'retry.backoff',
      `the delay of retry ${n} must be >= 1 ms, got ${delay}`,
    );
  }
  return Math.round(delay);
}

/** The default parking-lot queue of a work queue: `<queue>.parking-lot`. */
export function parkingLotName(queue: string): string {
  return `${queue}.parking-lot`;
}

/** The retry queue of a work queue for one delay: `<queue>.retry.<delayMs>`. */
export function retryQueueName(queue: string, delayMs: number): string {
  return `${queue}.retry.${delayMs}`;
}

/**
 * Retry queues: one per distinct delay, every message in it waits the same time (no head-of-line blocking), then is
 * dead-lettered back to the work queue through the default exchange (or the policy's exchange). Always durable, also
 * for a transient work queue: RabbitMQ 4.3 refuses transient non-exclusive queues by default.
 */
export function retryQueueDefinitions(queue: string, policy: ResolvedRetryPolicy): QueueDefinition[] {
  return [...new Set(policy.delays)].map((delay) => ({
    name: retryQueueName(queue, delay),
    durable: true,
    messageTtl: delay,
    deadLetterExchange: policy.exchange,
    deadLetterRoutingKey: queue,
  }));
}
