import type { DecodedProperties, FieldTable } from '../../lib/amqp';
import { Deferred, withTimeout } from '../../lib/amqp/deferred';
import { FRAME_HEADER } from '../../lib/amqp/protocol/frame-parser';
import { decodeContentHeader, type MessageProperties } from '../../lib/amqp/protocol/properties';
import type { MethodArgs } from '../../lib/amqp/protocol/spec.generated';
import {
  FakeAmqpServer,
  rawFrame,
  type FakePeer,
  type HandshakeOptions,
  type ReceivedMethod,
} from './fake-amqp-server';

/** A consumer a client started on the fake broker. */
export interface FakeConsumer {
  peer: FakePeer;
  channel: number;
  tag: string;
  queue: string;
  noAck: boolean;
  arguments: FieldTable;
  /** The last basic.qos prefetch count on its channel before basic.consume (undefined: none sent). */
  prefetch: number | undefined;
}

/** A message a client published, reassembled from its method, header and body frames. */
export interface PublishedMessage {
  peer: FakePeer;
  channel: number;
  exchange: string;
  routingKey: string;
  mandatory: boolean;
  properties: DecodedProperties;
  body: Buffer;
  /** Its confirm delivery tag, on a channel in confirm mode. */
  confirmTag: number | undefined;
}

/** A basic.ack / basic.nack / basic.reject a client sent for a delivery. */
export interface Settlement {
  peer: FakePeer;
  method: 'basic.ack' | 'basic.nack' | 'basic.reject';
  channel: number;
  deliveryTag: number;
  multiple: boolean;
  requeue: boolean | undefined;
}

/** One message for `deliver`: properties, or a raw content-header payload (for malformed headers). */
export interface Delivery {
  routingKey: string;
  exchange?: string;
  body?: Buffer | string;
  properties?: MessageProperties;
  headerPayload?: Buffer;
}

type Confirm = 'ack' | 'nack' | 'none';

interface Waiter<T> {
  match: (item: T) => boolean;
  deferred: Deferred<T>;
}

/**
 * A FakeAmqpServer that plays a minimal RabbitMQ for client-level tests with no broker: every connection
 * handshakes and gets the standard replies; it records consumers (with their qos and arguments), settlements
 * and published messages (bodies and decoded properties), confirms publishes as `confirm(message)` says (ack by
 * default), and delivers messages on demand. `deliver` resolves once the client has dispatched every delivery
 * it wrote: a `channel.flow` written after them is answered only then.
 */
export class FakeBroker {
  readonly consumers: FakeConsumer[] = [];
  readonly published: PublishedMessage[] = [];
  readonly settlements: Settlement[] = [];
  /** Decides each publish's confirm on a channel in confirm mode. */
  confirm: (m: PublishedMessage) => Confirm = () => 'ack';
  private readonly publishWaiters: Array<Waiter<PublishedMessage>> = [];
  private readonly settlementWaiters: Array<Waiter<Settlement>> = [];
  private readonly consumerWaiters: Array<Waiter<FakeConsumer>> = [];
  private readonly flowWaiters = new Map<string, () => void>();
  private nextDeliveryTag = new Map<string, number>();

  private constructor(readonly server: FakeAmqpServer) {}

  /** `accept(index)` may hold (or refuse, by throwing) a connection before its handshake. */
  static async start(
    options: { handshake?: HandshakeOptions; accept?: (index: number, peer: FakePeer) => Promise<void> } = {},
  ): Promise<FakeBroker> {
    const ready = new Deferred<FakeBroker>();
    const server = await FakeAmqpServer.start(async (peer, index) => {
      await options.accept?.(index, peer);
      await (await ready.promise).serve(peer, options.handshake);
    });
    const broker = new FakeBroker(server);
    ready.resolve(broker);
    return broker;
  }

  url(query?: string): string {
    return this.server.url(query);
  }

