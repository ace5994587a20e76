import type { Channel } from './channel';
import type { AmqpConnection } from './connection';
import { ClosedError, TimeoutError } from './errors';
import type { Logger } from './logger';

export interface ChannelPoolOptions {
  /** Channels in the pool. Default 4. */
  size?: number;
  /** How long `acquire()` waits for a free channel, ms. Default 5000. */
  acquireTimeoutMs?: number;
}

/** @internal told whenever a channel joins the pool (filled or replaced). */
export type ChannelAvailable = () => void;

/**
 * Publishing channels in confirm mode on one connection. One-shot publishes are spread round-robin
 * over every open channel (a channel carries many concurrent confirms); `acquire()` takes one out of
 * rotation for exclusive use until `release()`. A channel closed by a channel error is dropped and
 * replaced, never handed out again.
 */
export class ChannelPool {
  private readonly channels: Channel[] = [];
  private readonly leased = new Set<Channel>();
  private waiters: Array<{ resolve: (ch: Channel) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];
  private next = 0;
  private closed = false;
  readonly size: number;
  readonly acquireTimeoutMs: number;

  constructor(
    private readonly connection: AmqpConnection,
    private readonly logger: Logger,
    options: ChannelPoolOptions = {},
    private readonly onAvailable: ChannelAvailable = () => undefined,
  ) {
    this.size = options.size ?? 4;
    this.acquireTimeoutMs = options.acquireTimeoutMs ?? 5000;
  }

  /** Open every channel (confirm mode). */
  async fill(): Promise<void> {
    const missing = this.size - this.channels.length;
    await Promise.all(Array.from({ length: missing }, () => this.openOne()));
  }

  /** A channel for a one-shot publish (shared; round-robin). */
  pick(): Channel | null {
    const n = this.channels.length;
    for (let i = 0; i < n; i++) {
      const ch = this.channels[(this.next + i) % n];
      if (ch.isOpen && !this.leased.has(ch)) {
        this.next = (this.next + i + 1) % n;
        return ch;
      }
    }
    return null;
  }

  /** Exclusive use of one channel, waiting at most acquireTimeoutMs for one to be free. */
  acquire(): Promise<Channel> {
    if (this.closed) return Promise.reject(new ClosedError('channel pool is closed'));
    const free = this.channels.find((ch) => ch.isOpen && !this.leased.has(ch));
    if (free) {
      this.leased.add(free);
      return Promise.resolve(free);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(
          new TimeoutError(
            `no pooled channel became free within ${this.acquireTimeoutMs} ms`,
            'acquire',
            this.acquireTimeoutMs,
          ),
        );
      }, this.acquireTimeoutMs);
      this.waiters.push({ resolve, reject, timer });
    });
  }

  release(ch: Channel): void {
    this.leased.delete(ch);
    if (!ch.isOpen) return;
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      this.leased.add(ch);
      w.resolve(ch);
    } else if (!this.closed) {
      // Back in rotation: one-shot publishes held while every channel was leased can go out now.
      this.onAvailable();
    }
  }

  /** Stop: reject waiters; channels close with their connection. */
  close(): void {
    this.closed = true;
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new ClosedError('channel pool is closed'));
    }
    this.waiters = [];
  }

  /** Wait for every pooled channel's confirms. */
  async settle(): Promise<void> {
    await Promise.all(this.channels.map((ch) => ch.settle()));
  }

  private async openOne(): Promise<void> {
    const ch = await this.connection.channel();
    await ch.confirmSelect();
    this.channels.push(ch);
    ch.once('close', (err) => {
      const i = this.channels.indexOf(ch);
      if (i >= 0) this.channels.splice(i, 1);
      this.leased.delete(ch);
      // A channel error (not a connection loss): replace the channel on the same connection.
      if (err && !this.closed && this.connection.isOpen) {
        this.logger.debug?.(`pooled channel ${ch.id} closed (${err.message}); replacing it`);
        this.openOne().catch((e: Error) => this.logger.warn(`could not replace a pooled channel: ${e.message}`));
      }
    });
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      this.leased.add(ch);
      w.resolve(ch);
    }
    this.onAvailable();
  }
}
