import { Controller } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { AmqpSession } from '../../lib/amqp';
import { AmqpEventPattern, type AmqpContext } from '../../lib/nest';
import { uniqueName } from '../support/broker';
import { closeAll, Recorder, startMicroservice } from '../support/nest-support';

/**
 * A Nest event handler on a stream queue: declared by its queue definition (`type: 'stream'`), consumed
 * from the handler's `offset`, each message's offset readable through `ctx.getStreamOffset()`.
 */
jest.setTimeout(30_000);

const stream = uniqueName('nest-stream');
const ticks = new Recorder<{ n: number; offset: number | undefined }>();

@Controller()
class TicksController {
  @AmqpEventPattern('tick', {
    queue: { name: stream, type: 'stream', maxAge: '1h' },
    bindings: [],
    offset: 'first',
  })
  onTick(@Payload() n: number, @Ctx() ctx: AmqpContext) {
    ticks.push({ n, offset: ctx.getStreamOffset() });
  }
}

const apps: Array<{ close(): Promise<unknown> }> = [];
let session: AmqpSession;

beforeAll(async () => {
  session = new AmqpSession({ logger: { warn: () => undefined, error: () => undefined } });
  await session.connect();
  // Written before the app starts: only a consumer starting at 'first' sees them.
  await session.queueDeclare(stream, { type: 'stream', maxAge: '1h' });
  await Promise.all(
    Array.from({ length: 100 }, (_, n) =>
      session.publish('', stream, JSON.stringify(n), {
        contentType: 'application/json',
        headers: { 'x-warren-pattern': 'tick' },
      }),
    ),
  );
});

afterAll(async () => {
  await closeAll(apps);
  await session.queueDelete(stream).catch(() => undefined);
  await session.close();
});

it("a handler on a stream queue with offset 'first' reads what was written before it started, with each offset", async () => {
  const { app } = await startMicroservice({ controllers: [TicksController] });
  apps.push(app);
  const seen = await ticks.waitFor(100);
  expect(seen.map((t) => t.offset)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  expect(seen.map((t) => t.n).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
});
