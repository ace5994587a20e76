import { EventEmitter } from 'node:events';
import { backoffDelay, type BackoffOptions, BACKOFF_DEFAULTS } from './backoff';
import { AmqpConnection } from './connection';
import {
  AmqpError,
  AuthenticationError,
  ClosedError,
  ConnectionError,
  ReplyCode,
  TimeoutError,
  VhostError,
} from './errors';
import type { Logger } from './logger';
import type { ResolvedConnectionOptions } from './options';
import { describeEndpoint } from './url';

export type ManagedConnectionEvents = {
  connected: [connection: AmqpConnection, recovering: boolean];
  disconnected: [cause: AmqpError];
  reconnecting: [info: { attempt: number; delayMs: number }];
  /** Reconnecting stopped for good: authentication refused, or maxAttempts reached. */
  failed: [error: Error];
  blocked: [reason: string];
  unblocked: [];
};

/** Whether a connection loss should be recovered from. Refused logins and vhost errors never are. */
export function isRecoverable(err: AmqpError | undefined): boolean {
  if (err === undefined) return false;
  if (err instanceof AuthenticationError || err instanceof VhostError) return false;
  if (err instanceof ConnectionError) return err.replyCode !== ReplyCode.ACCESS_REFUSED;
  return true;
}

/**
 * One connection that comes back: on loss (socket end or error, missed heartbeats, a broker close
 * other than an access refusal) it reconnects with exponential backoff and full jitter, cycling
 * through every endpoint. `close()` by the application stops it for good.
 */
export class ManagedConnection extends EventEmitter<ManagedConnectionEvents> {
  current: AmqpConnection | null = null;
  /** Bumped on every new connection; stale handles compare against it. */
  generation = 0;
  private closed = false;
  private running: Promise<void> | null = null;
  private endpointIndex = 0;
  private readonly backoff: Required<BackoffOptions>;
  private wakeUp: (() => void) | null = null;

  constructor(
    readonly role: string,
    private readonly options: ResolvedConnectionOptions,
    private readonly logger: Logger,
    backoff: BackoffOptions = {},
  ) {
    super();
    this.backoff = { ...BACKOFF_DEFAULTS, ...backoff };
  }

  get isOpen(): boolean {
    return this.current !== null && this.current.isOpen;
  }

  /** Where it connects, passwords left out (`describeEndpoint`): for printing the session. */
  get targets(): string[] {
    return this.options.endpoints.map((e) => describeEndpoint(e));
  }

  /**
   * Connect once. `failFast`: the first failure rejects. Otherwise keep retrying in the background and
   * resolve on the first success (authentication failures still reject at once).
   */
  start(failFast: boolean): Promise<void> {
    if (!this.running) this.running = this.loop(false, failFast);
    return this.running;
  }

  /** Cut a pending backoff wait short: a sibling connection just reached the broker, so it is back. */
  retryNow(): void {
    this.wakeUp?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wakeUp?.();
    const c = this.current;
    this.current = null;
    if (c) await c.close();
  }

  private async loop(recovering: boolean, failFast: boolean): Promise<void> {
    let attempt = 0;
    for (;;) {
      if (this.closed) throw new ClosedError(`${this.role} connection closed by the application`);
      const endpoint = this.options.endpoints[this.endpointIndex % this.options.endpoints.length];
      try {
        const conn = await AmqpConnection.connectOnce(endpoint, this.options, this.logger);
        if (this.closed) {
          await conn.close();
          throw new ClosedError(`${this.role} connection closed by the application`);
        }
        this.attach(conn, recovering);
        return;
      } catch (err) {
        if (err instanceof ClosedError && this.closed) throw err;
        const e = err as Error;
        if (!isRecoverable(e instanceof AmqpError ? e : undefined) && e instanceof AmqpError) {
          this.emit('failed', e);
          throw e;
        }
        if (failFast && !recovering) throw e;
        attempt++;
        this.endpointIndex++;
        if (attempt >= this.backoff.maxAttempts) {
          const final = new TimeoutError(
            `${this.role} connection: gave up after ${attempt} attempts (last: ${e.message})`,
            'reconnect',
            0,
          );
          this.emit('failed', final);
          throw final;
        }
        const delayMs = backoffDelay(attempt, this.backoff);
        this.logger.debug?.(
          `${this.role}: connect to ${describeEndpoint(endpoint)} failed (${e.message}); retry in ${delayMs} ms`,
        );
        this.emit('reconnecting', { attempt, delayMs });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delayMs);
          this.wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeUp = null;
      }
    }
  }

  private attach(conn: AmqpConnection, recovering: boolean): void {
    this.current = conn;
    this.generation++;
    conn.on('blocked', (reason) => this.emit('blocked', reason));
    conn.on('unblocked', () => this.emit('unblocked'));
    conn.once('close', (err) => {
      if (this.current === conn) this.current = null;
      if (this.closed || err === undefined) return;
      this.emit('disconnected', err);
      if (!isRecoverable(err)) {
        this.emit('failed', err);
        return;
      }
      this.loop(true, false).catch((e: Error) => this.logger.debug?.(`${this.role}: recovery stopped: ${e.message}`));
    });
    this.emit('connected', conn, recovering);
  }
}
