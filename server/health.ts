import { ping, type Db } from "./db/client";
import { listMigrations } from "./db/migrate";
import { appliedMigrations, claimDryRun } from "./db/readiness";

/** GET /api/health: 200 when the database answers, 503 when it does not. */
export async function healthResponse(db: Db): Promise<Response> {
  const ok = await ping(db);
  return Response.json(
    { status: ok ? "ok" : "unavailable", database: ok ? "up" : "down" },
    { status: ok ? 200 : 503, headers: { "cache-control": "no-store" } },
  );
}

/**
 * GET /api/ready: ready to take traffic — the database answers, every
 * migration shipped with this build is applied, and the claim query runs.
 */
export async function readyResponse(db: Db, migrationsDir: string): Promise<Response> {
  const checks: Record<string, string> = {};
  let ok = true;
  const fail = (k: string, why: string) => ((checks[k] = why), (ok = false));
  if (!(await ping(db))) fail("database", "does not answer");
  else {
    checks.database = "ok";
    try {
      const shipped = (await listMigrations(migrationsDir)).map((m) => m.name);
      const applied = new Set(await appliedMigrations(db));
      const missing = shipped.filter((m) => !applied.has(m));
      if (missing.length) fail("migrations", `not applied: ${missing.join(", ")} (run npm run migrate)`);
      else checks.migrations = "ok";
    } catch (err) {
      fail("migrations", (err as Error).message);
    }
    try {
      await claimDryRun(db);
      checks.claim = "ok";
    } catch (err) {
      fail("claim", (err as Error).message);
    }
  }
  return Response.json(
    { status: ok ? "ready" : "not ready", checks },
    { status: ok ? 200 : 503, headers: { "cache-control": "no-store" } },
  );
}
