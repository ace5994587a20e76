import { AmqpConnection } from '../../lib';
import { type ClientBench, pipelined, publishWindow, waitForCount } from './types';

type Connection = Awaited<ReturnType<typeof AmqpConnection.connect>>;

/**
 * nestjs-warren's own client. publish() resolves once written (waiting for socket 'drain' under backpressure) or,
 * in confirm mode, on the broker's ack. Loaded lazily by the worker: if lib/ does not build yet, this row reports
 * the load error instead of breaking the run.
 */
export class WarrenBench implements ClientBench {
  readonly name = 'warren';
  private connection?: Connection;

  private get conn(): Connection {
    if (!this.connection) throw new Error('setup() first');
    return this.connection;
  }

  async setup(url: string): Promise<void> {
    this.connection = await AmqpConnection.connect(url);
  }

  async publishNoConfirm(queue: string, n: number, body: Buffer): Promise<void> {
    const ch = await this.conn.channel();
    await pipelined(n, publishWindow(), () => ch.publish('', queue, body, {}));
    await waitForCount(
      async () => (await ch.queueDeclare(queue, { durable: false, autoDelete: false })).messageCount,
      n,
    );
    await ch.close();
  }

  async publishConfirm(queue: string, n: number, inFlight: number, body: Buffer): Promise<void> {
    const ch = await this.conn.channel();
    await ch.confirmSelect();
    await pipelined(n, inFlight, () => ch.publish('', queue, body, {}));
    await ch.close();
  }

  async consume(queue: string, n: number, prefetch: number): Promise<void> {
    const ch = await this.conn.channel();
    await ch.qos(prefetch);
    let received = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const { consumerTag } = await ch.consume(
      queue,
      (msg) => {
        ch.ack(msg.fields.deliveryTag);
        if (++received === n) done();
      },
      { noAck: false },
    );
    await finished;
    await ch.cancel(consumerTag);
    await ch.close();
  }

  async teardown(): Promise<void> {
    await this.connection?.close();
    this.connection = undefined;
  }
}

export default WarrenBench;
