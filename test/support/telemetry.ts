import { metrics, type Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

/** Ended spans, with waits for the ones a test expects (told by the exporter, no polling). */
class WaitableSpanExporter extends InMemorySpanExporter {
  private waiters: Array<() => void> = [];

  override export(spans: ReadableSpan[], resultCallback: Parameters<InMemorySpanExporter['export']>[1]): void {
    super.export(spans, resultCallback);
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves with the ended spans once `done(spans)` holds; rejects after timeoutMs with what there is. */
  async until(done: (spans: ReadableSpan[]) => boolean, what: string, timeoutMs = 10_000): Promise<ReadableSpan[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const spans = this.getFinishedSpans();
      if (done(spans)) return spans;
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = spans.map((s) => s.name).join(', ');
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ended spans: ${seen || '(none)'}`);
      }
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        timer = setTimeout(resolve, left);
      }).finally(() => clearTimeout(timer));
    }
  }
}

/**
 * The OpenTelemetry SDK for one test file, registered globally as an application would: a NodeTracerProvider
 * (AsyncLocalStorage context, W3C trace context and baggage propagators) exporting every span to an in-memory
 * exporter, and a MeterProvider whose reader exports to an in-memory metric exporter on `collect()`.
 */
export class TestTelemetry {
  readonly spans = new WaitableSpanExporter();
  private readonly metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  private readonly reader = new PeriodicExportingMetricReader({
    exporter: this.metricExporter,
    exportIntervalMillis: 3_600_000,
  });
  private readonly tracerProvider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(this.spans)] });
  private readonly meterProvider = new MeterProvider({ readers: [this.reader] });

  constructor() {
    this.tracerProvider.register();
    metrics.setGlobalMeterProvider(this.meterProvider);
  }

  /** The spans of one trace. */
  trace(traceId: string): ReadableSpan[] {
    return this.spans.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
  }

  /** Every metric recorded so far (cumulative), by name. */
  async collect(): Promise<Map<string, MetricData>> {
    this.metricExporter.reset();
    await this.reader.forceFlush();
    const byName = new Map<string, MetricData>();
    for (const rm of this.metricExporter.getMetrics())
      for (const sm of rm.scopeMetrics) for (const m of sm.metrics) byName.set(m.descriptor.name, m);
    return byName;
  }

  /**
   * A counter's value, or a histogram's count, summed over the data points whose attributes include `match`.
   */
  async value(name: string, match: Attributes = {}): Promise<number> {
    const metric = (await this.collect()).get(name);
    if (!metric) return 0;
    let total = 0;
    for (const point of metric.dataPoints) {
      if (!Object.entries(match).every(([k, v]) => point.attributes[k] === v)) continue;
      if (metric.dataPointType === DataPointType.HISTOGRAM) total += (point.value as { count: number }).count;
      else total += point.value as number;
    }
    return total;
  }

  async shutdown(): Promise<void> {
    await this.tracerProvider.shutdown();
    await this.meterProvider.shutdown();
  }
}

/** The span's parent span id (undefined for a root span). */
export function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}
