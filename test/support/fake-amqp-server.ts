import { once } from 'node:events';
import * as net from 'node:net';
import type { FieldTable } from '../../lib/amqp/protocol/field-table';
import { FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_METHOD, FrameParser } from '../../lib/amqp/protocol/frame-parser';
import { FrameEncoder } from '../../lib/amqp/protocol/frame-writer';
import { decodeMethod, type DecodedMethod } from '../../lib/amqp/protocol/methods';
import { encodeContentHeader, type MessageProperties } from '../../lib/amqp/protocol/properties';
import type { MethodArgs, MethodName } from '../../lib/amqp/protocol/spec.generated';
import { Writer } from '../../lib/amqp/protocol/writer';

/**
 * A scripted fake AMQP 0-9-1 server for hostile-peer tests: a plain `net` server whose every accepted
 * socket is a FakePeer the test drives frame by frame (what a real broker would never do: split, merge,
 * withhold or corrupt frames). Not a mock of Warren: it speaks the wire protocol, nothing else.
 *
 *   const server = await FakeAmqpServer.start(async (peer) => { await peer.handshake(); ... });
 *   const conn = await AmqpConnection.connect(server.url);
 */
export class FakeAmqpServer {
  readonly peers: FakePeer[] = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private peerWaiters: Array<(p: FakePeer) => void> = [];
  /** Errors thrown by the script (assert them with `scriptErrors` in the test). */
  readonly scriptErrors: Error[] = [];

