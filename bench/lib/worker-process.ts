import { spawn } from 'node:child_process';
import { REPO_ROOT } from './build';

/**
 * Runs one compiled benchmark worker on plain node with `task` as its JSON argument and resolves with the JSON it
 * prints on its last `<resultPrefix>...` line — or `{ error }` (the last stderr lines) when it times out or dies, so
 * a failing library is a row with its error instead of a crashed run.
 */
export function runWorkerProcess<R extends object>(
  script: string,
  task: object,
  timeoutMs: number,
  resultPrefix: string,
): Promise<R | { error: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', script, JSON.stringify(task)], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout
        .split('\n')
        .reverse()
        .find((l) => l.startsWith(resultPrefix));
      if (line && !timedOut) {
        resolve(JSON.parse(line.slice(resultPrefix.length)) as R);
        return;
      }
      const lastErr = stderr.trim().split('\n').filter(Boolean).slice(-3).join(' / ');
      const why = timedOut ? `timed out after ${timeoutMs} ms` : `exited with ${signal ?? code}`;
      resolve({ error: `worker ${why}${lastErr ? `: ${lastErr}` : ''}` });
    });
  });
}