  /** Methods named `name` received on every connection so far. */
  methods<N extends keyof MethodArgs>(name: N): Array<{ peer: FakePeer; channel: number; args: MethodArgs[N] }> {
    return this.server.peers.flatMap((peer) =>
      peer.received
        .filter((r) => r.method.name === name)
        .map((r) => ({ peer, channel: r.channel, args: r.method.args as MethodArgs[N] })),
    );
  }

  /**
   * The latest consumer on `queue`, or with `nth` the nth one to start there (0-based: 1 is the first re-attach),
   * waiting for it if it has not started yet.
   */
  consumer(queue: string, nth?: number): Promise<FakeConsumer> {
    const on = this.consumers.filter((c) => c.queue === queue);
    const existing = nth === undefined ? on.pop() : on[nth];
    if (existing) return Promise.resolve(existing);
    const count = nth ?? 0;
    return wait(
      this.consumerWaiters,
      (c) => c.queue === queue && this.consumers.filter((o) => o.queue === queue).length > count,
      `consumer ${count} on '${queue}'`,
    );
  }

  /** The first published message (already seen or to come) matching `match`. */
  publishedMessage(match: (m: PublishedMessage) => boolean = () => true): Promise<PublishedMessage> {
    const seen = this.published.find(match);
    if (seen) return Promise.resolve(seen);
    return wait(this.publishWaiters, match, 'a matching publish');
  }

  /** The settlement of delivery `deliveryTag` on `consumer`'s channel (a multiple ack covering it counts). */
  settlement(consumer: FakeConsumer, deliveryTag: number): Promise<Settlement> {
    const match = (s: Settlement): boolean =>
      s.peer === consumer.peer &&
      s.channel === consumer.channel &&
      (s.deliveryTag === deliveryTag || (s.multiple && s.deliveryTag >= deliveryTag));
    const seen = this.settlements.find(match);
    if (seen) return Promise.resolve(seen);
    return wait(this.settlementWaiters, match, `the settlement of delivery ${deliveryTag}`);
  }

  /** Settlements sent on `consumer`'s channel. */
  settlementsOf(consumer: FakeConsumer): Settlement[] {
    return this.settlements.filter((s) => s.peer === consumer.peer && s.channel === consumer.channel);
  }

  /**
   * Deliver `messages` to `consumer` in one write; resolves with their delivery tags once the client has handed
   * every one of them to its consumer.
   */
  async deliver(consumer: FakeConsumer, messages: Delivery[]): Promise<number[]> {
    const { peer, channel } = consumer;
    const key = this.channelKey(peer, channel);
    const frames: Buffer[] = [];
    const tags: number[] = [];
    for (const m of messages) {
      const tag = (this.nextDeliveryTag.get(key) ?? 0) + 1;
      this.nextDeliveryTag.set(key, tag);
      tags.push(tag);
      const body = typeof m.body === 'string' ? Buffer.from(m.body) : (m.body ?? Buffer.alloc(0));
      frames.push(
        peer.frame(channel, 'basic.deliver', {
          consumerTag: consumer.tag,
          deliveryTag: tag,
          redelivered: false,
          exchange: m.exchange ?? '',
          routingKey: m.routingKey,
        }),
      );
      if (m.headerPayload) {
        frames.push(rawFrame(FRAME_HEADER, channel, m.headerPayload));
        if (body.length > 0) frames.push(...peer.contentFrames_(channel, body).slice(1));
      } else frames.push(...peer.contentFrames_(channel, body, m.properties));
    }
    const dispatched = new Promise<void>((resolve) => this.flowWaiters.set(key, resolve));
    frames.push(peer.frame(channel, 'channel.flow', { active: true }));
    peer.write(...frames);
    await dispatched;
    return tags;
  }

  async close(): Promise<void> {
    await this.server.close();
  }

  private channelKey(peer: FakePeer, channel: number): string {
    return `${this.server.peers.indexOf(peer)}:${channel}`;
  }

