export * from './amqp-serializer.interface';
export * from './default.serializer';
