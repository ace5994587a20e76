import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';

/** `npm run sample` (README, Two commands): the sample runs end to end against the broker and exits 0. */
jest.setTimeout(120_000);

it('the sample shows RPC, events, retries with a parking lot, a batch handler and a stream consumer, and exits 0', async () => {
  const root = path.resolve(__dirname, '../..');
  const { stdout } = await promisify(execFile)(process.execPath, ['-r', '@swc-node/register', 'sample/main.ts'], {
    cwd: root,
    timeout: 110_000,
  });
  expect(stdout).toContain('RPC orders.get {id: 1} -> #1 keyboard');
  expect(stdout).toContain('RPC orders.get {id: 99} -> error "order 99 not found"');
  expect(stdout).toMatch(/reports queue: orders #1, #2, #3 tallied in \d batch call\(s\)/);
  expect(stdout).toContain("order-history stream (read from 'first'): #1 at offset 0, #2 at offset 1, #3 at offset 2");
  expect(stdout).toContain('#2 failed once (gateway timeout) and was charged on attempt 2');
  expect(stdout).toContain('billing gave up on #3 after 3 attempts');
  expect(stdout).toContain('graceful shutdown');
});
