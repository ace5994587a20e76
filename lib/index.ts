/**
 * The package root, `nestjs-warren`: the framework-free AMQP client and the NestJS transport. Code that must not load
 * `@nestjs/*` (a plain Node service) imports `nestjs-warren/amqp` instead.
 *
 * @packageDocumentation
 * @module nestjs-warren
 */
// Both lists are explicit (lib/amqp/index.ts, lib/nest/index.ts); the root is exactly their union, checked by
// test/unit/public-exports.spec.ts.
export * from './amqp';
export * from './nest';
