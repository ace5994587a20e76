import { MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { AmqpClient, AmqpController, type AmqpDeserializer, type AmqpSerializer } from '../../lib/nest';
import { amqpUrl, uniqueName } from '../support/broker';
import { BrokerProbe, closeAll, deferred, startMicroservice } from '../support/nest-support';

jest.setTimeout(30_000);

const exchange = uniqueName('nest-ser-x');
const queue = uniqueName('nest-ser-q');
const seenTypes: string[] = [];

/** Comma-separated numbers in, a plain number out. */
const csvIn: AmqpDeserializer = { deserialize: (body) => body.toString('utf8').split(',').map(Number) };
const numberOut: AmqpSerializer = {
  serialize: (v) => ({ body: Buffer.from(String(v)), contentType: 'text/x-number' }),
};

@AmqpController({ queue: { name: queue, durable: false }, exchange: { name: exchange, durable: false } })
class FormatsController {
  @MessagePattern('bytes.reverse')
  reverse(@Payload() data: Buffer) {
    seenTypes.push(Buffer.isBuffer(data) ? 'buffer' : typeof data);
    return Buffer.from(data).reverse();
  }

  @MessagePattern('text.upper')
  upper(@Payload() text: string) {
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

  afterAll(async () => {
    await closeAll(closables);
    await probe.close();
  });

  it('a Buffer travels as is (application/octet-stream) both ways', async () => {
    const reply = await firstValueFrom(client.send<Buffer>('bytes.reverse', Buffer.from([1, 2, 3])));
    expect(Buffer.isBuffer(reply)).toBe(true);
    expect([...reply]).toEqual([3, 2, 1]);
    expect(seenTypes).toContain('buffer');
  });

  it('a string travels as text/plain both ways', async () => {
    await expect(firstValueFrom(client.send('text.upper', 'hello'))).resolves.toBe('HELLO');
    expect(seenTypes).toContain('string');
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
