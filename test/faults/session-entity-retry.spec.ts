import {
  AmqpConnection,
  AmqpSession,
  ChannelError,
  ConnectionError,
  ConnectionLostError,
  ReplyCode,
  TimeoutError,
  type SessionMessage,
  type SetupFailure,
} from '../../lib';
import { amqpUrl, closeConnectionsWhere, uniqueName, waitFor } from '../support/broker';
import { BrokerAdmin } from '../support/broker-admin';
import { collector as collect } from '../support/collector';
import { recordingLogger } from '../support/session-workload';

jest.setTimeout(30_000);

/**
 * Recovery of single entities: a consumer (or recorded binding) the broker refuses during recovery is
 * retried with backoff until it works, named in events and readiness errors, while the rest flows.
 */
describe('AmqpSession: entities the broker refuses during recovery', () => {
  let admin: BrokerAdmin;
  const sessions: AmqpSession[] = [];
  const quiet = recordingLogger();

  beforeAll(async () => {
    admin = await BrokerAdmin.open(quiet);
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await Promise.all(sessions.splice(0).map((s) => s.close({ timeoutMs: 2000 }).catch(() => undefined)));
  });

  afterAll(() => admin.cleanup());

  async function started(): Promise<{ session: AmqpSession; name: string }> {
    const name = uniqueName('warren-entity');
    const session = new AmqpSession({
      url: amqpUrl(),
      connectionName: name,
      logger: quiet,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    });
    sessions.push(session);
    await session.connect();
    return { session, name };
  }

  const qName = (): string => admin.queue('entity-q');

  it('a consumer refused on recovery (queue held exclusively elsewhere) retries with backoff and resumes once released; other consumers keep flowing', async () => {
    const { session, name } = await started();
    const held = qName();
    const free = qName();
    await session.queueDeclare(held, { durable: false });
    await session.queueDeclare(free, { durable: false });
    const heldGot = collect<SessionMessage>();
    const freeGot = collect<SessionMessage>();
    await session.consume(held, heldGot.handler, { noAck: true });
    await session.consume(free, freeGot.handler, { noAck: true });

    // Hold the consumer connection's reconnect until another connection owns `held` exclusively.
    const real = AmqpConnection.connectOnce.bind(AmqpConnection);
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    jest.spyOn(AmqpConnection, 'connectOnce').mockImplementation(async (endpoint, options, logger, signal) => {
      if (options.connectionName === `${name}:consumer`) await gate;
      return real(endpoint, options, logger, signal);
    });
    const failures: SetupFailure[] = [];
    const refusedTwice = new Promise<void>((resolve) =>
      session.on('setupFailed', (f) => {
        failures.push(f);
        if (failures.filter((x) => x.entity === `consumer on queue '${held}'`).length === 2) resolve();
      }),
    );
    const down = new Promise<void>((resolve) => session.once('disconnected', () => resolve()));
    await closeConnectionsWhere((c) => c.clientName === `${name}:consumer`, 'entity test');
    await down;
    const thief = await admin.channel();
    const exclusive = await thief.consume(held, () => undefined, { exclusive: true, noAck: true });
    openGate();
    await refusedTwice;

    const refusal = failures.find((f) => f.entity === `consumer on queue '${held}'`);
    expect(refusal?.error).toBeInstanceOf(ChannelError);
    expect((refusal?.error as ChannelError).replyCode).toBe(ReplyCode.ACCESS_REFUSED);
    // The other consumer came back and works meanwhile.
    await session.publish('', free, 'still flowing');
    await freeGot.atLeast(1);
    // Readiness says what is wrong, not "broker not reachable".
    const notReady = await session.whenReady(100).then(
      () => new Error('ready'),
      (e: Error) => e,
    );
    expect(notReady).toBeInstanceOf(TimeoutError);
    expect(notReady.message).toContain(`consumer on queue '${held}'`);
    expect(notReady.message).toMatch(/403|ACCESS_REFUSED|exclusive/);
    expect(notReady.message).not.toMatch(/not reachable/);

    // Released: Warren's consumer attaches by itself.
    await exclusive.cancel();
    await thief.close();
    await session.whenReady(10_000);
    await session.publish('', held, 'back');
    await heldGot.atLeast(1);
    expect(heldGot.bodies()).toEqual(['back']);
  });

  it('a refused exchangeBind is not recorded: it reaches the caller as the broker error and is never replayed', async () => {
    const { session, name } = await started();
    const dest = admin.exchange('entity-ex');
    await session.exchangeDeclare(dest, 'fanout', { durable: false });
    const err = await session.exchangeBind(dest, uniqueName('missing-source')).then(
      () => new Error('bound'),
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(ChannelError);
    expect((err as ChannelError).replyCode).toBe(ReplyCode.NOT_FOUND);

    const failures: SetupFailure[] = [];
    session.on('setupFailed', (f) => failures.push(f));
    const back = new Promise<void>((resolve) => session.on('recovered', (r) => r === 'consumer' && resolve()));
    await closeConnectionsWhere((c) => c.clientName === `${name}:consumer`, 'entity test');
    await back;
    expect(failures).toEqual([]);
  });

  it('an operation the broker refuses with a connection error reaches the caller with its reply code, not as a lost connection', async () => {
    const { session } = await started();
    const ex = admin.exchange('entity-ex');
    const err = await session.exchangeDeclare(ex, 'x-no-such-type', { durable: false }).then(
      () => new Error('declared'),
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).not.toBeInstanceOf(ConnectionLostError);
    expect((err as ConnectionError).replyCode).toBe(ReplyCode.COMMAND_INVALID);
    // The session recovers from it and goes on.
    await waitFor(async () => session.isReady || undefined, 10_000, 'session ready again');
    await session.exchangeDeclare(ex, 'fanout', { durable: false });
  });

  it("a new consumer on a missing queue: consume() rejects with the broker's 404, and nothing is retried or recorded", async () => {
    const { session } = await started();
    const failures: SetupFailure[] = [];
    session.on('setupFailed', (f) => failures.push(f));
    const missing = qName();
    const err = await session
      .consume(missing, () => undefined)
      .then(
        () => new Error('consuming'),
        (e: Error) => e,
      );
    expect(err).toBeInstanceOf(ChannelError);
    expect((err as ChannelError).replyCode).toBe(ReplyCode.NOT_FOUND);
    expect(failures).toEqual([]);
    // Not recorded: a queue created later is not consumed by a ghost after a reconnect.
    expect(session.isReady).toBe(true);
  });

  it('a recorded queue the broker refuses on replay is reported (setupFailed) and skipped; the rest is replayed', async () => {
    const { session, name } = await started();
    const changed = qName();
    const later = qName();
    await session.queueDeclare(changed, { durable: false });
    await session.queueDeclare(later, { durable: false });
    // Behind the session's back: `changed` comes back with other arguments (a replay now gets 406),
    // `later` is gone (only a replay brings it back).
    await admin.on((ch) => ch.queueDelete(changed));
    await admin.on((ch) => ch.queueDeclare(changed, { durable: false, arguments: { 'x-max-length': 5 } }));
    await admin.on((ch) => ch.queueDelete(later));

    const failures: SetupFailure[] = [];
    session.on('setupFailed', (f) => failures.push(f));
    const back = new Promise<void>((resolve) => session.on('recovered', (r) => r === 'consumer' && resolve()));
    await closeConnectionsWhere((c) => c.clientName === `${name}:consumer`, 'entity test');
    await back;
    expect(failures.map((f) => f.entity)).toEqual([`recorded queue '${changed}'`]);
    expect((failures[0].error as ChannelError).replyCode).toBe(ReplyCode.PRECONDITION_FAILED);
    expect((await admin.on((ch) => ch.queueDeclare(later, { passive: true }))).queue).toBe(later);
  });

  it('a consumer whose queue is deleted is cancelled for good: onCancel fires once and the session stays ready', async () => {
    const { session } = await started();
    const q = qName();
    await session.queueDeclare(q, { durable: false });
    let cancels = 0;
    let onCancel: () => void = () => undefined;
    const cancelled = new Promise<void>((resolve) => (onCancel = resolve));
    await session.consume(q, () => undefined, {
      onCancel: () => {
        cancels++;
        onCancel();
      },
    });
    const failures: SetupFailure[] = [];
    session.on('setupFailed', (f) => failures.push(f));
    await admin.on((ch) => ch.queueDelete(q));
    await cancelled;
    await session.whenReady(5000);
    expect(cancels).toBe(1);
    expect(failures).toEqual([]);
  });
});
