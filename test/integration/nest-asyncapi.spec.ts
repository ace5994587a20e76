import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AsyncMicroserviceOptions } from '@nestjs/microservices';
import {
  AmqpAsyncApi,
  AmqpController,
  AmqpEventPattern,
  AmqpMessagePattern,
  AmqpModule,
  AmqpServer,
  generateAsyncApi,
  parkingLotName,
  retryQueueName,
} from '../../lib/nest';
import { asyncApiProblems } from '../support/asyncapi';
import { amqpUrl } from '../support/broker';
import { BrokerProbe } from '../support/nest-support';

jest.setTimeout(30_000);

describe('AmqpAsyncApi in a running application', () => {
  let probe: BrokerProbe;

  beforeAll(async () => {
    probe = await BrokerProbe.open();
  });

  afterAll(() => probe.close());

  it('gives, once the app listens on the broker, the document generateAsyncApi makes without one', async () => {
    const exchange = probe.exchange('asyncapi-x');
    const rpc = probe.queue('asyncapi-rpc');
    const events = probe.queue('asyncapi-events');
    probe.track('queue', retryQueueName(events, 100));
    probe.track('queue', parkingLotName(events));

    @AmqpController({ exchange })
    class StockController {
      @AmqpMessagePattern('stock.get', { queue: { name: rpc, durable: false }, schema: { type: 'object' } })
      get(): unknown {
        return { level: 3 };
      }

      @AmqpEventPattern('stock.moved', {
        queue: { name: events, durable: false },
        retry: { attempts: 2, delays: [100] },
      })
      moved(): void {}
    }

    @Module({
      imports: [
        AmqpModule.forRoot({
          url: amqpUrl(),
          topology: { exchanges: [{ name: exchange, type: 'topic', durable: false }] },
          publishers: [{ name: 'stock', exchange }],
          client: { exchange },
        }),
      ],
      controllers: [StockController],
    })
    class StockModule {}

    const app = await NestFactory.createMicroservice<AsyncMicroserviceOptions>(StockModule, {
      inject: [AmqpServer],
      useFactory: (server: AmqpServer) => ({ strategy: server }),
      logger: false,
    });
    try {
      await app.listen();
      // The broker has what the document describes.
      expect(await probe.queueInfo(retryQueueName(events, 100))).not.toBeNull();
      const info = { title: 'stock', version: '1.0.0' };
      const running = app.get(AmqpAsyncApi).document(info);
      expect(asyncApiProblems(running)).toEqual([]);
      expect(running).toEqual(await generateAsyncApi(StockModule, { info, logger: false }));
      expect(Object.keys(running.operations)).toEqual([
        `receive.${rpc}.stock.get`,
        `receive.${events}.stock.moved`,
        `retry.${events}.100`,
        `park.${events}`,
        'publish.stock',
        'client.send',
        'client.emit',
      ]);
    } finally {
      await app.close();
    }
  });
});
