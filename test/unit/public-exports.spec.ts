import * as path from 'node:path';
import * as ts from 'typescript';

/**
 * The package's public surface, reviewed name by name. A name that appears in (or vanishes from) `nestjs-warren` or
 * `nestjs-warren/amqp` fails this test until it is added to (or removed from) these lists: nothing becomes public, or
 * stops being public, by accident.
 */
const AMQP_VALUES = [
  'AmqpConnection',
  'AmqpDecimal',
  'AmqpError',
  'AmqpSession',
  'AuthenticationError',
  'BlockedTimeoutError',
  'BufferOverflowError',
  'CertificateError',
  'Channel',
  'ChannelError',
  'ClosedError',
  'ConfigError',
  'ConnectionError',
  'ConnectionLostError',
  'ConsumerCancelledError',
  'CredentialsError',
  'ConsumerStream',
  'EncodeError',
  'HeartbeatTimeoutError',
  'MessageTooLargeError',
  'NackError',
  'ProtocolError',
  'RecoverableChannel',
  'ReplyCode',
  'SetupError',
  'TimeoutError',
  'UnroutableError',
  'UnsupportedError',
  'VhostError',
];

const AMQP_TYPES = [
  'BackoffOptions',
  'ChannelEvents',
  'ChannelPoolOptions',
  'ConnectOptions',
  'ConnectionEvents',
  'ConnectionOptionsInput',
  'ConsumeOptions',
  'Consumer',
  'Credentials',
  'CredentialsProvider',
  'DeclareCallOptions',
  'DecodedProperties',
  'Endpoint',
  'ExchangeOptions',
  'ExchangeSettings',
  'FailedMethod',
  'FieldTable',
  'FieldValue',
  'Logger',
  'Message',
  'MessageFields',
  'MessageHandler',
  'MessageProperties',
  'OperationOptions',
  'OversizedMessage',
  'PublishBufferOptions',
  'PublishOptions',
  'QueueDeclareResult',
  'QueueOptions',
  'QueueOverflow',
  'QueueSettings',
  'QueueShorthands',
  'QueueType',
  'ReconnectOptions',
  'RecoverableChannelEvents',
  'ResolvedConnectionOptions',
  'ReturnedMessage',
  'SaslMechanism',
  'SessionConsumeOptions',
  'SessionConsumer',
  'SessionEvents',
  'SessionHandler',
  'SessionMessage',
  'SessionOptions',
  'SessionRole',
  'SetupFailure',
  'StreamOffset',
  'StreamOffsetStore',
  'TlsOptions',
];

/** The Nest layer: only in the package root, which is the AMQP client's names plus these. */
const NEST_VALUES = [
  'AmqpAsyncApi',
  'AmqpBatchContext',
  'VALIDATION_FAILED',
  'generateAsyncApi',
  'AmqpClient',
  'AmqpContext',
  'AmqpController',
  'AmqpEventPattern',
  'AmqpHealthCheckError',
  'AmqpHealthIndicator',
  'AmqpMessagePattern',
  'AmqpModule',
  'AmqpPublisher',
  'AmqpRecord',
  'AmqpRecordBuilder',
  'AmqpRpcError',
  'AmqpServer',
  'AmqpStartupError',
  'DefaultDeserializer',
  'DefaultSerializer',
  'DeserializationError',
  'DirectReplyToUnavailableError',
  'InjectAmqpClient',
  'InjectAmqpHealthIndicator',
  'InjectAmqpServer',
  'InjectAmqpSession',
  'InjectPublisher',
  'TopologyConflictError',
  'TopologyError',
  'TopologyMismatchError',
  'WARREN_TRANSPORT',
  'WarrenHeaders',
  'getAmqpClientToken',
  'getAmqpHealthIndicatorToken',
  'getAmqpServerToken',
  'getAmqpSessionToken',
  'getPublisherToken',
  'parkingLotName',
  'retryQueueName',
];

