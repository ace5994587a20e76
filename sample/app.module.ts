import { Global, Module } from '@nestjs/common';
import { AmqpModule } from '../lib';
import { BillingController } from './billing/billing.controller';
import { OrderHistoryController } from './history/order-history.controller';
import { Journal } from './journal';
import { NotificationsController } from './notifications/notifications.controller';
import { OrdersModule } from './orders/orders.module';
import { SalesReportController } from './reports/sales-report.controller';
import { ORDERS_EXCHANGE } from './topology';

@Global()
@Module({ providers: [Journal], exports: [Journal] })
class JournalModule {}

@Module({
  imports: [
    JournalModule,
    AmqpModule.forRoot({
      url: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
      connectionName: 'warren-sample',
      startupTimeout: 10_000,
      shutdownTimeout: 5_000,
      topology: { exchanges: [ORDERS_EXCHANGE] },
      client: { exchange: ORDERS_EXCHANGE.name, timeout: 5_000 },
    }),
    OrdersModule,
  ],
  controllers: [BillingController, NotificationsController, SalesReportController, OrderHistoryController],
})
export class AppModule {}
