// A module for `warren asyncapi` to describe: the installed CLI boots it without a broker.
import { Controller, Module } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { AmqpEventPattern, AmqpModule } from 'nestjs-warren';

@Controller()
class OrdersController {
  @AmqpEventPattern('order.created', {
    queue: 'pack-test.orders',
    exchange: 'pack-test',
    schema: { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] },
  })
  created(@Payload() order: { id: number }): void {
    void order;
  }
}

@Module({ imports: [AmqpModule.forRoot({ url: 'amqp://127.0.0.1:1' })], controllers: [OrdersController] })
export class AppModule {}
