import type { SessionMessage } from '../../amqp';
import type { DeliverySettlement } from '../ctx-host/amqp.context';
import type { ProcessTrace } from '../telemetry/telemetry';

/** Settles a delivery at most once; a no-op for no-ack consumers. */
export class Settlement implements DeliverySettlement {
  settled: boolean;

  constructor(
    private readonly msg: SessionMessage,
    noAck: boolean,
    private readonly trace: ProcessTrace | undefined,
  ) {
    this.settled = noAck;
  }

  ack(): void {
    if (this.settled) return;
    this.settled = true;
    this.msg.ack();
    this.trace?.settled('ack');
  }

  nack(requeue: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.msg.nack(requeue);
    this.trace?.settled('nack', requeue);
  }

  reject(requeue: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.msg.reject(requeue);
    this.trace?.settled('reject', requeue);
  }
}
