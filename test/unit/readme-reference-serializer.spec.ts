import type { MessageProperties } from '../../lib/amqp';
import { DefaultDeserializer, DefaultSerializer, DeserializationError } from '../../lib/nest';

/** README, Message bodies: the default serializer and deserializer tables, row by row. */

const deserializer = new DefaultDeserializer();
const read = (body: string | Buffer, contentType?: string): unknown =>
  deserializer.deserialize(Buffer.isBuffer(body) ? body : Buffer.from(body), { contentType } as MessageProperties);

describe('default deserializer (README): by content type', () => {
  it.each([
    ['application/json'],
    ['application/json; charset=utf-8'],
    ['Application/JSON;charset=UTF-8'],
    ['application/vnd.api+json'],
    ['application/problem+json; charset=utf-8'],
  ])('%s: the parsed JSON', (contentType) => {
    expect(read('{"id":7,"tags":["a"]}', contentType)).toEqual({ id: 7, tags: ['a'] });
  });

  it('invalid JSON under a JSON type (plain or *+json) is a deserialization error', () => {
    expect(() => read('{not json', 'application/json')).toThrow(DeserializationError);
    expect(() => read('{not json', 'application/vnd.api+json; charset=utf-8')).toThrow(DeserializationError);
  });

  it.each([['text/plain'], ['text/csv'], ['text/plain; charset=utf-8']])(
    '%s: a UTF-8 string (even when it looks like JSON)',
    (contentType) => {
      expect(read('{"é":1}', contentType)).toBe('{"é":1}');
    },
  );

  it.each([['application/octet-stream'], ['application/xml'], ['image/png']])(
    '%s: the Buffer, unparsed',
    (contentType) => {
      const value = read('{"id":1}', contentType);
      expect(Buffer.isBuffer(value)).toBe(true);
      expect((value as Buffer).toString()).toBe('{"id":1}');
    },
  );

  it('no content type: the parsed JSON if the body is JSON (30 is the number 30), else the Buffer', () => {
    expect(read('30')).toBe(30);
    expect(read('{"id":1}')).toEqual({ id: 1 });
    expect(read('"hi"')).toBe('hi');
    const notJson = read('hello');
    expect(Buffer.isBuffer(notJson)).toBe(true);
    expect((notJson as Buffer).toString()).toBe('hello');
  });

  it.each([[undefined], ['application/json'], ['text/plain'], ['application/octet-stream']])(
    'an empty body is undefined (content type %s)',
    (contentType) => {
      expect(read(Buffer.alloc(0), contentType)).toBeUndefined();
    },
  );
});

describe('default serializer (README): what Warren publishes', () => {
  const serializer = new DefaultSerializer();

  it('undefined becomes an empty body with no content type', () => {
    const out = serializer.serialize(undefined);
    expect(out.body.length).toBe(0);
    expect(out.contentType).toBeUndefined();
    expect(out.contentEncoding).toBeUndefined();
  });

  it('a Buffer or Uint8Array goes as is (octet-stream), a string as UTF-8 text/plain, anything else as JSON', () => {
    const bytes = Buffer.from([1, 2, 3]);
    expect(serializer.serialize(bytes)).toEqual({ body: bytes, contentType: 'application/octet-stream' });
    const view = new Uint8Array([9, 8, 7]);
    const fromView = serializer.serialize(view);
    expect([...fromView.body]).toEqual([9, 8, 7]);
    expect(fromView.contentType).toBe('application/octet-stream');
    expect(serializer.serialize('héllo')).toEqual({ body: Buffer.from('héllo', 'utf8'), contentType: 'text/plain' });
    expect(serializer.serialize({ a: [1] })).toEqual({
      body: Buffer.from('{"a":[1]}'),
      contentType: 'application/json',
    });
    expect(serializer.serialize(null)).toEqual({ body: Buffer.from('null'), contentType: 'application/json' });
  });
});
