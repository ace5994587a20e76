import { EventPattern, MessagePattern } from '@nestjs/microservices';
import type { AmqpHandlerOptions } from '../amqp-options.interface';

/** `@MessagePattern` with Warren's options typed. Same as `@MessagePattern(pattern, options)`. */
export function AmqpMessagePattern(
  pattern: string | Record<string, unknown>,
  options: AmqpHandlerOptions = {},
): MethodDecorator {
  return MessagePattern(pattern, options as Record<string, unknown>);
}

/** `@EventPattern` with Warren's options typed. Same as `@EventPattern(pattern, options)`. */
export function AmqpEventPattern(
  pattern: string | Record<string, unknown>,
  options: AmqpHandlerOptions = {},
): MethodDecorator {
  return EventPattern(pattern, options as Record<string, unknown>);
}
