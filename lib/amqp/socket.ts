import * as net from 'node:net';
import * as tls from 'node:tls';
import { CertificateError, ClosedError, ConnectionLostError, TimeoutError } from './errors';
import type { Endpoint } from './options';
import { describeEndpoint } from './redact';

/**
 * Node's codes for a broker certificate that failed verification (OpenSSL's X509_V_ERR names, and the
 * host-name check): a trust problem that retrying cannot fix, unlike a reset or a timeout.
 */
const CERTIFICATE_CODES = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

export interface SocketOptions {
  connectionTimeoutMs: number;
  noDelay: boolean;
  keepAlive: boolean;
  /** Aborts the connect: the socket is destroyed and the promise rejects with `ClosedError('connect aborted')`. */
  signal?: AbortSignal;
}

/**
 * Open a TCP (or TLS, for amqps) socket to one endpoint. TCP_NODELAY is on by default: with Nagle's
 * algorithm a small request waits for the peer's delayed ACK, which turns request/reply traffic
 * into ~40 ms round trips. Every way out (connected, failed, timed out, aborted) clears the timer and
 * the listeners this function added.
 */
export function openSocket(endpoint: Endpoint, options: SocketOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const signal = options.signal;
    if (signal?.aborted) {
      reject(new ClosedError('connect aborted'));
      return;
    }
    let socket: net.Socket;
    const where = describeEndpoint(endpoint);
    if (endpoint.protocol === 'amqps') {
      const t = endpoint.tls ?? {};
      socket = tls.connect({
        host: endpoint.host,
        port: endpoint.port,
        ca: t.ca,
        cert: t.cert,
        key: t.key,
        passphrase: t.passphrase,
        servername: t.servername ?? (net.isIP(endpoint.host) ? undefined : endpoint.host),
        rejectUnauthorized: t.verify !== false,
      });
    } else {
      socket = net.connect({ host: endpoint.host, port: endpoint.port, noDelay: options.noDelay });
    }
    const connectedEvent = endpoint.protocol === 'amqps' ? 'secureConnect' : 'connect';
    const timer = setTimeout(() => {
      cleanup();
      socket.destroy();
      reject(
        new TimeoutError(
          `connecting to ${where} timed out after ${options.connectionTimeoutMs} ms`,
          'connect',
          options.connectionTimeoutMs,
        ),
      );
    }, options.connectionTimeoutMs);
    const onError = (err: Error): void => {
      cleanup();
      socket.destroy();
      const code = (err as NodeJS.ErrnoException).code;
      if (endpoint.protocol === 'amqps' && code !== undefined && CERTIFICATE_CODES.has(code))
        reject(
          new CertificateError(`cannot connect to ${where}: server certificate refused: ${err.message}`, code, {
            cause: err,
          }),
        );
      else reject(new ConnectionLostError(`cannot connect to ${where}: ${err.message}`, { cause: err }));
    };
    const onAbort = (): void => {
      cleanup();
      socket.destroy();
      reject(new ClosedError('connect aborted'));
    };
    const onConnect = (): void => {
      cleanup();
      socket.setNoDelay(options.noDelay);
      socket.setKeepAlive(options.keepAlive, 10_000);
      resolve(socket);
    };
    function cleanup(): void {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off(connectedEvent, onConnect);
      signal?.removeEventListener('abort', onAbort);
    }
    socket.once('error', onError);
    socket.once(connectedEvent, onConnect);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
