import { Connection, type Consumer, type Publisher } from 'rabbitmq-client';
import type { AdapterOptions, RecoveryAdapter } from '../protocol';

/**
 * rabbitmq-client 5 with its built-in recovery and default retry settings (retryLow 1 s, retryHigh 30 s, publisher
 * maxAttempts 1): a confirm Publisher and a Consumer that acks when its handler returns.
 */
export class RabbitmqClientRecovery implements RecoveryAdapter {
  readonly name = 'rabbitmq-client';
  private rabbit?: Connection;
  private pub?: Publisher;
  private sub?: Consumer;
  private options?: AdapterOptions;

  async connect(options: AdapterOptions): Promise<void> {
    this.options = options;
    const ev = options.onEvent;
    const rabbit = new Connection({
      url: options.url,
      connectionName: options.connectionName,
      heartbeat: options.heartbeat,
    });
    rabbit.on('connection', () => ev('connection'));
    rabbit.on('error', (err: Error) => ev(`error: ${err.message}`));
    rabbit.on('connection.blocked', (reason: string) => ev(`blocked: ${reason}`));
    rabbit.on('connection.unblocked', () => ev('unblocked'));
    this.rabbit = rabbit;
    await rabbit.onConnect(10_000);
    await rabbit.queueDeclare({ queue: options.queue, durable: true });
    const pub = rabbit.createPublisher({ confirm: true });
    pub.on('retry', (err: Error) => ev(`publisher retry: ${err.message}`));
    this.pub = pub;
  }

  async consume(onMessage: (body: Buffer, redelivered: boolean) => void): Promise<void> {
    if (!this.rabbit || !this.options) throw new Error('connect() first');
    const ev = this.options.onEvent;
    let ready!: () => void;
    const started = new Promise<void>((resolve) => (ready = resolve));
    const sub = this.rabbit.createConsumer(
      {
        queue: this.options.queue,
        queueOptions: { durable: true },
        qos: { prefetchCount: this.options.prefetch },
      },
      (msg) => {
        onMessage(msg.body as Buffer, msg.redelivered);
      },
    );
    sub.on('ready', () => {
      ev('consumer ready');
      ready();
    });
    sub.on('error', (err: Error) => ev(`consumer error: ${err.message}`));
    this.sub = sub;
    await started;
  }

  async publish(seq: number, body: Buffer): Promise<void> {
    if (!this.pub || !this.options) throw new Error('connect() first');
    await this.pub.send({ routingKey: this.options.queue, durable: true, headers: { seq } }, body);
  }

  async close(): Promise<void> {
    await this.sub?.close().catch(() => undefined);
    await this.pub?.close().catch(() => undefined);
    await this.rabbit?.close();
  }
}

export default RabbitmqClientRecovery;
