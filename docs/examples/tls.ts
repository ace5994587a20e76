// Code of docs/tls.md: each `#region` is shown there verbatim (test/unit/docs-guides.spec.ts checks it).
import { readFileSync } from 'node:fs';
import { Module } from '@nestjs/common';
import { AmqpConnection, AmqpModule, AuthenticationError, ConfigError, ConnectionLostError } from 'nestjs-warren';

// #region url
// amqps: verifies the server against the CA file; login with PLAIN over TLS.
export const tlsUrl = 'amqps://app:secret@rabbit.internal:5671/shop?ca=/etc/ssl/rabbit/ca.pem';
// #endregion

// #region options
@Module({
  imports: [
    AmqpModule.forRoot({
      url: 'amqps://app:secret@rabbit.internal:5671/shop',
      // In an options object the TLS fields are PEM contents (strings or Buffers), not paths.
      tls: {
        ca: readFileSync('/etc/ssl/rabbit/ca.pem'),
        servername: 'rabbit.internal', // the name the certificate must carry; default: the URL's host
      },
    }),
  ],
})
export class AppModule {}
// #endregion

// #region external
// Log in with the client certificate: RabbitMQ derives the user from it (by default its CN), no password is sent.
export const external = {
  url: 'amqps://rabbit.internal:5671/shop',
  mechanisms: ['EXTERNAL' as const],
  tls: {
    ca: readFileSync('/etc/ssl/rabbit/ca.pem'),
    cert: readFileSync('/etc/ssl/rabbit/client.pem'),
    key: readFileSync('/etc/ssl/rabbit/client.key'),
    passphrase: process.env.CLIENT_KEY_PASSPHRASE, // only for an encrypted key
  },
};

@Module({ imports: [AmqpModule.forRoot(external)] })
export class ExternalModule {}
// #endregion

// #region external-url
// The same from a URL alone (file paths, percent-encoded when they hold reserved characters).
export const externalUrl =
  'amqps://rabbit.internal:5671/shop?auth_mechanism=EXTERNAL' +
  '&ca=/etc/ssl/rabbit/ca.pem&cert=/etc/ssl/rabbit/client.pem&key=/etc/ssl/rabbit/client.key';
// #endregion

// #region errors
export async function connectOrExplain(): Promise<AmqpConnection> {
  try {
    return await AmqpConnection.connect(external);
  } catch (err) {
    // Bad key material (wrong passphrase, a PEM that does not parse, a certificate not matching its key): raised
    // before any connect, never retried. `field` is tls.key, tls.passphrase, tls.cert or tls.ca.
    if (err instanceof ConfigError) throw new Error(`fix ${err.field}: ${err.message}`);
    // The TLS handshake failed: unknown CA, a server name the certificate does not carry...
    if (err instanceof ConnectionLostError) throw new Error(`TLS failed: ${err.message}`);
    // EXTERNAL refused: no client certificate, or no RabbitMQ user for its CN. Names the certificate's CN.
    if (err instanceof AuthenticationError) throw new Error(`login refused: ${err.message}`);
    throw err;
  }
}
// #endregion
