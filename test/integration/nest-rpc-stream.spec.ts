import { Payload } from '@nestjs/microservices';
import type * as amqp from 'amqplib';
import { concat, firstValueFrom, from, interval, lastValueFrom, Observable, of, take, throwError, toArray } from 'rxjs';
import {
  AmqpClient,
  AmqpController,
  AmqpMessagePattern,
  AmqpRecordBuilder,
  AmqpRpcError,
  WarrenHeaders,
} from '../../lib/nest';
import { amqpUrl, uniqueName } from '../support/broker';
import { BrokerProbe, closeAll, deferred, rejection, startMicroservice } from '../support/nest-support';

/**
 * Streamed RPC replies: a request handler whose Observable emits several values sends each as a reply with the
 * request's correlation id (`x-warren-stream: 'next'`) and closes with an empty `'end'` reply; `send()` emits each
 * value and completes at the end. A one-value handler sends one plain reply, as before.
 */
jest.setTimeout(30_000);

const queue = uniqueName('nest-rpc-stream');
const release = deferred<void>();

@AmqpController({ queue: { name: queue, durable: false, autoDelete: true } })
class CountController {
  @AmqpMessagePattern('count.to')
  countTo(@Payload() n: number) {
    return from(Array.from({ length: n }, (_, i) => i + 1));
  }

  @AmqpMessagePattern('count.one')
  one() {
    return of(42);
  }

  @AmqpMessagePattern('count.fails')
  fails() {
    return concat(
      of(1, 2),
      throwError(() => new Error('disk full')),
    );
  }

  /** Three values 250 ms apart: longer in all than a 400 ms call timeout, never that long between two. */
  @AmqpMessagePattern('count.slowly')
  slowly() {
    return interval(250).pipe(take(3));
  }

  /** Emits 1 and 2, then waits for the test: the caller must have both before the stream ends. */
  @AmqpMessagePattern('count.paced')
  paced() {
    return new Observable<number>((subscriber) => {
      subscriber.next(1);
      subscriber.next(2);
      void release.promise.then(() => {
        subscriber.next(3);
        subscriber.complete();
      });
    });
  }
}

const closables: Array<{ close(): Promise<unknown> }> = [];
let client: AmqpClient;
let probe: BrokerProbe;

beforeAll(async () => {
  const { app } = await startMicroservice({ controllers: [CountController] });
  closables.push(app);
  client = new AmqpClient({ url: amqpUrl(), queue });
  closables.push(client);
  probe = await BrokerProbe.open();
});

afterAll(async () => {
  await closeAll(closables);
  await probe.close();
});

it('send() emits every value of a streamed reply, in order, then completes', async () => {
  await expect(lastValueFrom(client.send<number>('count.to', 5).pipe(toArray()))).resolves.toEqual([1, 2, 3, 4, 5]);
});

it('values reach the caller as they are produced, before the stream completes', async () => {
  const seen: number[] = [];
  const two = deferred<void>();
  const completed = deferred<void>();
  client.send<number>('count.paced', {}).subscribe({
    next: (v) => {
      seen.push(v);
      if (seen.length === 2) two.resolve();
    },
    complete: () => completed.resolve(),
  });
  await two.promise;
  expect(seen).toEqual([1, 2]); // the handler has not completed yet: it waits for release
  release.resolve();
  await completed.promise;
  expect(seen).toEqual([1, 2, 3]);
});

it("the call's timeout starts over at each value of a stream", async () => {
  const record = new AmqpRecordBuilder(0).setOptions({ timeout: 400 }).build();
  await expect(lastValueFrom(client.send<number>('count.slowly', record).pipe(toArray()))).resolves.toEqual([0, 1, 2]);
});

it('an error part-way through ends the stream with that error after the values before it', async () => {
  const seen: number[] = [];
  const err = await rejection(
    new Promise<void>((resolve, reject) =>
      client
        .send<number>('count.fails', {})
        .subscribe({ next: (v) => seen.push(v), error: reject, complete: () => resolve() }),
    ),
  );
  expect(seen).toEqual([1, 2]);
  expect(err).toBeInstanceOf(AmqpRpcError);
});

/** What a non-Warren caller sees: every reply of one request, until one that is not marked 'next'. */
async function rawReplies(pattern: string, body: string): Promise<amqp.ConsumeMessage[]> {
  const ch = await probe.connection.createChannel();
  try {
    const replies: amqp.ConsumeMessage[] = [];
    const ended = deferred<void>();
    await ch.consume(
      'amq.rabbitmq.reply-to',
      (m) => {
        if (!m) return;
        replies.push(m);
        if (m.properties.headers?.[WarrenHeaders.STREAM] !== 'next') ended.resolve();
      },
      { noAck: true },
    );
    ch.sendToQueue(queue, Buffer.from(body), {
      replyTo: 'amq.rabbitmq.reply-to',
      correlationId: 'raw-1',
      contentType: 'application/json',
      headers: { [WarrenHeaders.PATTERN]: pattern },
    });
    await ended.promise;
    return replies;
  } finally {
    await ch.close();
  }
}

it("a non-Warren caller reads a stream as replies marked x-warren-stream 'next', closed by an empty 'end' reply", async () => {
  const replies = await rawReplies('count.to', '3');
  expect(replies.map((r) => r.content.toString())).toEqual(['1', '2', '3', '']);
  expect(replies.map((r) => r.properties.headers?.[WarrenHeaders.STREAM])).toEqual(['next', 'next', 'next', 'end']);
  expect(replies.every((r) => r.properties.correlationId === 'raw-1')).toBe(true);
});

it('a one-value Observable is one plain reply, without the stream header', async () => {
  const replies = await rawReplies('count.one', '{}');
  expect(replies).toHaveLength(1);
  expect(replies[0]?.content.toString()).toBe('42');
  expect(replies[0]?.properties.headers?.[WarrenHeaders.STREAM]).toBeUndefined();
  await expect(firstValueFrom(client.send('count.one', {}))).resolves.toBe(42);
});
