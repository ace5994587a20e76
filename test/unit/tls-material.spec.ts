import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { AmqpConnection, AmqpSession, ConfigError, type TlsOptions } from '../../lib/amqp';
import { AmqpModule } from '../../lib/nest';
import { resolveConnectionOptions } from '../../lib/amqp/url';
import { KEY_PASSPHRASE, makeTlsFixtures, pemBodyLines, type TlsFixtures } from '../support/tls-fixtures';
import { configError } from '../support/config-error';

Logger.overrideLogger(false);

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
/** Nothing listens on port 1: a test that got as far as connecting would fail with a connect error instead. */
const URL = 'amqps://127.0.0.1:1';

let fx: TlsFixtures;
let garbagePath: string;

beforeAll(() => {
  fx = makeTlsFixtures();
  garbagePath = join(fx.dir, 'garbage.pem');
  writeFileSync(garbagePath, 'not a PEM at all');
});

afterAll(() => fx.remove());

/** The PEM with garbage bytes before each certificate's DER: still PEM, no longer X.509. */
function corrupt(pem: string): string {
  return pem.split('-----BEGIN CERTIFICATE-----\n').join('-----BEGIN CERTIFICATE-----\nAAAA');
}

function resolveTls(tls: TlsOptions): ConfigError {
  return configError(() => resolveConnectionOptions({ url: URL, tls }));
}

/** The error names no secret: neither the passphrase nor any line of a key. */
function expectNoSecrets(err: ConfigError): void {
  const text = `${err.message}\n${err.stack ?? ''}\n${inspect(err)}`;
  expect(text).not.toContain(KEY_PASSPHRASE);
  expect(text).not.toContain('wrong-passphrase');
  for (const line of [...pemBodyLines(fx.pem.key), ...pemBodyLines(fx.pem.encryptedKey)]) {
    expect(text).not.toContain(line);
  }
}

