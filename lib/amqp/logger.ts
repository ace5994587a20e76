/** Where the client reports what it cannot throw to a caller. Nest's Logger fits this shape. */
export interface Logger {
  /** Details of routine events (dropped late acks, reconnect attempts); optional. */
  debug?(message: string): void;
  /** Notable events (a Nest server's consuming summary); optional. */
  log?(message: string): void;
  /** Something went wrong and is being handled (a reconnect, a retried setup, a skipped oversized message). */
  warn(message: string): void;
  /** Something failed that the caller could not be told (a consumer callback that threw, a protocol error). */
  error(message: string): void;
}

/** Default: warnings and errors to the console, debug silent. */
export const consoleLogger: Logger = {
  warn: (m) => console.warn(`[warren] ${m}`),
  error: (m) => console.error(`[warren] ${m}`),
};
