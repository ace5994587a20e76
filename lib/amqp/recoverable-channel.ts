import { EventEmitter } from 'node:events';
import type { Channel } from './channel';
import type { AmqpConnection } from './connection';
import { Deferred, sleep, WaiterList } from './deferred';
import { AmqpError, ClosedError, ConfigError, UnsupportedError } from './errors';
import type { Logger } from './logger';
import { RetryStreak, type ReconnectOptions } from './reconnect-policy';
import { printAsJson } from './redact';

/** A setup attempt that failed; the channel tries again after `delayMs`. */
export interface SetupFailure {
  /** What failed, e.g. "consumer on queue 'orders'" or "publisher channel 2". */
  entity: string;
  /** Why it failed: usually the broker's {@link ChannelError} (404, 403, 405, 406...). */
  error: Error;
  /** Failures in a row. */
  attempt: number;
  /** The backoff before the next attempt, ms. */
  delayMs: number;
}

/** Events of a {@link RecoverableChannel}. */
export type RecoverableChannelEvents = {
  /** A new channel is open and `setup` has run on it. */
  ready: [channel: Channel];
  /** The channel died (connection loss or channel error); anything in flight on it is gone. */
  lost: [error: AmqpError];
  /** Opening or setting up failed on a live connection: it is retried after a backoff. */
  setupFailed: [failure: SetupFailure];
};

/** @internal how a RecoverableChannel is made (AmqpSession builds these). */
export interface RecoverableChannelConfig {
  /** What this channel is for, in logs, events and errors. */
  entity: string;
  /** Runs on every new channel before it is handed out: qos, confirm mode, consume, declarations it owns. */
  setup: (ch: Channel) => Promise<void>;
  /** The connection to open on, waiting for (re)connection; rejects once it is closed for good. */
  connection: () => Promise<AmqpConnection>;
  logger: Logger;
  reconnect?: ReconnectOptions;
  /**
   * Back off before reopening after a broker channel error (default true). False for a channel whose
   * errors are its caller's own (the session's topology channel: a refused declare closes it).
   */
  backoffAfterError?: boolean;
  /** The first setup failure ends it (its caller learns at once, e.g. a new consumer on a missing queue). */
  failFirstSetup?: boolean;
  /** Told once it has stopped for good (closed, or ended by a failure it does not retry). */
  onClosed?: () => void;
}

/**
 * The one self-healing channel: open → set up → hand out; on a channel-level error (or a failed
 * setup) back off and reopen on the same connection; on a connection loss wait for the next
 * connection. The publisher pool, every consumer, the topology channel and the Nest reply channel
 * are each one of these, so there is one way a channel comes back. Work in flight when it dies is
 * the owner's to fail: listen to `lost`.
 */
export class RecoverableChannel extends EventEmitter<RecoverableChannelEvents> {
  /** The open, set-up channel right now, or null while it is being (re)opened. */
  current: Channel | null = null;
  private closed = false;
  private readonly waiters = new WaiterList<Channel>();
  private readonly streak: RetryStreak;
  private readonly stop = new AbortController();
  private readonly first = new Deferred<Channel>();
  private lastError: Error | null = null;

  /** @internal created by AmqpSession */
  constructor(private readonly config: RecoverableChannelConfig) {
    super();
    this.streak = new RetryStreak(config.reconnect);
    this.first.promise.catch(() => undefined);
    void this.run();
  }

  /** What this channel is for, as logs, events and errors name it. */
  get entity(): string {
    return this.config.entity;
  }

  /** The open channel, waiting for (re)connection when there is none. */
  channel(): Promise<Channel> {
    if (this.current?.isOpen) return Promise.resolve(this.current);
    if (this.closed) return Promise.reject(new ClosedError(`${this.entity} is closed`));
    return this.waiters.wait();
  }

  /** Resolves on the first successful setup; with `failFirstSetup`, rejects on the first failure. */
  opened(): Promise<Channel> {
    return this.first.promise;
  }

  /** Why the last setup failed (null after a success): for readiness reports. */
  get failure(): Error | null {
    return this.lastError;
  }

