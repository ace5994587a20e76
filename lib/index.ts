// The package root: the framework-free AMQP client and the NestJS transport.
// Code that must not load @nestjs/* (a plain Node service) imports 'nestjs-warren/amqp' instead.
export * from './amqp';
export * from './nest';
