// Structured JSON logs (pino). Secrets never go in: tokens, passwords and
// Authorization headers are redacted by path as a last line of defence.
import pino from "pino";

export type Logger = pino.Logger;

export function createLogger(opts: { level?: string; name: string }): Logger {
  return pino({
    name: opts.name,
    level: opts.level ?? "info",
    redact: {
      paths: [
        "token",
        "password",
        "*.token",
        "*.password",
        "*.signingSecret",
        "headers.authorization",
        "*.headers.authorization",
        "*.headers.Authorization",
      ],
      censor: "[redacted]",
    },
  });
}

/** A URL as it may appear in logs: no credentials, no query string (webhook URLs often carry tokens there). */
export function loggableUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? "?…" : ""}`;
  } catch {
    return "(not a URL)";
  }
}
