// Real worker processes (npm run worker) competing over one PostgreSQL, being
// killed with SIGKILL, stopped with SIGTERM, and living through a PostgreSQL restart.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createTestDb, type TestDb } from "../helpers/db";
import { startBackend, type Backend } from "../helpers/backend";
import { runWorker, freePort, type Proc } from "../helpers/proc";
import { testClient, waitUntil } from "../helpers/engine";
import { directIntake, submitBatch } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { createDb, type Db } from "../../server/db/client";
import { startEmbedded } from "../../server/db/embedded";
import { migrate } from "../../server/db/migrate";
import { newToken } from "../helpers/api";

const workerEnv = (url: string, extra: Record<string, string> = {}) => ({
  DATABASE_URL: url,
  HTTP_ALLOWED_HOSTS: "127.0.0.1",
  WORKER_CONCURRENCY: "10",
  WORKER_LEASE_MS: "2000",
  WORKER_POLL_MS: "200",
  LOG_LEVEL: "info",
  ...extra,
});

async function startWorkers(n: number, env: Record<string, string>): Promise<Proc[]> {
  const ws = Array.from({ length: n }, () => runWorker(env));
  await Promise.all(ws.map((w) => w.waitFor(/worker started/)));
  return ws;
}
const stopAll = async (ws: Proc[]) => {
  for (const w of ws) if (w.child.exitCode === null) w.child.kill("SIGTERM");
  await Promise.all(ws.map((w) => w.exited));
};

async function submitMany(
  db: Db,
  clientId: string,
  backend: Backend,
  n: number,
  key: string,
  extra: Record<string, unknown> = {},
) {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 1000) {
    const items = Array.from({ length: Math.min(1000, n - i) }, () => ({
      type: "http",
      payload: {
        url: `${backend.url}/do/${key}`,
        statusUrl: `${backend.url}/status/{commandId}`,
        timeoutMs: 3000,
        ...extra,
      },
      retry: { backoffMs: 50, maxBackoffMs: 200 },
    }));
    const receipts = await submitBatch(directIntake(db, registry), clientId, items);
    for (const r of receipts) if (r.ok) ids.push(r.id);
  }
  return ids;
}

