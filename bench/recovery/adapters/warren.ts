import { AmqpSession } from '../../../lib/amqp/session';
import type { AdapterOptions, RecoveryAdapter } from '../protocol';

/** nestjs-warren's managed client (AmqpSession): split publisher/consumer connections, buffered + re-published publishes. */
export class WarrenRecovery implements RecoveryAdapter {
  readonly name = 'warren';
  private session?: AmqpSession;
  private options?: AdapterOptions;

  async connect(options: AdapterOptions): Promise<void> {
    this.options = options;
    const ev = options.onEvent;
    const session = new AmqpSession({
      url: options.url,
      connectionName: options.connectionName,
      heartbeat: options.heartbeat,
      logger: {
        debug: (m) => ev(`debug: ${m}`),
        log: (m) => ev(`log: ${m}`),
        warn: (m) => ev(`warn: ${m}`),
        error: (m) => ev(`error: ${m}`),
      },
    });
    session.on('connected', (role) => ev(`connected ${role}`));
    session.on('disconnected', (role, cause) => ev(`disconnected ${role}: ${cause.name}: ${cause.message}`));
    session.on('reconnecting', (role, info) => ev(`reconnecting ${role} attempt ${info.attempt}`));
    session.on('recovered', (role) => ev(`recovered ${role}`));
    session.on('recoveryFailed', (role, err) => ev(`recoveryFailed ${role}: ${err.name}: ${err.message}`));
    session.on('blocked', (role, reason) => ev(`blocked ${role}: ${reason}`));
    session.on('unblocked', (role) => ev(`unblocked ${role}`));
    this.session = session;
    await session.connect();
    await session.queueDeclare(options.queue, { durable: true });
  }

  async consume(onMessage: (body: Buffer, redelivered: boolean) => void): Promise<void> {
    const { session, options } = this.ready();
    await session.consume(
      options.queue,
      async (m) => {
        onMessage(m.body, m.fields.redelivered);
        m.ack();
      },
      { prefetch: options.prefetch },
    );
  }

  publish(seq: number, body: Buffer): Promise<void> {
    const { session, options } = this.ready();
    return session.publish('', options.queue, body, { persistent: true, headers: { seq } });
  }

  async close(): Promise<void> {
    await this.session?.close();
  }

  private ready(): { session: AmqpSession; options: AdapterOptions } {
    if (!this.session || !this.options) throw new Error('connect() first');
    return { session: this.session, options: this.options };
  }
}

export default WarrenRecovery;
