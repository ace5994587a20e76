import { context, diag, metrics, propagation, trace } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { PublishOptions } from '../../lib/amqp';
import { NO_TELEMETRY, warrenTelemetry } from '../../lib/nest/telemetry/telemetry';

// @opentelemetry/api is installed here (a dev dependency); each test file has its own global API state.

describe("Warren's telemetry hooks with @opentelemetry/api installed", () => {
  afterEach(() => {
    trace.disable();
    metrics.disable();
    propagation.disable();
    context.disable();
  });

  it('do nothing while no SDK is registered, and trace once a TracerProvider is', () => {
    const telemetry = warrenTelemetry();
    expect(telemetry).not.toBe(NO_TELEMETRY);
    const properties: PublishOptions = {};
    expect(telemetry.publish('orders', 'order.created', properties, 10)).toBeUndefined();
    expect(telemetry.request('orders.get', 'orders', 'orders.get', properties, 10)).toBeUndefined();
    telemetry.injectReply(properties);
    expect(properties).toEqual({});

    const provider = new NodeTracerProvider();
    provider.register();
    const publishing = telemetry.publish('orders', 'order.created', properties, 10);
    expect(publishing).toBeDefined();
    publishing!.track(Promise.resolve());
    expect(Object.keys(properties.headers ?? {})).toContain('traceparent');
  });

  it('follow a TracerProvider the application replaces', async () => {
    const telemetry = warrenTelemetry();
    const spansOf = async (): Promise<string[]> => {
      const exporter = new InMemorySpanExporter();
      const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
      provider.register();
      const published = Promise.resolve();
      telemetry.publish('orders', 'order.created', {}, 10)!.track(published);
      await published;
      await provider.forceFlush();
      trace.disable();
      return exporter.getFinishedSpans().map((s) => s.name);
    };
    expect(await spansOf()).toEqual(['publish orders']);
    expect(await spansOf()).toEqual(['publish orders']);
  });

  it('never break a publish: a propagator that throws leaves the message untraced', () => {
    const failing = {
      inject: () => {
        throw new Error('broken propagator');
      },
      extract: <C>(ctx: C) => ctx,
      fields: () => ['traceparent'],
    };
    diag.setLogger({
      error: () => undefined,
      warn: () => undefined,
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    });
    new NodeTracerProvider().register({ propagator: failing });
    const properties: PublishOptions = {};
    expect(warrenTelemetry().publish('orders', 'order.created', properties, 10)).toBeUndefined();
    expect(properties).toEqual({});
    diag.disable();
  });

  it('record metrics once a MeterProvider is registered, even without a TracerProvider', () => {
    expect(warrenTelemetry().publish('orders', 'order.created', {}, 10)).toBeUndefined();
    metrics.setGlobalMeterProvider(new MeterProvider());
    // Picked up when the next client, publisher or consumer is made.
    expect(warrenTelemetry().publish('orders', 'order.created', {}, 10)).toBeDefined();
  });
});
