import type { Context, TextMapGetter, TextMapSetter } from '@opentelemetry/api';
import type { FieldTable, PublishOptions } from '../../amqp';
import type { OtelApi } from './otel-api';

/**
 * Trace context in AMQP message headers, through whatever propagator the application registered (the SDK's default:
 * W3C `traceparent`, `tracestate` and `baggage`) — the headers `@opentelemetry/instrumentation-amqplib` writes and
 * reads, as plain string values.
 */

const headerGetter: TextMapGetter<FieldTable> = {
  keys: (headers) => Object.keys(headers),
  get: (headers, key) => {
    const value = headers[key];
    if (typeof value === 'string') return value;
    return Buffer.isBuffer(value) ? value.toString() : undefined;
  },
};

/** Writes into a message's headers: the table is made (or a frozen one copied) on the first write only. */
const headerSetter: TextMapSetter<PublishOptions> = {
  set: (options, key, value) => {
    const headers = options.headers;
    if (headers === undefined) options.headers = { [key]: value };
    else if (Object.isFrozen(headers)) options.headers = { ...headers, [key]: value };
    else headers[key] = value;
  },
};

/** The context a delivery carries, as a child of the root context (never of whatever the socket callback runs in). */
export function extractContext(api: OtelApi, headers: FieldTable | undefined): Context {
  return headers === undefined ? api.ROOT_CONTEXT : api.propagation.extract(api.ROOT_CONTEXT, headers, headerGetter);
}

/**
 * Puts `context` into the message's headers. `options.headers` must be the message's own table (Warren's builders
 * always copy the caller's), or a frozen one, which is copied.
 */
export function injectContext(api: OtelApi, context: Context, options: PublishOptions): void {
  api.propagation.inject(context, options, headerSetter);
}

/**
 * True when the headers already carry a trace context (another instrumentation, or the application, injected one):
 * the message then keeps it, and Warren does not start a producer span of its own for it. Baggage alone is no span.
 */
export function carriesTraceContext(api: OtelApi, headers: FieldTable | undefined): boolean {
  if (headers === undefined) return false;
  for (const field of api.propagation.fields()) {
    if (field !== 'baggage' && headers[field] !== undefined) return true;
  }
  return false;
}
