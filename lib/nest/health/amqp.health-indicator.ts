import type { AmqpSession } from '../../amqp';
import { printAsJson } from '../../amqp/redact';

/** Terminus' `HealthIndicatorResult` shape: `{ [key]: { status: 'up' | 'down', ...details } }`. */
export type AmqpHealthIndicatorResult = Record<
  string,
  {
    /** `up` when the session is ready. */
    status: 'up' | 'down';
    /** The connection name. */
    connection: string;
    /** The broker blocks publishing (a resource alarm). */
    blocked: boolean;
    [detail: string]: unknown;
  }
>;

/**
 * Thrown by `check()` when the connection is down. Shaped like terminus' HealthCheckError (`causes`,
 * `isHealthCheckError`), so `HealthCheckService.check([() => amqp.check('amqp')])` reports it as a failed check
 * without Warren importing terminus.
 */
export class AmqpHealthCheckError extends Error {
  /** Marks it as a health check failure for terminus. */
  readonly isHealthCheckError = true;

  constructor(
    message: string,
    /** The failed result, as terminus reports it. */
    readonly causes: AmqpHealthIndicatorResult,
  ) {
    super(message);
    this.name = 'AmqpHealthCheckError';
  }
}

/**
 * Health of one Warren connection: up when the session is connected and recovered (publishing and consuming).
 * `isHealthy()` for plain use; `check(key)` for @nestjs/terminus (optional; not imported).
 */
export class AmqpHealthIndicator {
  constructor(private readonly session: AmqpSession) {}

  /** Connected and recovered. A blocked connection (broker resource alarm) still counts as healthy. */
  isHealthy(): boolean {
    return this.session.isReady;
  }

  /**
   * The result without throwing. `blocked` is read from the session's connections now (not from events): a block that
   * came before this indicator existed counts, one on a connection since lost does not.
   */
  status(key = 'amqp'): AmqpHealthIndicatorResult {
    return {
      [key]: {
        status: this.isHealthy() ? 'up' : 'down',
        connection: this.session.name,
        blocked: this.session.isBlocked,
      },
    };
  }

  /** For terminus: resolves with the result when up, throws AmqpHealthCheckError (with `causes`) when down. */
  async check(key = 'amqp'): Promise<AmqpHealthIndicatorResult> {
    const result = this.status(key);
    if (result[key].status === 'down') {
      throw new AmqpHealthCheckError(`AMQP connection '${this.session.name}' is down`, result);
    }
    return result;
  }

  /** What `JSON.stringify` shows: the health and the session's own (password-free) summary. */
  toJSON(): {
    /** What `isHealthy()` says. */
    healthy: boolean;
    /** The broker blocks publishing. */
    blocked: boolean;
    /** The session's own summary (endpoints without passwords). */
    session: ReturnType<AmqpSession['toJSON']>;
  } {
    return { healthy: this.isHealthy(), blocked: this.session.isBlocked, session: this.session.toJSON() };
  }

  /** Alias of `check`, named like terminus' own indicators. */
  pingCheck(key = 'amqp'): Promise<AmqpHealthIndicatorResult> {
    return this.check(key);
  }
}

// `util.inspect` prints it as its toJSON().
printAsJson(AmqpHealthIndicator, 'AmqpHealthIndicator');
