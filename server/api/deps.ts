// What the API needs from the process: built once in server/app.ts (or by a test).
import type { Db } from "../db/client";
import type { Registry } from "../handlers/registry";
import type { Logger } from "../log";

export type ApiDeps = {
  db: Db;
  registry: Registry;
  /** The key that encrypts stored secrets (resolved once, lazily). */
  secretKey: () => Promise<Buffer>;
  maxBodyBytes: number;
  log: Logger;
};
