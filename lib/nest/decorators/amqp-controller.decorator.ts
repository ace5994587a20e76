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
      const found = proto[key];
      if (typeof found !== 'function' || Reflect.getMetadata(PATTERN_HANDLER_METADATA, found) === undefined) continue;
      let method = found as (...args: unknown[]) => unknown;
      // Nest keeps a handler's pattern metadata on the method's function object. An inherited handler's function is
      // shared with its base class and every sibling subclass: give this class its own, or the defaults of the
      // first decorated subclass would stick to all of them.
      if (!Object.prototype.hasOwnProperty.call(proto, key)) {
        method = ownHandler(method);
        Object.defineProperty(proto, key, { value: method, writable: true, configurable: true, enumerable: false });
      }
      const extras = (Reflect.getMetadata(PATTERN_EXTRAS_METADATA, method) ?? {}) as Record<string, unknown>;
      Reflect.defineMetadata(PATTERN_EXTRAS_METADATA, { ...defaults, ...extras }, method);
    }
  };
}

/**
 * A subclass's own copy of an inherited handler: calls the inherited one, and carries every metadata of it (pattern,
 * transport, extras, guards, interceptors, pipes, filters...) so Nest treats it exactly like the original.
 */
function ownHandler(inherited: (...args: unknown[]) => unknown): (...args: unknown[]) => unknown {
  const own = {
    [inherited.name](this: unknown, ...args: unknown[]): unknown {
      return inherited.apply(this, args);
    },
  }[inherited.name];
  for (const key of Reflect.getMetadataKeys(inherited) as unknown[]) {
    Reflect.defineMetadata(key, Reflect.getMetadata(key, inherited) as unknown, own);
  }
  return own;
}

/** Method names of a prototype chain, base classes included (a subclass's own methods first). */
function methodNames(proto: object): string[] {
  const names = new Set<string>();
  for (let p: object | null = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const name of Object.getOwnPropertyNames(p)) if (name !== 'constructor') names.add(name);
  }
  return [...names];
}
