// Code of docs/recovery.md: each `#region` is shown there verbatim (test/unit/docs-guides.spec.ts checks it).
import { Controller, Get, Logger, Module, ServiceUnavailableException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  AmqpHealthIndicator,
  AmqpModule,
  AmqpServer,
  AmqpSession,
  type AmqpHealthIndicatorResult,
} from 'nestjs-warren';

// #region cluster
@Module({
  imports: [
    AmqpModule.forRoot({
      // Every node of the cluster: tried in order (or shuffled per round), the next one when a node goes away.
      url: [
        'amqp://app:secret@rabbit-1.internal:5672/shop',
        'amqp://app:secret@rabbit-2.internal:5672/shop',
        'amqp://app:secret@rabbit-3.internal:5672/shop',
      ],
      shuffleUrls: true,
      heartbeat: 15, // seconds: a silent peer is given up on after 2 × 15 s
      reconnect: { initialDelayMs: 100, maxDelayMs: 5_000 }, // exponential backoff with full jitter
      startupTimeout: 60_000, // how long start-up waits for the broker, ms
    }),
  ],
})
export class AppModule {}
// #endregion

// #region without-broker
@Module({
  imports: [
    AmqpModule.forRoot({
      url: 'amqp://app:secret@rabbit.internal:5672/shop',
      // Start even if the broker is down: health reports down, publishes wait in the outage buffer,
      // servers declare their topology and start consuming once the broker is up.
      startWithoutBroker: true,
    }),
  ],
})
export class ResilientModule {}
// #endregion

// #region events
export function watchSession(session: AmqpSession): void {
  const log = new Logger('amqp');
  session.on('disconnected', (role, cause) => log.warn(`${role} connection lost: ${cause.message}`));
  session.on('reconnecting', (role, { attempt, delayMs }) => log.log(`${role}: attempt ${attempt} in ${delayMs} ms`));
  session.on('recovered', (role) => log.log(`${role} connection recovered`));
  // One entity (a consumer, a recorded queue...) the broker keeps refusing; retried with backoff meanwhile.
  session.on('setupFailed', ({ entity, error, attempt }) => log.warn(`${entity}: ${error.message} (${attempt})`));
  // Given up for good: a refused login, a missing vhost, a configuration error, or reconnect.maxAttempts.
  session.on('recoveryFailed', (role, error) => log.error(`${role}: recovery failed: ${error.message}`));
}
// #endregion

// #region health
@Controller('health')
export class HealthController {
  constructor(private readonly amqp: AmqpHealthIndicator) {}

  @Get()
  check(): AmqpHealthIndicatorResult {
    // { amqp: { status: 'up' | 'down', connection: 'default', blocked: false } }
    const result = this.amqp.status('amqp');
    if (!this.amqp.isHealthy()) throw new ServiceUnavailableException(result);
    return result;
  }
}
// #endregion

// #region shutdown
export async function main(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  app.connectMicroservice({ strategy: app.get(AmqpServer) });
  // On SIGTERM: consumers are cancelled, running handlers finish (bounded by shutdownTimeout, default 10 s) and
  // their acks reach the broker, outstanding confirms settle, then the connections close.
  app.enableShutdownHooks();
  await app.startAllMicroservices();
  await app.listen(3000);
}
// #endregion