  private constructor(private readonly script: (peer: FakePeer, index: number) => Promise<void> | void) {
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  static async start(script: (peer: FakePeer, index: number) => Promise<void> | void): Promise<FakeAmqpServer> {
    const s = new FakeAmqpServer(script);
    s.server.listen(0, '127.0.0.1');
    await once(s.server, 'listening');
    return s;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** `amqp://guest:guest@127.0.0.1:<port>` plus an optional query string. */
  url(query = ''): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}${query ? `/?${query}` : ''}`;
  }

  /** Connections accepted so far. */
  get connectionCount(): number {
    return this.peers.length;
  }

  /** The next peer to connect (or the n-th, 0-based, if it already has). */
  peer(index = this.peers.length): Promise<FakePeer> {
    if (index < this.peers.length) return Promise.resolve(this.peers[index]);
    return new Promise((resolve) => {
      const check = (p: FakePeer): void => {
        if (this.peers.indexOf(p) === index) resolve(p);
        else this.peerWaiters.push(check);
      };
      this.peerWaiters.push(check);
    });
  }

  /** Open sockets right now (closed ones drop out). */
  get openSockets(): number {
    return this.sockets.size;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const peer = new FakePeer(socket);
    const index = this.peers.length;
    this.peers.push(peer);
    for (const w of this.peerWaiters.splice(0)) w(peer);
    Promise.resolve()
      .then(() => this.script(peer, index))
      .catch((err: Error) => {
        if (!peer.ended) this.scriptErrors.push(err);
      });
  }
}

export interface ReceivedMethod {
  channel: number;
  method: DecodedMethod;
}

export interface HandshakeOptions {
  /** Server capabilities (default: everything RabbitMQ announces); `null` sends no capabilities table at all. */
  capabilities?: FieldTable | null;
  mechanisms?: string;
  channelMax?: number;
  frameMax?: number;
  heartbeat?: number;
  /** Extra server properties. */
  serverProperties?: FieldTable;
  /** Frames written in the same TCP write as `connection.open-ok` (hostile chunking). */
  withOpenOk?: Buffer[];
}

export const RABBIT_CAPABILITIES: FieldTable = {
  publisher_confirms: true,
  exchange_exchange_bindings: true,
  'basic.nack': true,
  consumer_cancel_notify: true,
  'connection.blocked': true,
  consumer_priorities: true,
  authentication_failure_close: true,
  per_consumer_qos: true,
  direct_reply_to: true,
};

/** Standard replies `autoReply` sends for client methods. */
const AUTO_REPLIES: Partial<Record<MethodName, (a: never) => [MethodName, object] | null>> = {
  'channel.open': () => ['channel.open-ok', {}],
  'channel.close': () => ['channel.close-ok', {}],
  'confirm.select': () => ['confirm.select-ok', {}],
  'basic.qos': () => ['basic.qos-ok', {}],
  'exchange.declare': () => ['exchange.declare-ok', {}],
  'exchange.bind': () => ['exchange.bind-ok', {}],
  'queue.bind': () => ['queue.bind-ok', {}],
  'queue.declare': (a: MethodArgs['queue.declare']) => [
    'queue.declare-ok',
    { queue: a.queue || `amq.gen-fake${Math.random().toString(36).slice(2, 10)}`, messageCount: 0, consumerCount: 0 },
  ],
  'basic.consume': (a: MethodArgs['basic.consume']) => [
    'basic.consume-ok',
    { consumerTag: a.consumerTag || `amq.ctag-fake${Math.random().toString(36).slice(2, 10)}` },
  ],
  'basic.cancel': (a: MethodArgs['basic.cancel']) => ['basic.cancel-ok', { consumerTag: a.consumerTag }],
  'connection.close': () => ['connection.close-ok', {}],
};

/** One accepted client socket, driven by the test script. */
export class FakePeer {
  readonly received: ReceivedMethod[] = [];
  /** Content (header + body) frames received, by type, for publish tests. */
  readonly contentFrames: Array<{ channel: number; type: number; payload: Buffer }> = [];
  ended = false;
  private readonly encoder = new FrameEncoder(0);
  private readonly parser: FrameParser;
  private headerSeen = false;
  private queue: ReceivedMethod[] = [];
  private waiters: Array<(m: ReceivedMethod) => void> = [];
  private headerWaiter: (() => void) | null = null;
  /** With autoReply: ack every publish on a channel in confirm mode (as a healthy broker would). */
  ackPublishes = false;
  /** Channels in confirm mode (auto replies) and the last delivery tag acked on each. */
  private readonly confirmTags = new Map<number, number>();
  private auto: { except: Set<MethodName>; handler?: (m: ReceivedMethod) => boolean | void } | null = null;
  /** Told of each content (header or body) frame once it is recorded in `contentFrames`. */
  onContentFrame: ((frame: { channel: number; type: number; payload: Buffer }) => void) | undefined = undefined;
  readonly closed: Promise<void>;

  constructor(readonly socket: net.Socket) {
    this.parser = new FrameParser((type, channel, buf, start, end) => {
      const payload = buf.subarray(start, end);
      if (type === FRAME_METHOD) this.onMethod({ channel, method: decodeMethod(Buffer.from(payload)) });
      else if (type === FRAME_HEADER || type === FRAME_BODY) {
        const frame = { channel, type, payload: Buffer.from(payload) };
        this.contentFrames.push(frame);
        this.onContentFrame?.(frame);
      }
    }, 1 << 30);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.ended = true;
        resolve();
      }),
    );
  }

  /** Wait for the client's protocol header. */
  async expectProtocolHeader(): Promise<void> {
    if (this.headerSeen) return;
    await new Promise<void>((resolve) => (this.headerWaiter = resolve));
  }

  /** The next method the client sends (in order). */
  next(timeoutMs = 10_000): Promise<ReceivedMethod> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`fake server: no method from the client within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (r: ReceivedMethod): void => {
        clearTimeout(timer);
        resolve(r);
      };
      this.waiters.push(waiter);
    });
  }

  /** The next method, which must be `name`; returns its args and channel. */
  async expect<N extends MethodName>(name: N, timeoutMs?: number): Promise<{ channel: number; args: MethodArgs[N] }> {
    const r = await this.next(timeoutMs);
    if (r.method.name !== name) throw new Error(`fake server: expected ${name}, got ${r.method.name}`);
    return { channel: r.channel, args: r.method.args as MethodArgs[N] };
  }

  /** Encode one method frame (to send, or to combine with others in one write). */
  frame<N extends MethodName>(channel: number, name: N, args: MethodArgs[N]): Buffer {
    return Buffer.from(this.encoder.method(channel, name, args));
  }

  send<N extends MethodName>(channel: number, name: N, args: MethodArgs[N]): void {
    this.write(this.frame(channel, name, args));
  }

  /** Raw bytes, as one TCP write. */
  write(...parts: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(parts));
  }

  /** Content header + body frames for a delivery on `channel`. */
  contentFrames_(channel: number, body: Buffer, properties?: MessageProperties, bodySize = body.length): Buffer[] {
    const w = new Writer(256);
    encodeContentHeader(w, bodySize, properties);
    const header = rawFrame(FRAME_HEADER, channel, w.copyOut());
    return body.length === 0 ? [header] : [header, rawFrame(FRAME_BODY, channel, body)];
  }

  /** basic.deliver + header + body as one write. */
  deliver(
    channel: number,
    args: MethodArgs['basic.deliver'],
    body: Buffer,
    properties?: MessageProperties,
    bodySize?: number,
  ): void {
    this.write(this.frame(channel, 'basic.deliver', args), ...this.contentFrames_(channel, body, properties, bodySize));
  }

  /** connection.start as a broker sends it (capabilities, mechanisms and server properties from `o`). */
  sendStart(o: HandshakeOptions = {}): void {
    this.send(0, 'connection.start', {
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: {
        product: 'FakeAMQP',
        version: '0.0.1',
        ...(o.capabilities === null ? {} : { capabilities: o.capabilities ?? RABBIT_CAPABILITIES }),
        ...o.serverProperties,
      },
      mechanisms: o.mechanisms ?? 'PLAIN AMQPLAIN',
      locales: 'en_US',
    });
  }

  /**
   * The server side of the handshake: start → start-ok, tune → tune-ok, open → open-ok. Returns the
   * client's start-ok and tune-ok.
   */
  async handshake(
    o: HandshakeOptions = {},
  ): Promise<{ startOk: MethodArgs['connection.start-ok']; tuneOk: MethodArgs['connection.tune-ok'] }> {
    await this.expectProtocolHeader();
    this.sendStart(o);
    const startOk = (await this.expect('connection.start-ok')).args;
    this.send(0, 'connection.tune', {
      channelMax: o.channelMax ?? 2047,
      frameMax: o.frameMax ?? 131072,
      heartbeat: o.heartbeat ?? 0,
    });
    const tuneOk = (await this.expect('connection.tune-ok')).args;
    await this.expect('connection.open');
    this.write(this.frame(0, 'connection.open-ok', {}), ...(o.withOpenOk ?? []));
    return { startOk, tuneOk };
  }

  /**
   * Answer the standard client methods (channel.open, confirm.select, qos, declares, consume, cancel,
   * closes) as a broker would, except those in `except` (left to the script through next()/expect()).
   * `handler` sees every method first; returning true means it answered the method itself.
   */
  autoReply(except: MethodName[] = [], handler?: (m: ReceivedMethod) => boolean | void): void {
    this.auto = { except: new Set(except), handler };
    const queued = this.queue.splice(0);
    for (const m of queued) this.onMethod(m);
  }

  /** Stop the auto replies: every method goes to next()/expect() again. */
  manual(): void {
    this.auto = null;
  }

  /** Methods named `name` received so far. */
  count(name: MethodName): number {
    return this.received.filter((r) => r.method.name === name).length;
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /**
   * Resolves once the client has closed its side (FIN or reset; the server is half-open, so that alone
   * does not close this socket), then closes this side too: afterwards neither end holds a socket.
   */
  async clientGone(): Promise<void> {
    if (!this.socket.readableEnded && !this.ended) {
      await Promise.race([once(this.socket, 'end'), this.closed]);
    }
    this.socket.destroy();
    await this.closed;
  }

  private onData(chunk: Buffer): void {
    let data = chunk;
    if (!this.headerSeen) {
      if (data.length < 8) return; // the client writes the 8-byte header in one go
      this.headerSeen = true;
      data = data.subarray(8);
      this.headerWaiter?.();
      this.headerWaiter = null;
    }
    if (data.length > 0) this.parser.push(data);
  }

  private onMethod(r: ReceivedMethod): void {
    if (!this.received.includes(r)) this.received.push(r);
    const auto = this.auto;
    if (auto && !auto.except.has(r.method.name)) {
      if (auto.handler?.(r) === true) return;
      if (r.method.name === 'confirm.select') this.confirmTags.set(r.channel, 0);
      if (r.method.name === 'basic.publish' && this.ackPublishes && this.confirmTags.has(r.channel)) {
        // A broker in confirm mode acks every publish (content frames follow; the ack may precede them).
        const tag = (this.confirmTags.get(r.channel) ?? 0) + 1;
        this.confirmTags.set(r.channel, tag);
        this.write(this.encoder.method(r.channel, 'basic.ack', { deliveryTag: tag, multiple: false }));
        return;
      }
      const reply = AUTO_REPLIES[r.method.name];
      const answer = reply ? (reply as (a: unknown) => [MethodName, object] | null)(r.method.args) : null;
      if (answer) {
        this.write(this.encoder.method(r.channel, answer[0], answer[1] as never));
        if (r.method.name === 'connection.close') this.socket.end();
        return;
      }
    }
    const w = this.waiters.shift();
    if (w) w(r);
    else this.queue.push(r);
  }
}

/** One frame: type, channel, size, payload, frame-end. */
export function rawFrame(type: number, channel: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(8 + payload.length);
  b.writeUInt8(type, 0);
  b.writeUInt16BE(channel, 1);
  b.writeUInt32BE(payload.length, 3);
  payload.copy(b, 7);
  b.writeUInt8(FRAME_END, 7 + payload.length);
  return b;
}

/**
 * A FakeAmqpServer starter whose servers are closed after each test of the calling file (call at the top
 * level of a spec): `const fakeServer = fakeServersPerTest(); ... await fakeServer(async (peer) => ...)`.
 */
export function fakeServersPerTest(): (
  script: (peer: FakePeer, index: number) => Promise<void> | void,
) => Promise<FakeAmqpServer> {
  const servers: FakeAmqpServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });
  return async (script) => {
    const s = await FakeAmqpServer.start(script);
    servers.push(s);
    return s;
  };
}
