import type * as OtelApiModule from '@opentelemetry/api';

/** The `@opentelemetry/api` module, as the application has it. */
export type OtelApi = typeof OtelApiModule;

/** undefined: not looked up yet; null: the application has no `@opentelemetry/api`. */
let loaded: OtelApi | null | undefined;

/**
 * `@opentelemetry/api` if the application has it installed, else null. An optional peer dependency: looked up once, on
 * first use (not when Warren is imported), and a missing or broken package only means "no telemetry".
 */
export function loadOtelApi(): OtelApi | null {
  if (loaded === undefined) {
    try {
      // A guarded require is the only way to use a package that may not be installed.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require('@opentelemetry/api') as OtelApi;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}
