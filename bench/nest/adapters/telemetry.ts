import Module from 'node:module';

/**
 * The tracing variants of the Warren row. 'warren' runs with `@opentelemetry/api` as the repository has it (a dev
 * dependency, resolved from the root node_modules) and no SDK: the API's no-op tracer and meter take every span and
 * measurement. 'warren-no-otel' hides the package (as in an application that does not install it): Warren's hooks are
 * its own no-ops. 'warren-otel' starts the SDK as an application would: every span sampled and batch-exported,
 * every metric recorded and exported once a minute — to exporters that drop what they get, so only Warren's cost and
 * the SDK's own is measured.
 */

/** Makes `@opentelemetry/*` unresolvable in this process. Call before anything loads Warren. */
export function hideOpenTelemetry(): void {
  const resolver = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const resolve = resolver._resolveFilename;
  resolver._resolveFilename = function (request: string, ...rest: unknown[]): string {
    if (request.startsWith('@opentelemetry/'))
      throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });
    return resolve.call(this, request, ...rest);
  };
}

/** What the SDK exported, for the report. */
export interface TelemetryCounts {
  spans: number;
  metricExports: number;
}

/** Registers the SDK globally (tracer provider with a BatchSpanProcessor, meter provider with a periodic reader). */
export async function startOpenTelemetry(): Promise<{ counts: TelemetryCounts; shutdown: () => Promise<void> }> {
  const { metrics } = await import('@opentelemetry/api');
  const { BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const { NodeTracerProvider } = await import('@opentelemetry/sdk-trace-node');
  const { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } =
    await import('@opentelemetry/sdk-metrics');
  type SpanExporter = ConstructorParameters<typeof BatchSpanProcessor>[0];
  type MetricExporter = ConstructorParameters<typeof PeriodicExportingMetricReader>[0]['exporter'];
  const SUCCESS = 0; // ExportResultCode.SUCCESS
  const counts: TelemetryCounts = { spans: 0, metricExports: 0 };
  const spanExporter: SpanExporter = {
    export: (spans, done) => {
      counts.spans += spans.length;
      done({ code: SUCCESS });
    },
    shutdown: () => Promise.resolve(),
  };
  const metricExporter: MetricExporter = {
    export: (_metrics, done) => {
      counts.metricExports++;
      done({ code: SUCCESS });
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
    selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
  };
  const tracerProvider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(spanExporter)] });
  tracerProvider.register();
  const meterProvider = new MeterProvider({
    readers: [new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 })],
  });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    counts,
    shutdown: async () => {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}
