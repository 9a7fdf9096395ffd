import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { runWorker } from "../helpers/proc";
import { healthResponse, readyResponse } from "../../server/health";
import { createDb } from "../../server/db/client";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => t?.drop());

describe("worker process", () => {
  it("starts, connects, and stops cleanly on SIGTERM", async () => {
    const w = runWorker({ DATABASE_URL: t.url, LOG_LEVEL: "info" });
    await w.waitFor(/worker started/);
    const listening = await t.db.pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'conveyor-worker%'`,
      [t.name],
    );
    expect(listening.rows[0].n).toBeGreaterThan(0);
    w.child.kill("SIGTERM");
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect(w.output()).toMatch(/worker stopped/);
  });

  it("refuses a bad environment with a message naming the variable", async () => {
    const w = runWorker({ DATABASE_URL: t.url, WORKER_CONCURRENCY: "lots" });
    expect((await w.exited).code).toBe(1);
    expect(w.output()).toMatch(/WORKER_CONCURRENCY: must be a whole number/);
  });

  it("runs compiled without tsx's naming helper, its stack traces pointing at the TypeScript sources", async () => {
    const w = runWorker({}, "test/fixtures/compiled-throw.ts");
    expect((await w.exited).code).toBe(1);
    expect(w.output()).toMatch(/thrown from the fixture: on purpose/);
    expect(w.output()).toContain(`(${path.resolve("test/fixtures/compiled-throw.ts")}:4:`);
    const dir = "node_modules/.cache/conveyor";
    const compiled = readdirSync(dir).filter((f) => /^compiled-throw-[0-9a-f]{16}\.mjs$/.test(f));
    expect(compiled.length).toBeGreaterThan(0);
    for (const f of compiled) expect(readFileSync(`${dir}/${f}`, "utf8")).not.toMatch(/__name\(/);
  });
});

describe("GET /api/ready", () => {
  it("is 200 when migrated and the claim query runs; 503 naming a migration that is missing", async () => {
    const ok = await readyResponse(t.db, path.resolve("prisma/migrations"));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ status: "ready", checks: { database: "ok", migrations: "ok", claim: "ok" } });
    await t.db.pool.query(
      `UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = '20261129030000_alerts'`,
    );
    const missing = await readyResponse(t.db, path.resolve("prisma/migrations"));
    expect(missing.status).toBe(503);
    expect(((await missing.json()) as { checks: { migrations: string } }).checks.migrations).toMatch(
      /not applied: 20261129030000_alerts/,
    );
    await t.db.pool.query(
      `UPDATE "_prisma_migrations" SET rolled_back_at = NULL WHERE migration_name = '20261129030000_alerts'`,
    );
  });
});

describe("GET /api/health", () => {
  it("is 200 when the database answers and 503 when it does not", async () => {
    const up = await healthResponse(t.db);
    expect(up.status).toBe(200);
    expect(await up.json()).toEqual({ status: "ok", database: "up" });
    const gone = createDb("postgresql://postgres:x@127.0.0.1:1/nowhere", { max: 1 });
    const down = await healthResponse(gone);
    expect(down.status).toBe(503);
    await gone.close();
  });
});
