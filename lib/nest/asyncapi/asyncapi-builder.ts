import { AmqpDecimal, type Endpoint, type FieldTable, type FieldValue } from '../../amqp';
import type { AmqpClientOptions, AmqpPublisherDefinition } from '../amqp-options.interface';
import { DEFAULT_RPC_TIMEOUT_MS, DIRECT_REPLY_QUEUE, WarrenHeaders } from '../amqp.constants';
import { retryQueueName } from '../retry/retry-policy';
import { isWildcardPattern, matchesTopic } from '../routing/pattern-matcher';
import { CONTENT_TYPE_JSON } from '../serialization/default.serializer';
import type { QueuePlan, Route } from '../server/handler-routes';
import { canonical } from '../topology/queue-arguments';
import type { PlanContents, QueueRef } from '../topology/topology-plan';
import type {
  AmqpChannelBinding,
  AmqpOperationBinding,
  AsyncApiChannel,
  AsyncApiDocument,
  AsyncApiInfo,
  AsyncApiMessage,
  AsyncApiOperation,
  AsyncApiReference,
  AsyncApiServer,
  JsonValue,
  WarrenBinding,
} from './asyncapi-document';

/** What one connection's document is made of: what its server, publishers and client do. */
export interface AsyncApiSource {
  connection: string;
  /** Where the connection points (the document's servers; never a password). */
  endpoints: readonly Endpoint[];
  /** Everything declared: the module's topology, the publishers' exchanges, the handlers' queues and bindings. */
  topology: PlanContents;
  consumers: readonly QueuePlan[];
  publishers: readonly AmqpPublisherDefinition[];
  /** The module's client, when it has a target (`client` in the module options). */
  client?: AmqpClientOptions;
}

const BINDING_VERSION = '0.3.0' as const;
const STANDARD_EXCHANGE_TYPES = new Set(['topic', 'direct', 'fanout', 'headers']);
/** The exchanges every broker has, and their types. */
const PREDECLARED_TYPES: Record<string, string> = {
  'amq.direct': 'direct',
  'amq.topic': 'topic',
  'amq.fanout': 'fanout',
  'amq.headers': 'headers',
  'amq.match': 'headers',
};
const REPLY_CHANNEL = 'reply-to';
const CLIENT_REPLY_CHANNEL = 'client.reply-to';
const ERROR_MESSAGE = 'rpc.error';
const CORRELATION_ID = {
  location: '$message.header#/correlationId',
  description: 'The correlation_id property: a reply carries its request’s.',
};
const REPLY_ADDRESS = { location: '$message.header#/replyTo', description: 'The reply_to property of the request.' };

/** The body of an error reply (`RpcErrorEnvelope`), flagged with `x-warren-error: true`. */
const ERROR_ENVELOPE_SCHEMA = {
  type: 'object',
  required: ['status', 'message'],
  properties: {
    status: { type: ['string', 'number'] },
    message: { type: 'string' },
    code: {
      type: ['string', 'number'],
      description:
        'The error’s code: the handler’s own (an RpcException’s), or VALIDATION_FAILED, NO_HANDLER, ' +
        'DESERIALIZATION_FAILED, SERIALIZATION_FAILED.',
    },
    issues: {
      type: 'array',
      description: 'VALIDATION_FAILED: what is wrong with the payload.',
      items: {
        type: 'object',
        required: ['message', 'path'],
        properties: {
          message: { type: 'string' },
          path: { type: 'array', items: { type: ['string', 'integer'] } },
        },
      },
    },
  },
};

/** The AsyncAPI 3.0 document of one connection. Deterministic: the same app gives the same document. */
export function buildAsyncApi(source: AsyncApiSource, info: AsyncApiInfo): AsyncApiDocument {
  return new AsyncApiBuilder(source).build(info);
}

/** Ids of one kind (channels, operations, messages): AsyncAPI's charset, unique. */
class IdSet {
  private readonly taken = new Set<string>();

