import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** CN of the client certificate whose user exists on the TLS node (EXTERNAL logs in as this user). */
export const CLIENT_CN = 'warren-tls-client';
/** CN of a client certificate the CA signed but no user exists for. */
export const UNKNOWN_CN = 'warren-nobody';

/**
 * A small PKI for a TLS broker, made with `openssl` at test time (EC P-256) in a tmp dir: a CA, a server
 * certificate for `DNS:localhost` and `IP:127.0.0.1`, client certificates signed by the CA, and a second
 * CA that signed nothing the server presents (a "wrong CA"). Readable by the `rabbitmq` user.
 */
export interface PkiFixtures {
  dir: string;
  files: {
    ca: string;
    /** A CA that did not sign the server certificate. */
    otherCa: string;
    serverCert: string;
    serverKey: string;
    /** CN = CLIENT_CN. */
    clientCert: string;
    clientKey: string;
    /** clientKey, PKCS#8-encrypted with KEY_PASSPHRASE. */
    clientKeyEncrypted: string;
    /** CN = UNKNOWN_CN. */
    unknownCert: string;
    unknownKey: string;
  };
  pem: Record<keyof PkiFixtures['files'], string>;
  remove(): void;
}

function caSigned(dir: string, name: string, cn: string, ca: string, ext: string): void {
  const p = (f: string): string => join(dir, f);
  ecKey(p(`${name}-key.pem`));
  openssl('req', '-new', '-key', p(`${name}-key.pem`), '-subj', `/CN=${cn}`, '-out', p(`${name}.csr`));
  writeFileSync(p(`${name}.ext`), ext);
  openssl(
    'x509',
    '-req',
    '-in',
    p(`${name}.csr`),
    '-CA',
    p(`${ca}.pem`),
    '-CAkey',
    p(`${ca}-key.pem`),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    p(`${name}.ext`),
    '-out',
    p(`${name}.pem`),
  );
}

function makeCa(dir: string, name: string, cn: string): void {
  const key = join(dir, `${name}-key.pem`);
  ecKey(key);
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    key,
    '-subj',
    `/CN=${cn}`,
    '-days',
    '2',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    join(dir, `${name}.pem`),
  );
}

export function makePkiFixtures(): PkiFixtures {
  const dir = mkdtempSync(join(tmpdir(), 'warren-pki-'));
  const path = (name: string): string => join(dir, name);
  makeCa(dir, 'ca', 'Warren Node Test CA');
  makeCa(dir, 'other-ca', 'Warren Other CA');
  const leaf = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n';
  caSigned(
    dir,
    'server',
    'localhost',
    'ca',
    `${leaf}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n`,
  );
  caSigned(dir, 'client', CLIENT_CN, 'ca', `${leaf}extendedKeyUsage=clientAuth\n`);
  caSigned(dir, 'unknown', UNKNOWN_CN, 'ca', `${leaf}extendedKeyUsage=clientAuth\n`);
  const files = {
    ca: path('ca.pem'),
    otherCa: path('other-ca.pem'),
    serverCert: path('server.pem'),
    serverKey: path('server-key.pem'),
    clientCert: path('client.pem'),
    clientKey: path('client-key.pem'),
    clientKeyEncrypted: path('client-key-encrypted.pem'),
    unknownCert: path('unknown.pem'),
    unknownKey: path('unknown-key.pem'),
  };
  const pass = `pass:${KEY_PASSPHRASE}`;
  openssl(
    'pkcs8',
    '-topk8',
    '-in',
    files.clientKey,
    '-v2',
    'aes-256-cbc',
    '-passout',
    pass,
    '-out',
    files.clientKeyEncrypted,
  );
  // The broker runs as `rabbitmq`: it must read the CA, its certificate and its key (test material only).
  chmodSync(dir, 0o755);
  for (const f of Object.values(files)) chmodSync(f, 0o644);
  const read = (p: string): string => readFileSync(p, 'utf8');
  const pem = Object.fromEntries(Object.entries(files).map(([k, p]) => [k, read(p)])) as PkiFixtures['pem'];
  return { dir, files, pem, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