  /** A set-up channel is open right now. */
  get isReady(): boolean {
    return this.current?.isOpen === true;
  }

  /** What `JSON.stringify` shows: what it is for and its state, never its session or connection. */
  toJSON(): {
    /** {@link RecoverableChannel.entity}. */
    entity: string;
    /** {@link RecoverableChannel.isReady}. */
    ready: boolean;
    /** True after `close()`. */
    closed: boolean;
    /** The current channel's number, or null while there is none. */
    channel: number | null;
  } {
    return { entity: this.entity, ready: this.isReady, closed: this.closed, channel: this.current?.id ?? null };
  }

  /** Stop for good: close the channel, stop reopening it; waiting `channel()` calls reject with {@link ClosedError}. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort();
    this.config.onClosed?.();
    const err = new ClosedError(`${this.entity} is closed`);
    this.waiters.rejectAll(err);
    this.first.reject(err);
    const ch = this.current;
    this.current = null;
    if (ch?.isOpen) await ch.close().catch(() => undefined);
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      let conn: AmqpConnection;
      try {
        conn = await this.config.connection();
      } catch (err) {
        // The connection is gone for good (closed, or recovery gave up).
        this.end(err as Error);
        return;
      }
      if (this.closed) return;
      const ch = await this.openOn(conn);
      if (ch === null) continue;
      const ended = new Deferred<AmqpError | undefined>();
      ch.once('close', (e) => ended.resolve(e));
      this.current = ch;
      this.lastError = null;
      this.streak.up();
      this.waiters.resolveAll(ch);
      this.first.resolve(ch);
      this.emit('ready', ch);
      const err = await ended.promise;
      if (this.current === ch) this.current = null;
      if (this.closed) return;
      if (err) this.emit('lost', err);
      // A channel error on a live connection: reopen on it, backing off if it keeps dying young.
      if (conn.isOpen && err) {
        if (this.config.backoffAfterError === false) {
          this.config.logger.debug?.(`${this.entity}: channel closed (${err.message}); reopening`);
          continue;
        }
        const delayMs = this.streak.down();
        this.config.logger.warn(
          `${this.entity}: channel closed (${err.message}); reopening${delayMs > 0 ? ` in ${delayMs} ms (${this.streak.failures} times in a row soon after setup)` : ''}`,
        );
        if (delayMs > 0) await sleep(delayMs, this.stop.signal);
      }
    }
  }

  /** Open and set up a channel on `conn`; null when it failed (after the backoff wait) or conn died. */
  private async openOn(conn: AmqpConnection): Promise<Channel | null> {
    let ch: Channel | null = null;
    try {
      ch = await conn.channel();
      await this.config.setup(ch);
      if (!ch.isOpen) throw ch.closeReason ?? new ClosedError(`${this.entity}: channel closed during setup`);
      if (this.closed) {
        await ch.close().catch(() => undefined);
        return null;
      }
      return ch;
    } catch (err) {
      if (ch?.isOpen) await ch.close().catch(() => undefined);
      if (this.closed) return null;
      // The connection died under us: its recovery brings the next one.
      if (!conn.isOpen) return null;
      const error = err as Error;
      this.lastError = error;
      if (this.config.failFirstSetup && !this.first.isSettled) {
        this.end(error);
        return null;
      }
      if (error instanceof ConfigError || error instanceof UnsupportedError) {
        this.config.logger.error(`${this.entity}: ${error.message}; not retried`);
        this.end(error);
        return null;
      }
      const delayMs = this.streak.failed();
      this.config.logger.warn(
        `${this.entity}: setup failed (${error.message}); retry ${this.streak.failures} in ${delayMs} ms`,
      );
      this.emit('setupFailed', { entity: this.entity, error, attempt: this.streak.failures, delayMs });
      await sleep(delayMs, this.stop.signal);
      return null;
    }
  }

  /** Stop for good with `err`: waiters and the first-open promise learn it. */
  private end(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort();
    this.config.onClosed?.();
    this.waiters.rejectAll(err);
    this.first.reject(err);
  }
}

// `util.inspect` prints it as its toJSON().
printAsJson(RecoverableChannel, 'RecoverableChannel');
