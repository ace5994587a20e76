import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { asyncApiProblems } from '../support/asyncapi';

jest.setTimeout(60_000);

const root = join(__dirname, '..', '..');
const committed = join(root, 'sample', 'asyncapi.json');

describe("the sample's AsyncAPI document (sample/asyncapi.json)", () => {
  it('is what `npm run asyncapi:sample` generates now (the warren CLI, booting the sample without a broker)', async () => {
    // --check: the CLI writes nothing and fails when the committed file differs from the document it makes.
    const outcome = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile('npm', ['run', '--silent', 'asyncapi:sample', '--', '--check'], { cwd: root });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(outcome).toEqual({ code: 0, stderr: '' });
  });

  it('validates against the official AsyncAPI 3.0.0 JSON schema, and every reference in it resolves', () => {
    const doc: unknown = JSON.parse(readFileSync(committed, 'utf8'));
    expect(asyncApiProblems(doc)).toEqual([]);
  });

  it('describes the sample: its exchange and queues with retry queues and parking lot, its handlers, publisher and client', () => {
    const doc = JSON.parse(readFileSync(committed, 'utf8')) as {
      channels: Record<string, { address: string | null }>;
      operations: Record<string, { action: string; reply?: unknown }>;
    };
    const addresses = Object.values(doc.channels).map((c) => c.address);
    expect(addresses).toEqual(
      expect.arrayContaining([
        'warren.sample.orders',
        'warren.sample.orders-rpc',
        'warren.sample.billing',
        'warren.sample.billing.retry.200',
        'warren.sample.billing.retry.400',
        'warren.sample.billing.parking-lot',
        'warren.sample.notifications',
        'warren.sample.reports',
        'warren.sample.order-history',
      ]),
    );
    const ops = Object.entries(doc.operations).map(([id, op]) => `${op.action} ${id}${op.reply ? ' (reply)' : ''}`);
    expect(ops).toEqual([
      'receive receive.warren.sample.billing.order.created',
      'receive receive.warren.sample.notifications.order.created',
      'receive receive.warren.sample.reports.order.created',
      'receive receive.warren.sample.order-history.order.created',
      'receive receive.warren.sample.orders-rpc.orders.get (reply)',
      'send retry.warren.sample.billing.200',
      'send retry.warren.sample.billing.400',
      'send park.warren.sample.billing',
      'send publish.orders',
      'send client.send (reply)',
      'send client.emit',
    ]);
  });
});
