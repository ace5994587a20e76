/**
 * Validation of TLS key material at option resolution: a wrong passphrase, a garbage PEM or a certificate that does
 * not belong to its key is a `ConfigError` naming the field, raised once, before any connect — instead of an error
 * thrown by every TLS connect attempt and retried forever. Messages never echo the key, the passphrase or the PEM.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { ConfigError } from './errors';
import type { TlsOptions } from './options';

/** A PEM block: its label and its whole text (BEGIN to END line). */
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

function text(pem: string | Buffer): string {
  return typeof pem === 'string' ? pem : pem.toString('latin1');
}

/** The `CERTIFICATE` blocks of a PEM text (a bundle or a chain may hold several). */
function certificateBlocks(pem: string | Buffer): string[] {
  return [...text(pem).matchAll(PEM_BLOCK)].filter((m) => m[1] === 'CERTIFICATE').map((m) => m[0]);
}

/** Encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`) or legacy OpenSSL encryption (`Proc-Type: 4,ENCRYPTED`). */
function isEncryptedKey(pem: string | Buffer): boolean {
  const s = text(pem);
  return s.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /Proc-Type:\s*4,ENCRYPTED/.test(s);
}

function loadPrivateKey(key: string | Buffer, passphrase: string | undefined): KeyObject {
  const encrypted = isEncryptedKey(key);
  if (encrypted && passphrase === undefined) {
    throw new ConfigError('tls.passphrase', 'the private key (tls.key) is encrypted: give its passphrase');
  }
  try {
    return createPrivateKey(passphrase === undefined ? { key } : { key, passphrase });
  } catch {
    if (encrypted)
      throw new ConfigError('tls.passphrase', 'wrong passphrase: the private key (tls.key) does not decrypt');
    throw new ConfigError('tls.key', 'not a valid PEM private key');
  }
}

/** Each certificate of `pem`, parsed; `what` names the value in messages (`tls.cert`, `tls.ca[1]`). */
function loadCertificates(field: string, what: string, pem: string | Buffer): X509Certificate[] {
  const blocks = certificateBlocks(pem);
  if (blocks.length === 0) {
    throw new ConfigError(field, `${what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch {
      const which = blocks.length > 1 ? `certificate ${i + 1} of ${blocks.length} in ${what}` : what;
      throw new ConfigError(field, `${which} is not a valid X.509 certificate`);
    }
  });
}

/**
 * Checks that the key decrypts with the passphrase, that every certificate (client chain and CA bundle) parses, and
 * that the client certificate belongs to the key. Throws `ConfigError` with field `tls.key`, `tls.passphrase`,
 * `tls.cert` or `tls.ca`.
 */
export function checkTlsMaterial(tls: TlsOptions): void {
  if (tls.ca !== undefined) {
    const bundles = Array.isArray(tls.ca) ? tls.ca : [tls.ca];
    bundles.forEach((ca, i) => loadCertificates('tls.ca', Array.isArray(tls.ca) ? `tls.ca[${i}]` : 'tls.ca', ca));
  }
  if (tls.passphrase !== undefined && tls.key === undefined) {
    throw new ConfigError('tls.passphrase', 'given without a private key (tls.key)');
  }
  if (tls.key === undefined && tls.cert === undefined) return;
  if (tls.key === undefined) throw new ConfigError('tls.key', 'a client certificate (tls.cert) needs its private key');
  if (tls.cert === undefined) throw new ConfigError('tls.cert', 'a private key (tls.key) needs its client certificate');
  const key = loadPrivateKey(tls.key, tls.passphrase);
  const [leaf] = loadCertificates('tls.cert', 'tls.cert', tls.cert);
  if (leaf !== undefined && !leaf.checkPrivateKey(key)) {
    throw new ConfigError('tls.cert', 'the client certificate does not match the private key (tls.key)');
  }
}
