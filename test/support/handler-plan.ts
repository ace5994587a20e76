import type { MessageHandler } from '@nestjs/microservices';
import type { AmqpHandlerOptions } from '../../lib/nest/amqp-options.interface';
import { DefaultDeserializer, DefaultSerializer } from '../../lib/nest/serialization/default.serializer';
import { planHandlers, type HandlerRegistration, type QueuePlan } from '../../lib/nest/server/handler-routes';
import { TopologyPlan } from '../../lib/nest/topology/topology-plan';
import type { TopologyDefinition } from '../../lib/nest/topology/topology.interface';

/** A handler as Nest hands it to the server, with a function of its own (handlers of one pattern chain through it). */
export function registration(pattern: string, extras: AmqpHandlerOptions, isEvent = true): HandlerRegistration {
  const handler = (() => Promise.resolve(undefined)) as unknown as MessageHandler;
  return { pattern, handler, isEvent, extras };
}

/**
 * The server's start-up planning of `registrations` on connection 'default' with the default serializers: the
 * consumers it plans, and the topology it would declare.
 */
export function planRoutes(
  registrations: HandlerRegistration[],
  options: { defaults?: AmqpHandlerOptions; topology?: TopologyDefinition } = {},
): { queues: QueuePlan[]; topology: TopologyPlan } {
  const topology = new TopologyPlan();
  const queues = planHandlers(
    registrations,
    {
      connection: 'default',
      defaults: options.defaults ?? {},
      serializer: new DefaultSerializer(),
      deserializer: new DefaultDeserializer(),
      topology: options.topology,
    },
    topology,
  );
  return { queues, topology };
}
