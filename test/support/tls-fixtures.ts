import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The passphrase of the encrypted copies of the client key. */
export const KEY_PASSPHRASE = 'Pa55phrase-Sentinel';

/** TLS key material made with `openssl` at test time (EC P-256: fast), in a tmp dir; nothing secret is committed. */
export interface TlsFixtures {
  dir: string;
  /** Paths. */
  files: {
    ca: string;
    /** Two CA certificates in one file. */
    caBundle: string;
    key: string;
    /** The same key, PKCS#8-encrypted with KEY_PASSPHRASE. */
    encryptedKey: string;
    /** The same key, encrypted the legacy OpenSSL way (`Proc-Type: 4,ENCRYPTED`). */
    legacyEncryptedKey: string;
    /** Self-signed certificate of `key`. */
    cert: string;
    /** A key that does not belong to `cert`. */
    otherKey: string;
  };
  /** The files' contents (PEM text). */
  pem: Record<keyof TlsFixtures['files'], string>;
  remove(): void;
}

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function ecKey(path: string): void {
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path);
}

function selfSigned(keyPath: string, cn: string, out: string): void {
  openssl('req', '-x509', '-new', '-key', keyPath, '-subj', `/CN=${cn}`, '-days', '2', '-out', out);
}

export function makeTlsFixtures(): TlsFixtures {
  const dir = mkdtempSync(join(tmpdir(), 'warren-tls-'));
  const path = (name: string): string => join(dir, name);
  const files = {
    ca: path('ca.pem'),
    caBundle: path('ca-bundle.pem'),
    key: path('client-key.pem'),
    encryptedKey: path('client-key-encrypted.pem'),
    legacyEncryptedKey: path('client-key-legacy.pem'),
    cert: path('client cert.pem'),
    otherKey: path('other-key.pem'),
  };
  ecKey(path('ca-key.pem'));
  selfSigned(path('ca-key.pem'), 'Warren Test CA', files.ca);
  ecKey(path('ca2-key.pem'));
  selfSigned(path('ca2-key.pem'), 'Warren Test CA 2', path('ca2.pem'));
  ecKey(files.key);
  selfSigned(files.key, 'warren-client', files.cert);
  ecKey(files.otherKey);
  const pass = `pass:${KEY_PASSPHRASE}`;
  openssl('pkcs8', '-topk8', '-in', files.key, '-v2', 'aes-256-cbc', '-passout', pass, '-out', files.encryptedKey);
  openssl('ec', '-in', files.key, '-aes256', '-passout', pass, '-out', files.legacyEncryptedKey);
  const read = (p: string): string => readFileSync(p, 'utf8');
  writeFileSync(files.caBundle, read(files.ca) + read(path('ca2.pem')));
  const pem = Object.fromEntries(Object.entries(files).map(([k, p]) => [k, read(p)])) as TlsFixtures['pem'];
  return { dir, files, pem, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The base64 body lines of a PEM (what a leaked key would show), long enough not to match by chance. */
export function pemBodyLines(pem: string): string[] {
  return pem.split('\n').filter((line) => line.length >= 16 && !line.startsWith('-----') && !line.includes(':'));
}
