import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AmqpConnection, AmqpSession } from '../../lib';
import { amqpUrl } from '../support/broker';
import { silentLogger, watchLeftovers } from '../support/leftovers';

/**
 * Connect/close cycles leak nothing: after a warm-up, the heap (JS objects and the Buffers they keep) is as
 * big after the cycles as before, and no socket or timer of any cycle is left. A leaked connection holds
 * its socket, parser, encoder slab and listeners — kilobytes each — so a leak of one object per cycle
 * shows up as tens of megabytes over the run (measured: keeping each closed AmqpConnection retains ≈ 90 KiB),
 * far above the one-time growth (JIT, caches: 1–3 MiB) the bound allows.
 */
jest.setTimeout(90_000);

// A full GC on demand without `node --expose-gc`: the flag is read when a new context is made.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap and Buffer memory after two full collections (the second frees what the first's finalizers released). */
async function retainedBytes(): Promise<number> {
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

async function cycles(count: number, cycle: () => Promise<void>): Promise<void> {
  for (let i = 0; i < count; i++) await cycle();
}

const MiB = 1024 * 1024;

describe('connect/close cycles against the default broker leak no memory, socket or timer', () => {
  it('1 000 AmqpConnection cycles: retained heap grows by less than 8 MiB (a leaked closed connection keeps ≈ 90 KiB), no socket or timer left', async () => {
    const connectClose = async (): Promise<void> => {
      const conn = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
      await conn.close();
    };
    await cycles(50, connectClose); // warm-up: JIT, module caches, pools
    const leftovers = await watchLeftovers();
    const before = await retainedBytes();
    await cycles(1000, connectClose);
    const after = await retainedBytes();
    await leftovers.expectNone();
    expect(after - before).toBeLessThan(8 * MiB);
  });

  it('200 AmqpSession cycles (publisher and consumer connections, a publish each): retained heap grows by less than 8 MiB (a leaked session keeps > 170 KiB), no socket or timer left', async () => {
    const sessionCycle = async (): Promise<void> => {
      const session = new AmqpSession({ url: amqpUrl(), logger: silentLogger });
      await session.connect();
      await session.publish('', 'warren-leaks-nowhere', Buffer.from('x'));
      await session.close();
    };
    await cycles(50, sessionCycle);
    const leftovers = await watchLeftovers();
    const before = await retainedBytes();
    await cycles(200, sessionCycle);
    const after = await retainedBytes();
    await leftovers.expectNone();
    expect(after - before).toBeLessThan(8 * MiB);
  });
});
