import { join } from 'node:path';
import { inspect } from 'node:util';
import { ConfigError } from '../../lib/amqp/errors';
import type { ConnectionOptionsInput, Endpoint } from '../../lib/amqp/options';
import { describeEndpoint, parseAmqpUrl, redactUrl, resolveConnectionOptions } from '../../lib/amqp/url';
import { makeTlsFixtures, pemBodyLines, type TlsFixtures } from '../support/tls-fixtures';
import { configError } from '../support/config-error';

const SECRET = 'Sup3rS3cretPw';

/** The endpoint's fields, password included (it is non-enumerable, so toEqual would not see it). */
function fieldsOf(e: Endpoint): Record<string, unknown> {
  return { ...e, password: e.password };
}

function endpointOf(url: string): Endpoint {
  const endpoint = resolveConnectionOptions(url).endpoints[0];
  if (endpoint === undefined) throw new Error('no endpoint');
  return endpoint;
}

let fx: TlsFixtures;
let dir: string;
let caPath: string;
let certPath: string;
let keyPath: string;

beforeAll(() => {
  fx = makeTlsFixtures();
  dir = fx.dir;
  caPath = fx.files.ca;
  certPath = fx.files.cert;
  keyPath = fx.files.key;
});

afterAll(() => {
  fx.remove();
});

describe('defaults', () => {
  const expectedDefaults = {
    heartbeat: 60,
    frameMax: 131072,
    channelMax: 2047,
    connectionAttempts: 1,
    retryDelayMs: 2000,
    connectionTimeoutMs: 10000,
    handshakeTimeoutMs: 20000,
    blockedConnectionTimeoutMs: 0,
    operationTimeoutMs: 30000,
    locale: 'en_US',
    clientProperties: {},
    noDelay: true,
    keepAlive: true,
    shuffleUrls: false,
    mechanisms: ['PLAIN', 'AMQPLAIN'],
    maxMessageSize: 128 * 1024 * 1024,
    confirmTimeoutMs: 30000,
  };
  const defaultEndpoint = {
    protocol: 'amqp',
    host: '127.0.0.1',
    port: 5672,
    username: 'guest',
    password: 'guest',
    vhost: '/',
  };

  it.each<[string, string | ConnectionOptionsInput]>([
    ['a bare amqp:// URL', 'amqp://'],
    ['an empty object', {}],
    ['a URL with only a host', 'amqp://127.0.0.1'],
  ])('applies every default for %s', (_, input) => {
    const resolved = resolveConnectionOptions(input);
    expect(resolved).toEqual({ ...expectedDefaults, endpoints: expect.any(Array) });
    expect(resolved.connectionName).toBeUndefined();
    expect(resolved.endpoints).toHaveLength(1);
    expect(fieldsOf(resolved.endpoints[0] as Endpoint)).toEqual(defaultEndpoint);
    expect(resolved.endpoints[0]?.tls).toBeUndefined();
  });

  it('fills in user, password, host and port independently', () => {
    expect(fieldsOf(endpointOf('amqp://bob@rabbit'))).toEqual({ ...defaultEndpoint, host: 'rabbit', username: 'bob' });
    expect(fieldsOf(endpointOf('amqp://:5673'))).toEqual({ ...defaultEndpoint, port: 5673 });
    expect(fieldsOf(endpointOf('amqp://rabbit:'))).toEqual({ ...defaultEndpoint, host: 'rabbit' });
    expect(fieldsOf(endpointOf('amqp://:@/'))).toEqual({ ...defaultEndpoint, username: '', password: '' });
  });

  it('accepts an upper-case scheme and surrounding blanks', () => {
    expect(endpointOf('  AMQP://rabbit\n').host).toBe('rabbit');
  });
});

