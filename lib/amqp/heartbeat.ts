/**
 * Heartbeat bookkeeping for one connection. A timer ticks every heartbeat/2 seconds:
 *  - nothing written since the last tick → send a heartbeat frame (so none is sent while frames flow);
 *  - nothing read for 4 ticks (2 × heartbeat) → the peer is dead.
 * Flags instead of timestamps keep the per-frame cost to one boolean store.
 * The tick also measures its own lateness: a tick that fires more than a heartbeat late means the
 * event loop was blocked — the usual cause of the broker closing us for missed heartbeats.
 */
export class Heartbeat {
  wrote = false;
  read = false;
  private silentTicks = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastTick = 0;

  constructor(
    private readonly seconds: number,
    private readonly sendHeartbeat: () => void,
    private readonly onDead: () => void,
    private readonly onEventLoopBlocked: (blockedMs: number) => void,
  ) {}

  start(): void {
    if (this.seconds <= 0 || this.timer) return;
    const intervalMs = (this.seconds * 1000) / 2;
    this.lastTick = Date.now();
    this.timer = setInterval(() => this.tick(intervalMs), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(intervalMs: number): void {
    const now = Date.now();
    const late = now - this.lastTick - intervalMs;
    this.lastTick = now;
    if (late > this.seconds * 1000) this.onEventLoopBlocked(late + intervalMs);
    if (!this.wrote) this.sendHeartbeat();
    this.wrote = false;
    if (this.read) {
      this.read = false;
      this.silentTicks = 0;
    } else if (++this.silentTicks >= 4) {
      this.stop();
      this.onDead();
    }
  }
}
