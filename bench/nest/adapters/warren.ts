import 'reflect-metadata';
import { type INestMicroservice, type LoggerService, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type AsyncMicroserviceOptions, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import {
  AmqpClient,
  AmqpController,
  AmqpModule,
  AmqpPublisher,
  AmqpServer,
  getPublisherToken,
} from '../../../lib/nest';
import {
  type BenchEvent,
  EVENT_PATTERN,
  type EventSink,
  type NestBench,
  type NestTask,
  RPC_PATTERN,
  type RpcReply,
  type RpcRequest,
} from '../protocol';
import type { TelemetryCounts } from './telemetry';

const PUBLISHER = 'bench-events';

/**
 * Warren (lib/nest, compiled with the bench, resolving Nest 11 from bench/node_modules): `AmqpModule.forRoot`, the
 * DI-managed `AmqpServer` as the microservice strategy, the module's `AmqpClient` (sharing the module's session: one
 * publishing and one consuming connection, Warren's default 'split'). Handlers via `@AmqpController` defaults: a
 * non-durable queue per handler bound to a direct exchange with the pattern as routing key, ack 'auto' (after the
 * handler), prefetch as the other libraries. Requests use direct reply-to (Warren's default); events are
 * non-persistent like the other libraries' (Warren's default for events is persistent) and `emit` resolves on the
 * broker's confirm.
 *
 * `viaPublisher` (reference row 'warren-publisher'): events go through a Warren `AmqpPublisher` (module `publishers`,
 * what `@InjectPublisher` injects) instead of `AmqpClient.emit`, i.e. without Nest's ClientProxy/rxjs emit pipeline,
 * like golevelup's `AmqpConnection.publish`.
 *
 * `tracing` (see adapters/telemetry.ts): 'api' — `@opentelemetry/api` present, no SDK (the 'warren' row); 'absent' —
 * the package hidden ('warren-no-otel'); 'sdk' — the OpenTelemetry SDK tracing and measuring every message
 * ('warren-otel').
 */
export class WarrenNestBench implements NestBench {
  readonly name: string;
  private app: INestMicroservice | null = null;
  private client: AmqpClient | null = null;
  private publisher: AmqpPublisher | null = null;
  private telemetry: { counts: TelemetryCounts; shutdown: () => Promise<void> } | null = null;

  constructor(
    private readonly viaPublisher = false,
    private readonly tracing: 'api' | 'absent' | 'sdk' = 'api',
  ) {
    this.name = viaPublisher ? 'Warren (AmqpPublisher)' : tracing === 'api' ? 'Warren' : `Warren (tracing: ${tracing})`;
  }

  async setup(task: NestTask, sink: EventSink, logger: LoggerService): Promise<void> {
    // Started before any Warren object exists, as an application's tracing setup is.
    if (this.tracing === 'sdk') this.telemetry = await (await import('./telemetry')).startOpenTelemetry();
    const exchange = { name: task.exchange, type: 'direct', durable: false } as const;

    @AmqpController({ queue: { name: task.rpcQueue, durable: false }, exchange, prefetch: task.prefetch })
    class RpcController {
      @MessagePattern(RPC_PATTERN)
      rpc(@Payload() req: RpcRequest): RpcReply {
        return { n: req.n + 1 };
      }
    }

    @AmqpController({ queue: { name: task.eventQueue, durable: false }, exchange, prefetch: task.prefetch })
    class EventController {
      @EventPattern(EVENT_PATTERN)
      event(@Payload() _e: BenchEvent): void {
        sink.hit();
      }
    }

    @Module({
      imports: [
        AmqpModule.forRoot({
          url: task.url,
          connectionName: `warren-bench-nest-${process.pid}`,
          startupTimeout: 10_000,
          client: { exchange: task.exchange, timeout: Math.max(30_000, task.stallMs), persistent: false },
          publishers: this.viaPublisher ? [{ name: PUBLISHER, exchange, persistent: false }] : [],
        }),
      ],
      controllers: [RpcController, EventController],
    })
    class BenchModule {}

    this.app = await NestFactory.createMicroservice<AsyncMicroserviceOptions>(BenchModule, {
      inject: [AmqpServer],
      useFactory: (server: AmqpServer) => ({ strategy: server }),
      logger,
    });
    await this.app.listen();
    const client = this.app.get<AmqpClient>(AmqpClient);
    this.client = client;
    await client.connect();
    if (this.viaPublisher) this.publisher = this.app.get<AmqpPublisher>(getPublisherToken(PUBLISHER));
  }

  call(req: RpcRequest): Promise<RpcReply> {
    return firstValueFrom(this.client!.send<RpcReply, RpcRequest>(RPC_PATTERN, req));
  }

  emit(event: BenchEvent): Promise<void> {
    if (this.publisher) return this.publisher.publish(EVENT_PATTERN, event);
    return lastValueFrom(this.client!.emit<void, BenchEvent>(EVENT_PATTERN, event), { defaultValue: undefined });
  }

  describe(): Record<string, string> {
    const otel = Object.keys(require.cache).some((f) => f.includes('/@opentelemetry/api/'));
    return {
      warren: 'lib/nest (working tree)',
      '@opentelemetry/api': otel ? 'loaded' : 'not loaded',
      ...(this.telemetry ? { 'spans exported': String(this.telemetry.counts.spans) } : {}),
    };
  }

  async teardown(): Promise<void> {
    await this.app?.close();
    await this.telemetry?.shutdown();
  }
}