describe('URL parts', () => {
  it('parses user, password, host, port and vhost', () => {
    expect(fieldsOf(endpointOf('amqp://user:pass@host:10000/vhost'))).toEqual({
      protocol: 'amqp',
      host: 'host',
      port: 10000,
      username: 'user',
      password: 'pass',
      vhost: 'vhost',
    });
  });

  it('percent-decodes user, password, host and vhost (RabbitMQ URI spec example)', () => {
    expect(fieldsOf(endpointOf('amqp://user%61:%61pass@ho%61st:10000/v%2fhost'))).toEqual({
      protocol: 'amqp',
      host: 'hoast',
      port: 10000,
      username: 'usera',
      password: 'apass',
      vhost: 'v/host',
    });
  });

  it('decodes reserved characters in the credentials and keeps + literal', () => {
    const e = endpointOf('amqp://a%40b%3Ac:p%40ss%2Fw%3Ford%23+x@host');
    expect(e.username).toBe('a@b:c');
    expect(e.password).toBe('p@ss/w?ord#+x');
  });

  it('splits the credentials at the last @ of the authority', () => {
    const e = endpointOf('amqp://user:p@ss@host');
    expect(e.password).toBe('p@ss');
    expect(e.host).toBe('host');
  });

  it.each([
    ['amqp://host', '/'],
    ['amqp://host/', '/'],
    ['amqp://host/%2F', '/'],
    ['amqp://host/%2f', '/'],
    ['amqp://host/foo', 'foo'],
    ['amqp://host/a%20b', 'a b'],
    ['amqp://host/%2Fprod', '/prod'],
    ['amqp://host?heartbeat=5', '/'],
    ['amqp://host/?heartbeat=5', '/'],
    ['amqp://host/foo?heartbeat=5', 'foo'],
  ])('%s has vhost %j', (url, vhost) => {
    expect(endpointOf(url).vhost).toBe(vhost);
  });

  it('uses port 5671 and TLS (verify on) for amqps', () => {
    const e = endpointOf('amqps://host');
    expect(e.protocol).toBe('amqps');
    expect(e.port).toBe(5671);
    expect(e.tls).toEqual({ verify: true });
  });

  it('keeps an explicit amqps port', () => {
    expect(endpointOf('amqps://host:5000').port).toBe(5000);
  });

  it.each([
    ['amqp://[::1]', '::1', 5672],
    ['amqp://[::1]:5673', '::1', 5673],
    ['amqps://u:p@[2001:db8::10]:5000/v', '2001:db8::10', 5000],
    ['amqp://[::ffff:127.0.0.1]/', '::ffff:127.0.0.1', 5672],
  ])('parses the IPv6 host in %s', (url, host, port) => {
    const e = endpointOf(url);
    expect(e.host).toBe(host);
    expect(e.port).toBe(port);
  });

  it('parseAmqpUrl returns the endpoint and the raw (validated, no defaults) query options', () => {
    const { endpoint, query } = parseAmqpUrl('amqps://u:p@h/v?heartbeat=5&frame_max=16384&verify=false');
    expect(fieldsOf(endpoint)).toEqual({
      protocol: 'amqps',
      host: 'h',
      port: 5671,
      username: 'u',
      password: 'p',
      vhost: 'v',
      tls: { verify: false },
    });
    expect(query).toEqual({ heartbeat: 5, frameMax: 16384 });
    expect(parseAmqpUrl('amqp://h').query).toEqual({});
  });
});

describe('hosts, as the WHATWG URL parser reads them', () => {
  it.each([
    ['amqp://RaBBit.Example', 'RaBBit.Example', 5672],
    ['amqp://r%C3%A4bbit:5673', 'räbbit', 5673],
    ['amqp://räbbit', 'räbbit', 5672],
    ['amqp://127.1', '127.1', 5672],
    ['amqp://h:05672', 'h', 5672],
    ['amqp://a%20b', 'a b', 5672],
    ['amqp://[2001:DB8:0:0::1]', '2001:DB8:0:0::1', 5672],
    ['amqp://[::FFFF:127.0.0.1]:5000', '::FFFF:127.0.0.1', 5000],
  ])('reads %s as host %j, port %i (names keep their case, IPv6 addresses their spelling)', (url, host, port) => {
    const e = endpointOf(url);
    expect([e.host, e.port]).toEqual([host, port]);
  });

  it('keeps the RFC 6874 zone of a link-local IPv6 address (WHATWG URL has none)', () => {
    const e = endpointOf('amqp://[fe80::1%25eth0]:5673');
    expect([e.host, e.port]).toEqual(['fe80::1%eth0', 5673]);
    const list = resolveConnectionOptions('amqp://[fe80::1%25en0],[::1]');
    expect(list.endpoints.map((x) => x.host)).toEqual(['fe80::1%en0', '::1']);
  });

  it.each([
    'amqp://ho st',
    'amqp://ho\tst',
    'amqp://ho\nst',
    'amqp://h1, h2',
    'amqp://a|b',
    'amqp://a\\b',
    'amqp://a<b',
    'amqp://a^b',
    'amqp://a]b',
    'amqp://[%3A%3A1]',
    'amqp://[fe80::1%25]',
    'amqp://[fe80::1%25eth0%zz]',
  ])('refuses %j as a host (what URL would refuse or silently drop)', (url) => {
    expect(configError(() => resolveConnectionOptions(url)).field).toBe('host');
  });

  it.each([
    ['amqp://host%zz:5672', 'host'],
    ['amqp://host%zz:0', 'host'],
    ['amqp://host:0', 'port'],
    ['amqp://host: 5672', 'port'],
    ['amqp://[::1]:abc', 'port'],
    ['amqp://[::1]:65536', 'port'],
  ])('blames the right half of %j (%s)', (url, field) => {
    expect(configError(() => resolveConnectionOptions(url)).field).toBe(field);
  });

  it('keeps the port out of the message: it may be a password whose @ was forgotten', () => {
    for (const url of [`amqp://user:${SECRET}`, `amqp://user:${SECRET}x:1`, `amqp://[::1]:${SECRET}`]) {
      const err = configError(() => resolveConnectionOptions(url));
      expect(err.field).toBe('port');
      expect(err.message).not.toContain(SECRET);
    }
  });
});

