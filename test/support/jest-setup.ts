import { runInThisContext } from 'node:vm';

/**
 * Fails the suite on a `MaxListenersExceededWarning` or an unhandled rejection: both are leaks or lost
 * errors that a passing test would otherwise hide. Jest gives each test file its own copy of `process`,
 * so listeners on it hear nothing: the real one (where Node emits both events) is reached through the
 * worker's own context. Listeners are removed after the file, so files sharing a worker do not pile up.
 */
const realProcess = runInThisContext('process') as NodeJS.Process;
const problems: string[] = [];

const onWarning = (warning: Error): void => {
  if (warning.name === 'MaxListenersExceededWarning') {
    problems.push(`MaxListenersExceededWarning (a listener leak): ${warning.message}\n${warning.stack ?? ''}`);
  }
};
const onUnhandledRejection = (reason: unknown): void => {
  const text = reason instanceof Error ? (reason.stack ?? reason.message) : String(reason);
  problems.push(`Unhandled rejection (a promise nobody awaited rejected): ${text}`);
};

realProcess.on('warning', onWarning);
realProcess.on('unhandledRejection', onUnhandledRejection);

function failOnProblems(when: string): void {
  if (problems.length === 0) return;
  const found = problems.splice(0);
  throw new Error(`${found.length} process-level problem(s) ${when}:\n\n${found.join('\n\n')}`);
}

afterEach(() => failOnProblems('during this test'));
afterAll(async () => {
  // A rejection or warning is reported on a later turn of the loop than the code that caused it.
  await new Promise<void>((resolve) => setImmediate(resolve));
  realProcess.off('warning', onWarning);
  realProcess.off('unhandledRejection', onUnhandledRejection);
  failOnProblems('after the last test of this file');
});
