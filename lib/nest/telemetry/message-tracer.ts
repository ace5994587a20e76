import type { WritePacket } from '@nestjs/microservices';
import type { Attributes, Context, Span, Tracer, TracerProvider } from '@opentelemetry/api';
import type { AmqpSession, FieldTable, PublishOptions, SessionMessage } from '../../amqp';
import { carriesTraceContext, extractContext, injectContext } from './header-propagation';
import { MessagingMetrics } from './messaging-metrics';
import type { OtelApi } from './otel-api';
import {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_DESTINATION_SUBSCRIPTION_NAME,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_MESSAGING_MESSAGE_CONVERSATION_ID,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY,
  ATTR_MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG,
  ATTR_MESSAGING_SYSTEM,
  INSTRUMENTATION_NAME,
  MESSAGING_SYSTEM_RABBITMQ,
} from './semconv';
import type { ProcessTrace, PublishTrace, RequestTrace, Telemetry } from './telemetry';

/**
 * Warren's spans, after OpenTelemetry's messaging conventions for RabbitMQ: `publish <exchange>` (PRODUCER) for each
 * event, publisher message and RPC request; `send <pattern>` (CLIENT) around an RPC until its last reply;
 * `process <queue>` (CONSUMER) from a handler's start to its message's settlement, continuing the trace the message
 * carries. The default exchange is named `<default>` in span names (its `messaging.destination.name` is '').
 *
 * While no SDK is registered (the API alone, e.g. installed by another package), the hooks do nothing, as without the
 * API: spans and measurements would all go to the API's no-op implementations anyway.
 */
export class MessageTracer implements Telemetry {
  /** The global TracerProvider (a proxy) and its tracer, looked up again if the application replaced the provider. */
  private provider: TracerProvider;
  private tracer: Tracer;
  readonly metrics: MessagingMetrics;
  /** The API's own no-op TracerProvider: what the global proxy provider delegates to until an SDK registers one. */
  private readonly noopTracerProvider: TracerProvider;

  constructor(readonly api: OtelApi) {
    // The global provider is a proxy: its tracer follows a TracerProvider the application registers later.
    this.provider = api.trace.getTracerProvider();
    this.tracer = this.provider.getTracer(INSTRUMENTATION_NAME);
    this.noopTracerProvider = new api.ProxyTracerProvider().getDelegate();
    this.metrics = new MessagingMetrics(api);
  }

  refresh(): void {
    this.metrics.refresh();
  }

  /** An SDK takes Warren's spans or its metrics (checked per message: cheaper than a no-op span). */
  private isLive(): boolean {
    const provider = this.api.trace.getTracerProvider();
    if (provider !== this.provider) {
      this.provider = provider;
      this.tracer = provider.getTracer(INSTRUMENTATION_NAME);
    }
    if (this.metrics.live) return true;
    const proxy = provider as { getDelegate?: () => TracerProvider };
    return typeof proxy.getDelegate !== 'function' || proxy.getDelegate() !== this.noopTracerProvider;
  }

  publish(
    exchange: string,
    routingKey: string,
    properties: PublishOptions,
    bodySize: number,
  ): PublishTrace | undefined {
    if (!this.isLive()) return undefined;
    try {
      return this.startPublish(exchange, routingKey, properties, bodySize);
    } catch (err) {
      return this.broken(err);
    }
  }

  request(
    pattern: string,
    exchange: string,
    routingKey: string,
    properties: PublishOptions,
    bodySize: number,
  ): RequestTrace | undefined {
    if (!this.isLive()) return undefined;
    try {
      return this.startRequest(pattern, exchange, routingKey, properties, bodySize);
    } catch (err) {
      return this.broken(err);
    }
  }

  process(msg: SessionMessage, queue: string, noAck: boolean): ProcessTrace | undefined {
    if (!this.isLive()) return undefined;
    try {
      return this.startProcess(msg, queue, noAck);
    } catch (err) {
      return this.broken(err);
    }
  }

  injectReply(options: PublishOptions): void {
    if (!this.isLive()) return;
    try {
      injectContext(this.api, this.api.context.active(), options);
    } catch (err) {
      this.broken(err);
    }
  }

  parked(queue: string): void {
    this.metrics.parked(queue);
  }

  watchSession(session: AmqpSession): void {
    this.metrics.watchSession(session);
  }