describe('bad URLs', () => {
  it.each([
    ['http://guest:guest@host', 'url', "'http:'"],
    ['https://host', 'url', "'https:'"],
    ['amqp+ssl://host', 'url', "'amqp+ssl:'"],
    ['ftp:host', 'url', "'ftp:'"],
    ['localhost:5672', 'url', "'localhost:'"],
  ])('rejects the scheme of %s, naming it', (url, field, named) => {
    const err = configError(() => resolveConnectionOptions(url));
    expect(err.field).toBe(field);
    expect(err.message).toContain(named);
  });

  it.each([
    ['', 'url'],
    ['//host', 'url'],
    ['amqp:host', 'url'],
    ['amqp://host/a/b', 'vhost'],
    ['amqp://host/%2F/', 'vhost'],
    ['amqp://host:abc', 'port'],
    ['amqp://host:0', 'port'],
    ['amqp://host:65536', 'port'],
    ['amqp://host:-1', 'port'],
    ['amqp://::1', 'port'],
    ['amqp://[::1', 'host'],
    ['amqp://[::1]x', 'host'],
    ['amqp://[not-ipv6]', 'host'],
    ['amqp://%zz', 'host'],
    ['amqp://%E0%A4%A:p@host', 'username'],
    ['amqp://u:%E0%A4%A@host', 'password'],
    ['amqp://host/%zz', 'vhost'],
    [`amqp://host/${'v'.repeat(256)}`, 'vhost'],
    ['amqp://host/#frag', 'url'],
  ])('rejects %j (field %s)', (url, field) => {
    expect(configError(() => resolveConnectionOptions(url)).field).toBe(field);
  });

  it('rejects a list that is empty or holds a non-string', () => {
    expect(configError(() => resolveConnectionOptions([])).field).toBe('url');
    expect(configError(() => resolveConnectionOptions({ url: [42 as unknown as string] })).field).toBe('url');
    expect(configError(() => resolveConnectionOptions(null as unknown as string)).field).toBe('url');
  });
});

