import { backoffDelay, BACKOFF_DEFAULTS, type BackoffOptions } from './backoff';
import { AmqpConnection } from './connection';
import {
  AmqpError,
  AuthenticationError,
  CertificateError,
  ClosedError,
  ConfigError,
  ConnectionError,
  ReplyCode,
  UnsupportedError,
  VhostError,
} from './errors';
import type { Logger } from './logger';
import type { Endpoint, ResolvedConnectionOptions } from './options';
import { sleep } from './deferred';
import { describeEndpoint } from './redact';

/** Backoff of the session's reconnect loop and of every self-healing channel. */
export interface ReconnectOptions extends BackoffOptions {
  /**
   * A connection (or channel) counts as healthy once it has stayed up this long, ms; only then does the
   * backoff start over. One that dies sooner — a broker refusing a recorded entity on replay, a poison
   * message closing the link — keeps backing off instead of reconnecting at once, forever. Default 1000.
   */
  healthyAfterMs?: number;
}

export const RECONNECT_DEFAULTS: Required<ReconnectOptions> = { ...BACKOFF_DEFAULTS, healthyAfterMs: 1000 };

/**
 * Whether a failure may be retried. Refused logins, vhost errors, configuration mistakes and refused
 * broker certificates never are.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof AuthenticationError || err instanceof VhostError || err instanceof ConfigError) return false;
  if (err instanceof UnsupportedError || err instanceof CertificateError) return false;
  if (err instanceof ConnectionError) return err.replyCode !== ReplyCode.ACCESS_REFUSED;
  return err instanceof AmqpError;
}

/**
 * Failures in a row of one thing that reconnects (a connection or a channel), and the delay they earn:
 * exponential backoff with full jitter. A success only resets the count once it has lasted
 * `healthyAfterMs` — so a loop whose every reconnect succeeds and then dies at once still backs off.
 */
export class RetryStreak {
  private readonly o: Required<ReconnectOptions>;
  /** Failures (or short-lived successes) in a row. */
  failures = 0;
  private upSince = 0;

  constructor(options: ReconnectOptions = {}) {
    this.o = { ...RECONNECT_DEFAULTS, ...options };
  }

  get maxAttempts(): number {
    return this.o.maxAttempts;
  }

  get healthyAfterMs(): number {
    return this.o.healthyAfterMs;
  }

  /** A failed attempt: returns the delay before the next one. */
  failed(): number {
    this.failures++;
    return backoffDelay(this.failures, this.o);
  }

  /** It is up (connected, set up). */
  up(): void {
    this.upSince = Date.now();
  }

  /**
   * It went down after being up. Returns the delay before the first retry: none after a healthy stretch
   * (the backoff starts over), none either for the first short-lived loss in a row (one fault is
   * recovered from at once), then a growing backoff while it keeps dying young.
   */
  down(): number {
    const lived = Date.now() - this.upSince;
    if (this.upSince > 0 && lived >= this.o.healthyAfterMs) {
      this.failures = 0;
      return 0;
    }
    this.failures++;
    return this.failures > 1 ? backoffDelay(this.failures - 1, this.o) : 0;
  }
}

/** How one connect runs: rounds over the endpoint list, and what happens between them. */
export interface ConnectPlan {
  /** Rounds to try at most (Infinity: until it works or is aborted). */
  maxRounds: number;
  /**
   * The backoff for rounds past `connectionAttempts` (sessions). Without one, every round is spaced
   * by `retryDelay` (a plain `AmqpConnection.connect`).
   */
  streak?: RetryStreak;
  /** Delay before the first round (a short-lived connection just died). */
  initialDelayMs?: number;
  signal?: AbortSignal;
  /** How to wait between rounds (default: `sleep`, cut short by `signal`). */
  wait?: (ms: number) => Promise<void>;
  /** Told before each wait between rounds. */
  onRetry?: (info: { attempt: number; delayMs: number; error: Error }) => void;
}

/**
 * The one reconnect loop. A round tries every endpoint once, in the given order or shuffled
 * (`shuffleUrls`); the first `connectionAttempts` rounds are spaced by `retryDelay`, later ones (for a
 * session, which keeps trying) by the streak's exponential backoff with full jitter. Refused logins,
 * vhost and configuration errors end it at once; otherwise it ends with the last round's error.
 */
export async function connectWithPolicy(
  options: ResolvedConnectionOptions,
  logger: Logger,
  plan: ConnectPlan,
): Promise<AmqpConnection> {
  const { signal } = plan;
  const wait = plan.wait ?? ((ms: number) => sleep(ms, signal));
  if (plan.initialDelayMs) await wait(plan.initialDelayMs);
  let lastError: Error | undefined;
  for (let round = 1; round <= plan.maxRounds; round++) {
    if (signal?.aborted) throw new ClosedError('connect aborted: closed by the application');
    // A refused certificate ends the loop only when every endpoint of the round refused theirs: in a
    // cluster one node's bad certificate must not keep the session away from the others.
    let certificatesOnly = true;
    for (const endpoint of roundOrder(options.endpoints, options.shuffleUrls)) {
      try {
        return await AmqpConnection.connectOnce(endpoint, options, logger, signal);
      } catch (err) {
        if (signal?.aborted) throw new ClosedError('connect aborted: closed by the application');
        const certificate = err instanceof CertificateError;
        if (!certificate && !isRetryable(err)) throw err;
        if (!certificate) certificatesOnly = false;
        lastError = err as Error;
        logger.debug?.(`connect to ${describeEndpoint(endpoint)} failed: ${lastError.message}`);
      }
    }
    if (certificatesOnly && lastError instanceof CertificateError) throw lastError;
    if (round >= plan.maxRounds) break;
    const delayMs = round < options.connectionAttempts || !plan.streak ? options.retryDelayMs : plan.streak.failed();
    plan.onRetry?.({ attempt: round, delayMs, error: lastError as Error });
    await wait(delayMs);
  }
  throw lastError ?? new ClosedError('no endpoint to connect to');
}

/** Endpoints of one round: as given, or freshly shuffled. */
function roundOrder(endpoints: readonly Endpoint[], shuffle: boolean): readonly Endpoint[] {
  if (!shuffle) return endpoints;
  const a = [...endpoints];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
