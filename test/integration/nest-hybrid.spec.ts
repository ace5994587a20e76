import { Controller, Get, Module, Param, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { AmqpClient, AmqpEventPattern, AmqpModule, AmqpServer, WarrenHeaders } from '../../lib/nest';
import { amqpUrl, settledQueueCounts, uniqueName, waitFor } from '../support/broker';
import { BrokerProbe, deferred, Recorder } from '../support/nest-support';

// A hybrid application: Nest's HTTP server (platform-express) and Warren's DI-managed server in one process.

jest.setTimeout(30_000);

const queue = uniqueName('nest-hybrid-q');
const started = new Recorder<number>();
const finished: number[] = [];
const gate = deferred();

@Controller('orders')
class OrdersController {
  @Get(':id')
  get(@Param('id') id: string) {
    return { id: Number(id), via: 'http' };
  }

  @MessagePattern('hybrid.get', { queue: { name: queue, durable: false } })
  rpc(@Payload() id: number) {
    return { id, via: 'amqp' };
  }

  @AmqpEventPattern('hybrid.slow', { queue: { name: queue, durable: false } })
  async slow(@Payload() n: number) {
    started.push(n);
    await gate.promise;
    finished.push(n);
  }
}

@Module({
  imports: [
    AmqpModule.forRoot({ url: amqpUrl(), connectionName: uniqueName('nest-hybrid'), client: { queue, timeout: 5000 } }),
  ],
  controllers: [OrdersController],
})
class AppModule {}

describe('hybrid application (HTTP + Warren)', () => {
  let probe: BrokerProbe;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    probe.track('queue', queue);
  });

  afterAll(async () => {
    gate.resolve();
    await app?.close();
    await probe?.close();
  });

  it('serves HTTP and RPC side by side; app.close() lets the running handler finish and ack before it stops', async () => {
    app = await NestFactory.create(AppModule, { logger: false });
    app.connectMicroservice({ strategy: app.get(AmqpServer) });
    await app.startAllMicroservices();
    await app.listen(0);
    const base = await app.getUrl();

    const http = await fetch(`${base}/orders/7`);
    expect(http.status).toBe(200);
    expect(await http.json()).toEqual({ id: 7, via: 'http' });
    await expect(firstValueFrom(app.get(AmqpClient).send('hybrid.get', 8))).resolves.toEqual({ id: 8, via: 'amqp' });

    await probe.publish('', queue, 1, { headers: { [WarrenHeaders.PATTERN]: 'hybrid.slow' } });
    await started.waitFor(1);
    let closed = false;
    const closing = app.close().then(() => (closed = true));
    // The consumer is cancelled at once; the close waits for the handler.
    await waitFor(async () => (await probe.queueInfo(queue))?.consumerCount === 0, 10_000, 'the consumer to go');
    expect(closed).toBe(false);
    gate.resolve();
    await closing;
    app = undefined;

    expect(finished).toEqual([1]);
    // Acked, not requeued (a lost ack would requeue it after the channel's close-ok: count once nothing is unacked).
    expect((await settledQueueCounts(queue)).ready).toBe(0);
    await expect(fetch(`${base}/orders/7`)).rejects.toThrow(); // the HTTP server is gone too
  });
});