async function countByStatus(db: Db, ids: string[]) {
  const { rows } = await db.pool.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM commands WHERE id = ANY($1::uuid[]) GROUP BY status`,
    [ids],
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}
const allIn = (db: Db, ids: string[], states: string[]) => async () => {
  const c = await countByStatus(db, ids);
  return states.reduce((n, s) => n + (c[s] ?? 0), 0) === ids.length;
};
const duplicates = (xs: string[]) => xs.filter((x, i) => xs.indexOf(x) !== i);

let t: TestDb;
let backend: Backend;
let clientId: string;

beforeAll(async () => {
  t = await createTestDb();
  backend = await startBackend();
  ({ clientId } = await testClient(t.db));
});
afterAll(async () => {
  await backend?.close();
  await t?.drop();
});

describe("worker processes", () => {
  it("compete for thousands of commands: none run twice at once, none lost, every one applied once", async () => {
    const ids = await submitMany(t.db, clientId, backend, 3000, "fleet");
    const ws = await startWorkers(3, workerEnv(t.url));
    try {
      await waitUntil(allIn(t.db, ids, ["succeeded"]), "all 3000 commands to succeed", 120_000);
    } finally {
      await stopAll(ws);
    }
    const mine = new Set(ids);
    const applied = backend.applied.filter((a) => mine.has(a));
    expect(applied).toHaveLength(3000);
    expect(duplicates(applied)).toEqual([]);
    expect(backend.maxInFlightPerCommand()).toBe(1);
    // the work was shared
    const { rows } = await t.db.pool.query(
      `SELECT count(DISTINCT worker)::int AS n FROM attempts WHERE command_id = ANY($1::uuid[])`,
      [ids],
    );
    expect(rows[0].n).toBe(3);
  });

  it("kill -9 mid-attempt: the commands are taken back after the lease, reconciled, and applied exactly once", async () => {
    backend.plan(
      "crash",
      Array.from({ length: 60 }, () => ({ kind: "slow" as const, ms: 800 })),
    );
    const [victim] = await startWorkers(1, workerEnv(t.url));
    const ids = await submitMany(t.db, clientId, backend, 60, "crash");
    await waitUntil(() => backend.requests.filter((r) => r.path === "/do/crash").length >= 10, "attempts in flight");
    victim!.child.kill("SIGKILL");
    await victim!.exited;
    const ws = await startWorkers(1, workerEnv(t.url));
    try {
      await waitUntil(allIn(t.db, ids, ["succeeded"]), "all to succeed after the crash", 60_000);
    } finally {
      await stopAll(ws);
    }
    const mine = new Set(ids);
    expect(duplicates(backend.applied.filter((a) => mine.has(a)))).toEqual([]);
    expect(backend.applied.filter((a) => mine.has(a))).toHaveLength(60);
    const { rows } = await t.db.pool.query(
      `SELECT count(*)::int AS n FROM attempts WHERE command_id = ANY($1::uuid[]) AND error LIKE 'lease expired%'`,
      [ids],
    );
    expect(rows[0].n).toBeGreaterThanOrEqual(10);
    const reconciled = await t.db.pool.query(
      `SELECT count(*)::int AS n FROM attempts WHERE command_id = ANY($1::uuid[]) AND kind = 'reconcile' AND outcome = 'success'`,
      [ids],
    );
    expect(reconciled.rows[0].n).toBeGreaterThanOrEqual(1);
  });

  it("SIGTERM lets running attempts finish, then exits", async () => {
    backend.plan(
      "graceful",
      Array.from({ length: 5 }, () => ({ kind: "slow" as const, ms: 600 })),
    );
    const [w] = await startWorkers(1, workerEnv(t.url, { WORKER_GRACE_MS: "10000" }));
    const ids = await submitMany(t.db, clientId, backend, 5, "graceful");
    await waitUntil(() => backend.requests.filter((r) => r.path === "/do/graceful").length === 5, "5 in flight");
    w!.child.kill("SIGTERM");
    expect((await w!.exited).code).toBe(0);
    expect(await countByStatus(t.db, ids)).toEqual({ succeeded: 5 });
  });

  it("SIGTERM past the grace period hands the rest back for another worker to reconcile", async () => {
    backend.plan("handback", [{ kind: "hang" }, { kind: "hang" }]);
    const [w] = await startWorkers(1, workerEnv(t.url, { WORKER_GRACE_MS: "300" }));
    const ids = await submitMany(t.db, clientId, backend, 2, "handback", { timeoutMs: 60_000 });
    await waitUntil(() => backend.requests.filter((r) => r.path === "/do/handback").length === 2, "2 in flight");
    w!.child.kill("SIGTERM");
    expect((await w!.exited).code).toBe(0);
    const { rows } = await t.db.pool.query(
      `SELECT status, needs_reconcile, tries, lease_id FROM commands WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    expect(rows).toEqual([
      { status: "retrying", needs_reconcile: true, tries: 0, lease_id: null },
      { status: "retrying", needs_reconcile: true, tries: 0, lease_id: null },
    ]);
  });
});

describe("PostgreSQL restarted mid-run", () => {
  it("workers reconnect by themselves and every command ends terminal, applied once", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "conveyor-restart-"));
    const port = await freePort();
    let pg = await startEmbedded({ dir, port, settings: { fsync: "off" } });
    await migrate(pg.url);
    const db = createDb(pg.url, { max: 4 });
    const ws: Proc[] = [];
    try {
      const client = await newToken(db, "client");
      backend.plan(
        "restart",
        Array.from({ length: 400 }, () => ({ kind: "slow" as const, ms: 20 })),
      );
      ws.push(...(await startWorkers(2, workerEnv(pg.url))));
      const ids = await submitMany(db, client.id, backend, 400, "restart");
      await waitUntil(async () => ((await countByStatus(db, ids)).succeeded ?? 0) >= 50, "some progress");
      await db.close();
      await pg.stop();
      pg = await startEmbedded({ dir, port, settings: { fsync: "off" } });
      const db2 = createDb(pg.url, { max: 4 });
      try {
        await waitUntil(allIn(db2, ids, ["succeeded"]), "all to succeed after the restart", 120_000);
        const mine = new Set(ids);
        expect(duplicates(backend.applied.filter((a) => mine.has(a)))).toEqual([]);
      } finally {
        await db2.close();
      }
      for (const w of ws) expect(w.child.exitCode).toBeNull(); // still running: they reconnected
    } finally {
      await stopAll(ws);
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
