// The web process's singletons, built once from the validated environment.
import { env, oidcEnv } from "./env";
import { createDb, type Db } from "./db/client";
import { registry } from "./command-types";
import { resolveSecretKey } from "./db/settings";
import { createLogger } from "./log";
import { createGroupInserter } from "./commands/group-insert";
import { createHostListCheck } from "./outbound/url-guard";
import { startListener } from "./db/listener";
import { createRateLimiter } from "./api/rate-limit";
import { TokenCache, TOKENS_CHANNEL } from "./auth/tokens";
import type { ApiDeps } from "./api/deps";
import { createOidcSignIn, type OidcSignIn } from "./auth/oidc";

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
  const intake = {
    registry,
    insert: createGroupInserter(db, { maxInFlight: Math.max(2, Math.floor(e.DB_POOL_SIZE / 2)) }),
    hostCheck: createHostListCheck(e.HTTP_ALLOWED_HOSTS),
  };
  const listener = startListener(e.DATABASE_LISTEN_URL ?? e.DATABASE_URL, {
    applicationName: "conveyor-web-listen",
    log: (msg, err) => log.warn({ err }, msg),
  });
  const tokenCache = new TokenCache(() => listener.connected);
  listener.on(TOKENS_CHANNEL, () => tokenCache.clear());
  listener.onConnect(() => tokenCache.clear());
  deps = {
    db,
    registry,
    intake,
    secretKey,
    maxBodyBytes: e.MAX_BODY_BYTES,
    log,
    tokenCache,
    publicUrl: e.PUBLIC_URL,
    emailConfigured: !!e.SMTP_URL,
    retentionDays: e.RETENTION_DAYS,
    intakeLimiter: e.INTAKE_RATE_LIMIT > 0 ? createRateLimiter(e.INTAKE_RATE_LIMIT) : undefined,
  };
  return deps;
}

let sso: OidcSignIn | null | undefined;

/** Single sign-on's handlers, or null when the OIDC_* variables are not set. */
export function oidcSignIn(): OidcSignIn | null {
  if (sso !== undefined) return sso;
  const e = env();
  const settings = oidcEnv(e);
  if (!settings) return (sso = null);
  const d = appDeps();
  sso = createOidcSignIn({
    settings,
    db: d.db,
    secretKey: d.secretKey,
    secure: e.PUBLIC_URL.startsWith("https:"),
    log: d.log,
  });
  return sso;
}