describe('query options', () => {
  it.each<[string, Partial<ReturnType<typeof resolveConnectionOptions>>]>([
    ['heartbeat=0', { heartbeat: 0 }],
    ['heartbeat=65535', { heartbeat: 65535 }],
    ['frame_max=8192', { frameMax: 8192 }],
    ['frame_max=16777216', { frameMax: 16777216 }],
    ['channel_max=100', { channelMax: 100 }],
    ['channel_max=0', { channelMax: 65535 }],
    ['connection_attempts=5', { connectionAttempts: 5 }],
    ['retry_delay=0.25', { retryDelayMs: 250 }],
    ['retry_delay=3', { retryDelayMs: 3000 }],
    ['retry_delay=0', { retryDelayMs: 0 }],
    ['connection_timeout=1.5', { connectionTimeoutMs: 1500 }],
    ['handshake_timeout=.5', { handshakeTimeoutMs: 500 }],
    ['blocked_connection_timeout=0', { blockedConnectionTimeoutMs: 0 }],
    ['blocked_connection_timeout=7', { blockedConnectionTimeoutMs: 7000 }],
    ['operation_timeout=2.', { operationTimeoutMs: 2000 }],
    ['locale=fr_FR', { locale: 'fr_FR' }],
    ['client_properties=%7B%22app%22%3A%22billing%22%2C%22n%22%3A1%7D', { clientProperties: { app: 'billing', n: 1 } }],
    ['connection_name=orders+worker%231', { connectionName: 'orders worker#1' }],
    ['no_delay=false', { noDelay: false }],
    ['no_delay=0', { noDelay: false }],
    ['keep_alive=FALSE', { keepAlive: false }],
    ['keep_alive=1', { keepAlive: true }],
    ['shuffle=true', { shuffleUrls: true }],
    ['shuffle=0', { shuffleUrls: false }],
    ['max_message_size=1048576', { maxMessageSize: 1048576 }],
    ['confirm_timeout_ms=250', { confirmTimeoutMs: 250 }],
    ['confirm_timeout_ms=0', { confirmTimeoutMs: 0 }],
    ['auth_mechanism=AMQPLAIN', { mechanisms: ['AMQPLAIN'] }],
    ['auth_mechanism=external,%20plain', { mechanisms: ['EXTERNAL', 'PLAIN'] }],
    ['auth_mechanism=PLAIN,PLAIN,EXTERNAL', { mechanisms: ['PLAIN', 'EXTERNAL'] }],
  ])('?%s', (query, expected) => {
    expect(resolveConnectionOptions(`amqp://host/?${query}`)).toMatchObject(expected);
  });

  it('combines several options', () => {
    const r = resolveConnectionOptions(
      'amqp://host/v?heartbeat=10&frame_max=65536&&channel_max=16&connection_attempts=3',
    );
    expect(r).toMatchObject({ heartbeat: 10, frameMax: 65536, channelMax: 16, connectionAttempts: 3 });
    expect(r.endpoints[0]?.vhost).toBe('v');
  });

  it('reads ca, cert and key files at resolve time', () => {
    const q = `ca=${encodeURIComponent(caPath)}&cert=${encodeURIComponent(certPath)}&key=${encodeURIComponent(keyPath)}`;
    const tls = endpointOf(`amqps://host/?${q}&servername=rabbit.example.com`).tls;
    expect(tls?.ca?.toString()).toBe(fx.pem.ca);
    expect(tls?.cert?.toString()).toBe(fx.pem.cert);
    expect(tls?.key?.toString()).toBe(fx.pem.key);
    expect(tls?.servername).toBe('rabbit.example.com');
    expect(tls?.verify).toBe(true);
  });

  it.each(['ca', 'cert', 'key'])('names %s when its file cannot be read', (field) => {
    const missing = join(dir, 'missing.pem');
    const err = configError(() => resolveConnectionOptions(`amqps://host/?${field}=${encodeURIComponent(missing)}`));
    expect(err.field).toBe(field);
    expect(err.message).toContain(missing);
    expect(err.message).toContain('ENOENT');
  });

  it.each([
    ['true', true],
    ['1', true],
    ['verify_peer', true],
    ['false', false],
    ['0', false],
    ['verify_none', false],
    ['VERIFY_NONE', false],
  ])('verify=%s', (raw, verify) => {
    expect(endpointOf(`amqps://host/?verify=${raw}`).tls?.verify).toBe(verify);
  });

  it.each(['ca', 'cert', 'key', 'servername', 'verify'])('rejects the TLS option %s on an amqp: URL', (field) => {
    const value = field === 'verify' ? 'true' : field === 'servername' ? 'x' : encodeURIComponent(caPath);
    const err = configError(() => resolveConnectionOptions(`amqp://host/?${field}=${value}`));
    expect(err.field).toBe(field);
    expect(err.message).toContain('amqps');
  });

  it('rejects an unknown option, naming it', () => {
    const err = configError(() => resolveConnectionOptions('amqp://host/?heartbeet=5'));
    expect(err.field).toBe('heartbeet');
    expect(err.message).toContain("'heartbeet'");
    expect(err.message).toContain('heartbeat');
  });

  it('rejects a repeated option and an option without a value', () => {
    expect(configError(() => resolveConnectionOptions('amqp://host/?heartbeat=5&heartbeat=6')).field).toBe('heartbeat');
    expect(configError(() => resolveConnectionOptions('amqp://host/?shuffle')).field).toBe('shuffle');
    expect(configError(() => resolveConnectionOptions('amqp://host/?locale=%zz')).field).toBe('locale');
  });

  it.each([
    ['heartbeat', '-1'],
    ['heartbeat', '65536'],
    ['heartbeat', '1.5'],
    ['heartbeat', 'abc'],
    ['heartbeat', ''],
    ['heartbeat', '1e3'],
    ['heartbeat', '0x10'],
    ['heartbeat', 'NaN'],
    ['frame_max', '8191'],
    ['frame_max', '4096'],
    ['frame_max', '16777217'],
    ['frame_max', '4294967295'],
    ['channel_max', '65536'],
    ['channel_max', '-5'],
    ['connection_attempts', '0'],
    ['connection_attempts', '2.5'],
    ['retry_delay', '-1'],
    ['retry_delay', 'Infinity'],
    ['retry_delay', '9999999'],
    ['connection_timeout', '0'],
    ['handshake_timeout', '0.0'],
    ['operation_timeout', '0'],
    ['blocked_connection_timeout', '-0.5'],
    ['max_message_size', '0'],
    ['max_message_size', '1.5'],
    ['confirm_timeout_ms', '1.5'],
    ['confirm_timeout_ms', '2147483648'],
    ['no_delay', 'yes'],
    ['keep_alive', ''],
    ['shuffle', '2'],
    ['verify', 'maybe'],
  ])('rejects %s=%j, naming the field and the value', (field, raw) => {
    const err = configError(() => resolveConnectionOptions(`amqps://host/?${field}=${raw}`));
    expect(err.field).toBe(field);
    expect(err.message).toMatch(new RegExp(`^${field}: `));
    expect(err.message).toContain(`'${raw}'`);
  });

  it.each([
    ['auth_mechanism', 'PLAIN,CRAM-MD5', 'CRAM-MD5'],
    ['auth_mechanism', '', 'PLAIN'],
    ['auth_mechanism', 'PLAIN,', 'PLAIN'],
    ['client_properties', '%7Bnot-json', 'JSON'],
    ['client_properties', '%5B1%2C2%5D', 'JSON object'],
    ['client_properties', 'null', 'JSON object'],
    ['locale', '', 'empty'],
    ['connection_name', '', 'empty'],
    ['servername', '', 'empty'],
  ])('rejects %s=%j', (field, raw, mentions) => {
    const err = configError(() => resolveConnectionOptions(`amqps://host/?${field}=${raw}`));
    expect(err.field).toBe(field);
    expect(err.message).toContain(mentions);
  });
});