  private async serve(peer: FakePeer, handshake?: HandshakeOptions): Promise<void> {
    await peer.handshake(handshake);
    const confirmTags = new Map<number, number>();
    const qos = new Map<number, number>();
    const publishing = new Map<
      number,
      {
        args: MethodArgs['basic.publish'];
        header?: ReturnType<typeof decodeContentHeader>;
        parts: Buffer[];
        size: number;
      }
    >();
    peer.onContentFrame = (frame) => {
      const p = publishing.get(frame.channel);
      if (!p) return;
      if (frame.type === FRAME_HEADER) p.header = decodeContentHeader(frame.payload, 1 << 30);
      else {
        p.parts.push(frame.payload);
        p.size += frame.payload.length;
      }
      if (p.header && p.size >= p.header.bodySize) {
        publishing.delete(frame.channel);
        this.onPublished(peer, frame.channel, p.args, p.header.properties, Buffer.concat(p.parts), confirmTags);
      }
    };
    peer.autoReply([], (r: ReceivedMethod) => {
      const { channel, method } = r;
      switch (method.name) {
        case 'confirm.select':
          confirmTags.set(channel, 0);
          return false;
        case 'basic.qos':
          qos.set(channel, method.args.prefetchCount);
          return false;
        case 'basic.consume': {
          const tag = method.args.consumerTag || `ctag-${this.consumers.length + 1}`;
          const c: FakeConsumer = {
            peer,
            channel,
            tag,
            queue: method.args.queue,
            noAck: method.args.noAck,
            arguments: method.args.arguments,
            prefetch: qos.get(channel),
          };
          peer.send(channel, 'basic.consume-ok', { consumerTag: tag });
          this.consumers.push(c);
          notify(this.consumerWaiters, c);
          return true;
        }
        case 'basic.publish':
          publishing.set(channel, { args: method.args, parts: [], size: 0 });
          return true;
        case 'basic.ack':
        case 'basic.nack':
        case 'basic.reject': {
          const a = method.args as { deliveryTag: number; multiple?: boolean; requeue?: boolean };
          const s: Settlement = {
            peer,
            method: method.name,
            channel,
            deliveryTag: a.deliveryTag,
            multiple: a.multiple ?? false,
            requeue: a.requeue,
          };
          this.settlements.push(s);
          notify(this.settlementWaiters, s);
          return true;
        }
        case 'channel.flow-ok':
          this.flowWaiters.get(this.channelKey(peer, channel))?.();
          return true;
        default:
          return false;
      }
    });
  }

  private onPublished(
    peer: FakePeer,
    channel: number,
    args: MethodArgs['basic.publish'],
    properties: DecodedProperties,
    body: Buffer,
    confirmTags: Map<number, number>,
  ): void {
    let confirmTag: number | undefined;
    if (confirmTags.has(channel)) {
      confirmTag = (confirmTags.get(channel) ?? 0) + 1;
      confirmTags.set(channel, confirmTag);
    }
    const m: PublishedMessage = {
      peer,
      channel,
      exchange: args.exchange,
      routingKey: args.routingKey,
      mandatory: args.mandatory,
      properties,
      body,
      confirmTag,
    };
    this.published.push(m);
    if (confirmTag !== undefined) {
      const outcome = this.confirm(m);
      if (outcome === 'ack') peer.send(channel, 'basic.ack', { deliveryTag: confirmTag, multiple: false });
      else if (outcome === 'nack')
        peer.send(channel, 'basic.nack', { deliveryTag: confirmTag, multiple: false, requeue: false });
    }
    notify(this.publishWaiters, m);
  }
}

/** The next item `notify` hands over that matches; a TimeoutError naming `what` after timeoutMs. */
function wait<T>(waiters: Array<Waiter<T>>, match: (item: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const waiter: Waiter<T> = { match, deferred: new Deferred<T>() };
  waiters.push(waiter);
  return withTimeout(
    waiter.deferred.promise,
    timeoutMs,
    'fake broker wait',
    () => `fake broker: no ${what} within ${timeoutMs} ms`,
    () => waiters.splice(waiters.indexOf(waiter), 1),
  );
}

function notify<T>(waiters: Array<Waiter<T>>, item: T): void {
  for (const w of waiters.filter((x) => x.match(item))) {
    waiters.splice(waiters.indexOf(w), 1);
    w.deferred.resolve(item);
  }
}
