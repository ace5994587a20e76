import { Connection } from 'rabbitmq-client';
import { type ClientBench, pipelined, publishWindow, waitForCount } from './types';

/**
 * rabbitmq-client through its recommended high-level API: Publisher.send() returns a promise that resolves once the
 * frames are written (respecting socket backpressure) or, with confirm: true, once the broker acks; Consumer acks
 * each message when its handler returns.
 */
export class RabbitmqClientBench implements ClientBench {
  readonly name = 'rabbitmq-client';
  private rabbit?: Connection;

  private get conn(): Connection {
    if (!this.rabbit) throw new Error('setup() first');
    return this.rabbit;
  }

  async setup(url: string): Promise<void> {
    const rabbit = new Connection({ url, retryLow: 100, retryHigh: 1000 });
    rabbit.on('error', (err) => process.stderr.write(`rabbitmq-client: ${String(err)}\n`));
    this.rabbit = rabbit;
    await rabbit.onConnect(10_000);
  }

  async publishNoConfirm(queue: string, n: number, body: Buffer): Promise<void> {
    const pub = this.conn.createPublisher({ confirm: false });
    const envelope = { routingKey: queue };
    await pipelined(n, publishWindow(), () => pub.send(envelope, body));
    await waitForCount(async () => (await this.conn.queueDeclare({ queue, passive: true })).messageCount, n);
    await pub.close();
  }

  async publishConfirm(queue: string, n: number, inFlight: number, body: Buffer): Promise<void> {
    const pub = this.conn.createPublisher({ confirm: true });
    const envelope = { routingKey: queue };
    await pipelined(n, inFlight, () => pub.send(envelope, body));
    await pub.close();
  }

  async consume(queue: string, n: number, prefetch: number): Promise<void> {
    let received = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const sub = this.conn.createConsumer(
      { queue, queueOptions: { passive: true }, qos: { prefetchCount: prefetch } },
      () => {
        if (++received === n) done();
      },
    );
    let failure: unknown;
    sub.on('error', (err) => {
      failure ??= err;
      done();
    });
    await finished;
    await sub.close();
    if (failure) throw failure;
  }

  async teardown(): Promise<void> {
    await this.rabbit?.close();
    this.rabbit = undefined;
  }
}

export default RabbitmqClientBench;
