import type { Attributes, Counter, Histogram, MeterProvider } from '@opentelemetry/api';
import type { AmqpSession } from '../../amqp';
import type { OtelApi } from './otel-api';
import {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_DESTINATION_SUBSCRIPTION_NAME,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
  ATTR_WARREN_SESSION_NAME,
  ATTR_WARREN_SESSION_ROLE,
  INSTRUMENTATION_NAME,
  MESSAGING_SYSTEM_RABBITMQ,
  METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES,
  METRIC_MESSAGING_CLIENT_OPERATION_DURATION,
  METRIC_MESSAGING_CLIENT_SENT_MESSAGES,
  METRIC_MESSAGING_PROCESS_DURATION,
  METRIC_WARREN_MESSAGES_PARKED,
  METRIC_WARREN_PUBLISH_BUFFERED,
  METRIC_WARREN_PUBLISH_REPUBLISHED,
  METRIC_WARREN_SESSION_RECONNECTS,
} from './semconv';

/** The bucket boundaries the messaging semantic conventions recommend for durations, in seconds. */
const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/**
 * Warren's metrics, through the application's global MeterProvider: the messaging conventions' client and process
 * metrics, and Warren's own (reconnects, buffered and re-published publishes, parked messages). The attribute sets of
 * successful operations are made once per destination, not per message.
 */
export class MessagingMetrics {
  private provider: MeterProvider | undefined = undefined;
  /** False while the global MeterProvider is the API's no-op one (no SDK). */
  live = false;
  private operationDuration!: Histogram;
  private processDuration!: Histogram;
  private sentMessages!: Counter;
  private consumedMessages!: Counter;
  private reconnects!: Counter;
  private buffered!: Counter;
  private republished!: Counter;
  private parkedMessages!: Counter;
  /** Attributes of a successful publish, by exchange. */
  private readonly publishAttributes = new Map<string, Attributes>();
  /** Attributes of a successful delivery, by queue, then exchange. */
  private readonly processAttributes = new Map<string, Map<string, Attributes>>();

  constructor(private readonly api: OtelApi) {
    this.refresh();
  }

  /**
   * Makes the instruments again when the application registered a (new) global MeterProvider since: the metrics API
   * has no proxy provider, so instruments made before the SDK started would stay no-ops. Called whenever a client,
   * publisher or consumer is created, never per message.
   */
  refresh(): void {
    const provider = this.api.metrics.getMeterProvider();
    if (provider === this.provider) return;
    this.provider = provider;
    const meter = provider.getMeter(INSTRUMENTATION_NAME);
    this.live = typeof this.api.createNoopMeter !== 'function' || meter !== this.api.createNoopMeter();
    const duration = (name: string, description: string): Histogram =>
      meter.createHistogram(name, {
        description,
        unit: 's',
        advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
      });
    const counter = (name: string, description: string): Counter =>
      meter.createCounter(name, { description, unit: '{message}' });
    this.operationDuration = duration(
      METRIC_MESSAGING_CLIENT_OPERATION_DURATION,
      'Duration of publishing a message, until the broker confirmed it (or the request was written)',
    );
    this.processDuration = duration(
      METRIC_MESSAGING_PROCESS_DURATION,
      'Duration of handling a delivered message, until it was settled',
    );
    this.sentMessages = counter(METRIC_MESSAGING_CLIENT_SENT_MESSAGES, 'Messages published');
    this.consumedMessages = counter(METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES, 'Messages delivered to a handler');
    this.reconnects = meter.createCounter(METRIC_WARREN_SESSION_RECONNECTS, {
      description: 'Connections lost and established again (per session role)',
      unit: '{reconnect}',
    });
    this.buffered = counter(METRIC_WARREN_PUBLISH_BUFFERED, 'Publishes that waited in the outage buffer');
    this.republished = counter(
      METRIC_WARREN_PUBLISH_REPUBLISHED,
      'Publishes left unconfirmed by a lost connection and sent again',
    );
    this.parkedMessages = counter(
      METRIC_WARREN_MESSAGES_PARKED,
      'Messages moved to a parking lot after their last attempt',
    );
  }

  /** One publish ended: confirmed (or written, for an unconfirmed request), or failed with `errorType`. */
  published(exchange: string, seconds: number, errorType: string | undefined): void {
    let attributes = this.publishAttributes.get(exchange);
    if (!attributes) {
      attributes = {
        [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_RABBITMQ,
        [ATTR_MESSAGING_OPERATION_NAME]: 'publish',
        [ATTR_MESSAGING_OPERATION_TYPE]: 'send',
        [ATTR_MESSAGING_DESTINATION_NAME]: exchange,
      };
      this.publishAttributes.set(exchange, attributes);
    }
    if (errorType !== undefined) attributes = { ...attributes, [ATTR_ERROR_TYPE]: errorType };
    this.operationDuration.record(seconds, attributes);
    this.sentMessages.add(1, attributes);
  }

  /** A delivery reached its handler. */
  consumed(exchange: string, queue: string): void {
    this.consumedMessages.add(1, this.deliveryAttributes(exchange, queue));
  }

  /** A delivery was settled (or, without acks, handled), `errorType` when it failed. */
  processed(exchange: string, queue: string, seconds: number, errorType: string | undefined): void {
    let attributes = this.deliveryAttributes(exchange, queue);
    if (errorType !== undefined) attributes = { ...attributes, [ATTR_ERROR_TYPE]: errorType };
    this.processDuration.record(seconds, attributes);
  }

  /** A failed message went to its parking lot. */
  parked(queue: string): void {
    this.parkedMessages.add(1, {
      [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_RABBITMQ,
      [ATTR_MESSAGING_DESTINATION_SUBSCRIPTION_NAME]: queue,
    });
  }

  /** Counts the session's reconnects, buffered and re-published publishes from its events. */
  watchSession(session: AmqpSession): void {
    const sessionName = session.name;
    session.on('recovered', (role) =>
      this.reconnects.add(1, { [ATTR_WARREN_SESSION_NAME]: sessionName, [ATTR_WARREN_SESSION_ROLE]: role }),
    );
    session.on('publishBuffered', ({ exchange }) =>
      this.buffered.add(1, { [ATTR_WARREN_SESSION_NAME]: sessionName, [ATTR_MESSAGING_DESTINATION_NAME]: exchange }),
    );
    session.on('publishRepublished', ({ exchange }) =>
      this.republished.add(1, {
        [ATTR_WARREN_SESSION_NAME]: sessionName,
        [ATTR_MESSAGING_DESTINATION_NAME]: exchange,
      }),
    );
  }

  private deliveryAttributes(exchange: string, queue: string): Attributes {
    let byExchange = this.processAttributes.get(queue);
    if (!byExchange) this.processAttributes.set(queue, (byExchange = new Map()));
    let attributes = byExchange.get(exchange);
    if (!attributes) {
      attributes = {
        [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_RABBITMQ,
        [ATTR_MESSAGING_OPERATION_NAME]: 'process',
        [ATTR_MESSAGING_OPERATION_TYPE]: 'process',
        [ATTR_MESSAGING_DESTINATION_NAME]: exchange,
        [ATTR_MESSAGING_DESTINATION_SUBSCRIPTION_NAME]: queue,
      };
      byExchange.set(exchange, attributes);
    }
    return attributes;
  }
}