const NEST_TYPES = [
  'AckMode',
  'AmqpChannelBinding',
  'AmqpOperationBinding',
  'AsyncApiChannel',
  'AsyncApiDocument',
  'AsyncApiInfo',
  'AsyncApiMessage',
  'AsyncApiOperation',
  'AsyncApiOperationReply',
  'AsyncApiReference',
  'AsyncApiServer',
  'GenerateAsyncApiOptions',
  'HandlerSchema',
  'JsonSchema',
  'JsonValue',
  'PayloadIssue',
  'StandardSchemaIssue',
  'StandardSchemaProps',
  'StandardSchemaResult',
  'StandardSchemaV1',
  'WarrenBinding',
  'AmqpSessionStatus',
  'BatchOptions',
  'AmqpClientOptions',
  'AmqpClientStatus',
  'AmqpConnectionOptions',
  'AmqpDeserializer',
  'AmqpFeatureOptions',
  'AmqpHandlerOptions',
  'AmqpHealthIndicatorResult',
  'AmqpModuleAsyncOptions',
  'AmqpModuleOptions',
  'AmqpModuleRootOptions',
  'AmqpPublisherDefinition',
  'AmqpRecordOptions',
  'AmqpSerializer',
  'AmqpServerOptions',
  'AmqpServerStatus',
  'ExchangeBindingDefinition',
  'ExchangeDefinition',
  'ExchangeType',
  'HandlerBinding',
  'PublishCallOptions',
  'QueueBindingDefinition',
  'QueueDefinition',
  'ReplyMode',
  'RetryBackoff',
  'RetryPolicy',
  'RpcErrorEnvelope',
  'SerializedBody',
  'TopologyDefinition',
  'TopologyEntity',
];

const ROOT = path.resolve(__dirname, '../..');
const ENTRY_POINTS = {
  'nestjs-warren': path.join(ROOT, 'lib/index.ts'),
  'nestjs-warren/amqp': path.join(ROOT, 'lib/amqp/index.ts'),
};

const sorted = (names: Iterable<string>): string[] => [...names].sort();

/** The program `npm run build` compiles (tsconfig.build.json: declarations, `stripInternal`). */
function buildProgram(): ts.Program {
  const config = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'tsconfig.build.json'), undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!config) throw new Error('tsconfig.build.json did not parse');
  return ts.createProgram({ rootNames: config.fileNames, options: config.options });
}

/** Every name a module exports, types included. */
function exportedNames(program: ts.Program, file: string): string[] {
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  const symbol = source && checker.getSymbolAtLocation(source);
  if (!symbol) throw new Error(`no module symbol for ${file}`);
  return sorted(checker.getExportsOfModule(symbol).map((s) => s.name));
}

/** The `.d.ts` files `npm run build` would write, by path, without writing them. */
function emitDeclarations(program: ts.Program): Map<string, string> {
  const files = new Map<string, string>();
  const result = program.emit(undefined, (fileName, text) => files.set(path.resolve(fileName), text), undefined, true);
  const errors = result.diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  if (errors.length > 0) throw new Error(`declaration emit failed:\n${errors.join('\n')}`);
  return files;
}

/**
 * Type-checks `code` as a user's file importing the package by its name (resolved through package.json `exports`
 * as `nodenext` resolution does) against the emitted declarations, library files checked too.
 */
function compileAsConsumer(declarations: Map<string, string>, code: string): string[] {
  const consumer = path.join(ROOT, 'test', '__consumer__.ts');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    types: ['node'],
    experimentalDecorators: true,
  };
  const host = ts.createCompilerHost(options);
  const virtual = (f: string): string | undefined =>
    path.resolve(f) === consumer ? code : declarations.get(path.resolve(f));
  const { fileExists, readFile, getSourceFile, directoryExists } = host;
  const distDir = path.join(ROOT, 'dist');
  host.fileExists = (f) => virtual(f) !== undefined || (!path.resolve(f).startsWith(distDir) && fileExists(f));
  host.readFile = (f) => virtual(f) ?? readFile(f);
  host.directoryExists = (d) => path.resolve(d).startsWith(distDir) || (directoryExists?.(d) ?? true);
  host.getSourceFile = (f, languageVersion, ...rest) => {
    const text = virtual(f);
    return text === undefined
      ? getSourceFile(f, languageVersion, ...rest)
      : ts.createSourceFile(f, text, languageVersion);
  };
  const program = ts.createProgram({ rootNames: [consumer], options, host });
  // Ours only (the consumer and the declarations it reaches): checking all of @nestjs's and Node's would triple the time.
  const ours = program.getSourceFiles().filter((f) => virtual(f.fileName) !== undefined);
  return [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...ours.flatMap((f) => [...program.getSyntacticDiagnostics(f), ...program.getSemanticDiagnostics(f)]),
  ].map(
    (d) =>
      `${d.file ? path.relative(ROOT, d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`,
  );
}

