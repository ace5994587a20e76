// Code of docs/testing.md: each `#region` is shown there verbatim (test/unit/docs-guides.spec.ts checks it).
// A Jest spec, type-checked by `npm run lint` (it runs against a live broker: not part of `npm test`).
import { Injectable, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom } from 'rxjs';
import {
  AmqpClient,
  AmqpController,
  AmqpEventPattern,
  AmqpModule,
  AmqpPublisher,
  AmqpServer,
  AmqpSession,
  getPublisherToken,
  InjectPublisher,
} from 'nestjs-warren';

interface Order {
  id: number;
  customer: string;
}

// #region app
@Injectable()
export class Mailer {
  async send(to: string, subject: string): Promise<void> {
    await Promise.resolve([to, subject]); // an SMTP call in real life
  }
}

@Injectable()
export class OrdersService {
  constructor(@InjectPublisher('orders') private readonly events: AmqpPublisher) {}

  async create(order: Order): Promise<Order> {
    await this.events.publish('order.created', order, { messageId: `order-${order.id}` });
    return order;
  }
}

@AmqpController({ queue: 'notifications.orders', exchange: 'orders' })
export class NotificationsController {
  constructor(private readonly mailer: Mailer) {}

  @AmqpEventPattern('order.created')
  async confirm(@Payload() order: Order): Promise<void> {
    await this.mailer.send(order.customer, `Order ${order.id} confirmed`);
  }
}
// #endregion

// #region unit
describe('OrdersService (no broker)', () => {
  it('announces a new order as order.created, with a stable message id', async () => {
    const publish = jest.fn<Promise<void>, Parameters<AmqpPublisher['publish']>>().mockResolvedValue(undefined);
    const moduleRef = await Test.createTestingModule({
      providers: [OrdersService, { provide: getPublisherToken('orders'), useValue: { publish } }],
    }).compile();

    await moduleRef.get(OrdersService).create({ id: 7, customer: 'ada@example.com' });

    expect(publish).toHaveBeenCalledWith(
      'order.created',
      { id: 7, customer: 'ada@example.com' },
      { messageId: 'order-7' },
    );
  });

  it('a handler is a method: call it', async () => {
    const mailer = { send: jest.fn<Promise<void>, [string, string]>().mockResolvedValue(undefined) };
    await new NotificationsController(mailer).confirm({ id: 7, customer: 'ada@example.com' });
    expect(mailer.send).toHaveBeenCalledWith('ada@example.com', 'Order 7 confirmed');
  });
});
// #endregion

// #region integration
describe('notifications (with RabbitMQ)', () => {
  let app: INestMicroservice;
  let mailed: (to: string) => void;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        AmqpModule.forRoot({
          url: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
          client: { exchange: 'orders' },
        }),
      ],
      controllers: [NotificationsController],
      providers: [{ provide: Mailer, useValue: { send: async (to: string) => mailed(to) } }],
    }).compile();
    app = moduleRef.createNestMicroservice({ strategy: moduleRef.get(AmqpServer), logger: false });
    await app.listen(); // resolves once the queue is declared, bound and consumed
  });

  afterAll(async () => {
    await app.get(AmqpServer).close(); // stop consuming first,
    const session = app.get(AmqpSession);
    await session.queueDelete('notifications.orders'); // then remove what the test declared,
    await session.exchangeDelete('orders');
    await app.close(); // then close the connections: nothing is left running
  });

  it('emails the customer when an order is created', async () => {
    const recipient = new Promise<string>((resolve) => (mailed = resolve));
    const client = app.get(AmqpClient);

    await firstValueFrom(client.emit('order.created', { id: 1, customer: 'ada@example.com' }), {
      defaultValue: undefined,
    });

    // Wait for the handler itself, not for a fixed time.
    expect(await recipient).toBe('ada@example.com');
  });
});
// #endregion
