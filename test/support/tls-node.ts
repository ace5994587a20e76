import { CLIENT_CN, makePkiFixtures, type PkiFixtures } from './tls-fixtures';
import { startNode, type ExtraNode } from './rabbitmq-nodes';

/**
 * An extra RabbitMQ node with a TLS listener that verifies client certificates when given
 * (`verify_peer`, `fail_if_no_peer_cert = false`) and offers EXTERNAL (rabbitmq_auth_mechanism_ssl,
 * login = the certificate's CN) before PLAIN. A user named CLIENT_CN exists with full rights on `/`;
 * the PKI is made at start and removed at stop.
 */
export interface TlsNode {
  node: ExtraNode;
  pki: PkiFixtures;
  /** The TLS listener's port on 127.0.0.1. */
  tlsPort: number;
  /** `amqps://127.0.0.1:<tlsPort>` without credentials. */
  tlsUrl: string;
  /** How long the node took to come up, ms. */
  startMs: number;
  stop(): Promise<void>;
}

export async function startTlsNode(name: string, port: number, tlsPort: number): Promise<TlsNode> {
  const pki = makePkiFixtures();
  const f = pki.files;
  const config = [
    `listeners.ssl.1 = 127.0.0.1:${tlsPort}`,
    `ssl_options.cacertfile = ${f.ca}`,
    `ssl_options.certfile = ${f.serverCert}`,
    `ssl_options.keyfile = ${f.serverKey}`,
    'ssl_options.verify = verify_peer',
    'ssl_options.fail_if_no_peer_cert = false',
    'auth_mechanisms.1 = EXTERNAL',
    'auth_mechanisms.2 = PLAIN',
    'ssl_cert_login_from = common_name',
    '',
  ].join('\n');
  const started = Date.now();
  let node: ExtraNode;
  try {
    node = await startNode(name, port, { config, plugins: ['rabbitmq_auth_mechanism_ssl'] });
  } catch (err) {
    pki.remove();
    throw err;
  }
  const startMs = Date.now() - started;
  const stop = async (): Promise<void> => {
    try {
      await node.stop();
    } finally {
      pki.remove();
    }
  };
  try {
    // EXTERNAL never checks this password; PLAIN with it would work too.
    await node.ctl(['add_user', CLIENT_CN, 'unused-password-for-external']);
    await node.ctl(['set_permissions', '-p', '/', CLIENT_CN, '.*', '.*', '.*']);
  } catch (err) {
    await stop();
    throw err;
  }
  return { node, pki, tlsPort, tlsUrl: `amqps://127.0.0.1:${tlsPort}`, startMs, stop };
}
