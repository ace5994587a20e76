import type { WritePacket } from '@nestjs/microservices';
import type { AmqpSession, FieldTable, PublishOptions, SessionMessage } from '../../amqp';
import { MessageTracer } from './message-tracer';
import { loadOtelApi } from './otel-api';

/** One publish (an event, a publisher's message): its PRODUCER span and metrics. */
export interface PublishTrace {
  /** Ends the span, and records the duration, when the publish settles. */
  track(published: Promise<void>): void;
}

/** One `AmqpClient.send()`: its CLIENT span (until the last reply) and the PRODUCER span of its request. */
export interface RequestTrace {
  /** The call's callback, ending the CLIENT span at the call's last packet (error status for an error). */
  wrap(callback: (packet: WritePacket) => void): (packet: WritePacket) => void;
  /** The request is written (undefined) or will be (the promise): ends the PRODUCER span then. */
  sent(sending: Promise<void> | undefined): void;
  /** A reply arrived: the CLIENT span links to the context it carries back. */
  replied(headers: FieldTable | undefined): void;
  /** The caller unsubscribed: ends what is still open. */
  end(): void;
}

/** One delivery: its CONSUMER span, from the handler's start to the message's settlement. */
export interface ProcessTrace {
  /**
   * Runs the handling inside the span's context; a no-ack delivery's span ends when the handling does, and any span
   * when the handling itself fails.
   */
  run<T>(handle: () => Promise<T>): Promise<T>;
  /** The handler failed: error status (also when a retry policy then acks the message). */
  failed(error: unknown): void;
  /** Acked, nacked or rejected: ends the span, nack and reject with an error status. */
  settled(outcome: 'ack' | 'nack' | 'reject', requeue?: boolean): void;
}

/**
 * The hooks the Nest layer calls. Without `@opentelemetry/api` they are {@link NO_TELEMETRY}: each returns undefined
 * or does nothing, so the message paths allocate nothing for telemetry.
 */
export interface Telemetry {
  /** Starts the PRODUCER span of a publish and puts its context into `properties.headers`. */
  publish(exchange: string, routingKey: string, properties: PublishOptions, bodySize: number): PublishTrace | undefined;
  /** Starts the CLIENT span of an RPC and the PRODUCER span of its request (context into `properties.headers`). */
  request(
    pattern: string,
    exchange: string,
    routingKey: string,
    properties: PublishOptions,
    bodySize: number,
  ): RequestTrace | undefined;
  /** Starts the CONSUMER span of a delivery, continuing the trace its headers carry. */
  process(msg: SessionMessage, queue: string, noAck: boolean): ProcessTrace | undefined;
  /** Puts the current context (the handler's CONSUMER span) into a reply's headers: the caller's trace goes on. */
  injectReply(options: PublishOptions): void;
  /** A failed message went to its parking lot. */
  parked(queue: string): void;
  /** Counts the session's reconnects and its buffered and re-published publishes. */
  watchSession(session: AmqpSession): void;
}

export const NO_TELEMETRY: Telemetry = Object.freeze({
  publish: () => undefined,
  request: () => undefined,
  process: () => undefined,
  injectReply: () => undefined,
  parked: () => undefined,
  watchSession: () => undefined,
});

let tracer: MessageTracer | undefined;

/**
 * Warren's telemetry: OpenTelemetry through the application's `@opentelemetry/api` (looked up once, on first use),
 * or {@link NO_TELEMETRY} when it is not installed. Spans and metrics go wherever the application's SDK sends them;
 * while no SDK is registered the hooks return undefined, as NO_TELEMETRY's do. Called when a client, publisher or
 * consumer is made (it picks up a MeterProvider registered since), never per message.
 */
export function warrenTelemetry(): Telemetry {
  const api = loadOtelApi();
  if (!api) return NO_TELEMETRY;
  if (tracer) tracer.refresh();
  else tracer = new MessageTracer(api);
  return tracer;
}