  /** Error status, `error.type` and the exception event. */
  fail(span: Span, error: unknown): void {
    span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: errorMessage(error) });
    span.setAttribute(ATTR_ERROR_TYPE, errorType(error));
    if (error instanceof Error) span.recordException(error);
  }

  /**
   * Telemetry never breaks messaging: a part of the application's SDK that throws (a propagator, a sampler, a span
   * processor) is reported to OpenTelemetry's diagnostic logger, and the message goes on untraced.
   */
  private broken(err: unknown): undefined {
    this.api.diag.error(`${INSTRUMENTATION_NAME}: tracing a message failed; it goes on untraced`, err);
    return undefined;
  }

  private startPublish(
    exchange: string,
    routingKey: string,
    properties: PublishOptions,
    bodySize: number,
  ): PublishTrace {
    const api = this.api;
    // Someone upstream already traced this publish and put its context in the headers: keep it, no second span.
    if (carriesTraceContext(api, properties.headers)) return new OtelPublishTrace(this, undefined, exchange);
    const parent = api.context.active();
    const span = this.tracer.startSpan(
      `publish ${destinationLabel(exchange)}`,
      { kind: api.SpanKind.PRODUCER, attributes: publishAttributes(exchange, routingKey, properties, bodySize) },
      parent,
    );
    injectContext(api, api.trace.setSpan(parent, span), properties);
    return new OtelPublishTrace(this, span, exchange);
  }

  private startRequest(
    pattern: string,
    exchange: string,
    routingKey: string,
    properties: PublishOptions,
    bodySize: number,
  ): RequestTrace {
    const api = this.api;
    const parent = api.context.active();
    const attributes: Attributes = {
      [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_RABBITMQ,
      [ATTR_MESSAGING_OPERATION_NAME]: 'send',
      [ATTR_MESSAGING_DESTINATION_NAME]: exchange,
    };
    if (routingKey !== '') attributes[ATTR_MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY] = routingKey;
    if (properties.correlationId !== undefined)
      attributes[ATTR_MESSAGING_MESSAGE_CONVERSATION_ID] = properties.correlationId;
    const client = this.tracer.startSpan(`send ${pattern}`, { kind: api.SpanKind.CLIENT, attributes }, parent);
    let producer: Span | undefined;
    if (!carriesTraceContext(api, properties.headers)) {
      const inClient = api.trace.setSpan(parent, client);
      producer = this.tracer.startSpan(
        `publish ${destinationLabel(exchange)}`,
        { kind: api.SpanKind.PRODUCER, attributes: publishAttributes(exchange, routingKey, properties, bodySize) },
        inClient,
      );
      injectContext(api, api.trace.setSpan(inClient, producer), properties);
    }
    return new OtelRequestTrace(this, client, new OtelPublishTrace(this, producer, exchange));
  }

  private startProcess(msg: SessionMessage, queue: string, noAck: boolean): ProcessTrace {
    const api = this.api;
    let headers: FieldTable | undefined;
    try {
      headers = msg.properties.headers;
    } catch {
      headers = undefined; // unreadable: the consumer rejects the message, under a span of a trace of its own
    }
    const parent = extractContext(api, headers);
    const { exchange, routingKey, deliveryTag } = msg.fields;
    const { messageId, correlationId } = msg.properties;
    const attributes: Attributes = {
      [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_RABBITMQ,
      [ATTR_MESSAGING_OPERATION_TYPE]: 'process',
      [ATTR_MESSAGING_OPERATION_NAME]: 'process',
      [ATTR_MESSAGING_DESTINATION_NAME]: exchange,
      [ATTR_MESSAGING_DESTINATION_SUBSCRIPTION_NAME]: queue,
      [ATTR_MESSAGING_MESSAGE_BODY_SIZE]: msg.body.length,
      [ATTR_MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG]: deliveryTag,
    };
    if (routingKey !== '') attributes[ATTR_MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY] = routingKey;
    if (messageId !== undefined) attributes[ATTR_MESSAGING_MESSAGE_ID] = messageId;
    if (correlationId !== undefined) attributes[ATTR_MESSAGING_MESSAGE_CONVERSATION_ID] = correlationId;
    const span = this.tracer.startSpan(`process ${queue}`, { kind: api.SpanKind.CONSUMER, attributes }, parent);
    this.metrics.consumed(exchange, queue);
    return new OtelProcessTrace(this, span, api.trace.setSpan(parent, span), exchange, queue, noAck);
  }
}

class OtelPublishTrace implements PublishTrace {
  private readonly startedAt = performance.now();
  private ended = false;

  constructor(
    private readonly tracer: MessageTracer,
    /** Undefined when the message already carried a trace context: metrics only. */
    private readonly span: Span | undefined,
    private readonly exchange: string,
  ) {}

  track(published: Promise<void>): void {
    published.then(
      () => this.end(undefined),
      (err: unknown) => this.end(err ?? new Error('publish failed')),
    );
  }

  /** Ends once: `error` undefined for a publish the broker took. */
  end(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    const seconds = (performance.now() - this.startedAt) / 1000;
    this.tracer.metrics.published(this.exchange, seconds, error === undefined ? undefined : errorType(error));
    if (!this.span) return;
    if (error !== undefined) this.tracer.fail(this.span, error);
    this.span.end();
  }
}

class OtelRequestTrace implements RequestTrace {
  private ended = false;
  /** The first reply's context is linked; a streamed reply's later parts come from the same handler span. */
  private linked = false;

  constructor(
    private readonly tracer: MessageTracer,
    private readonly client: Span,
    private readonly request: OtelPublishTrace,
  ) {}

  wrap(callback: (packet: WritePacket) => void): (packet: WritePacket) => void {
    return (packet) => {
      if (packet.err !== undefined && packet.err !== null) this.finish(packet.err);
      else if (packet.isDisposed) this.finish(undefined);
      callback(packet);
    };
  }

  sent(sending: Promise<void> | undefined): void {
    if (sending) this.request.track(sending);
    else this.request.end(undefined);
  }

  replied(headers: FieldTable | undefined): void {
    if (this.ended || this.linked || headers === undefined) return;
    this.linked = true;
    const api = this.tracer.api;
    const replyContext = api.trace.getSpanContext(extractContext(api, headers));
    // addLink came with @opentelemetry/api 1.9.
    if (replyContext && api.trace.isSpanContextValid(replyContext) && typeof this.client.addLink === 'function') {
      this.client.addLink({ context: replyContext });
    }
  }

  end(): void {
    this.finish(undefined);
  }

  private finish(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    // Ends the request's span too when the call failed before the request was out.
    this.request.end(error);
    if (error !== undefined) this.tracer.fail(this.client, error);
    this.client.end();
  }
}

class OtelProcessTrace implements ProcessTrace {
  private readonly startedAt = performance.now();
  private failure: { error: unknown } | undefined = undefined;
  private ended = false;

  constructor(
    private readonly tracer: MessageTracer,
    private readonly span: Span,
    private readonly context: Context,
    private readonly exchange: string,
    private readonly queue: string,
    private readonly noAck: boolean,
  ) {}

  run<T>(handle: () => Promise<T>): Promise<T> {
    const handled = this.tracer.api.context.with(this.context, handle);
    // A failure of the consumer itself (not the handler's) ends the span too: nothing else would.
    handled.then(this.noAck ? () => this.end() : undefined, (err: unknown) => this.end(err));
    return handled;
  }

  failed(error: unknown): void {
    if (this.ended || this.failure) return;
    this.failure = { error };
    this.tracer.fail(this.span, error);
  }

  settled(outcome: 'ack' | 'nack' | 'reject', requeue?: boolean): void {
    if (outcome !== 'ack' && !this.failure) {
      const message = `${outcome}ed ${requeue ? 'with' : 'without'} requeue`;
      this.span.setStatus({ code: this.tracer.api.SpanStatusCode.ERROR, message });
      this.span.setAttribute(ATTR_ERROR_TYPE, outcome);
      this.failure = { error: outcome };
    }
    this.end();
  }

  private end(error?: unknown): void {
    if (this.ended) return;
    if (error !== undefined) this.failed(error);
    this.ended = true;
    const seconds = (performance.now() - this.startedAt) / 1000;
    const failure = this.failure;
    this.tracer.metrics.processed(this.exchange, this.queue, seconds, failure ? errorType(failure.error) : undefined);
    this.span.end();
  }
}

/** The attributes of a PRODUCER span. */
function publishAttributes(
  exchange: string,
  routingKey: string,
  properties: PublishOptions,
  bodySize: number,
): Attributes {
  const attributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_RABBITMQ,
    [ATTR_MESSAGING_OPERATION_TYPE]: 'send',
    [ATTR_MESSAGING_OPERATION_NAME]: 'publish',
    [ATTR_MESSAGING_DESTINATION_NAME]: exchange,
    [ATTR_MESSAGING_MESSAGE_BODY_SIZE]: bodySize,
  };
  if (routingKey !== '') attributes[ATTR_MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY] = routingKey;
  if (properties.messageId !== undefined) attributes[ATTR_MESSAGING_MESSAGE_ID] = properties.messageId;
  if (properties.correlationId !== undefined)
    attributes[ATTR_MESSAGING_MESSAGE_CONVERSATION_ID] = properties.correlationId;
  return attributes;
}

/** The exchange as span names show it: the default exchange has no name. */
function destinationLabel(exchange: string): string {
  return exchange === '' ? '<default>' : exchange;
}

/**
 * `error.type`: the error's name (`TimeoutError`, `NackError`, `AmqpRpcError`…), the code of an RPC error object
 * (`NOT_FOUND`), or `_OTHER`.
 */
function errorType(error: unknown): string {
  if (error instanceof Error) return error.name;
  if (typeof error === 'string') return error;
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' || typeof code === 'number' ? String(code) : '_OTHER';
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string')
    return (error as { message: string }).message;
  return String(error);
}