  take(base: string): string {
    const clean = base.replace(/[^\w.-]/g, '_') || '_';
    let id = clean;
    for (let n = 2; this.taken.has(id); n++) id = `${clean}-${n}`;
    this.taken.add(id);
    return id;
  }
}

class AsyncApiBuilder {
  private readonly vhost: string;
  private readonly channels: Record<string, AsyncApiChannel> = {};
  private readonly operations: Record<string, AsyncApiOperation> = {};
  private readonly messages: Record<string, AsyncApiMessage> = {};
  private readonly channelIds = new IdSet();
  private readonly operationIds = new IdSet();
  private readonly messageIds = new IdSet();
  private readonly exchangeChannels = new Map<string, string>();
  private readonly exchangeTypes = new Map<string, string>();
  private readonly queueChannels = new Map<QueueRef, string>();
  private readonly queuesByName = new Map<string, QueueRef>();
  /** Message id by pattern, payload and kind: handlers that agree share one message. */
  private readonly messageKeys = new Map<string, string>();
  private readonly routeMessages = new Map<Route, string>();
  /** The server's sends to retry queues and parking lots, by queue and delay: handlers sharing one add their message. */
  private readonly sends = new Map<string, AsyncApiOperation & { messages: AsyncApiReference[] }>();

  /** Reply message id by request message id. */
  private readonly replyMessages = new Map<string, string>();

  constructor(private readonly source: AsyncApiSource) {
    this.vhost = source.endpoints[0]?.vhost ?? '/';
    // Reserved: a handler whose pattern is 'rpc.error' gets another id.
    this.messageIds.take(ERROR_MESSAGE);
    this.channelIds.take(REPLY_CHANNEL);
  }

  build(info: AsyncApiInfo): AsyncApiDocument {
    this.topologyChannels();
    for (const consumer of this.source.consumers) this.handlers(consumer);
    this.exchangeMessages();
    for (const consumer of this.source.consumers) this.retries(consumer);
    for (const publisher of this.source.publishers) this.publisher(publisher);
    if (this.source.client) this.client(this.source.client);
    return {
      asyncapi: '3.0.0',
      info: { ...info },
      defaultContentType: CONTENT_TYPE_JSON,
      servers: this.servers(),
      channels: this.channels,
      operations: this.operations,
      components: { messages: this.messages },
    };
  }

  private servers(): Record<string, AsyncApiServer> {
    const { connection, endpoints } = this.source;
    const ids = new IdSet();
    const servers: Record<string, AsyncApiServer> = {};
    endpoints.forEach((e, i) => {
      const id = ids.take(endpoints.length === 1 ? connection : `${connection}-${i + 1}`);
      servers[id] = {
        host: `${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`,
        protocol: e.protocol,
        protocolVersion: '0.9.1',
        pathname: `/${encodeURIComponent(e.vhost)}`,
        title: `connection '${connection}'${endpoints.length > 1 ? `, node ${i + 1}` : ''}`,
      };
    });
    return servers;
  }

  // ---- channels: exchanges and queues ----

