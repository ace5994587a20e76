import type { Channel } from './channel';
import type { AmqpConnection } from './connection';
import { WaiterList } from './deferred';
import { ClosedError } from './errors';
import type { Logger } from './logger';
import type { SetupFailure } from './recoverable-channel';
import type { TopologyRecord } from './topology';

/** @internal what the session hears from a replay. */
export interface TopologyRecoveryHooks {
  renamed(from: string, to: string): void;
  setupFailed(failure: SetupFailure): void;
  /** The topology is back on a new consumer connection: consumers may attach, held publishes may go. */
  replayed(): void;
}

/**
 * The consumer side's recovery gate: on every new consumer connection the recorded topology is
 * replayed (exchanges → queues → bindings, refused entities reported and skipped), and only then is
 * the connection handed to the channels that need it — consumers, the topology channel, consumer-side
 * recoverable channels — so nothing consumes from, or binds to, what is not declared yet.
 */
export class TopologyRecovery {
  private replayedOn: AmqpConnection | null = null;
  private readonly waiters = new WaiterList<AmqpConnection>();
  private closed = false;

  constructor(
    private readonly topology: TopologyRecord,
    private readonly logger: Logger,
    private readonly hooks: TopologyRecoveryHooks,
  ) {}

  /** The replay on the current consumer connection is done (and that connection is open). */
  get isReplayed(): boolean {
    return this.replayedOn !== null && this.replayedOn.isOpen;
  }

  /** The consumer connection once its topology has been replayed, waiting for it when needed. */
  connection(): Promise<AmqpConnection> {
    if (this.replayedOn?.isOpen) return Promise.resolve(this.replayedOn);
    if (this.closed) return Promise.reject(new ClosedError('the session is closed'));
    return this.waiters.wait();
  }

  /** A new consumer connection: replay, then open the gate. */
  async connected(conn: AmqpConnection): Promise<void> {
    let ch: Channel | null = null;
    const channel = async (): Promise<Channel> => {
      if (!ch?.isOpen) ch = await conn.channel();
      return ch;
    };
    try {
      await this.topology.replay(channel, {
        onRename: (from, to) => this.hooks.renamed(from, to),
        onFailed: (entity, error) =>
          this.hooks.setupFailed({ entity: `recorded ${entity}`, error, attempt: 1, delayMs: 0 }),
      });
    } catch (err) {
      // The connection died mid-replay: its recovery replays again.
      this.logger.debug?.(`topology replay interrupted: ${(err as Error).message}`);
      return;
    }
    const used = ch as Channel | null;
    if (used?.isOpen) void used.close().catch(() => undefined);
    if (!conn.isOpen || this.closed) return;
    this.replayedOn = conn;
    this.waiters.resolveAll(conn);
    this.hooks.replayed();
  }

  /** The consumer connection is gone: the gate closes until the next replay. */
  disconnected(): void {
    this.replayedOn = null;
  }

  /** Nothing will come back (recovery gave up, or the session closed): fail whoever waits. */
  fail(err: Error): void {
    this.waiters.rejectAll(err);
  }

  close(err: Error): void {
    this.closed = true;
    this.replayedOn = null;
    this.waiters.rejectAll(err);
  }
}
