import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import {
  AmqpClient,
  AmqpController,
  type AmqpContext,
  type AmqpDeserializer,
  type AmqpSerializer,
} from '../../lib/nest';
import { amqpUrl, uniqueName } from '../support/broker';
import { BrokerProbe, closeAll, deferred, startMicroservice } from '../support/nest-support';

jest.setTimeout(30_000);

const exchange = uniqueName('nest-ser-x');
const queue = uniqueName('nest-ser-q');
const seenTypes: string[] = [];
/** The content-type of each request as it came off the wire, by pattern. */
const requestContentTypes: Record<string, unknown> = {};

/** Comma-separated numbers in, a plain number out. */
const csvIn: AmqpDeserializer = { deserialize: (body) => body.toString('utf8').split(',').map(Number) };
const numberOut: AmqpSerializer = {
  serialize: (v) => ({ body: Buffer.from(String(v)), contentType: 'text/x-number' }),
};

@AmqpController({ queue: { name: queue, durable: false }, exchange: { name: exchange, durable: false } })
class FormatsController {
  @MessagePattern('bytes.reverse')
  reverse(@Payload() data: Buffer, @Ctx() ctx: AmqpContext) {
    requestContentTypes['bytes.reverse'] = ctx.getProperties().contentType;
    seenTypes.push(Buffer.isBuffer(data) ? 'buffer' : typeof data);
    return Buffer.from(data).reverse();
  }

  @MessagePattern('text.upper')
  upper(@Payload() text: string, @Ctx() ctx: AmqpContext) {
    requestContentTypes['text.upper'] = ctx.getProperties().contentType;
    seenTypes.push(typeof text);
    return text.toUpperCase();
  }

  @MessagePattern('csv.sum', { deserializer: csvIn, serializer: numberOut })
  sum(@Payload() xs: number[]) {
    return xs.reduce((a, b) => a + b, 0);
  }
}

describe('message bodies', () => {
  const closables: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;
  let client: AmqpClient;

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    probe.track('queue', queue);
    probe.track('exchange', exchange);
    closables.push((await startMicroservice({ controllers: [FormatsController] })).app);
    client = new AmqpClient({ url: amqpUrl(), exchange });
    closables.push(client);
  });

  /** A request published by a plain amqplib client: the reply's body and content-type as they came off the wire. */
  async function rawReply(pattern: string, body: Buffer, contentType: string) {
    const ch = await probe.connection.createChannel();
    try {
      const reply = deferred<{ body: Buffer; contentType: unknown }>();
      await ch.consume(
        'amq.rabbitmq.reply-to',
        (m) => m && reply.resolve({ body: m.content, contentType: m.properties.contentType }),
        {
          noAck: true,
        },
      );
      ch.publish(exchange, pattern, body, { replyTo: 'amq.rabbitmq.reply-to', correlationId: pattern, contentType });
      return await reply.promise;
    } finally {
      await ch.close();
    }
  }

  afterAll(async () => {
    await closeAll(closables);
    await probe.close();
  });

  it('a Buffer travels as is (application/octet-stream) both ways', async () => {
    const reply = await firstValueFrom(client.send<Buffer>('bytes.reverse', Buffer.from([1, 2, 3])));
    expect(Buffer.isBuffer(reply)).toBe(true);
    expect([...reply]).toEqual([3, 2, 1]);
    expect(seenTypes).toContain('buffer');
    expect(requestContentTypes['bytes.reverse']).toBe('application/octet-stream');
    await expect(rawReply('bytes.reverse', Buffer.from([1, 2]), 'application/octet-stream')).resolves.toEqual({
      body: Buffer.from([2, 1]),
      contentType: 'application/octet-stream',
    });
  });

  it('a string travels as text/plain both ways', async () => {
    await expect(firstValueFrom(client.send('text.upper', 'hello'))).resolves.toBe('HELLO');
    expect(seenTypes).toContain('string');
    expect(requestContentTypes['text.upper']).toBe('text/plain');
    await expect(rawReply('text.upper', Buffer.from('abc'), 'text/plain')).resolves.toEqual({
      body: Buffer.from('ABC'),
      contentType: 'text/plain',
    });
  });

  it('a handler can bring its own serializer and deserializer', async () => {
    const ch = await probe.connection.createChannel();
    const reply = deferred<{ body: string; contentType: unknown }>();
    await ch.consume(
      'amq.rabbitmq.reply-to',
      (m) => m && reply.resolve({ body: m.content.toString(), contentType: m.properties.contentType }),
      { noAck: true },
    );
    ch.publish(exchange, 'csv.sum', Buffer.from('1,2,3,4'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'csv' });
    await expect(reply.promise).resolves.toEqual({ body: '10', contentType: 'text/x-number' });
    await ch.close();
  });
});