  private topologyChannels(): void {
    const { exchanges, queues, bindings } = this.source.topology;
    for (const { def, implicit } of exchanges) {
      this.exchangeTypes.set(def.name, def.type);
      const binding: AmqpChannelBinding = {
        is: 'routingKey',
        exchange: {
          name: def.name,
          ...exchangeType(def.type),
          durable: def.durable,
          autoDelete: def.autoDelete,
          vhost: this.vhost,
        },
        ...(STANDARD_EXCHANGE_TYPES.has(def.type) ? {} : { 'x-exchange-type': def.type }),
        ...(def.internal ? { 'x-internal': true } : {}),
        ...jsonArguments(def.arguments, 'x-arguments'),
        bindingVersion: BINDING_VERSION,
      };
      this.addExchangeChannel(def.name, {
        address: def.name,
        title: `exchange '${def.name}'`,
        ...(implicit
          ? {
              description: `Named only: used as it is if it exists, created as a durable ${def.type} exchange otherwise.`,
            }
          : {}),
        messages: {},
        bindings: { amqp: binding },
      });
    }
    for (const { ref, def, implicit } of queues) {
      const id = this.channelIds.take(`queue.${ref.serverNamed ? 'server-named' : ref.name}`);
      this.queueChannels.set(ref, id);
      if (!ref.serverNamed) this.queuesByName.set(ref.name, ref);
      const description = ref.serverNamed
        ? 'Server-named: the broker names it when it is declared (again after each reconnect).'
        : implicit
          ? 'Named only: used as it is if it exists, created as a durable classic queue otherwise.'
          : undefined;
      this.channels[id] = {
        address: ref.serverNamed ? null : ref.name,
        title: ref.serverNamed ? 'a server-named queue' : `queue '${ref.name}'`,
        ...(description ? { description } : {}),
        messages: {},
        bindings: {
          amqp: {
            is: 'queue',
            queue: {
              ...(ref.serverNamed ? {} : { name: ref.name }),
              durable: def.durable,
              exclusive: def.exclusive,
              autoDelete: def.autoDelete,
              vhost: this.vhost,
            },
            ...jsonArguments(def.arguments, 'x-arguments'),
            bindingVersion: BINDING_VERSION,
          },
        },
      };
    }
    for (const b of bindings) {
      const channel = b.queue
        ? this.channels[this.queueChannels.get(b.queue)!]
        : this.channels[this.exchangeChannel(b.destinationExchange!)];
      this.exchangeChannel(b.source);
      (channel['x-warren-bindings'] ??= []).push({
        exchange: b.source,
        routingKey: b.routingKey,
        ...jsonArguments(b.arguments, 'arguments'),
      } as WarrenBinding);
    }
  }

  private addExchangeChannel(name: string, channel: AsyncApiChannel): string {
    const id = this.channelIds.take(name === '' ? 'default-exchange' : `exchange.${name}`);
    this.exchangeChannels.set(name, id);
    this.channels[id] = channel;
    return id;
  }

  /** The channel of an exchange; one this app does not declare (predeclared, or only published to) is added. */
  private exchangeChannel(name: string): string {
    const known = this.exchangeChannels.get(name);
    if (known !== undefined) return known;
    const type = name === '' ? 'default' : PREDECLARED_TYPES[name];
    if (type) this.exchangeTypes.set(name, type);
    return this.addExchangeChannel(name, {
      address: name === '' ? null : name,
      title: name === '' ? 'the default exchange' : `exchange '${name}'`,
      description:
        name === ''
          ? 'The default exchange: the routing key is the name of the queue the message goes to.'
          : type
            ? 'Predeclared by the broker.'
            : 'Not declared by this application.',
      messages: {},
      bindings: {
        amqp: {
          is: 'routingKey',
          exchange: { name, ...(type ? { type: type as 'default' } : {}), vhost: this.vhost },
          bindingVersion: BINDING_VERSION,
        },
      },
    });
  }

  /** The channel of a queue this app does not declare (a client's target), by name. */
  private namedQueueChannel(name: string): string {
    const ref = this.queuesByName.get(name);
    if (ref) return this.queueChannels.get(ref)!;
    const id = this.channelIds.take(`queue.${name}`);
    const own: QueueRef = { name, serverNamed: false };
    this.queuesByName.set(name, own);
    this.queueChannels.set(own, id);
    this.channels[id] = {
      address: name,
      title: `queue '${name}'`,
      description: 'Not declared by this application.',
      messages: {},
      bindings: {
        amqp: {
          is: 'queue',
          queue: { name, durable: true, exclusive: false, autoDelete: false, vhost: this.vhost },
          bindingVersion: BINDING_VERSION,
        },
      },
    };
    return id;
  }

  // ---- handlers: receive operations, their messages and replies ----