describe('TLS key material is checked when the options are resolved', () => {
  it.each<[string, () => TlsOptions]>([
    ['a plain key and its certificate', () => ({ key: fx.pem.key, cert: fx.pem.cert })],
    [
      'a PKCS#8-encrypted key with the right passphrase',
      () => ({ key: fx.pem.encryptedKey, passphrase: KEY_PASSPHRASE, cert: fx.pem.cert }),
    ],
    [
      'a legacy-encrypted key with the right passphrase',
      () => ({
        key: Buffer.from(fx.pem.legacyEncryptedKey),
        passphrase: KEY_PASSPHRASE,
        cert: Buffer.from(fx.pem.cert),
      }),
    ],
    ['a CA bundle of two certificates', () => ({ ca: fx.pem.caBundle })],
    ['a list of CAs', () => ({ ca: [fx.pem.ca, Buffer.from(fx.pem.caBundle)] })],
  ])('accepts %s', (_, tls) => {
    const e = resolveConnectionOptions({ url: URL, tls: tls() }).endpoints[0];
    expect(e?.tls).toMatchObject(tls());
  });

  it('accepts key files given in the URL, with the passphrase from the object', () => {
    const url = `${URL}?key=${encodeURIComponent(fx.files.encryptedKey)}&cert=${encodeURIComponent(fx.files.cert)}&ca=${encodeURIComponent(fx.files.caBundle)}`;
    const e = resolveConnectionOptions({ url, tls: { passphrase: KEY_PASSPHRASE } }).endpoints[0];
    expect(e?.tls?.key?.toString()).toBe(fx.pem.encryptedKey);
  });

  it.each<[string, string, () => TlsOptions]>([
    [
      'a wrong passphrase',
      'tls.passphrase',
      () => ({ key: fx.pem.encryptedKey, passphrase: 'wrong-passphrase', cert: fx.pem.cert }),
    ],
    [
      'a wrong passphrase (legacy encryption)',
      'tls.passphrase',
      () => ({ key: fx.pem.legacyEncryptedKey, passphrase: 'wrong-passphrase', cert: fx.pem.cert }),
    ],
    [
      'an encrypted key without a passphrase',
      'tls.passphrase',
      () => ({ key: fx.pem.encryptedKey, cert: fx.pem.cert }),
    ],
    ['a garbage key', 'tls.key', () => ({ key: 'not a key', cert: fx.pem.cert })],
    ['a garbage key with a passphrase', 'tls.key', () => ({ key: 'not a key', passphrase: 'x', cert: fx.pem.cert })],
    ['a certificate given as the key', 'tls.key', () => ({ key: fx.pem.cert, cert: fx.pem.cert })],
    ['a garbage certificate', 'tls.cert', () => ({ key: fx.pem.key, cert: 'not a cert' })],
    ['a certificate of another key', 'tls.cert', () => ({ key: fx.pem.otherKey, cert: fx.pem.cert })],
    ['a key without its certificate', 'tls.cert', () => ({ key: fx.pem.key })],
    ['a certificate without its key', 'tls.key', () => ({ cert: fx.pem.cert })],
    ['a passphrase without a key', 'tls.passphrase', () => ({ passphrase: KEY_PASSPHRASE })],
    ['a garbage CA', 'tls.ca', () => ({ ca: 'not a cert' })],
    ['a garbage CA in a list', 'tls.ca', () => ({ ca: [fx.pem.ca, 'not a cert'] })],
    [
      'a CA bundle whose second certificate is corrupt',
      'tls.ca',
      () => ({ ca: fx.pem.ca + corrupt(fx.pem.caBundle.slice(fx.pem.ca.length)) }),
    ],
  ])('rejects %s as a ConfigError naming %s', (_, field, tls) => {
    const err = resolveTls(tls());
    expect(err.field).toBe(field);
    expectNoSecrets(err);
  });

  it('says which CA of a list, and which certificate of a bundle, is bad', () => {
    expect(resolveTls({ ca: [fx.pem.ca, 'not a cert'] }).message).toContain('tls.ca[1]');
    expect(resolveTls({ ca: corrupt(fx.pem.caBundle) }).message).toContain('certificate 1 of 2');
    expect(resolveTls({ ca: fx.pem.ca + corrupt(fx.pem.caBundle.slice(fx.pem.ca.length)) }).message).toContain(
      'certificate 2 of 2',
    );
  });

  it('checks key files named in the URL', () => {
    const url = `${URL}?key=${encodeURIComponent(garbagePath)}&cert=${encodeURIComponent(fx.files.cert)}`;
    expect(configError(() => resolveConnectionOptions(url)).field).toBe('tls.key');
    const ca = `${URL}?ca=${encodeURIComponent(garbagePath)}`;
    expect(configError(() => resolveConnectionOptions(ca)).field).toBe('tls.ca');
  });

  it('says which endpoint has the bad material when there are several', () => {
    const good = `amqps://a.example?key=${encodeURIComponent(fx.files.key)}&cert=${encodeURIComponent(fx.files.cert)}`;
    const bad = `amqps://b.example?key=${encodeURIComponent(garbagePath)}&cert=${encodeURIComponent(fx.files.cert)}`;
    const err = configError(() => resolveConnectionOptions([good, bad]));
    expect(err.field).toBe('tls.key');
    expect(err.message).toContain('amqps://guest@b.example:5671/');
  });
});

describe('bad TLS key material fails at once, before any connect', () => {
  const bad: TlsOptions = { passphrase: 'wrong-passphrase' };

  beforeAll(() => {
    bad.key = fx.pem.encryptedKey;
    bad.cert = fx.pem.cert;
  });

  it('new AmqpSession throws the ConfigError', () => {
    const err = configError(() => new AmqpSession({ url: URL, tls: bad, logger: silent }));
    expect(err.field).toBe('tls.passphrase');
  });

  it('AmqpConnection.connect rejects with the ConfigError', async () => {
    const err = await AmqpConnection.connect({ url: URL, tls: bad, logger: silent }).then(
      () => new Error('connected'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('tls.passphrase');
  });

  it('AmqpModule fails start-up with the ConfigError, even with startWithoutBroker', async () => {
    const compiling = Test.createTestingModule({
      imports: [AmqpModule.forRoot({ url: URL, tls: bad, logger: silent, startWithoutBroker: true })],
    }).compile();
    const err = await compiling.then(
      async (m) => {
        await m.close();
        return new Error('started');
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('tls.passphrase');
  });
});
