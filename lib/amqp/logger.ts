/** Where the client reports what it cannot throw to a caller. Nest's Logger fits this shape. */
export interface Logger {
  debug?(message: string): void;
  log?(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Default: warnings and errors to the console, debug silent. */
export const consoleLogger: Logger = {
  warn: (m) => console.warn(`[warren] ${m}`),
  error: (m) => console.error(`[warren] ${m}`),
};