  private handlers(consumer: QueuePlan): void {
    const channelId = this.queueChannels.get(consumer.queue)!;
    const queue = consumer.queue.serverNamed ? 'a server-named queue' : `queue '${consumer.queue.name}'`;
    for (const route of consumer.routes.values()) {
      const messageId = this.routeMessage(route);
      this.channels[channelId].messages[messageId] = componentRef(messageId);
      const kind = route.isEvent ? 'event' : 'request';
      const checks = route.schema
        ? ' A payload that does not match its schema is rejected without requeue (dead-lettered if the queue has a ' +
          `dead-letter exchange)${route.isEvent ? '' : ', with a VALIDATION_FAILED error reply'}.`
        : '';
      const operation: AsyncApiOperation = {
        action: 'receive',
        channel: channelRef(channelId),
        summary: `Handles the ${kind} '${route.pattern}' from ${queue}.`,
        ...(checks ? { description: checks.trim() } : {}),
        messages: [messageRef(channelId, messageId)],
        bindings: { amqp: { ack: route.ack !== 'none', bindingVersion: BINDING_VERSION } },
      };
      if (!route.isEvent) operation.reply = this.reply(route, messageId);
      if (route.retry) {
        const { attempts, delays, parkingLot } = route.retry;
        operation['x-warren-retry'] = { attempts, delays, parkingLot };
      }
      const base = consumer.queue.serverNamed ? 'server-named' : consumer.queue.name;
      this.operations[this.operationIds.take(`receive.${base}.${route.pattern}`)] = operation;
    }
  }

  /** The message a route receives (shared by handlers with the same pattern, kind and payload schema). */
  private routeMessage(route: Route): string {
    const payload = route.schema?.describe();
    const key = `${route.isEvent}\u0000${route.pattern}\u0000${canonical(payload ?? null)}`;
    let id = this.messageKeys.get(key);
    if (id === undefined) {
      id = this.messageIds.take(route.pattern);
      this.messageKeys.set(key, id);
      this.messages[id] = {
        name: route.pattern,
        title: route.pattern,
        summary: route.isEvent
          ? `The event '${route.pattern}'.`
          : `The request '${route.pattern}': its reply goes to its reply_to queue.`,
        ...(payload ? { payload } : {}),
        ...(route.isEvent ? {} : { correlationId: CORRELATION_ID }),
      };
    }
    this.routeMessages.set(route, id);
    return id;
  }

  private reply(route: Route, requestId: string): AsyncApiOperation['reply'] {
    const channel = this.replyChannel();
    let replyId = this.replyMessages.get(requestId);
    if (replyId !== undefined) return this.replyTo(channel, replyId);
    replyId = this.messageIds.take(`${requestId}.reply`);
    this.replyMessages.set(requestId, replyId);
    this.messages[replyId] = {
      name: `${route.pattern} (reply)`,
      title: `${route.pattern} (reply)`,
      summary: `The reply to '${route.pattern}'. A handler whose Observable emits several values sends several replies, each marked ${WarrenHeaders.STREAM}: next, then an empty one marked ${WarrenHeaders.STREAM}: end.`,
      correlationId: CORRELATION_ID,
    };
    this.channels[channel].messages[replyId] = componentRef(replyId);
    return this.replyTo(channel, replyId);
  }

  private replyTo(channel: string, replyId: string): AsyncApiOperation['reply'] {
    return {
      address: REPLY_ADDRESS,
      channel: channelRef(channel),
      messages: [messageRef(channel, replyId), messageRef(channel, ERROR_MESSAGE)],
    };
  }

  /** Where handlers' replies go: each request's reply_to queue, through the default exchange. */
  private replyChannel(): string {
    if (!this.channels[REPLY_CHANNEL]) {
      this.channels[REPLY_CHANNEL] = {
        address: null,
        title: 'reply_to',
        description:
          'Replies go to each request’s reply_to queue (direct reply-to or the caller’s own reply queue) through ' +
          'the default exchange, with the request’s correlation_id.',
        messages: { [this.errorMessage()]: componentRef(ERROR_MESSAGE) },
      };
    }
    return REPLY_CHANNEL;
  }

