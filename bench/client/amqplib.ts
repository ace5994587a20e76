import { once } from 'node:events';
import * as amqp from 'amqplib';
import { type ClientBench, waitForCount } from './types';

/** amqplib's promise API: publish() returns false when the channel's buffer is full; wait for 'drain'. */
export class AmqplibBench implements ClientBench {
  readonly name = 'amqplib';
  private model?: amqp.ChannelModel;

  private get conn(): amqp.ChannelModel {
    if (!this.model) throw new Error('setup() first');
    return this.model;
  }

  async setup(url: string): Promise<void> {
    this.model = await amqp.connect(url);
  }

  async publishNoConfirm(queue: string, n: number, body: Buffer): Promise<void> {
    const ch = await this.conn.createChannel();
    for (let i = 0; i < n; i++) {
      if (!ch.publish('', queue, body)) await once(ch, 'drain');
    }
    await waitForCount(async () => (await ch.checkQueue(queue)).messageCount, n);
    await ch.close();
  }

  async publishConfirm(queue: string, n: number, inFlight: number, body: Buffer): Promise<void> {
    const ch = await this.conn.createConfirmChannel();
    let outstanding = 0;
    let failure: unknown;
    let wake: (() => void) | undefined;
    const onConfirm = (err: unknown): void => {
      if (err) failure ??= err;
      outstanding--;
      const w = wake;
      wake = undefined;
      w?.();
    };
    for (let i = 0; i < n; i++) {
      while (outstanding >= inFlight) await new Promise<void>((resolve) => (wake = resolve));
      if (failure) throw failure;
      outstanding++;
      if (!ch.publish('', queue, body, {}, onConfirm)) await once(ch, 'drain');
    }
    await ch.waitForConfirms();
    if (failure) throw failure;
    await ch.close();
  }

  async consume(queue: string, n: number, prefetch: number): Promise<void> {
    const ch = await this.conn.createChannel();
    await ch.prefetch(prefetch);
    let received = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const { consumerTag } = await ch.consume(
      queue,
      (msg) => {
        if (!msg) return;
        ch.ack(msg);
        if (++received === n) done();
      },
      { noAck: false },
    );
    await finished;
    await ch.cancel(consumerTag);
    await ch.close();
  }

  async teardown(): Promise<void> {
    await this.model?.close();
    this.model = undefined;
  }
}

export default AmqplibBench;
