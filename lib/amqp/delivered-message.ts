import type { Channel } from './channel';
import type { Logger } from './logger';
import type { Message, PublishOptions } from './message';
import { deliveryStreamOffset, type StreamPosition } from './stream-offset';

/** A delivered message with acknowledgement bound to the channel that delivered it. */
export interface SessionMessage extends Message {
  /** Acknowledge. After a reconnect this is a logged no-op: the broker will redeliver the message. */
  ack(): void;
  /**
   * Negative acknowledgement: requeued by default; with `requeue` false it is dropped or dead-lettered (where its
   * queue has a DLX). A logged no-op once its channel is gone.
   */
  nack(requeue?: boolean): void;
  /** False once the channel that delivered it is gone (the broker will redeliver it). */
  isLive(): boolean;
  /** Its offset in the stream it came from (`x-stream-offset`); undefined for a message from another queue. */
  readonly streamOffset: number | undefined;
  /** Reject it (`basic.reject`): requeued by default; a logged no-op once its channel is gone. */
  reject(requeue?: boolean): void;
  /**
   * Publish on the channel that delivered this message, without a publisher confirm (the session's
   * consumer channels are not in confirm mode), and return true. Publishes nothing and returns false
   * when that channel is no longer open, or when its connection is blocked by a resource alarm
   * (`connection.blocked`): RabbitMQ stops reading from a blocked connection that publishes, which
   * would also stall the acks of every consumer on that connection. On false, publish through
   * {@link AmqpSession.publish} (the publisher connection, confirmed) instead.
   *
   * Made for a reply followed by `ack()`: the broker processes a channel's methods in order, so once
   * it has processed the ack it has already routed the reply; if the connection dies before, the ack
   * is lost with it and the request is redelivered (and answered again) — the guarantee of waiting
   * for a confirm before acking, without the confirm. Only routing is ordered before the ack, not
   * persistence: for a persistent message to a durable queue that must survive a broker crash, use
   * the confirmed `AmqpSession.publish`.
   *
   * Nothing to await: the frames are written at once (the ack that follows goes out after them; a
   * slow socket also holds back that ack, so prefetch bounds what piles up). A message that cannot be
   * encoded (e.g. a short string over 255 bytes) is not sent, and the failure is logged as an error.
   */
  publishOnChannel(exchange: string, routingKey: string, body: Buffer | string, options?: PublishOptions): boolean;
}

/**
 * A delivered message bound to the channel that delivered it: acks go there while it lives and are
 * dropped (with a debug line) once it is gone — the broker redelivers such messages. A class, so the
 * methods are shared instead of closures per delivery.
 */
export class DeliveredMessage implements SessionMessage {
  readonly body: Buffer;
  readonly properties: Message['properties'];
  readonly fields: Message['fields'];

  constructor(
    m: Message,
    private readonly channel: Channel,
    private readonly logger: Logger,
    /** A stream consumer's position, told when this message is settled. */
    private readonly position?: StreamPosition,
  ) {
    this.body = m.body;
    this.properties = m.properties;
    this.fields = m.fields;
  }

  get streamOffset(): number | undefined {
    return deliveryStreamOffset(this.properties.headers);
  }

  ack(): void {
    if (!this.live('ack')) return;
    this.channel.ack(this.fields.deliveryTag);
    this.settled();
  }

  nack(requeue = true): void {
    if (!this.live('nack')) return;
    this.channel.nack(this.fields.deliveryTag, false, requeue);
    this.settled();
  }

  reject(requeue = true): void {
    if (!this.live('reject')) return;
    this.channel.reject(this.fields.deliveryTag, requeue);
    this.settled();
  }

  private settled(): void {
    if (!this.position) return;
    const offset = this.streamOffset;
    if (offset !== undefined) this.position.settled(offset);
  }

  isLive(): boolean {
    return this.channel.isOpen;
  }

  publishOnChannel(exchange: string, routingKey: string, body: Buffer | string, options?: PublishOptions): boolean {
    const ch = this.channel;
    if (!ch.isOpen || ch.connection.isBlocked || ch.confirmMode) return false;
    // Open and not blocked: the frames are queued now, no promise. Bad input (an encoding error) sends
    // nothing and is logged.
    try {
      ch.publishUnconfirmed(exchange, routingKey, typeof body === 'string' ? Buffer.from(body) : body, options);
    } catch (err) {
      this.logger.error(
        `publish to '${exchange}' / '${routingKey}' on the delivering channel failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    return true;
  }

  private live(what: string): boolean {
    if (this.channel.isOpen) return true;
    this.logger.debug?.(
      `${what} of delivery ${this.fields.deliveryTag} dropped: its channel is gone (the broker redelivers it)`,
    );
    return false;
  }
}