describe('a host list in one URL', () => {
  it('gives one endpoint per host, each with the same credentials, vhost and query options', () => {
    const r = resolveConnectionOptions('amqp://u:p%40ss@h1:5701,h2:5702/vh?heartbeat=5');
    expect(r.endpoints.map(fieldsOf)).toEqual([
      { protocol: 'amqp', host: 'h1', port: 5701, username: 'u', password: 'p@ss', vhost: 'vh' },
      { protocol: 'amqp', host: 'h2', port: 5702, username: 'u', password: 'p@ss', vhost: 'vh' },
    ]);
    expect(r.heartbeat).toBe(5);
  });

  it('accepts IPv6 hosts in brackets and default ports in the list', () => {
    const r = resolveConnectionOptions(`amqps://[::1]:5701,h2,[fe80::1]?ca=${encodeURIComponent(caPath)}`);
    expect(r.endpoints.map((e) => [e.host, e.port])).toEqual([
      ['::1', 5701],
      ['h2', 5671],
      ['fe80::1', 5671],
    ]);
    for (const e of r.endpoints) expect(e.tls).toEqual({ verify: true, ca: Buffer.from(fx.pem.ca) });
  });

  it('flattens host lists of several URLs in order, and object fields override each endpoint', () => {
    const r = resolveConnectionOptions({ url: ['amqp://a1,a2:6000', 'amqp://b1'], protocol: 'amqps', username: 'U' });
    expect(r.endpoints.map((e) => `${e.protocol}://${e.username}@${e.host}:${e.port}`)).toEqual([
      'amqps://U@a1:5671',
      'amqps://U@a2:6000',
      'amqps://U@b1:5671',
    ]);
  });

  it('parseAmqpUrl returns every endpoint of the list, the first as endpoint', () => {
    const { endpoint, endpoints } = parseAmqpUrl('amqp://h1:5701,h2:5702');
    expect(endpoints.map((e) => e.port)).toEqual([5701, 5702]);
    expect(endpoint).toBe(endpoints[0]);
  });

  it.each([
    ['amqp://h1,,h2', 'host'],
    ['amqp://h1,', 'host'],
    ['amqp://,h2', 'host'],
    ['amqp://h1:5701,h2:x', 'port'],
    ['amqp://h1,[::1', 'host'],
    ['amqp://h1,::1', 'port'],
  ])('rejects %j (field %s)', (url, field) => {
    expect(configError(() => resolveConnectionOptions(url)).field).toBe(field);
  });

  it('still tells that a bare IPv6 address needs brackets', () => {
    expect(configError(() => resolveConnectionOptions('amqp://h1:5701,::1:5702')).message).toContain('brackets');
  });
});

describe('several URLs', () => {
  it('gives each endpoint its own host, port, credentials, vhost and TLS', () => {
    const r = resolveConnectionOptions([
      'amqp://alice:one@a.example:5000/va',
      `amqps://bob:two@b.example/vb?ca=${encodeURIComponent(caPath)}`,
      'amqps://c.example?verify=false',
    ]);
    expect(r.endpoints.map(fieldsOf)).toEqual([
      { protocol: 'amqp', host: 'a.example', port: 5000, username: 'alice', password: 'one', vhost: 'va' },
      {
        protocol: 'amqps',
        host: 'b.example',
        port: 5671,
        username: 'bob',
        password: 'two',
        vhost: 'vb',
        tls: { verify: true, ca: Buffer.from(fx.pem.ca) },
      },
      {
        protocol: 'amqps',
        host: 'c.example',
        port: 5671,
        username: 'guest',
        password: 'guest',
        vhost: '/',
        tls: { verify: false },
      },
    ]);
  });

  it('takes the connection-level query options from the first URL only', () => {
    const r = resolveConnectionOptions(['amqp://a?heartbeat=5', 'amqp://b?heartbeat=30&frame_max=16384&shuffle=true']);
    expect(r.heartbeat).toBe(5);
    expect(r.frameMax).toBe(131072);
    expect(r.shuffleUrls).toBe(false);
  });

  it('still validates the other URLs, saying which one is wrong', () => {
    const err = configError(() => resolveConnectionOptions(['amqp://a', 'amqp://b?frame_max=10']));
    expect(err.field).toBe('frame_max');
    expect(err.message).toContain('url[1]');
    expect(err.message).toContain("'10'");
    const scheme = configError(() => resolveConnectionOptions({ url: ['amqp://a', 'amqp://b', 'redis://c'] }));
    expect(scheme.field).toBe('url');
    expect(scheme.message).toContain("'redis:'");
    expect(scheme.message).toContain('url[2]');
  });

  it('accepts a single URL in a list or in the url field', () => {
    expect(endpointOf('amqp://x').host).toBe('x');
    expect(resolveConnectionOptions(['amqp://x']).endpoints[0]?.host).toBe('x');
    expect(resolveConnectionOptions({ url: 'amqp://x' }).endpoints[0]?.host).toBe('x');
  });
});

