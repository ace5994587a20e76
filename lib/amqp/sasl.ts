import { X509Certificate } from 'node:crypto';
import { AuthenticationError, ReplyCode } from './errors';
import type { Endpoint, SaslMechanism } from './options';
import { Writer } from './protocol/writer';

export interface SaslChoice {
  mechanism: SaslMechanism;
  /** The start-ok response bytes. Contains the password: never log it. */
  response: Buffer;
}

/**
 * Pick the first mechanism in our order of preference that the server offers, and build its
 * initial response. PLAIN: \0user\0pass. AMQPLAIN: a field table body {LOGIN, PASSWORD}.
 * EXTERNAL: empty (the TLS client certificate authenticates).
 */
export function chooseMechanism(
  serverMechanisms: string,
  allowed: readonly SaslMechanism[],
  endpoint: Endpoint,
): SaslChoice {
  const offered = new Set(serverMechanisms.split(/\s+/).filter(Boolean));
  for (const mechanism of allowed) {
    if (!offered.has(mechanism)) continue;
    switch (mechanism) {
      case 'PLAIN':
        return { mechanism, response: Buffer.from(`\0${endpoint.username}\0${endpoint.password}`, 'utf8') };
      case 'AMQPLAIN': {
        const w = new Writer(256);
        w.table({ LOGIN: endpoint.username, PASSWORD: endpoint.password }, 'AMQPLAIN');
        // AMQPLAIN's response is the table body without its 4-byte length prefix.
        return { mechanism, response: w.copyOut().subarray(4) };
      }
      case 'EXTERNAL':
        return { mechanism, response: Buffer.alloc(0) };
    }
  }
  throw new AuthenticationError(
    `no common SASL mechanism: the server offers [${[...offered].join(', ')}], we allow [${allowed.join(', ')}]`,
    ReplyCode.ACCESS_REFUSED,
    'no common SASL mechanism',
  );
}

/**
 * Who a refused login was, for its error: EXTERNAL logs in as the TLS client certificate's subject (by default
 * its CN), never as the URL's username, so name the certificate and leave the username out.
 */
export function describeLogin(mechanism: string, endpoint: Endpoint, where: string): string {
  if (mechanism !== 'EXTERNAL') return `login to ${where}`;
  const at = where.replace(/\/\/[^@/]*@/, '//');
  const cert = endpoint.tls?.cert;
  if (cert === undefined) return `EXTERNAL login (no client certificate) to ${at}`;
  let subject: string;
  try {
    subject = new X509Certificate(cert).subject;
  } catch {
    return `EXTERNAL login (client certificate) to ${at}`;
  }
  const cn = /^CN=(.*)$/m.exec(subject)?.[1];
  return `EXTERNAL login (client certificate ${cn ?? subject.replace(/\n/g, ', ')}) to ${at}`;
}