describe('the public surface', () => {
  let program: ts.Program;

  beforeAll(() => {
    program = buildProgram();
  });

  it('nestjs-warren/amqp exports exactly the reviewed runtime values', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    expect(sorted(Object.keys(require('../../lib/amqp') as object))).toEqual(sorted(AMQP_VALUES));
  });

  it('nestjs-warren exports exactly the reviewed runtime values: the AMQP client and the Nest layer', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    expect(sorted(Object.keys(require('../../lib') as object))).toEqual(sorted([...AMQP_VALUES, ...NEST_VALUES]));
  });

  it('each entry point exports exactly the reviewed types besides its values', () => {
    expect(exportedNames(program, ENTRY_POINTS['nestjs-warren/amqp'])).toEqual(sorted([...AMQP_VALUES, ...AMQP_TYPES]));
    expect(exportedNames(program, ENTRY_POINTS['nestjs-warren'])).toEqual(
      sorted([...AMQP_VALUES, ...AMQP_TYPES, ...NEST_VALUES, ...NEST_TYPES]),
    );
  });

  describe('the published declarations (npm run build)', () => {
    let declarations: Map<string, string>;

    beforeAll(() => {
      declarations = emitDeclarations(program);
    });

    it('carry no @internal member: every tag strips its declaration', () => {
      const tagged = [...declarations].filter(([, text]) => text.includes('@internal')).map(([f]) => f);
      expect(tagged).toEqual([]);
      const connection = declarations.get(path.join(ROOT, 'dist/amqp/connection.d.ts'));
      const channel = declarations.get(path.join(ROOT, 'dist/amqp/channel.d.ts'));
      expect(connection).toContain('class AmqpConnection');
      expect(connection).not.toMatch(/\bencoder:/);
      expect(channel).toContain('class Channel');
      expect(channel).not.toMatch(/\bonFrame\(/);
    });

    it('type-check for a user, and hide what is internal', () => {
      const code = `
        import { AmqpConnection, AmqpModule, AmqpServer, AmqpContext, type AmqpModuleOptions } from 'nestjs-warren';
        import { AmqpSession, type Channel, type SessionOptions } from 'nestjs-warren/amqp';
        // @ts-expect-error internal: not exported
        import { toErrorEnvelope } from 'nestjs-warren';
        // @ts-expect-error internal: not exported
        import { backoffDelay } from 'nestjs-warren/amqp';

        export async function use(ctx: AmqpContext, channel: Channel): Promise<void> {
          const sessionOptions: SessionOptions = { url: 'amqp://127.0.0.1', reconnect: { maxDelayMs: 500 } };
          const options: AmqpModuleOptions = { ...sessionOptions, client: { exchange: 'orders' } };
          AmqpModule.forRoot(options);
          new AmqpServer({ session: new AmqpSession(sessionOptions) });
          const connection = await AmqpConnection.connect('amqp://127.0.0.1');
          await channel.publish('', 'q', Buffer.from('x'));
          ctx.ack();
          // @ts-expect-error internal: stripped from the published types
          void connection.encoder;
          // @ts-expect-error internal: stripped from the published types
          channel.onFrame(1, Buffer.alloc(0), 0, 0);
          void toErrorEnvelope;
          void backoffDelay;
        }
      `;
      expect(compileAsConsumer(declarations, code)).toEqual([]);
    });
  });
});
