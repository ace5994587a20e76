import 'reflect-metadata';
import { AmqpConnection, RabbitMQModule, RabbitRPC, RabbitSubscribe } from '@golevelup/nestjs-rabbitmq';
import { type INestApplicationContext, Injectable, type LoggerService, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
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

/**
 * @golevelup/nestjs-rabbitmq: `RabbitMQModule.forRoot`, `@RabbitRPC` / `@RabbitSubscribe` handlers on a provider,
 * `AmqpConnection.request` / `publish`. One connection (amqp-connection-manager, confirm channel) for both sides, in
 * an application context (no transport: golevelup discovers its handlers at bootstrap). Handlers are bound to a direct
 * exchange with the pattern as routing key; RPC replies come back through direct reply-to; messages are acked after
 * the handler (after the reply's confirm for RPC). Prefetch through `prefetchCount` (the default channel's), TCP_NODELAY
 * on through `connectionManagerOptions.connectionOptions`. `stock`: golevelup's defaults (prefetch 10, Nagle on).
 */
export class GolevelupBench implements NestBench {
  readonly name: string;

  constructor(private readonly stock: boolean) {
    this.name = stock ? '@golevelup/nestjs-rabbitmq (defaults)' : '@golevelup/nestjs-rabbitmq';
  }

  private app: INestApplicationContext | null = null;
  private amqp: AmqpConnection | null = null;
  private exchange = '';
  private timeout = 30_000;

  async setup(task: NestTask, sink: EventSink, logger: LoggerService): Promise<void> {
    this.exchange = task.exchange;
    this.timeout = Math.max(30_000, task.stallMs);
    const queueOptions = { durable: false };

    @Injectable()
    class BenchHandlers {
      @RabbitRPC({ exchange: task.exchange, routingKey: RPC_PATTERN, queue: task.rpcQueue, queueOptions })
      rpc(req: RpcRequest): RpcReply {
        return { n: req.n + 1 };
      }

      @RabbitSubscribe({ exchange: task.exchange, routingKey: EVENT_PATTERN, queue: task.eventQueue, queueOptions })
      event(_e: BenchEvent): void {
        sink.hit();
      }
    }

    @Module({
      imports: [
        RabbitMQModule.forRoot({
          uri: task.url,
          exchanges: [{ name: task.exchange, type: 'direct', options: { durable: false } }],
          ...(this.stock
            ? {}
            : { prefetchCount: task.prefetch, connectionManagerOptions: { connectionOptions: { noDelay: true } } }),
          connectionInitOptions: { wait: true, timeout: 10_000 },
          defaultRpcTimeout: this.timeout,
          logger,
        }),
      ],
      providers: [BenchHandlers],
    })
    class BenchModule {}

    this.app = await NestFactory.createApplicationContext(BenchModule, { logger });
    this.amqp = this.app.get(AmqpConnection);
  }

  call(req: RpcRequest): Promise<RpcReply> {
    return this.amqp!.request<RpcReply>({
      exchange: this.exchange,
      routingKey: RPC_PATTERN,
      payload: req,
      timeout: this.timeout,
    });
  }

  async emit(event: BenchEvent): Promise<void> {
    await this.amqp!.publish(this.exchange, EVENT_PATTERN, event);
  }

  describe(): Record<string, string> {
    return {
      '@golevelup/nestjs-rabbitmq': pkgVersion('@golevelup/nestjs-rabbitmq'),
      'amqp-connection-manager': pkgVersion('amqp-connection-manager'),
    };
  }

  async teardown(): Promise<void> {
    await this.app?.close();
  }
}
