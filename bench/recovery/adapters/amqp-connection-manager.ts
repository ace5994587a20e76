import * as acm from 'amqp-connection-manager';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { AdapterOptions, RecoveryAdapter } from '../protocol';

/**
 * amqp-connection-manager 5 over amqplib, the way Nest users wire it (and what @nestjs/microservices' RMQ transport
 * uses): one managed connection, a confirm ChannelWrapper for publishing, a ChannelWrapper consumer re-attached on
 * reconnect. heartbeatIntervalInSeconds also sets the reconnect delay (reconnectTimeInSeconds defaults to it).
 */
export class AmqpConnectionManagerRecovery implements RecoveryAdapter {
  readonly name = 'amqp-connection-manager';
  private manager?: acm.AmqpConnectionManager;
  private pub?: acm.ChannelWrapper;
  private sub?: acm.ChannelWrapper;
  private options?: AdapterOptions;

  async connect(options: AdapterOptions): Promise<void> {
    this.options = options;
    const ev = options.onEvent;
    const manager = acm.connect([options.url], {
      heartbeatIntervalInSeconds: options.heartbeat,
      connectionOptions: { clientProperties: { connection_name: options.connectionName } },
    });
    manager.on('connect', () => ev('connect'));
    manager.on('disconnect', ({ err }) => ev(`disconnect: ${err?.message ?? 'unknown'}`));
    manager.on('connectFailed', ({ err }) => ev(`connectFailed: ${err?.message ?? 'unknown'}`));
    manager.on('blocked', ({ reason }) => ev(`blocked: ${reason}`));
    manager.on('unblocked', () => ev('unblocked'));
    this.manager = manager;
    const queue = options.queue;
    const pub = manager.createChannel({
      name: 'publisher',
      confirm: true,
      setup: (ch: ConfirmChannel) => ch.assertQueue(queue, { durable: true }),
    });
    pub.on('error', (err: Error) => ev(`publisher channel error: ${err.message}`));
    pub.on('close', () => ev('publisher channel close'));
    this.pub = pub;
    await pub.waitForConnect();
  }

  async consume(onMessage: (body: Buffer, redelivered: boolean) => void): Promise<void> {
    if (!this.manager || !this.options) throw new Error('connect() first');
    const ev = this.options.onEvent;
    const sub = this.manager.createChannel({ name: 'consumer' });
    sub.on('error', (err: Error) => ev(`consumer channel error: ${err.message}`));
    this.sub = sub;
    await sub.waitForConnect();
    await sub.consume(
      this.options.queue,
      (msg: ConsumeMessage) => {
        onMessage(msg.content, msg.fields.redelivered);
        sub.ack(msg);
      },
      { prefetch: this.options.prefetch, noAck: false },
    );
  }

  async publish(seq: number, body: Buffer): Promise<void> {
    if (!this.pub || !this.options) throw new Error('connect() first');
    await this.pub.publish('', this.options.queue, body, { persistent: true, headers: { seq } });
  }

  async close(): Promise<void> {
    await this.sub?.close().catch(() => undefined);
    await this.pub?.close().catch(() => undefined);
    await this.manager?.close();
  }
}

export default AmqpConnectionManagerRecovery;