  private errorMessage(): string {
    this.messages[ERROR_MESSAGE] ??= {
      name: 'error reply',
      title: 'error reply',
      summary: `A failed request's reply: its body is an error envelope, and its header ${WarrenHeaders.ERROR} is true.`,
      headers: {
        type: 'object',
        required: [WarrenHeaders.ERROR],
        properties: { [WarrenHeaders.ERROR]: { type: 'boolean', const: true } },
      },
      payload: structuredClone(ERROR_ENVELOPE_SCHEMA),
      correlationId: CORRELATION_ID,
    };
    return ERROR_MESSAGE;
  }

  /** Each exchange channel carries the messages its bindings route to this app's handlers. */
  private exchangeMessages(): void {
    const routes = new Map(this.source.consumers.map((c) => [c.queue, c.routes.values()]));
    for (const b of this.source.topology.bindings) {
      if (!b.queue) continue;
      const type = this.exchangeTypes.get(b.source);
      const channel = this.channels[this.exchangeChannel(b.source)];
      for (const route of routes.get(b.queue) ?? []) {
        if (!reaches(type, b.routingKey, route.pattern)) continue;
        const id = this.routeMessages.get(route)!;
        channel.messages[id] = componentRef(id);
      }
    }
  }

  // ---- retry queues and parking lots: what the server sends there ----

  private retries(consumer: QueuePlan): void {
    if (consumer.queue.serverNamed) return;
    const queue = consumer.queue.name;
    for (const route of consumer.routes.values()) {
      if (!route.retry) continue;
      const messageId = this.routeMessages.get(route)!;
      for (const delay of new Set(route.retry.delays)) {
        this.send(
          `retry.${queue}.${delay}`,
          this.namedQueueChannel(retryQueueName(queue, delay)),
          messageId,
          `A failed delivery from queue '${queue}' waits ${delay} ms here (x-message-ttl), then is dead-lettered back to it, counted in ${WarrenHeaders.ATTEMPT}.`,
        );
      }
      this.send(
        `park.${queue}`,
        this.namedQueueChannel(route.retry.parkingLot),
        messageId,
        `A message from queue '${queue}' whose last attempt failed, with the error in its ${WarrenHeaders.ERROR_MESSAGE}, ${WarrenHeaders.ERROR_CODE} and ${WarrenHeaders.FAILED_AT} headers.`,
      );
    }
  }

  /** A send operation of the server to a retry queue or parking lot; handlers sharing it add their message. */
  private send(key: string, channelId: string, messageId: string, summary: string): void {
    this.channels[channelId].messages[messageId] = componentRef(messageId);
    const ref = messageRef(channelId, messageId);
    const existing = this.sends.get(key);
    if (existing) {
      if (!existing.messages.some((m) => m.$ref === ref.$ref)) existing.messages.push(ref);
      return;
    }
    const operation = {
      action: 'send' as const,
      channel: channelRef(channelId),
      summary,
      messages: [ref],
      bindings: { amqp: { deliveryMode: 2 as const, bindingVersion: BINDING_VERSION } },
    };
    this.sends.set(key, operation);
    this.operations[this.operationIds.take(key)] = operation;
  }

  // ---- publishers and the client ----

  private publisher(p: AmqpPublisherDefinition): void {
    const exchange = typeof p.exchange === 'string' ? p.exchange : p.exchange.name;
    this.operations[this.operationIds.take(`publish.${p.name}`)] = {
      action: 'send',
      channel: channelRef(this.exchangeChannel(exchange)),
      summary: `The publisher '${p.name}' (@InjectPublisher('${p.name}')): publishes to exchange '${exchange}', with publisher confirms.`,
      bindings: {
        amqp: operationBinding({
          deliveryMode: p.persistent === false ? 1 : 2,
          mandatory: p.mandatory ?? false,
          cc: p.routingKey !== undefined ? [p.routingKey] : undefined,
          timestamp: true,
        }),
      },
    };
  }

