import {
  Catch,
  Injectable,
  UseFilters,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type CanActivate,
  type ExecutionContext,
  type NestInterceptor,
  type PipeTransform,
  type RpcExceptionFilter,
} from '@nestjs/common';
import { Ctx, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom, map, throwError, type Observable } from 'rxjs';
import {
  AmqpClient,
  AmqpController,
  AmqpRecordBuilder,
  AmqpServer,
  type AmqpContext,
  AmqpEventPattern,
} from '../../lib/nest';
import { amqpUrl, uniqueName } from '../support/broker';
import { BrokerProbe, Recorder, rejection } from '../support/nest-support';

jest.setTimeout(30_000);

const exchange = uniqueName('nest-enh-x');
const queue = uniqueName('nest-enh-q');
const eventQueue = uniqueName('nest-enh-ev');
const deadQueue = uniqueName('nest-enh-dead');
const events = new Recorder<string>();
const globalSeen: string[] = [];

@Injectable()
class AdminGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const amqp = context.switchToRpc().getContext<AmqpContext>();
    return amqp.getHeaders()['x-role'] === 'admin';
  }
}

@Injectable()
class PositivePipe implements PipeTransform<unknown, number> {
  transform(value: unknown): number {
    if (typeof value !== 'number' || value <= 0) {
      throw new RpcException({ status: 'error', message: 'must be a positive number', code: 'INVALID' });
    }
    return value * 10;
  }
}

@Injectable()
class WrapInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((value: unknown) => ({ wrapped: value })));
  }
}

@Injectable()
class GlobalInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    globalSeen.push(context.switchToRpc().getContext<AmqpContext>().getPattern());
    return next.handle();
  }
}

@Catch()
class TeapotFilter implements RpcExceptionFilter<unknown> {
  catch(exception: unknown): Observable<never> {
    const message = exception instanceof Error ? exception.message : 'unknown';
    return throwError(() => ({ status: 418, message: `filtered: ${message}`, code: 'TEAPOT' }));
  }
}

@AmqpController({ queue: { name: queue, durable: false }, exchange: { name: exchange, durable: false } })
class EnhancedController {
  @UseGuards(AdminGuard)
  @MessagePattern('secure.read')
  read() {
    return 'secret';
  }

  @MessagePattern('math.scale')
  scale(@Payload(PositivePipe) n: number) {
    return n;
  }

  @UseInterceptors(WrapInterceptor)
  @MessagePattern('wrap.me')
  wrap() {
    return 'x';
  }

  @UseFilters(TeapotFilter)
  @MessagePattern('explode')
  explode() {
    throw new Error('kaboom');
  }

  @UseGuards(AdminGuard)
  @AmqpEventPattern('secure.event', {
    queue: { name: eventQueue, durable: false, deadLetterExchange: '', deadLetterRoutingKey: deadQueue },
    topology: { queues: [{ name: deadQueue, durable: false }] },
  })
  secureEvent(@Payload() what: string, @Ctx() ctx: AmqpContext) {
    events.push(`${what}:${ctx.getPattern()}`);
  }
}

describe('guards, pipes, interceptors and exception filters', () => {
  const closables: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;
  let client: AmqpClient;

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    for (const q of [queue, eventQueue, deadQueue]) probe.track('queue', q);
    probe.track('exchange', exchange);
    const moduleRef = await Test.createTestingModule({ controllers: [EnhancedController] }).compile();
    const app = moduleRef.createNestMicroservice({ strategy: new AmqpServer({ url: amqpUrl() }), logger: false });
    app.useGlobalInterceptors(new GlobalInterceptor());
    await app.listen();
    closables.push(app);
    client = new AmqpClient({ url: amqpUrl(), exchange, timeout: 5000 });
    closables.push(client);
  });

  afterAll(async () => {
    for (const c of closables.reverse()) await c.close().catch(() => undefined);
    await probe.close();
  });

  const asRole = <T>(data: T, role: string) =>
    new AmqpRecordBuilder(data).setOptions({ headers: { 'x-role': role } }).build();

  it('a guard sees the AMQP context (headers) and denies with Forbidden resource', async () => {
    await expect(firstValueFrom(client.send('secure.read', asRole({}, 'admin')))).resolves.toBe('secret');
    const err = await rejection(firstValueFrom(client.send('secure.read', asRole({}, 'guest'))));
    expect(err).toMatchObject({ status: 'error', message: 'Forbidden resource' });
  });

  it('a pipe transforms the payload, or rejects it with its RpcException', async () => {
    await expect(firstValueFrom(client.send('math.scale', 4))).resolves.toBe(40);
    const err = await rejection(firstValueFrom(client.send('math.scale', -1)));
    expect(err).toMatchObject({ message: 'must be a positive number', code: 'INVALID' });
  });

  it('interceptors (handler-level and global) wrap the call', async () => {
    await expect(firstValueFrom(client.send('wrap.me', {}))).resolves.toEqual({ wrapped: 'x' });
    expect(globalSeen).toContain('wrap.me');
  });

  it('an exception filter shapes the error the caller gets', async () => {
    const err = await rejection(firstValueFrom(client.send('explode', {})));
    expect(err).toMatchObject({ status: 418, message: 'filtered: kaboom', code: 'TEAPOT' });
  });

  it('a guard on an event handler: denied events are nacked (dead-lettered), allowed ones handled', async () => {
    await firstValueFrom(client.emit('secure.event', asRole('denied', 'guest')));
    await firstValueFrom(client.emit('secure.event', asRole('allowed', 'admin')));
    expect(await events.waitFor(1)).toEqual(['allowed:secure.event']);
    const ch = await probe.connection.createChannel();
    const dead = await new Promise<string>((resolve) => {
      void ch.consume(deadQueue, (m) => m && resolve(m.content.toString()), { noAck: true });
    });
    await ch.close();
    expect(dead).toBe('denied');
    expect(events.items).toEqual(['allowed:secure.event']);
  });
});
