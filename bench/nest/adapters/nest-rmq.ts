import 'reflect-metadata';
import { Controller, type INestMicroservice, type LoggerService, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  type ClientProxy,
  ClientsModule,
  Ctx,
  EventPattern,
  MessagePattern,
  type MicroserviceOptions,
  Payload,
  type RmqContext,
  Transport,
} from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import {
  type BenchEvent,
  EVENT_PATTERN,
  type EventSink,
  type NestBench,
  type NestTask,
  RPC_PATTERN,
  type RpcReply,
  type RpcRequest,
  pkgVersion,
} from '../protocol';

const CLIENT = 'BENCH_RMQ_CLIENT';

export type NestRmqVariant = 'acked' | 'noack' | 'stock';

/**
 * Nest's built-in RabbitMQ transport (Transport.RMQ: amqplib through amqp-connection-manager). Server from
 * `NestFactory.createMicroservice`, client from `ClientsModule.register` in the same app (so one process, two
 * connections: server and client). One queue per server: the RPC and event handlers share it, the client publishes to
 * it through the default exchange.
 *
 * - 'acked' (the compared row): `noAck: false` + `prefetchCount`, the handlers ack through RmqContext (Nest's RMQ
 *   server never acks by itself); TCP_NODELAY on (`socketOptions.connectionOptions.noDelay`) for server and client.
 * - 'noack': Nest's consumer defaults (auto-ack, unlimited prefetch: at-most-once), TCP_NODELAY on.
 * - 'stock': every setting at Nest's default, amqplib's Nagle included.
 */
export class NestRmqBench implements NestBench {
  readonly name: string;
  private app: INestMicroservice | null = null;
  private client: ClientProxy | null = null;

  constructor(private readonly variant: NestRmqVariant) {
    this.name = { acked: 'Nest RMQ', noack: 'Nest RMQ (noAck)', stock: 'Nest RMQ (defaults)' }[variant];
  }

  async setup(task: NestTask, sink: EventSink, logger: LoggerService): Promise<void> {
    const ack = this.variant === 'acked';
    const queueOptions = { durable: false };
    const connection = {
      urls: [task.url],
      queue: task.rpcQueue,
      queueOptions,
      ...(this.variant === 'stock' ? {} : { socketOptions: { connectionOptions: { noDelay: true } } }),
    };

    @Controller()
    class BenchController {
      @MessagePattern(RPC_PATTERN)
      rpc(@Payload() req: RpcRequest, @Ctx() ctx: RmqContext): RpcReply {
        if (ack) (ctx.getChannelRef() as { ack(m: unknown): void }).ack(ctx.getMessage());
        return { n: req.n + 1 };
      }

      @EventPattern(EVENT_PATTERN)
      event(@Payload() _e: BenchEvent, @Ctx() ctx: RmqContext): void {
        if (ack) (ctx.getChannelRef() as { ack(m: unknown): void }).ack(ctx.getMessage());
        sink.hit();
      }
    }

    @Module({
      imports: [ClientsModule.register([{ name: CLIENT, transport: Transport.RMQ, options: connection }])],
      controllers: [BenchController],
    })
    class BenchModule {}

    const serverOptions = ack ? { ...connection, noAck: false, prefetchCount: task.prefetch } : connection;
    this.app = await NestFactory.createMicroservice<MicroserviceOptions>(BenchModule, {
      transport: Transport.RMQ,
      options: serverOptions,
      logger,
    });
    await this.app.listen();
    this.client = this.app.get<ClientProxy>(CLIENT);
    await this.client.connect();
  }

  call(req: RpcRequest): Promise<RpcReply> {
    return firstValueFrom(this.client!.send<RpcReply, RpcRequest>(RPC_PATTERN, req));
  }

  emit(event: BenchEvent): Promise<void> {
    return lastValueFrom(this.client!.emit<void, BenchEvent>(EVENT_PATTERN, event), { defaultValue: undefined });
  }

  describe(): Record<string, string> {
    return {
      '@nestjs/microservices': pkgVersion('@nestjs/microservices'),
      'amqp-connection-manager': pkgVersion('amqp-connection-manager'),
      amqplib: pkgVersion('amqplib'),
    };
  }

  async teardown(): Promise<void> {
    await this.client?.close();
    await this.app?.close();
  }
}
