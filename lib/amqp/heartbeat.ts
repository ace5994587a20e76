/**
 * Heartbeat bookkeeping for one connection.
 *
 * A timer ticks every `min(250 ms, heartbeat / 4)`:
 *  - every heartbeat/2, if nothing was written since the last such check, a heartbeat frame goes out
 *    (so none is sent while other frames flow);
 *  - if nothing was read for 2 × heartbeat the peer is dead. Reads only set a flag (no clock read per
 *    chunk); the tick turns the flag into a timestamp, so detection lands within one tick of 2 × heartbeat.
 * The tick also measures its own lateness: a tick that fires more than a heartbeat late means the
 * event loop was blocked — the usual cause of the broker closing us for missed heartbeats.
 */
export class Heartbeat {
  wrote = false;
  read = false;
  private timer: NodeJS.Timeout | null = null;
  /** Once stopped (the connection ended), never started again. */
  private stopped = false;
  private lastTick = 0;
  private lastRead = 0;
  private lastSendCheck = 0;

  constructor(
    private readonly seconds: number,
    private readonly sendHeartbeat: () => void,
    private readonly onDead: () => void,
    private readonly onEventLoopBlocked: (blockedMs: number) => void,
  ) {}

  start(): void {
    if (this.seconds <= 0 || this.timer || this.stopped) return;
    const tickMs = Math.min(250, (this.seconds * 1000) / 4);
    const now = Date.now();
    this.lastTick = now;
    this.lastRead = now;
    this.lastSendCheck = now;
    this.timer = setInterval(() => this.tick(tickMs), tickMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(tickMs: number): void {
    const now = Date.now();
    const hbMs = this.seconds * 1000;
    const late = now - this.lastTick - tickMs;
    this.lastTick = now;
    if (late > hbMs) this.onEventLoopBlocked(late + tickMs);
    if (this.read) {
      this.read = false;
      this.lastRead = now;
    } else if (late <= tickMs && now - this.lastRead >= 2 * hbMs) {
      // (A late tick skips this check: after a blocked event loop, unread data may be waiting in the
      // socket — the next tick, after I/O has been polled, decides.)
      this.stop();
      this.onDead();
      return;
    }
    if (now - this.lastSendCheck >= hbMs / 2) {
      this.lastSendCheck = now;
      if (!this.wrote) this.sendHeartbeat();
      this.wrote = false;
    }
  }
}
