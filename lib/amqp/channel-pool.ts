import type { Channel } from './channel';
import type { AmqpConnection } from './connection';
import { WaiterList } from './deferred';
import { ClosedError } from './errors';
import type { Logger } from './logger';
import type { ReconnectOptions } from './reconnect-policy';
import { RecoverableChannel, type SetupFailure } from './recoverable-channel';

/** Size of a session's pool of publisher channels, and how long {@link AmqpSession.acquire} waits for one. */
export interface ChannelPoolOptions {
  /** Channels in the pool. Default 4. */
  size?: number;
  /** How long `acquire()` waits for a free channel, ms. Default 5000. */
  acquireTimeoutMs?: number;
}

/** @internal what the pool tells its owner. */
export interface ChannelPoolEvents {
  /** A channel joined the rotation (opened, reopened, or released). */
  available(): void;
  setupFailed(failure: SetupFailure): void;
}

/**
 * Publishing channels in confirm mode, each a RecoverableChannel (so each reopens itself, with the
 * one backoff, after a channel error or a reconnect). One-shot publishes are spread round-robin over
 * every open channel (a channel carries many concurrent confirms); `acquire()` takes one out of
 * rotation for exclusive use until `release()`.
 * @internal
 */
export class ChannelPool {
  private readonly members: RecoverableChannel[];
  private readonly leased = new Set<Channel>();
  private readonly leaseWaiters = new WaiterList<Channel>();
  private next = 0;
  private closed = false;
  /** Channels in the pool. */
  readonly size: number;
  /** How long `acquire()` waits for a free channel, ms. */
  readonly acquireTimeoutMs: number;

  /** @internal created by AmqpSession */
  constructor(
    connection: () => Promise<AmqpConnection>,
    logger: Logger,
    options: ChannelPoolOptions,
    reconnect: ReconnectOptions | undefined,
    private readonly events: ChannelPoolEvents,
  ) {
    this.size = options.size ?? 4;
    this.acquireTimeoutMs = options.acquireTimeoutMs ?? 5000;
    this.members = Array.from({ length: this.size }, (_, i) => {
      const rc = new RecoverableChannel({
        entity: `publisher channel ${i + 1} of ${this.size}`,
        setup: (ch) => ch.confirmSelect(),
        connection,
        logger,
        reconnect,
      });
      rc.on('ready', (ch) => this.joined(ch));
      rc.on('setupFailed', (f) => this.events.setupFailed(f));
      return rc;
    });
  }

  /** Every member is open and in confirm mode. */
  get isReady(): boolean {
    return this.members.every((m) => m.isReady);
  }

  /** Why members are not ready (their last setup errors), for readiness reports. */
  get failures(): string[] {
    return this.members.filter((m) => !m.isReady && m.failure).map((m) => `${m.entity}: ${m.failure?.message}`);
  }

  /** A channel for a one-shot publish (shared; round-robin), or null when none is open. */
  pick(): Channel | null {
    const n = this.members.length;
    for (let i = 0; i < n; i++) {
      const ch = this.members[(this.next + i) % n].current;
      if (ch !== null && ch.isOpen && !this.leased.has(ch)) {
        this.next = (this.next + i + 1) % n;
        return ch;
      }
    }
    return null;
  }

  /** Exclusive use of one channel, waiting at most acquireTimeoutMs for one to be free. */
  acquire(): Promise<Channel> {
    if (this.closed) return Promise.reject(new ClosedError('channel pool is closed'));
    for (const m of this.members) {
      const ch = m.current;
      if (ch !== null && ch.isOpen && !this.leased.has(ch)) {
        this.leased.add(ch);
        return Promise.resolve(ch);
      }
    }
    return this.leaseWaiters.wait(
      this.acquireTimeoutMs,
      'acquire',
      () => `no pooled channel became free within ${this.acquireTimeoutMs} ms`,
    );
  }

  /** Give back a channel taken with `acquire()`: it rejoins the rotation (if still open). */
  release(ch: Channel): void {
    this.leased.delete(ch);
    if (ch.isOpen && !this.closed) this.joined(ch);
  }

  /** Wait for every open pooled channel's confirms. */
  async settle(): Promise<void> {
    await Promise.all(this.members.map((m) => m.current?.settle()));
  }

  /** Close every channel of the pool; waiting `acquire()` calls reject with {@link ClosedError}. */
  async close(): Promise<void> {
    this.closed = true;
    this.leaseWaiters.rejectAll(new ClosedError('channel pool is closed'));
    await Promise.all(this.members.map((m) => m.close()));
  }

  private joined(ch: Channel): void {
    this.leased.delete(ch);
    if (this.leaseWaiters.size > 0) {
      this.leased.add(ch);
      if (this.leaseWaiters.resolveOne(ch)) return;
      this.leased.delete(ch);
    }
    this.events.available();
  }
}
