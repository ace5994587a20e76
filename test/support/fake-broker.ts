import type { DecodedProperties, FieldTable } from '../../lib/amqp';
import { Deferred, withTimeout } from '../../lib/amqp/deferred';
import { FRAME_HEADER } from '../../lib/amqp/protocol/frame-parser';
import { decodeContentHeader, type MessageProperties } from '../../lib/amqp/protocol/properties';
import type { MethodArgs, MethodName } from '../../lib/amqp/protocol/spec.generated';
import {
  FakeAmqpServer,
  rawFrame,
  type FakePeer,
  type HandshakeOptions,
  type ReceivedMethod,
} from './fake-amqp-server';

/**
 * Which of a session's connections a peer is, from the connection name Warren gives it (`…:publisher`,
 * `…:consumer`, `…:shared`); '' for a connection named otherwise.
 */
export type ConnectionRole = 'publisher' | 'consumer' | 'shared' | '';

/** One method a client sent, in the order the fake broker received it over all connections. */
export interface ReceivedCall {
  role: ConnectionRole;
  peer: FakePeer;
  channel: number;
  name: MethodName;
  args: Record<string, unknown>;
}

/** A consumer a client started on the fake broker. */
export interface FakeConsumer {
  role: ConnectionRole;
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
  role: ConnectionRole;
  peer: FakePeer;
  channel: number;
  exchange: string;
  routingKey: string;
  mandatory: boolean;
  properties: DecodedProperties;
  body: Buffer;
  /** Its confirm delivery tag, on a channel in confirm mode. */
  confirmTag: number | undefined;
  /** Its channel is in confirm mode: the broker owes it an ack or a nack. */
  confirmMode: boolean;
  /** Confirm it now (for one `confirm` answered with 'none'). */
  ack(): void;
  /** Nack it now (for one `confirm` answered with 'none'). */
  nack(): void;
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

/** How the broker answers a publish in confirm mode: 'none' holds the confirm until the test calls ack() / nack(). */
type Confirm = 'ack' | 'nack' | 'none';

interface Waiter<T> {
  match: (item: T) => boolean;
  deferred: Deferred<T>;
}

/**
 * A FakeAmqpServer that plays a minimal RabbitMQ for client-level tests with no broker: every connection
 * handshakes and gets the standard replies; it records every method in arrival order (`log`, with the connection's
 * role), consumers (with their qos and arguments), settlements and published messages (bodies and decoded
 * properties), confirms publishes as `confirm(message)` says (ack by default), and delivers messages on demand.
 * `deliver` resolves once the client has dispatched every delivery it wrote: a `channel.flow` written after them is
 * answered only then. `hold()` keeps later connections waiting (a broker that is down).
 */
export class FakeBroker {
  /** Every method received, over all connections, in arrival order. */
  readonly log: ReceivedCall[] = [];
  readonly consumers: FakeConsumer[] = [];
  readonly published: PublishedMessage[] = [];
  readonly settlements: Settlement[] = [];
  /** Decides each publish's confirm on a channel in confirm mode. */
  confirm: (m: PublishedMessage) => Confirm = () => 'ack';
  /** Frames sent in the same write as each later connection's open-ok (e.g. a connection.blocked). */
  withOpenOk: (peer: FakePeer) => Buffer[] = () => [];
  private gate: Promise<void> | null = null;
  private readonly roles = new Map<FakePeer, ConnectionRole>();
  private readonly logWaiters: Array<Waiter<ReceivedCall>> = [];
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
      const broker = await ready.promise;
      await broker.gate;
      await broker.serve(peer, options.handshake);
    });
    const broker = new FakeBroker(server);
    ready.resolve(broker);
    return broker;
  }

  url(query?: string): string {
    return this.server.url(query);
  }

  /** Connections made from now on wait (unanswered) until the returned function is called. */
  hold(): () => void {
    const open = new Deferred<void>();
    this.gate = open.promise;
    return () => {
      this.gate = null;
      open.resolve();
    };
  }

  /** The open connection of a role (the latest one). */
  peer(role: ConnectionRole): FakePeer {
    const found = [...this.roles].filter(([p, r]) => r === role && !p.ended).at(-1)?.[0];
    if (!found) throw new Error(`fake broker: no open ${role} connection`);
    return found;
  }

  /** Names of the methods received so far, over all connections, in arrival order. */
  names(): MethodName[] {
    return this.log.map((c) => c.name);
  }

  /** The first method received (so far or later) that `match` accepts. */
  until(match: (c: ReceivedCall) => boolean): Promise<ReceivedCall> {
    const seen = this.log.find(match);
    if (seen) return Promise.resolve(seen);
    return wait(this.logWaiters, match, 'a matching method');
  }

  /** The first message published (so far or later) with this routing key. */
  publishTo(routingKey: string): Promise<PublishedMessage> {
    return this.publishedMessage((m) => m.routingKey === routingKey);
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
    const { startOk } = await peer.handshake({
      ...handshake,
      withOpenOk: [...(handshake?.withOpenOk ?? []), ...this.withOpenOk(peer)],
    });
    const name = String(startOk.clientProperties.connection_name ?? '');
    const role: ConnectionRole =
      (['publisher', 'consumer', 'shared'] as const).find((r) => name.endsWith(`:${r}`)) ?? '';
    this.roles.set(peer, role);
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
      const call: ReceivedCall = {
        role,
        peer,
        channel,
        name: method.name,
        args: method.args as Record<string, unknown>,
      };
      this.log.push(call);
      notify(this.logWaiters, call);
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
            role,
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
        case 'queue.delete':
          peer.send(channel, 'queue.delete-ok', { messageCount: 0 });
          return true;
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
    const ack = (): void => peer.send(channel, 'basic.ack', { deliveryTag: confirmTag ?? 0, multiple: false });
    const nack = (): void =>
      peer.send(channel, 'basic.nack', { deliveryTag: confirmTag ?? 0, multiple: false, requeue: false });
    const m: PublishedMessage = {
      role: this.roles.get(peer) ?? '',
      peer,
      channel,
      exchange: args.exchange,
      routingKey: args.routingKey,
      mandatory: args.mandatory,
      properties,
      body,
      confirmTag,
      confirmMode: confirmTag !== undefined,
      ack,
      nack,
    };
    this.published.push(m);
    if (confirmTag !== undefined) {
      const outcome = this.confirm(m);
      if (outcome === 'ack') ack();
      else if (outcome === 'nack') nack();
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
