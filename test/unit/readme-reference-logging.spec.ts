import { Controller, Logger as NestLogger, type LoggerService, type Type } from '@nestjs/common';
import { EventPattern } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { AmqpConnection, AmqpSession, type Logger, type SessionMessage } from '../../lib/amqp';
import { AmqpClient, AmqpModule, AmqpServer, getAmqpServerToken, type AmqpServerOptions } from '../../lib/nest';
import { FakeBroker } from '../support/fake-broker';
import '../support/nest-support'; // Nest's logs stay quiet unless a test records them

/** README, Logging: where Warren's log lines go by default. */
jest.setTimeout(20_000);

interface Line {
  level: string;
  message: string;
  context?: string;
}

/** Log lines as they arrive, with waits for one that matches (event based). */
class Lines {
  readonly items: Line[] = [];
  private waiters: Array<{ match: (l: Line) => boolean; resolve: (l: Line) => void }> = [];

  push(line: Line): void {
    this.items.push(line);
    for (const w of this.waiters.filter((x) => x.match(line))) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(line);
    }
  }

  waitFor(match: (l: Line) => boolean, timeoutMs = 10_000): Promise<Line> {
    const seen = this.items.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no such log line; got ${JSON.stringify(this.items)}`)),
        timeoutMs,
      );
      this.waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }
}

/** Nest's logger, recorded: level, message and context (Nest passes the context as the last argument). */
function recordingNestLogger(lines: Lines): LoggerService {
  const at =
    (level: string) =>
    (message: unknown, ...params: unknown[]): void => {
      const context = [...params].reverse().find((p): p is string => typeof p === 'string');
      lines.push({ level, message: String(message), context });
    };
  return { log: at('log'), error: at('error'), warn: at('warn'), debug: at('debug'), verbose: at('verbose') };
}

const cleanups: Array<() => Promise<unknown>> = [];
let nest: Lines;

beforeEach(() => {
  nest = new Lines();
  NestLogger.overrideLogger(recordingNestLogger(nest));
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  NestLogger.overrideLogger(false);
  jest.restoreAllMocks();
});

async function fakeBroker(): Promise<FakeBroker> {
  const b = await FakeBroker.start();
  cleanups.push(() => b.close());
  return b;
}

@Controller()
class AuditController {
  @EventPattern('audit.known', { queue: 'audit-q', connection: 'audit' })
  known(_event: unknown): void {}
}

@Controller()
class OrdersController {
  @EventPattern('orders.known', { queue: 'orders-q', connection: 'orders' })
  known(_event: unknown): void {}
}

/** A standalone server with these controllers, listening; Nest's own logs go to the recorder. */
async function serve(controllers: Type[], options: AmqpServerOptions): Promise<AmqpServer> {
  const moduleRef = await Test.createTestingModule({ controllers }).compile();
  const server = new AmqpServer({ heartbeat: 0, ...options });
  const app = moduleRef.createNestMicroservice({ strategy: server, logger: recordingNestLogger(nest) });
  cleanups.push(() => app.close());
  await app.listen();
  return server;
}

describe('Logging (README): the Nest layer logs to a Nest Logger with context Warren:<name>', () => {
  it("the module's connection (here 'orders') logs its server's warnings under Warren:orders", async () => {
    const broker = await fakeBroker();
    const moduleRef = await Test.createTestingModule({
      imports: [AmqpModule.forRoot({ name: 'orders', url: broker.url(), heartbeat: 0 })],
      controllers: [OrdersController],
    }).compile();
    cleanups.push(() => moduleRef.close());
    await moduleRef.init();
    const micro = moduleRef.createNestMicroservice({
      strategy: moduleRef.get<AmqpServer>(getAmqpServerToken('orders')),
      logger: recordingNestLogger(nest),
    });
    cleanups.push(() => micro.close());
    await micro.listen();

    const consumer = await broker.consumer('orders-q');
    await broker.deliver(consumer, [{ routingKey: 'nobody.listens', body: '1' }]);
    const line = await nest.waitFor((l) => l.message.includes("no handler for pattern 'nobody.listens'"));
    expect(line).toMatchObject({ level: 'warn', context: 'Warren:orders' });
  });

  it('a standalone server logs under Warren:<its name>', async () => {
    const broker = await fakeBroker();
    await serve([AuditController], { name: 'audit', url: broker.url() });
    const consumer = await broker.consumer('audit-q');
    await broker.deliver(consumer, [{ routingKey: 'nobody.listens', body: '1' }]);
    const line = await nest.waitFor((l) => l.message.includes("no handler for pattern 'nobody.listens'"));
    expect(line).toMatchObject({ level: 'warn', context: 'Warren:audit' });
  });

  it('a standalone client logs under Warren:<its name>', async () => {
    const broker = await fakeBroker();
    broker.confirm = () => 'nack';
    const client = new AmqpClient({ name: 'billing', url: broker.url(), heartbeat: 0 });
    cleanups.push(() => client.close());
    client.emit('invoice.sent', { id: 1 }); // fails, nobody subscribed: logged
    const line = await nest.waitFor((l) => l.message.includes("emit 'invoice.sent' failed"));
    expect(line).toMatchObject({ level: 'error', context: 'Warren:billing' });
  });

  it("with a logger of its own, the server's start-up line still goes to Nest's logger; the rest to its logger", async () => {
    const broker = await fakeBroker();
    const own = new Lines();
    const logger: Logger = {
      debug: (m) => own.push({ level: 'debug', message: m }),
      log: (m) => own.push({ level: 'log', message: m }),
      warn: (m) => own.push({ level: 'warn', message: m }),
      error: (m) => own.push({ level: 'error', message: m }),
    };
    await serve([AuditController], { name: 'audit', url: broker.url(), logger });
    const startUp = await nest.waitFor((l) => l.message.startsWith('consuming 1 queue(s)'));
    expect(startUp).toMatchObject({ level: 'log', context: 'Warren:audit' });
    expect(startUp.message).toContain('audit-q [audit.known]');

    const consumer = await broker.consumer('audit-q');
    await broker.deliver(consumer, [{ routingKey: 'nobody.listens', body: '1' }]);
    await own.waitFor((l) => l.level === 'warn' && l.message.includes("no handler for pattern 'nobody.listens'"));
    expect(own.items.filter((l) => l.message.startsWith('consuming'))).toEqual([]);
    expect(nest.items.filter((l) => l.message.includes('no handler'))).toEqual([]);
  });
});

describe('Logging (README): a bare session or connection logs warnings and errors to the console, prefixed [warren]', () => {
  function recordConsole(): Lines {
    const lines = new Lines();
    for (const level of ['log', 'info', 'debug', 'warn', 'error'] as const) {
      jest
        .spyOn(console, level)
        .mockImplementation((...args: unknown[]) => lines.push({ level, message: args.join(' ') }));
    }
    return lines;
  }

  it('AmqpSession: a failing handler is console.error, a broker cancel console.warn; debug lines are not printed', async () => {
    const broker = await fakeBroker();
    const printed = recordConsole();
    const session = new AmqpSession({ url: broker.url(), heartbeat: 0 });
    cleanups.push(() => session.close({ timeoutMs: 1000 }));
    await session.connect();
    let failed: SessionMessage | undefined;
    await session.consume('q', (m) => {
      failed = m;
      throw new Error('handler broke');
    });
    const consumer = await broker.consumer('q');
    await broker.deliver(consumer, [{ routingKey: 'q', body: 'x' }]);
    const error = await printed.waitFor((l) => l.message.includes('handler broke'));
    expect(error.level).toBe('error');
    expect(error.message).toMatch(/^\[warren\] /);

    // The broker cancels the consumer of a queue that still exists: a warning, and it re-attaches.
    consumer.peer.send(consumer.channel, 'basic.cancel', { consumerTag: consumer.tag, noWait: true });
    const warning = await printed.waitFor((l) => l.message.includes('cancelled by the broker'));
    expect(warning.level).toBe('warn');
    expect(warning.message).toMatch(/^\[warren\] /);
    await broker.consumer('q', 1);
    // An ack for a delivery of the closed channel is dropped with a debug line: not printed.
    failed?.ack();
    expect(failed?.isLive()).toBe(false);
    expect(printed.items.filter((l) => !['warn', 'error'].includes(l.level))).toEqual([]);
  });

  it('AmqpConnection: a delivery for an unknown consumer is console.warn, prefixed [warren]', async () => {
    const broker = await fakeBroker();
    const printed = recordConsole();
    const conn = await AmqpConnection.connect(broker.url('heartbeat=0'));
    cleanups.push(() => conn.close());
    const ch = await conn.channel();
    const peer = broker.server.peers[0];
    peer.deliver(
      ch.id,
      { consumerTag: 'nobody', deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'q' },
      Buffer.from('x'),
    );
    const warning = await printed.waitFor((l) => l.message.includes('delivery for unknown consumer nobody'));
    expect(warning.level).toBe('warn');
    expect(warning.message).toMatch(/^\[warren\] /);
    expect(printed.items.filter((l) => !['warn', 'error'].includes(l.level))).toEqual([]);
  });
});
