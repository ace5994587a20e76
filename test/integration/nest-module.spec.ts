import { Controller, Injectable, Module, type INestMicroservice } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { Test, type TestingModule } from '@nestjs/testing';
import { firstValueFrom } from 'rxjs';
import { AmqpSession, UnroutableError } from '../../lib/amqp';
import {
  AmqpClient,
  AmqpHealthIndicator,
  AmqpModule,
  AmqpPublisher,
  AmqpServer,
  AmqpStartupError,
  getAmqpServerToken,
  InjectAmqpSession,
  InjectPublisher,
} from '../../lib/nest';
import { amqpUrl, listConnections, uniqueName } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { BrokerProbe, Recorder, rejection } from '../support/nest-support';

jest.setTimeout(30_000);

const ordersExchange = uniqueName('nest-mod-orders');
const notificationsExchange = uniqueName('nest-mod-notify');
const ordersQueue = uniqueName('nest-mod-orders-q');
const notifyQueue = uniqueName('nest-mod-notify-q');
const auditQueue = uniqueName('nest-mod-audit-q');

const created = new Recorder<unknown>();
const notified = new Recorder<unknown>();
const audited = new Recorder<string>();

@Injectable()
class OrdersService {
  constructor(
    @InjectPublisher('orders') private readonly orders: AmqpPublisher,
    @InjectPublisher('notifications') private readonly notifications: AmqpPublisher,
  ) {}

  async create(id: number): Promise<void> {
    await this.orders.publish('order.created', { id });
    await this.notifications.publish('email.sent', { to: `customer-${id}` });
  }

  publishNowhere(): Promise<void> {
    return this.orders.publish('nobody.listens', {}, { mandatory: true });
  }
}

@Module({
  imports: [
    AmqpModule.forFeature({
      publishers: [{ name: 'notifications', exchange: { name: notificationsExchange, type: 'topic', durable: false } }],
    }),
  ],
  providers: [OrdersService],
  exports: [OrdersService],
})
class OrdersFeatureModule {}

@Controller()
class OrdersController {
  @EventPattern('order.created', { queue: { name: ordersQueue, durable: false }, exchange: ordersExchange })
  onCreated(@Payload() order: unknown) {
    created.push(order);
  }

  @EventPattern('email.sent', { queue: { name: notifyQueue, durable: false }, exchange: notificationsExchange })
  onNotified(@Payload() n: unknown) {
    notified.push(n);
  }

  @MessagePattern('order.count', { queue: { name: ordersQueue, durable: false }, exchange: ordersExchange })
  count() {
    return created.items.length;
  }
}

@Controller()
class AuditController {
  constructor(@InjectAmqpSession('audit') private readonly session: AmqpSession) {}

  @EventPattern('audit.entry', { connection: 'audit', queue: { name: auditQueue, durable: false } })
  onEntry(@Payload() entry: string) {
    audited.push(`${this.session.name}:${entry}`);
  }
}

describe('AmqpModule', () => {
  let probe: BrokerProbe;
  let proxy: TcpProxy;
  let moduleRef: TestingModule;
  const micros: INestMicroservice[] = [];

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    for (const q of [ordersQueue, notifyQueue, auditQueue]) probe.track('queue', q);
    for (const x of [ordersExchange, notificationsExchange]) probe.track('exchange', x);
    // The 'audit' connection goes through a proxy: a second, separate connection (as to a second broker).
    proxy = new TcpProxy();
    await proxy.start();
    moduleRef = await Test.createTestingModule({
      imports: [
        ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ AMQP_URL: amqpUrl() })] }),
        AmqpModule.forRootAsync({
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => ({
            url: config.get<string>('AMQP_URL'),
            publishers: [{ name: 'orders', exchange: { name: ordersExchange, type: 'topic', durable: false } }],
            client: { exchange: ordersExchange, timeout: 5000 },
          }),
          publishers: [{ name: 'orders', exchange: ordersExchange }],
          isGlobal: true,
        }),
        AmqpModule.forRoot({ name: 'audit', url: proxy.url(), connectionName: 'warren-audit-test' }),
        OrdersFeatureModule,
      ],
      controllers: [OrdersController, AuditController],
    }).compile();
    await moduleRef.init();
    for (const server of [moduleRef.get(AmqpServer), moduleRef.get<AmqpServer>(getAmqpServerToken('audit'))]) {
      const micro = moduleRef.createNestMicroservice({ strategy: server, logger: false });
      await micro.listen();
      micros.push(micro);
    }
  });

  afterAll(async () => {
    for (const m of micros) await m.close().catch(() => undefined);
    await moduleRef?.close();
    await proxy?.close();
    await probe?.close();
  });

  it('forRootAsync takes its options from ConfigService; the session is a connected provider', () => {
    const session = moduleRef.get(AmqpSession);
    expect(session.isReady).toBe(true);
    expect(moduleRef.get(AmqpHealthIndicator).isHealthy()).toBe(true);
  });

  it('publishers from module options and from forFeature are injected, publish on confirm, reach handlers', async () => {
    await moduleRef.get(OrdersService).create(1);
    await expect(created.waitFor(1)).resolves.toEqual([{ id: 1 }]);
    await expect(notified.waitFor(1)).resolves.toEqual([{ to: 'customer-1' }]);
  });

  it('a mandatory publish nobody can route rejects with UnroutableError', async () => {
    const err = await rejection(moduleRef.get(OrdersService).publishNowhere());
    expect(err).toBeInstanceOf(UnroutableError);
  });

  it("the module's AmqpClient shares the session and talks to the DI-managed server", async () => {
    const client = moduleRef.get(AmqpClient);
    await expect(firstValueFrom(client.send('order.count', {}))).resolves.toBeGreaterThanOrEqual(1);
    expect(client.unwrap()).toBe(moduleRef.get(AmqpSession));
  });

  it('named connections: the audit server serves only its handlers, on its own connection', async () => {
    await probe.publish('', auditQueue, 'login');
    await expect(audited.waitFor(1)).resolves.toEqual(['audit:login']);
    const connections = await listConnections();
    expect(connections.some((c) => c.clientName?.startsWith('warren-audit-test'))).toBe(true);
    expect(proxy.connectionCount).toBeGreaterThanOrEqual(1);
  });

  it('health: check() reports up in the terminus shape', async () => {
    const health = moduleRef.get(AmqpHealthIndicator);
    await expect(health.check('rabbit')).resolves.toEqual({
      rabbit: { status: 'up', connection: 'default', blocked: false },
    });
  });

  it('start-up fails with a clear error (no password) when the broker cannot be reached in time', async () => {
    const down = new TcpProxy();
    await down.start();
    down.refuse(true);
    try {
      const err = await rejection(
        Test.createTestingModule({
          imports: [AmqpModule.forRoot({ url: down.url('guest', 's3cret'), startupTimeout: 300 })],
        }).compile(),
      );
      expect(err).toBeInstanceOf(AmqpStartupError);
      expect(err.message).toContain(`127.0.0.1:${down.port}`);
      expect(err.message).toContain('300 ms');
      expect(err.message).not.toContain('s3cret');
    } finally {
      await down.close();
    }
  });
});