describe('object input', () => {
  it('builds one endpoint from the fields when there is no URL', () => {
    const r = resolveConnectionOptions({ host: 'h', port: 5673, username: 'u', password: 'p', vhost: 'a/b' });
    expect(r.endpoints.map(fieldsOf)).toEqual([
      { protocol: 'amqp', host: 'h', port: 5673, username: 'u', password: 'p', vhost: 'a/b' },
    ]);
  });

  it('defaults to amqps on 5671 when TLS options are given without a URL', () => {
    const e = resolveConnectionOptions({ host: 'h', tls: { ca: fx.pem.ca } }).endpoints[0];
    expect(e?.protocol).toBe('amqps');
    expect(e?.port).toBe(5671);
    expect(e?.tls).toEqual({ verify: true, ca: fx.pem.ca });
    expect(resolveConnectionOptions({ protocol: 'amqps' }).endpoints[0]?.port).toBe(5671);
  });

  it('overrides every endpoint field of every URL', () => {
    const r = resolveConnectionOptions({
      url: ['amqp://a:1@h1:1111/v1', 'amqp://b:2@h2/v2'],
      username: 'U',
      password: 'P',
      vhost: 'V',
    });
    expect(r.endpoints.map(fieldsOf)).toEqual([
      { protocol: 'amqp', host: 'h1', port: 1111, username: 'U', password: 'P', vhost: 'V' },
      { protocol: 'amqp', host: 'h2', port: 5672, username: 'U', password: 'P', vhost: 'V' },
    ]);
    const hosts = resolveConnectionOptions({ url: ['amqp://h1:1111', 'amqp://h2'], host: 'H', port: 7000 });
    expect(hosts.endpoints.map((e) => `${e.host}:${e.port}`)).toEqual(['H:7000', 'H:7000']);
  });

  it('moves the default port with a protocol override but keeps an explicit one', () => {
    const r = resolveConnectionOptions({ url: ['amqp://h1', 'amqp://h2:6000'], protocol: 'amqps' });
    expect(r.endpoints.map((e) => [e.protocol, e.port, e.tls])).toEqual([
      ['amqps', 5671, { verify: true }],
      ['amqps', 6000, { verify: true }],
    ]);
  });

  it('merges tls fields over each amqps endpoint and leaves amqp endpoints alone', () => {
    const r = resolveConnectionOptions({
      url: [`amqps://h1?ca=${encodeURIComponent(caPath)}&verify=false`, 'amqp://h2'],
      tls: { verify: true, servername: 'sni' },
    });
    expect(r.endpoints[0]?.tls).toEqual({ ca: Buffer.from(fx.pem.ca), verify: true, servername: 'sni' });
    expect(r.endpoints[1]?.tls).toBeUndefined();
  });

  it('rejects TLS options that no endpoint can use', () => {
    expect(configError(() => resolveConnectionOptions({ url: 'amqp://h', tls: { verify: false } })).field).toBe('tls');
    expect(configError(() => resolveConnectionOptions({ protocol: 'amqp', tls: {} })).field).toBe('tls');
    const drop = configError(() =>
      resolveConnectionOptions({ url: `amqps://h?ca=${encodeURIComponent(caPath)}`, protocol: 'amqp' }),
    );
    expect(drop.field).toBe('protocol');
  });

  it('overrides the query options field by field', () => {
    const r = resolveConnectionOptions({
      url: 'amqp://h?heartbeat=5&frame_max=16384&client_properties=%7B%22a%22%3A1%7D&auth_mechanism=EXTERNAL',
      heartbeat: 0,
      clientProperties: { b: 2 },
    });
    expect(r.heartbeat).toBe(0);
    expect(r.frameMax).toBe(16384);
    expect(r.clientProperties).toEqual({ b: 2 });
    expect(r.mechanisms).toEqual(['EXTERNAL']);
  });

  it('resolves every connection-level field', () => {
    const r = resolveConnectionOptions({
      heartbeat: 15,
      frameMax: 8192,
      channelMax: 0,
      connectionAttempts: 4,
      retryDelay: 0.1,
      connectionTimeout: 0.0001,
      handshakeTimeout: 3,
      blockedConnectionTimeout: 60,
      operationTimeout: 1.25,
      locale: 'de_DE',
      clientProperties: { app: 'x' },
      connectionName: 'worker',
      noDelay: false,
      keepAlive: false,
      shuffleUrls: true,
      mechanisms: ['EXTERNAL', 'PLAIN'],
      maxMessageSize: 1024,
      confirmTimeoutMs: 500,
    });
    expect(r).toEqual({
      endpoints: expect.any(Array),
      heartbeat: 15,
      frameMax: 8192,
      channelMax: 65535,
      connectionAttempts: 4,
      retryDelayMs: 100,
      connectionTimeoutMs: 1,
      handshakeTimeoutMs: 3000,
      blockedConnectionTimeoutMs: 60000,
      operationTimeoutMs: 1250,
      locale: 'de_DE',
      clientProperties: { app: 'x' },
      connectionName: 'worker',
      noDelay: false,
      keepAlive: false,
      shuffleUrls: true,
      mechanisms: ['EXTERNAL', 'PLAIN'],
      maxMessageSize: 1024,
      confirmTimeoutMs: 500,
    });
  });

  it('ignores fields set to undefined', () => {
    const r = resolveConnectionOptions({ url: 'amqp://h?heartbeat=5', heartbeat: undefined, host: undefined });
    expect(r.heartbeat).toBe(5);
    expect(r.endpoints[0]?.host).toBe('h');
  });

  it.each<[keyof ConnectionOptionsInput, unknown]>([
    ['heartbeat', NaN],
    ['heartbeat', -1],
    ['heartbeat', 1.5],
    ['heartbeat', 65536],
    ['heartbeat', Infinity],
    ['frameMax', 8191],
    ['frameMax', 2 ** 32],
    ['channelMax', 65536],
    ['channelMax', -1],
    ['connectionAttempts', 0],
    ['connectionAttempts', 1.5],
    ['retryDelay', -0.1],
    ['retryDelay', NaN],
    ['retryDelay', 3_000_000],
    ['connectionTimeout', 0],
    ['handshakeTimeout', -1],
    ['blockedConnectionTimeout', -1],
    ['operationTimeout', 0],
    ['maxMessageSize', 0],
    ['maxMessageSize', 2.5],
    ['confirmTimeoutMs', -1],
    ['confirmTimeoutMs', 0.5],
    ['port', 0],
    ['port', 65536],
    ['port', 5672.5],
  ])('rejects %s = %p, naming the field and the value', (field, value) => {
    const err = configError(() => resolveConnectionOptions({ [field]: value }));
    expect(err.field).toBe(field);
    expect(err.message).toMatch(new RegExp(`^${field}: `));
    expect(err.message).toContain(`got ${String(value)}`);
  });

  it.each<[string, ConnectionOptionsInput | Record<string, unknown>]>([
    ['heartbeat', { heartbeat: '60' }],
    ['noDelay', { noDelay: 'false' }],
    ['keepAlive', { keepAlive: 1 }],
    ['shuffleUrls', { shuffleUrls: 'yes' }],
    ['locale', { locale: '' }],
    ['locale', { locale: 'x'.repeat(256) }],
    ['clientProperties', { clientProperties: [] }],
    ['clientProperties', { clientProperties: null }],
    ['connectionName', { connectionName: 5 }],
    ['mechanisms', { mechanisms: [] }],
    ['mechanisms', { mechanisms: ['PLAIN', 'GSSAPI'] }],
    ['mechanisms', { mechanisms: 'PLAIN' }],
    ['protocol', { protocol: 'http' }],
    ['host', { host: '' }],
    ['host', { host: 42 }],
    ['username', { username: null }],
    ['password', { password: 1234 }],
    ['vhost', { vhost: 'v'.repeat(256) }],
    ['tls', { tls: 'yes' }],
    ['tls.ca', { tls: { ca: 5 } }],
    ['tls.ca[1]', { tls: { ca: ['ok', 5] } }],
    ['tls.cert', { tls: { cert: {} } }],
    ['tls.key', { tls: { key: 1 } }],
    ['tls.passphrase', { tls: { passphrase: 1 } }],
    ['tls.servername', { tls: { servername: '' } }],
    ['tls.verify', { tls: { verify: 'no' } }],
  ])('rejects a bad %s', (field, input) => {
    expect(configError(() => resolveConnectionOptions(input as ConnectionOptionsInput)).field).toBe(field);
  });
});

