/**
 * The sample's tracing: when the OpenTelemetry SDK is installed (this repository's dev dependencies), it is started
 * before the app, as an application's tracing setup is, with in-memory exporters; at the end the sample prints the
 * trace of one RPC as a tree and a few of Warren's metrics. Without the SDK the sample runs untraced.
 */
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { MetricData } from '@opentelemetry/sdk-metrics';

/** What the sample picks a trace by: its spans' names and statuses. */
export type SpanSummary = { name: string; failed: boolean };

export interface SampleTracing {
  /** The first trace whose spans satisfy `pick`, as indented lines (none if no trace does). */
  traceWhere(pick: (spans: SpanSummary[]) => boolean): string[];
  /** Counter values and histogram counts by metric name, summed over their attributes. */
  metrics(): Promise<Map<string, number>>;
  shutdown(): Promise<void>;
}

type Sdk = {
  api: typeof import('@opentelemetry/api');
  traceNode: typeof import('@opentelemetry/sdk-trace-node');
  traceBase: typeof import('@opentelemetry/sdk-trace-base');
  sdkMetrics: typeof import('@opentelemetry/sdk-metrics');
};

/** The SDK's packages, or undefined when they are not installed. */
function loadSdk(): Sdk | undefined {
  try {
    /* eslint-disable @typescript-eslint/no-require-imports -- optional: the sample runs without them */
    return {
      api: require('@opentelemetry/api') as Sdk['api'],
      traceNode: require('@opentelemetry/sdk-trace-node') as Sdk['traceNode'],
      traceBase: require('@opentelemetry/sdk-trace-base') as Sdk['traceBase'],
      sdkMetrics: require('@opentelemetry/sdk-metrics') as Sdk['sdkMetrics'],
    };
    /* eslint-enable @typescript-eslint/no-require-imports */
  } catch {
    return undefined;
  }
}

export function startTracing(): SampleTracing | undefined {
  const sdk = loadSdk();
  if (!sdk) return undefined;
  const { api, traceNode, traceBase, sdkMetrics } = sdk;
  const spans = new traceBase.InMemorySpanExporter();
  const tracerProvider = new traceNode.NodeTracerProvider({
    spanProcessors: [new traceBase.SimpleSpanProcessor(spans)],
  });
  tracerProvider.register();
  const metricExporter = new sdkMetrics.InMemoryMetricExporter(sdkMetrics.AggregationTemporality.CUMULATIVE);
  const reader = new sdkMetrics.PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 3_600_000,
  });
  const meterProvider = new sdkMetrics.MeterProvider({ readers: [reader] });
  api.metrics.setGlobalMeterProvider(meterProvider);

  return {
    traceWhere(pick) {
      const byTrace = new Map<string, ReadableSpan[]>();
      for (const s of spans.getFinishedSpans()) {
        const id = s.spanContext().traceId;
        byTrace.set(id, [...(byTrace.get(id) ?? []), s]);
      }
      for (const trace of byTrace.values()) {
        if (pick(trace.map((s) => ({ name: s.name, failed: s.status.code === api.SpanStatusCode.ERROR }))))
          return printTree(trace, api.SpanKind);
      }
      return [];
    },
    async metrics() {
      metricExporter.reset();
      await reader.forceFlush();
      const totals = new Map<string, number>();
      for (const rm of metricExporter.getMetrics())
        for (const sm of rm.scopeMetrics) for (const m of sm.metrics) totals.set(m.descriptor.name, total(m));
      return totals;
    },
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

const SHOWN_ATTRIBUTES: Record<string, string> = {
  'messaging.destination.name': 'exchange',
  'messaging.rabbitmq.destination.routing_key': 'routing_key',
  'messaging.message.conversation_id': 'correlation_id',
  'messaging.message.id': 'message_id',
  'messaging.message.body.size': 'body',
  'messaging.rabbitmq.message.delivery_tag': 'delivery_tag',
};

/** Spans as a tree, each line: name, kind, a few attributes, status; children indented under their parent. */
function printTree(spans: ReadableSpan[], kinds: Record<number, string>): string[] {
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const children = new Map<string | undefined, ReadableSpan[]>();
  for (const s of spans) {
    const parent = s.parentSpanContext?.spanId;
    const key = parent !== undefined && ids.has(parent) ? parent : undefined;
    children.set(key, [...(children.get(key) ?? []), s]);
  }
  const lines: string[] = [];
  const walk = (parent: string | undefined, depth: number): void => {
    const level = (children.get(parent) ?? []).sort((a, b) => compareTime(a.startTime, b.startTime));
    for (const s of level) {
      const shown = Object.entries(SHOWN_ATTRIBUTES)
        .filter(([key]) => s.attributes[key] !== undefined)
        .map(([key, label]) => `${label}=${JSON.stringify(s.attributes[key])}`);
      const links = s.links.length > 0 ? [`links to ${s.links.length} reply context`] : [];
      const status = s.status.code === 2 ? [`ERROR ${JSON.stringify(s.status.message ?? '')}`] : [];
      const kind = (kinds[s.kind] ?? String(s.kind)).toLowerCase();
      lines.push(`${'  '.repeat(depth)}${s.name} [${kind}] ${[...shown, ...links, ...status].join(' ')}`.trimEnd());
      walk(s.spanContext().spanId, depth + 1);
    }
  };
  walk(undefined, 0);
  return lines;
}

function compareTime(a: [number, number], b: [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}

function total(metric: MetricData): number {
  let sum = 0;
  for (const point of metric.dataPoints) {
    const value: unknown = point.value;
    sum += typeof value === 'number' ? value : (value as { count: number }).count;
  }
  return sum;
}
