import { AmqpConnection } from '../../lib';
import { amqpUrl, uniqueName } from '../support/broker';

jest.setTimeout(120_000);

const silentLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const MiB = 1024 * 1024;

/**
 * A tight `await ch.publish()` loop without confirms must stay memory-bounded: publish resolves at once while the
 * socket takes the data and waits for 'drain' when its buffer is full. Without that wait, 1 000 000 small messages
 * pile up in the socket's write queue (about 270 MiB of RSS on this machine); with it, RSS grows by some 30 MiB.
 */
describe('publishing without confirms is memory-bounded', () => {
  const COUNT = 1_000_000;
  const LIMIT_MIB = 128;
  const queue = uniqueName('client-memory');
  let conn: AmqpConnection;

  beforeAll(async () => {
    conn = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
  });

  afterAll(async () => {
    conn.destroy();
    const c = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
    const ch = await c.channel();
    await ch.queueDelete(queue, { timeout: 60_000 });
    await c.close();
  });

  it(`${COUNT} × 64 B publishes to a length-limited queue: RSS grows by less than ${LIMIT_MIB} MiB`, async () => {
    const ch = await conn.channel();
    // The broker keeps at most 1000 and drops the oldest: its memory stays flat too.
    await ch.queueDeclare(queue, { durable: false, arguments: { 'x-max-length': 1000 } });
    const body = Buffer.alloc(64, 0x61);
    for (let i = 0; i < 1000; i++) await ch.publish('', queue, body); // warm up
    const base = process.memoryUsage.rss();
    let peak = base;
    const started = Date.now();
    for (let i = 0; i < COUNT; i++) {
      await ch.publish('', queue, body);
      if ((i & 4095) === 0) peak = Math.max(peak, process.memoryUsage.rss());
    }
    peak = Math.max(peak, process.memoryUsage.rss());
    const loopMs = Date.now() - started;
    const growthMiB = (peak - base) / MiB;
    if (process.env.WARREN_TEST_REPORT) {
      console.log(`${COUNT} publishes in ${loopMs} ms, RSS growth ${growthMiB.toFixed(1)} MiB`);
    }
    expect(growthMiB).toBeLessThan(LIMIT_MIB);
    expect(conn.isOpen).toBe(true);
    // The broker may still be working through what the socket buffers hold: do not wait for it, drop the connection.
    conn.destroy();
  });
});
