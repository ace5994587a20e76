import { Controller } from '@nestjs/common';
import type { AmqpHandlerOptions } from '../amqp-options.interface';

// Nest's metadata keys for pattern handlers (stable since Nest 7; not exported publicly).
const PATTERN_HANDLER_METADATA = 'microservices:handler_type';
const PATTERN_EXTRAS_METADATA = 'microservices:pattern_extras';
const CONTROLLER_WATERMARK = '__controller__';

/**
 * Warren defaults for every `@MessagePattern` / `@EventPattern` handler of a controller: queue, exchange, prefetch,
 * ack mode, retry, topology... A handler's own extras win over these. Marks the class as a Nest controller when it is
 * not one already (keep your `@Controller('path')` for hybrid HTTP controllers).
 *
 * ```ts
 * @AmqpController({ queue: 'billing.orders', exchange: { name: 'orders', type: 'topic' } })
 * export class BillingController {
 *   @EventPattern('order.created') onCreated(@Payload() order: Order) {}
 *   @EventPattern('order.*.cancelled', { retry: { attempts: 3, delays: [1000, 5000] } }) onCancelled() {}
 * }
 * ```
 */
export function AmqpController(defaults: AmqpHandlerOptions = {}): ClassDecorator {
  return (target) => {
    if (!Reflect.getMetadata(CONTROLLER_WATERMARK, target)) Controller()(target);
    const proto = target.prototype as Record<string, unknown>;
    for (const key of methodNames(proto)) {
      const method = proto[key];
      if (typeof method !== 'function' || Reflect.getMetadata(PATTERN_HANDLER_METADATA, method) === undefined) continue;
      const extras = (Reflect.getMetadata(PATTERN_EXTRAS_METADATA, method) ?? {}) as Record<string, unknown>;
      Reflect.defineMetadata(PATTERN_EXTRAS_METADATA, { ...defaults, ...extras }, method);
    }
  };
}

/** Method names of a prototype chain, base classes included (a subclass's own methods first). */
function methodNames(proto: object): string[] {
  const names = new Set<string>();
  for (let p: object | null = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const name of Object.getOwnPropertyNames(p)) if (name !== 'constructor') names.add(name);
  }
  return [...names];
}
