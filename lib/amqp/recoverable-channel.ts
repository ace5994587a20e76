import { EventEmitter } from 'node:events';
import type { Channel } from './channel';
import type { AmqpConnection } from './connection';
import { ClosedError, type AmqpError } from './errors';
import type { Logger } from './logger';

export type RecoverableChannelEvents = {
  /** A new channel is open and `setup` has run on it. */
  ready: [channel: Channel];
  /** The channel died (connection loss or channel error); anything in flight on it is gone. */
  lost: [error: AmqpError];
};

/**
 * A channel the session re-opens after every recovery (and after a channel error), running the
 * owner's `setup` on each new one — e.g. a direct reply-to consumer that must share a channel with
 * the requests it answers. Work in flight when it dies is the owner's to fail: listen to `lost`.
 */
export class RecoverableChannel extends EventEmitter<RecoverableChannelEvents> {
  current: Channel | null = null;
  private closed = false;
  private waiters: Array<{ resolve: (ch: Channel) => void; reject: (e: Error) => void }> = [];

  /** @internal created by AmqpSession.recoverableChannel() */
  constructor(
    private readonly setup: (ch: Channel) => Promise<void>,
    private readonly logger: Logger,
    private readonly onClose: (rc: RecoverableChannel) => void,
  ) {
    super();
  }

  /** The open channel, waiting for (re)connection when there is none. */
  channel(): Promise<Channel> {
    if (this.current?.isOpen) return Promise.resolve(this.current);
    if (this.closed) return Promise.reject(new ClosedError('recoverable channel is closed'));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.onClose(this);
    for (const w of this.waiters.splice(0)) w.reject(new ClosedError('recoverable channel is closed'));
    const ch = this.current;
    this.current = null;
    if (ch?.isOpen) await ch.close().catch(() => undefined);
  }

  /** @internal the session has a connection for this channel's role (idempotent per connection) */
  attach(conn: AmqpConnection): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.current?.isOpen && this.current.connection === conn) return Promise.resolve();
    if (this.attaching && this.attachingTo === conn) return this.attaching;
    this.attachingTo = conn;
    this.attaching = this.open(conn).finally(() => {
      this.attaching = null;
      this.attachingTo = null;
    });
    return this.attaching;
  }

  private attaching: Promise<void> | null = null;
  private attachingTo: AmqpConnection | null = null;

  private async open(conn: AmqpConnection): Promise<void> {
    const ch = await conn.channel();
    try {
      await this.setup(ch);
    } catch (err) {
      await ch.close().catch(() => undefined);
      throw err;
    }
    this.current = ch;
    ch.once('close', (err) => {
      if (this.current === ch) this.current = null;
      if (this.closed || !err) return;
      this.emit('lost', err);
      // A channel error on a live connection: open a fresh one; connection losses are handled by recovery.
      if (conn.isOpen) {
        setTimeout(() => {
          if (!this.closed && conn.isOpen)
            this.attach(conn).catch((e: Error) => this.logger.warn(`cannot reopen channel: ${e.message}`));
        }, 100).unref();
      }
    });
    for (const w of this.waiters.splice(0)) w.resolve(ch);
    this.emit('ready', ch);
  }
}