describe('passwords never leak', () => {
  const badUrls = [
    `http://user:${SECRET}@host`,
    `amqp://user:${SECRET}@host:99999`,
    `amqp://user:${SECRET}`,
    `amqp://user:${SECRET}:host`,
    `amqp://user:${SECRET}@[::1`,
    `amqp://user:${SECRET}@host/a/b`,
    `amqp://user:${SECRET.slice(0, 4)}/${SECRET.slice(4)}@host`,
    `amqp://user:${SECRET.slice(0, 4)}?${SECRET.slice(4)}@host`,
    `amqp://user:${SECRET.slice(0, 4)}#${SECRET.slice(4)}@host`,
    `amqp://user:${SECRET}%zz@host`,
    `amqp://user:${SECRET}@host/?frame_max=1`,
    `amqp://user:${SECRET}@host/?nope=1`,
    `amqp://user:${SECRET}@host/?ca=/nonexistent/file`,
    `amqps://user:${SECRET}@host/?ca=/nonexistent/file`,
  ];

  it.each(badUrls)('keeps the password out of the error for %s', (url) => {
    const check = (err: ConfigError): void => {
      expect(err.message).not.toContain(SECRET.slice(4));
      expect(err.stack ?? '').not.toContain(SECRET.slice(4));
      expect(inspect(err)).not.toContain(SECRET.slice(4));
      expect(err.cause).toBeUndefined();
    };
    check(configError(() => parseAmqpUrl(url)));
    check(configError(() => resolveConnectionOptions(url)));
    check(configError(() => resolveConnectionOptions(['amqp://ok', url])));
  });

  it('keeps the password out of object-input errors', () => {
    const err = configError(() => resolveConnectionOptions({ password: SECRET, frameMax: 1 }));
    expect(err.message).not.toContain(SECRET);
  });

  describe.each<[string, () => Endpoint]>([
    [
      'a URL endpoint',
      () =>
        endpointOf(
          `amqps://user:${SECRET}@host/v?key=${encodeURIComponent(keyPath)}&cert=${encodeURIComponent(certPath)}`,
        ),
    ],
    [
      'an object endpoint',
      () =>
        resolveConnectionOptions({ username: 'user', password: SECRET, tls: { key: fx.pem.key, cert: fx.pem.cert } })
          .endpoints[0] as Endpoint,
    ],
    [
      'a parsed endpoint',
      () => parseAmqpUrl(`amqps://user:${SECRET}@host?key=${encodeURIComponent(keyPath)}`).endpoint,
    ],
  ])('%s', (_, make) => {
    it('still holds the password', () => {
      expect(make().password).toBe(SECRET);
    });

    it('hides the password from enumeration', () => {
      const e = make();
      expect(Object.keys(e)).not.toContain('password');
      expect(Object.getOwnPropertyDescriptor(e, 'password')?.enumerable).toBe(false);
      expect({ ...e }).not.toHaveProperty('password');
    });

    it('hides the password from JSON.stringify', () => {
      const e = make();
      const json = JSON.stringify(e);
      expect(json).not.toContain(SECRET);
      expect(json).not.toContain('password');
      expect(json).toContain('"username":"user"');
      expect(JSON.stringify(resolveConnectionOptions({ url: `amqp://u:${SECRET}@h` }))).not.toContain(SECRET);
    });

    it("shows password: '***' in util.inspect", () => {
      const e = make();
      for (const text of [
        inspect(e),
        inspect({ nested: { deeper: [e] } }, { depth: 10 }),
        inspect(e, { showHidden: true }),
      ]) {
        expect(text).not.toContain(SECRET);
      }
      expect(inspect(e)).toContain("password: '***'");
      expect(inspect(e)).toContain("username: 'user'");
    });

    it('hides the TLS private key from inspect and JSON but keeps it usable', () => {
      const e = make();
      expect(e.tls?.key?.toString()).toBe(fx.pem.key);
      expect({ ...e.tls }.key?.toString()).toBe(fx.pem.key);
      const keyBytes = Buffer.from('-----BEGIN PRIVATE').toString('hex').match(/../g)?.join(' ') ?? '';
      for (const text of [inspect(e, { depth: 10 }), inspect(e.tls), JSON.stringify(e), JSON.stringify(e.tls)]) {
        for (const line of pemBodyLines(fx.pem.key)) expect(text).not.toContain(line);
        expect(text).not.toContain('PRIVATE KEY');
        expect(text).not.toContain(keyBytes);
        expect(text).not.toContain('45,45,45,45,45,66,69,71,73,78,32,80,82,73'); // Buffer JSON bytes of it
        expect(text).toContain('***');
      }
    });
  });

  it('hides the password when the whole resolved options object is inspected', () => {
    const text = inspect(resolveConnectionOptions([`amqp://a:${SECRET}@h1`, `amqp://b:${SECRET}x@h2`]), { depth: 10 });
    expect(text).not.toContain(SECRET);
    expect(text.match(/password: '\*\*\*'/g)).toHaveLength(2);
  });
});

