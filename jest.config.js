// Four projects: pure unit tests (no broker), integration tests against the live broker
// (parallel, unique names), fault tests that kill connections or restart the broker, and tests on
// extra nodes (TLS, cluster, config) — the last two serially, in their own jest invocation.
/** Nest 12 ships ESM only: swc turns those packages into CommonJS for Jest's module loader. */
const esmPackages = [
  '@nestjs',
  'file-type',
  'strtok3',
  'token-types',
  'peek-readable',
  'uint8array-extras',
  '@tokenizer',
  'load-esm',
];
const transform = {
  '^.+\\.(t|j)sx?$': [
    '@swc/jest',
    {
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true },
        target: 'es2022',
      },
      module: { type: 'commonjs' },
    },
  ],
  '^.+\\.mjs$': ['@swc/jest', { module: { type: 'commonjs' } }],
};
const common = {
  transform,
  transformIgnorePatterns: [`/node_modules/(?!(${esmPackages.join('|')})/)`],
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
  // Any MaxListenersExceededWarning or unhandled rejection fails the test (file) it happens in.
  setupFilesAfterEnv: ['<rootDir>/test/support/jest-setup.ts'],
};
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.spec.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.spec.ts'] },
    { ...common, displayName: 'faults', testMatch: ['<rootDir>/test/faults/**/*.spec.ts'] },
    // Tests on extra RabbitMQ nodes started beside the default one (TLS, cluster, config): scripts/rabbitmq-node.sh.
    { ...common, displayName: 'nodes', testMatch: ['<rootDir>/test/nodes/**/*.spec.ts'] },
  ],
};
