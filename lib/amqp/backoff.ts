/** Reconnect policy: exponential backoff with full jitter. */
export interface BackoffOptions {
  /** First retry's upper bound, ms. Default 100. */
  initialDelayMs?: number;
  /** Cap, ms. Default 1000: after a broker restart we are back within a second of it accepting connections. */
  maxDelayMs?: number;
  /** Give up after this many failed attempts. Default Infinity. */
  maxAttempts?: number;
}

export const BACKOFF_DEFAULTS: Required<BackoffOptions> = {
  initialDelayMs: 100,
  maxDelayMs: 1000,
  maxAttempts: Infinity,
};

/**
 * Delay before attempt `n` (1-based): uniform in [0, min(max, initial × 2^(n-1))] ("full jitter"),
 * so a fleet of clients that lost the same broker does not reconnect in lockstep.
 */
export function backoffDelay(attempt: number, o: Required<BackoffOptions>, random: () => number = Math.random): number {
  const ceiling = Math.min(o.maxDelayMs, o.initialDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.floor(random() * ceiling);
}
