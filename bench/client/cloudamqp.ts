import { AMQPClient, type AMQPBaseClient } from '@cloudamqp/amqp-client';
import { type ClientBench, pipelined, publishWindow, waitForCount } from './types';

/**
 * @cloudamqp/amqp-client through its low-level AMQPClient/AMQPChannel API (its high-level AMQPSession publishes
 * persistent + confirmed by default). basicPublish() resolves when the frame is written to the socket (its write
 * callback: that is the library's backpressure) or, after confirmSelect(), when the broker acks.
 */
export class CloudamqpBench implements ClientBench {
  readonly name = '@cloudamqp/amqp-client';
  private client?: AMQPBaseClient;

  private get conn(): AMQPBaseClient {
    if (!this.client) throw new Error('setup() first');
    return this.client;
  }

  async setup(url: string): Promise<void> {
    this.client = await new AMQPClient(url, undefined, null).connect();
  }

  async publishNoConfirm(queue: string, n: number, body: Buffer): Promise<void> {
    const ch = await this.conn.channel();
    await pipelined(n, publishWindow(), () => ch.basicPublish('', queue, body));
    await waitForCount(async () => (await ch.queueDeclare(queue, { passive: true })).messageCount, n);
    await ch.close();
  }

  async publishConfirm(queue: string, n: number, inFlight: number, body: Buffer): Promise<void> {
    const ch = await this.conn.channel();
    await ch.confirmSelect();
    await pipelined(n, inFlight, () => ch.basicPublish('', queue, body));
    await ch.close();
  }

  async consume(queue: string, n: number, prefetch: number): Promise<void> {
    const ch = await this.conn.channel();
    await ch.basicQos(prefetch);
    let received = 0;
    let failure: unknown;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const consumer = await ch.basicConsume(queue, { noAck: false }, (msg) => {
      msg.ack().catch((err: unknown) => {
        failure ??= err;
        done();
      });
      if (++received === n) done();
    });
    await finished;
    await consumer.cancel();
    await ch.close();
    if (failure) throw failure;
  }

  async teardown(): Promise<void> {
    await this.client?.close();
    this.client = undefined;
  }
}

export default CloudamqpBench;
