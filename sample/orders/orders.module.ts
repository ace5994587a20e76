import { Module } from '@nestjs/common';
import { AmqpModule } from '../../lib/nest';
import { ORDERS_EXCHANGE } from '../topology';
import { OrdersController } from './orders.controller';
import { OrdersService } from './orders.service';

@Module({
  // The orders service declares its own publisher, bound to the orders topic exchange.
  imports: [AmqpModule.forFeature({ publishers: [{ name: 'orders', exchange: ORDERS_EXCHANGE }] })],
  controllers: [OrdersController],
  providers: [OrdersService],
  exports: [OrdersService],
})
export class OrdersModule {}
