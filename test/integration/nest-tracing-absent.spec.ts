import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { amqpUrl } from '../support/broker';
import { BrokerProbe } from '../support/nest-support';

// Warren in an application without @opentelemetry/api: a process of its own (fixtures/untraced-worker.ts) in which
// the package cannot be resolved, as when it is not installed.

jest.setTimeout(60_000);

const ROOT = path.resolve(__dirname, '../..');
const WORKER = path.join(__dirname, 'fixtures', 'untraced-worker.ts');

describe('without @opentelemetry/api', () => {
  let probe: BrokerProbe;

  beforeAll(async () => {
    probe = await BrokerProbe.open();
  });

  afterAll(async () => {
    await probe?.close();
  });

  it('Warren loads and runs (RPC, emit, publisher), looks the API up once and loads nothing of OpenTelemetry', async () => {
    const exchange = probe.exchange('otel-absent');
    const queue = probe.queue('otel-absent');
    const { stdout } = await promisify(execFile)(process.execPath, ['-r', '@swc-node/register', WORKER], {
      cwd: ROOT,
      env: { ...process.env, AMQP_URL: amqpUrl(), WORKER_EXCHANGE: exchange, WORKER_QUEUE: queue },
      timeout: 50_000,
    });
    const report = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
    expect(report).toEqual({
      rpc: 42,
      events: expect.arrayContaining([{ via: 'emit' }, { via: 'publisher' }]),
      lookups: ['@opentelemetry/api'],
      loaded: [],
      noop: true,
    });
  });
});
