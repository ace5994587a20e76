/**
 * Child-process fixture: `node -r @swc-node/register connect-until-closed.ts <url>` connects, prints the
 * reply code (or error name) the connection ends with, and then does nothing: the process must exit on its
 * own once the connection has ended, whatever the peer does with its side of the TCP connection.
 */
import { AmqpConnection, ConnectionError } from '../../lib/amqp';

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

async function main(): Promise<void> {
  const conn = await AmqpConnection.connect({ url: process.argv[2], logger: silent });
  conn.once('close', (err) => {
    process.stdout.write(
      `closed ${err instanceof ConnectionError ? err.replyCode : (err?.name ?? 'by the application')}\n`,
    );
  });
  if (process.argv[3] === 'close') await conn.close();
}

main().catch((err: Error) => {
  process.stdout.write(`failed ${err.message}\n`);
  process.exitCode = 1;
});
