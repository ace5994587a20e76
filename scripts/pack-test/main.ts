// The app scripts/pack-test.sh compiles against the packed tarball: one RPC through AmqpModule (the package root)
// and one connection through the framework-free entry point (nestjs-warren/amqp), against the live broker.
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type AsyncMicroserviceOptions, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { AmqpClient, AmqpModule, AmqpServer } from 'nestjs-warren';
import { AmqpConnection } from 'nestjs-warren/amqp';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
// Unique per run, and gone when the app closes: the queue is auto-delete, the exchange goes with its last binding.
const name = `warren.pack-test.${process.pid}.${Date.now()}`;

@Controller()
class EchoController {
  @MessagePattern('pack-test.add', {
    queue: { name, durable: false, autoDelete: true },
    exchange: { name, type: 'topic', durable: false, autoDelete: true },
  })
  add(@Payload() q: { a: number; b: number }): { sum: number } {
    return { sum: q.a + q.b };
  }
}

@Module({
  imports: [AmqpModule.forRoot({ url, client: { exchange: name, timeout: 5_000 }, startupTimeout: 10_000 })],
  controllers: [EchoController],
})
class AppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createMicroservice<AsyncMicroserviceOptions>(AppModule, {
    inject: [AmqpServer],
    useFactory: (server: AmqpServer) => ({ strategy: server }),
    logger: false,
  });
  await app.listen();
  try {
    const reply = await firstValueFrom(app.get(AmqpClient).send<{ sum: number }>('pack-test.add', { a: 2, b: 3 }));
    if (reply.sum !== 5) throw new Error(`RPC pack-test.add {a: 2, b: 3} answered ${JSON.stringify(reply)}`);
  } finally {
    await app.close();
  }

  const conn = await AmqpConnection.connect(url);
  try {
    const ch = await conn.channel();
    await ch.queueDeclare('', { exclusive: true });
  } finally {
    await conn.close();
  }
  console.log('pack-test: RPC through AmqpModule and a plain AmqpConnection both work');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`pack-test: FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
