import { AmqpConnection, type Channel, type Logger } from '../../lib';
import { amqpUrl, uniqueName } from './broker';

/**
 * A test's own connection to the broker for setup and inspection, and the names it created: each
 * operation runs on a fresh channel (a channel error costs only that channel), and `cleanup()` deletes
 * every queue and exchange named through it.
 */
export class BrokerAdmin {
  private readonly queues = new Set<string>();
  private readonly exchanges = new Set<string>();

  private constructor(
    private conn: AmqpConnection,
    private readonly logger: Logger,
  ) {}

  static async open(logger: Logger): Promise<BrokerAdmin> {
    return new BrokerAdmin(await AmqpConnection.connect({ url: amqpUrl(), logger }), logger);
  }

  /** A unique queue name, deleted by cleanup(). */
  queue(prefix: string): string {
    const name = uniqueName(prefix);
    this.queues.add(name);
    return name;
  }

  /** A unique exchange name, deleted by cleanup(). */
  exchange(prefix: string): string {
    const name = uniqueName(prefix);
    this.exchanges.add(name);
    return name;
  }

  /** Run one operation on a fresh channel (reconnecting first if a fault test closed the connection). */
  async on<T>(op: (ch: Channel) => Promise<T>): Promise<T> {
    if (!this.conn.isOpen) this.conn = await AmqpConnection.connect({ url: amqpUrl(), logger: this.logger });
    const ch = await this.conn.channel();
    try {
      return await op(ch);
    } finally {
      if (ch.isOpen) await ch.close();
    }
  }

  /** A channel of its own on the admin connection (closed by the caller or with cleanup()). */
  async channel(): Promise<Channel> {
    if (!this.conn.isOpen) this.conn = await AmqpConnection.connect({ url: amqpUrl(), logger: this.logger });
    return this.conn.channel();
  }

  async cleanup(): Promise<void> {
    for (const q of this.queues) await this.on((ch) => ch.queueDelete(q)).catch(() => undefined);
    for (const ex of this.exchanges) await this.on((ch) => ch.exchangeDelete(ex)).catch(() => undefined);
    await this.conn.close();
  }
}