describe('redactUrl', () => {
  it.each([
    ['amqp://user:secret@host:5672/vh', 'amqp://user:***@host:5672/vh'],
    ['amqps://user:s%40cr%2Fet@host/?heartbeat=5', 'amqps://user:***@host/?heartbeat=5'],
    ['amqp://user:p@ss@host', 'amqp://user:***@host'],
    ['amqp://:secret@host', 'amqp://:***@host'],
    ['amqp://user:@host', 'amqp://user:***@host'],
    ['amqp://user@host:5672', 'amqp://user@host:5672'],
    ['amqp://host:5672/vh?connection_name=a', 'amqp://host:5672/vh?connection_name=a'],
    // An '@' after the host is ambiguous (it could be a raw '/' or '?' in the password): hidden up to the last '@'.
    ['amqp://u:p@host/?connection_name=a@b', 'amqp://u:***@b'],
    ['amqp://u:pa/ss@host', 'amqp://u:***@host'],
    ['amqp://u:pa?ss@host', 'amqp://u:***@host'],
    ['user:secret@host', 'user:***@host'],
    ['not a url', 'not a url'],
    ['', ''],
  ])('%s -> %s', (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
  });
});

describe('describeEndpoint', () => {
  it('matches the documented form for the defaults', () => {
    expect(describeEndpoint(endpointOf('amqp://'))).toBe('amqp://guest@127.0.0.1:5672/');
  });

  it.each([
    ['amqps://us%40er:pw@[::1]/v%2Fh', 'amqps://us%40er@[::1]:5671/v%2Fh'],
    ['amqp://u:pw@host:1234/%2F', 'amqp://u@host:1234/'],
    ['amqp://u:pw@host/a%20b', 'amqp://u@host:5672/a%20b'],
  ])('%s -> %s', (url, described) => {
    expect(describeEndpoint(endpointOf(url))).toBe(described);
    expect(describeEndpoint(endpointOf(url))).not.toContain('pw');
  });

  it('round-trips through the parser (password aside)', () => {
    const e = resolveConnectionOptions({ host: '::1', port: 6000, username: 'a:b@c', vhost: 'x/y z', password: 'pw' })
      .endpoints[0] as Endpoint;
    const again = endpointOf(describeEndpoint(e));
    expect({ ...again }).toEqual({ ...e });
    expect(again.password).toBe('guest');
  });
});
