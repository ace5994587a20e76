import { AmqpConnection } from '../../lib';
import { FakeAmqpServer } from '../support/fake-amqp-server';

describe('FakeAmqpServer (test support)', () => {
  it('completes a handshake with AmqpConnection and answers channel methods', async () => {
    const server = await FakeAmqpServer.start(async (peer) => {
      await peer.handshake({ frameMax: 65536 });
      peer.autoReply();
    });
    try {
      const conn = await AmqpConnection.connect({ url: server.url(), logger: silent });
      expect(conn.frameMax).toBe(65536);
      const ch = await conn.channel();
      const q = await ch.queueDeclare('fake-q');
      expect(q.queue).toBe('fake-q');
      await conn.close();
      const peer = await server.peer(0);
      expect(peer.count('connection.close')).toBe(1);
    } finally {
      await server.close();
    }
  });
});

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
