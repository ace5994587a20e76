/**
 * The names Warren's spans and metrics use: OpenTelemetry's messaging semantic conventions for RabbitMQ (written out
 * here: `@opentelemetry/semantic-conventions` would be a runtime dependency), and Warren's own metrics.
 */

export const INSTRUMENTATION_NAME = 'nestjs-warren';

export const ATTR_MESSAGING_SYSTEM = 'messaging.system';
export const MESSAGING_SYSTEM_RABBITMQ = 'rabbitmq';
export const ATTR_MESSAGING_OPERATION_TYPE = 'messaging.operation.type';
export const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name';
/** The exchange ('' for the default exchange). */
export const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
/** The queue a consumer reads. */
export const ATTR_MESSAGING_DESTINATION_SUBSCRIPTION_NAME = 'messaging.destination.subscription.name';
export const ATTR_MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY = 'messaging.rabbitmq.destination.routing_key';
export const ATTR_MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG = 'messaging.rabbitmq.message.delivery_tag';
export const ATTR_MESSAGING_MESSAGE_ID = 'messaging.message.id';
/** The correlation id. */
export const ATTR_MESSAGING_MESSAGE_CONVERSATION_ID = 'messaging.message.conversation_id';
export const ATTR_MESSAGING_MESSAGE_BODY_SIZE = 'messaging.message.body.size';
export const ATTR_ERROR_TYPE = 'error.type';

export const METRIC_MESSAGING_CLIENT_OPERATION_DURATION = 'messaging.client.operation.duration';
export const METRIC_MESSAGING_PROCESS_DURATION = 'messaging.process.duration';
export const METRIC_MESSAGING_CLIENT_SENT_MESSAGES = 'messaging.client.sent.messages';
export const METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES = 'messaging.client.consumed.messages';

export const METRIC_WARREN_SESSION_RECONNECTS = 'warren.session.reconnects';
export const METRIC_WARREN_PUBLISH_BUFFERED = 'warren.publish.buffered';
export const METRIC_WARREN_PUBLISH_REPUBLISHED = 'warren.publish.republished';
export const METRIC_WARREN_MESSAGES_PARKED = 'warren.messages.parked';
export const ATTR_WARREN_SESSION_NAME = 'warren.session.name';
export const ATTR_WARREN_SESSION_ROLE = 'warren.session.role';
