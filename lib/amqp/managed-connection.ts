import { EventEmitter } from 'node:events';
import type { AmqpConnection } from './connection';
import { sleep, WaiterList } from './deferred';
import { ClosedError, type AmqpError } from './errors';
import type { Logger } from './logger';
import type { ResolvedConnectionOptions } from './options';
import { describeEndpoint } from './redact';
import { connectWithPolicy, isRetryable, RetryStreak, type ReconnectOptions } from './reconnect-policy';

export type ManagedConnectionEvents = {
  connected: [connection: AmqpConnection, recovering: boolean];
  disconnected: [cause: AmqpError];
  reconnecting: [info: { attempt: number; delayMs: number }];
  /** Reconnecting stopped for good: a refused login, a vhost or configuration error, or maxAttempts reached. */
  failed: [error: Error];
  blocked: [reason: string];
  unblocked: [];
  secretUpdated: [];
  secretRefreshFailed: [error: Error, retryInMs: number];
};

/**
 * One connection that comes back: on loss (socket end or error, missed heartbeats, a broker close
 * other than an access refusal) it runs the one reconnect loop (`connectWithPolicy`) again. `close()`
 * by the application aborts a connect in progress and stops it for good.
 */
export class ManagedConnection extends EventEmitter<ManagedConnectionEvents> {
  current: AmqpConnection | null = null;
  /** Bumped on every new connection; stale handles compare against it. */
  generation = 0;
  private closed = false;
  private running: Promise<void> | null = null;
  private readonly abort = new AbortController();
  /** The backoff wait in progress, which a sibling's success may cut short. */
  private waiting: AbortController | null = null;
  /** retryNow() came while no wait was in progress: skip the next one. */
  private wokenEarly = false;
  private readonly streak: RetryStreak;
  private readonly connectedWaiters = new WaiterList<AmqpConnection>();

  constructor(
    readonly role: string,
    private readonly options: ResolvedConnectionOptions,
    private readonly logger: Logger,
    reconnect: ReconnectOptions = {},
  ) {
    super();
    this.streak = new RetryStreak(reconnect);
  }

  get isOpen(): boolean {
    return this.current !== null && this.current.isOpen;
  }

  /** The open connection, or the next one (rejects once the connection is closed for good). */
  connection(): Promise<AmqpConnection> {
    if (this.current?.isOpen) return Promise.resolve(this.current);
    if (this.closed) return Promise.reject(new ClosedError(`${this.role} connection closed by the application`));
    return this.connectedWaiters.wait();
  }

  /** Where it connects, passwords left out (`describeEndpoint`): for printing the session. */
  get targets(): string[] {
    return this.options.endpoints.map((e) => describeEndpoint(e));
  }

  /**
   * Connect. `failFast`: reject once the first `connectionAttempts` rounds have failed. Otherwise keep
   * trying in the background and resolve on the first success (refused logins still reject at once).
   */
  start(failFast: boolean): Promise<void> {
    this.running ??= this.run(false, failFast ? this.options.connectionAttempts : this.streak.maxAttempts, 0);
    return this.running;
  }

  /** Cut a pending backoff wait short: a sibling connection just reached the broker, so it is back. */
  retryNow(): void {
    if (this.waiting) this.waiting.abort();
    else if (this.running && !this.isOpen) this.wokenEarly = true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.connectedWaiters.rejectAll(new ClosedError(`${this.role} connection closed by the application`));
    const c = this.current;
    this.current = null;
    if (c) await c.close();
  }

  private async run(recovering: boolean, maxRounds: number, initialDelayMs: number): Promise<void> {
    let conn: AmqpConnection;
    try {
      conn = await connectWithPolicy(this.options, this.logger, {
        maxRounds,
        streak: this.streak,
        initialDelayMs,
        // close() aborts a connect in progress; a wake-up only cuts a wait short.
        signal: this.abort.signal,
        wait: (ms) => this.backoffWait(ms),
        onRetry: (info) => {
          const msg = `${this.role}: connect failed (${info.error.message}); attempt ${info.attempt + 1} in ${info.delayMs} ms`;
          if (info.attempt >= 3) this.logger.warn(msg);
          else this.logger.debug?.(msg);
          this.emit('reconnecting', { attempt: info.attempt, delayMs: info.delayMs });
        },
      });
    } catch (err) {
      if (this.closed) throw new ClosedError(`${this.role} connection closed by the application`);
      this.emit('failed', err as Error);
      this.connectedWaiters.rejectAll(err as Error);
      throw err;
    }
    if (this.closed) {
      await conn.close();
      throw new ClosedError(`${this.role} connection closed by the application`);
    }
    this.attach(conn, recovering);
  }

  private async backoffWait(ms: number): Promise<void> {
    if (this.wokenEarly) {
      this.wokenEarly = false;
      return;
    }
    const waiting = new AbortController();
    this.waiting = waiting;
    await sleep(ms, AbortSignal.any([this.abort.signal, waiting.signal]));
    if (this.waiting === waiting) this.waiting = null;
  }

  private attach(conn: AmqpConnection, recovering: boolean): void {
    this.current = conn;
    this.wokenEarly = false;
    this.generation++;
    this.streak.up();
    conn.on('blocked', (reason) => this.emit('blocked', reason));
    conn.on('unblocked', () => this.emit('unblocked'));
    conn.on('secretUpdated', () => this.emit('secretUpdated'));
    conn.on('secretRefreshFailed', (err, retryInMs) => this.emit('secretRefreshFailed', err, retryInMs));
    conn.once('close', (err) => {
      if (this.current === conn) this.current = null;
      if (this.closed || err === undefined) return;
      this.emit('disconnected', err);
      if (!isRetryable(err)) {
        this.emit('failed', err);
        this.connectedWaiters.rejectAll(err);
        return;
      }
      const delayMs = this.streak.down();
      if (delayMs > 0)
        this.logger.warn(
          `${this.role}: connection lost ${this.streak.failures} time(s) in a row within ${this.streak.healthyAfterMs} ms of connecting (${err.message}); reconnecting in ${delayMs} ms`,
        );
      this.run(true, this.streak.maxAttempts, delayMs).catch((e: Error) =>
        this.logger.debug?.(`${this.role}: recovery stopped: ${e.message}`),
      );
    });
    this.connectedWaiters.resolveAll(conn);
    this.emit('connected', conn, recovering);
  }
}
