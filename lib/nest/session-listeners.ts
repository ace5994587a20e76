import type { AmqpSession, SessionEvents } from '../amqp';

type Listener = (...args: never[]) => unknown;

/**
 * The session listeners a Nest server or client was given with `on()`. Like Nest's own transports, `on()` may be
 * called before there is a session (before `listen()` / `connect()`): the listeners wait here and are attached when
 * the session is, so none of its events is missed, its first `connected` included. Kept after that, so a server
 * that listens again on a new session (after a failed start) hears that one too; detached when the server or client
 * lets go of the session.
 */
export class SessionListeners {
  private readonly listeners: Array<{ event: keyof SessionEvents; callback: Listener }> = [];
  private session: AmqpSession | null = null;

  add(event: string, callback: Listener): void {
    const entry = { event: event as keyof SessionEvents, callback };
    this.listeners.push(entry);
    this.session?.on(entry.event, entry.callback as never);
  }

  /** Attach every listener, now and as `add` gives more, to `session`. */
  attach(session: AmqpSession): void {
    if (this.session === session) return;
    this.detach();
    this.session = session;
    for (const { event, callback } of this.listeners) session.on(event, callback as never);
  }

  /** Take every listener off the session (they stay here for the next one). */
  detach(): void {
    const session = this.session;
    this.session = null;
    if (session) for (const { event, callback } of this.listeners) session.off(event, callback as never);
  }
}
