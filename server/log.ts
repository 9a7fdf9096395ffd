// Structured JSON logs (pino). Secrets never go in: tokens, passwords and
// Authorization headers are redacted by path as a last line of defence.
import pino from "pino";

export type Logger = pino.Logger;

export function createLogger(opts: { level?: string; name: string }): Logger {
  return pino({
    name: opts.name,
    level: opts.level ?? "info",
    redact: {
      paths: ["token", "password", "*.token", "*.password", "*.signingSecret", "headers.authorization", "*.headers.authorization", "*.headers.Authorization"],
      censor: "[redacted]",
    },
  });
}
