// What the API needs from the process: built once in server/app.ts (or by a test).
import type { Db } from "../db/client";
import type { Registry } from "../command-types/registry";
import type { Logger } from "../log";
import type { IntakeDeps } from "../commands/submit";
import type { TokenCache } from "../auth/tokens";
import type { RateLimiter } from "./rate-limit";

export type ApiDeps = {
  db: Db;
  registry: Registry;
  intake: IntakeDeps;
  /** The key that encrypts stored secrets (resolved once, lazily). */
  secretKey: () => Promise<Buffer>;
  maxBodyBytes: number;
  /** Base of links in emails and of inbound result URLs. */
  publicUrl: string;
  /** Whether SMTP_URL is set (alert emails are sent), for the console to say so. */
  emailConfigured: boolean;
  /** How long finished commands are kept (RETENTION_DAYS), for the console to say. */
  retentionDays: number;
  /** Per-client intake limit (INTAKE_RATE_LIMIT); absent: unlimited. */
  intakeLimiter?: RateLimiter;
  /** Optional cache of authenticated tokens (see TokenCache). */
  tokenCache?: TokenCache;
  log: Logger;
};
