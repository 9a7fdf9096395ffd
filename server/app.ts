// The web process's singletons, built once from the validated environment.
import { env } from "./env";
import { createDb, type Db } from "./db/client";
import { registry } from "./handlers";
import { resolveSecretKey } from "./db/settings";
import { createLogger } from "./log";
import type { ApiDeps } from "./api/deps";

let deps: ApiDeps | undefined;

export function appDeps(): ApiDeps {
  if (deps) return deps;
  const e = env();
  if (!e.DATABASE_URL) throw new Error("DATABASE_URL is not set (npm start sets it for the embedded PostgreSQL)");
  const db: Db = createDb(e.DATABASE_URL, { max: e.DB_POOL_SIZE, applicationName: "conveyor-web" });
  const log = createLogger({ name: "web", level: e.LOG_LEVEL });
  let key: Promise<Buffer> | undefined;
  const secretKey = () =>
    (key ??= resolveSecretKey(db, e.SECRET_KEY).catch((err) => {
      key = undefined;
      throw err;
    }));
  deps = { db, registry, secretKey, maxBodyBytes: e.MAX_BODY_BYTES, log };
  return deps;
}