  private client(c: AmqpClientOptions): void {
    const toQueue = c.queue !== undefined && (c.exchange ?? '') === '';
    const target = toQueue ? this.namedQueueChannel(c.queue!) : this.exchangeChannel(c.exchange ?? '');
    const where = toQueue ? `queue '${c.queue}'` : c.exchange ? `exchange '${c.exchange}'` : 'the default exchange';
    const cc = c.routingKey !== undefined ? [c.routingKey] : undefined;
    const timeout = c.timeout ?? DEFAULT_RPC_TIMEOUT_MS;
    const expiration = numeric(c.expiration) ?? (c.expireRequests === false ? undefined : timeout);
    this.operations[this.operationIds.take('client.send')] = {
      action: 'send',
      channel: channelRef(target),
      summary: `AmqpClient.send(): requests to ${where}, with reply_to and correlation_id; the reply is awaited for up to ${timeout} ms.`,
      bindings: {
        amqp: operationBinding({
          deliveryMode: c.persistent ? 2 : 1,
          mandatory: c.mandatory ?? true,
          cc,
          expiration,
        }),
      },
      reply: { address: REPLY_ADDRESS, channel: channelRef(this.clientReplyChannel(c)) },
    };
    this.operations[this.operationIds.take('client.emit')] = {
      action: 'send',
      channel: channelRef(target),
      summary: `AmqpClient.emit(): events to ${where}, with publisher confirms.`,
      bindings: {
        amqp: operationBinding({
          deliveryMode: c.persistent === false ? 1 : 2,
          mandatory: c.mandatory ?? false,
          cc,
          expiration: numeric(c.expiration),
        }),
      },
    };
  }

  private clientReplyChannel(c: AmqpClientOptions): string {
    const id = this.channelIds.take(CLIENT_REPLY_CHANNEL);
    const direct = (c.replyTo ?? 'direct') === 'direct';
    this.channels[id] = {
      address: direct ? DIRECT_REPLY_QUEUE : (c.replyQueue ?? null),
      title: 'the client’s replies',
      description: direct
        ? 'RabbitMQ direct reply-to: replies come straight back to the client’s channel.'
        : c.replyQueue
          ? 'The client’s own reply queue (durable, removed after 5 minutes unused).'
          : 'The client’s private reply queue (server-named, exclusive, auto-delete).',
      messages: { [this.errorMessage()]: componentRef(ERROR_MESSAGE) },
    };
    return id;
  }
}

/** Whether a message with `pattern` reaches a queue bound with `routingKey` on an exchange of `type`. */
function reaches(type: string | undefined, routingKey: string, pattern: string): boolean {
  if (type === 'fanout' || type === 'headers') return true;
  if (routingKey === pattern) return true;
  return type === 'topic' && !isWildcardPattern(pattern) && matchesTopic(routingKey, pattern);
}

function exchangeType(type: string): Pick<NonNullable<AmqpChannelBinding['exchange']>, 'type'> {
  return STANDARD_EXCHANGE_TYPES.has(type) ? { type: type as 'topic' } : {};
}

function operationBinding(b: Omit<AmqpOperationBinding, 'bindingVersion'>): AmqpOperationBinding {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(b)) if (v !== undefined) out[k] = v;
  return { ...out, bindingVersion: BINDING_VERSION } as AmqpOperationBinding;
}

function numeric(v: string | number | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

function componentRef(messageId: string): AsyncApiReference {
  return { $ref: `#/components/messages/${messageId}` };
}

function channelRef(channelId: string): AsyncApiReference {
  return { $ref: `#/channels/${channelId}` };
}

function messageRef(channelId: string, messageId: string): AsyncApiReference {
  return { $ref: `#/channels/${channelId}/messages/${messageId}` };
}

/** `{ [key]: arguments as JSON }`, or nothing when there are none. */
function jsonArguments(args: FieldTable | undefined, key: string): Record<string, Record<string, JsonValue>> {
  const entries = Object.entries(args ?? {}).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return {};
  return { [key]: Object.fromEntries(entries.map(([k, v]) => [k, toJson(v)])) };
}

/** A field-table value as JSON: Buffers as base64, Dates as ISO 8601, decimals and big integers as numbers. */
function toJson(v: FieldValue): JsonValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (v instanceof Date) return v.toISOString();
  if (v instanceof AmqpDecimal) return v.toNumber();
  if (Array.isArray(v)) return v.map(toJson);
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  return v;
}
