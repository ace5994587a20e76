import { AmqpSession, type SessionRole } from '../../lib/amqp';
import { killConnection, listConnections, rabbitmqctl, uniqueName } from '../support/broker';

/**
 * Rotating credentials on the live broker: the user's password is changed with `rabbitmqctl change_password`, the
 * provider returns the new one, and both of the session's connections take it through connection.update-secret
 * without reconnecting; a later reconnect logs in with the new password.
 */
jest.setTimeout(60_000);

const user = uniqueName('warren-rotate');
let password = 'first-password';

beforeAll(async () => {
  await rabbitmqctl(['add_user', user, password]);
  await rabbitmqctl(['set_permissions', '-p', '/', user, '.*', '.*', '.*']);
});

afterAll(async () => {
  await rabbitmqctl(['delete_user', user]).catch(() => undefined);
});

it('both connections take a rotated password without reconnecting; a later reconnect logs in with it', async () => {
  const connectionName = uniqueName('warren-rotate');
  let asked = 0;
  const session = new AmqpSession({
    url: 'amqp://127.0.0.1:5672',
    connectionName,
    credentials: () => {
      asked++;
      return { username: user, password, expiresAt: Date.now() + 1500 };
    },
    logger: { warn: () => undefined, error: () => undefined },
    reconnect: { initialDelayMs: 10 },
  });
  try {
    await session.connect();
    expect(asked).toBe(2); // one per connection
    const disconnected: SessionRole[] = [];
    session.on('disconnected', (role) => disconnected.push(role));

    // The operator rotates the password; the provider hands out the new one from now on.
    await rabbitmqctl(['change_password', user, 'second-password']);
    password = 'second-password';
    const updated = new Set<SessionRole>();
    await new Promise<void>((resolve) =>
      session.on('secretUpdated', (role) => {
        updated.add(role);
        if (updated.size === 2) resolve();
      }),
    );
    expect(disconnected).toEqual([]);
    const mine = async () =>
      (await listConnections())
        .filter((c) => c.clientName?.startsWith(`${connectionName}:`))
        .map((c) => `${c.clientName} as ${c.user}`)
        .sort();
    // The same two connections, logged in as the rotating user (not the URL's default guest).
    expect(await mine()).toEqual([`${connectionName}:consumer as ${user}`, `${connectionName}:publisher as ${user}`]);

    // A reconnect logs in with what the provider returns now: the new password.
    const back = new Promise<void>((resolve) => session.once('recovered', (role) => role === 'publisher' && resolve()));
    await killConnection(`${connectionName}:publisher`);
    await back;
    const q = uniqueName('warren-rotate-q');
    await session.queueDeclare(q, { durable: false, autoDelete: true });
    await session.publish('', q, 'after the rotation');
    await session.queueDelete(q);
    expect(await mine()).toEqual([`${connectionName}:consumer as ${user}`, `${connectionName}:publisher as ${user}`]);
    expect(asked).toBeGreaterThanOrEqual(5); // 2 connects, 2 refreshes, the reconnect
  } finally {
    await session.close();
  }
});
