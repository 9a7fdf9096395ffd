// A schedule every second with three workers (each its own pool and listener,
// as separate processes would have): exactly one command per tick, none
// twice, no tick left out, each run to succeeded; the ticks counted by the
// workers' metrics add up to the commands, as /api/metrics sums them.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";
import { startBackend, type Backend } from "../helpers/backend";
import { startTestWorker, waitUntil, type TestWorker } from "../helpers/engine";
import { registry } from "../../server/command-types";
import { createDb, type Db } from "../../server/db/client";
import { createWorkerMetrics, startMetricsPush } from "../../server/worker/metrics";
import { createMetrics, metricsResponse } from "../../server/metrics";
import { createLogger } from "../../server/log";
import { SCHEDULES_CLIENT_ID } from "../../server/commands/schedule-client";

let t: TestDb;
let api: ApiServer;
let backend: Backend;
const pools: Db[] = [];
const workers: TestWorker[] = [];

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  backend = await startBackend();
});
afterAll(async () => {
  for (const w of workers) await w.close();
  for (const p of pools) await p.close();
  await api?.close();
  await backend?.close();
  await t?.drop();
});

it("three workers submit exactly one command per second for a 6-field cron, each tick once, none left out", async () => {
  const admin = client(api.url, (await newToken(t.db, "admin")).token);
  const metrics = [0, 1, 2].map(() => createWorkerMetrics());
  for (const [i, m] of metrics.entries()) {
    const db = createDb(t.url, { max: 8 });
    pools.push(db);
    workers.push(await startTestWorker(db, t.url, registry, { metrics: m, workerId: `sched-${i}` }));
  }
  const created = await admin.mutation("schedules.create", {
    name: "every second",
    cron: "* * * * * *",
    command: { type: "http", payload: { url: `${backend.url}/do/tick` } },
  });
  expect(created.status, JSON.stringify(created.error)).toBe(200);
  const id = created.data.id as string;
  const ticks = async () =>
    (
      await t.db.pool.query<{ key: string; id: string; client_id: string; status: string }>(
        `SELECT idempotency_key AS key, id, client_id, status FROM commands WHERE idempotency_key LIKE $1 ORDER BY idempotency_key`,
        [`schedule:${id}:%`],
      )
    ).rows;
  await waitUntil(async () => (await ticks()).length >= 15, "15 ticks", 40_000);
  await admin.mutation("schedules.update", { id, enabled: false });
  // The update waits for a round that holds the schedule: once it is done, no tick comes after.
  const rows = await ticks();
  const at = rows.map((r) => Date.parse(r.key.slice(`schedule:${id}:`.length)));
  expect(new Set(rows.map((r) => r.key)).size).toBe(rows.length);
  for (const [i, ms] of at.entries()) {
    expect(ms % 1000, rows[i]!.key).toBe(0); // a tick: a whole second
    if (i > 0) expect(ms - at[i - 1]!, `after ${rows[i - 1]!.key}`).toBe(1000); // consecutive: no gap, no repeat
  }
  for (const r of rows) expect(r.client_id).toBe(SCHEDULES_CLIENT_ID);
  // Ordinary commands: run by the workers to succeeded.
  await waitUntil(
    async () => (await ticks()).every((r) => r.status === "succeeded"),
    "every tick's command to succeed",
  );

  // Counted once per tick across the workers, none missed; summed by /api/metrics.
  const log = createLogger({ name: "test", level: "silent" });
  for (const [i, m] of metrics.entries()) {
    const push = startMetricsPush({ db: t.db, log, workerId: `sched-${i}`, metrics: m, everyMs: 60_000 });
    await push.stop();
  }
  const text = await (await metricsResponse(createMetrics(t.db), undefined, null)).text();
  expect(text).toContain("# TYPE conveyor_schedule_ticks_total counter");
  expect(Number(/^conveyor_schedule_ticks_total\{outcome="submitted"\} (\S+)$/m.exec(text)?.[1])).toBe(rows.length);
  expect(text).not.toMatch(/^conveyor_schedule_ticks_total\{outcome="missed"\} [1-9]/m);
}, 90_000);

it("a worker learns of a new schedule at once (NOTIFY) and wakes for each tick (a timer), not at its poll", async () => {
  const admin = client(api.url, (await newToken(t.db, "admin")).token);
  for (const w of workers.splice(0)) await w.close();
  const db = createDb(t.url, { max: 8 });
  pools.push(db);
  // Asleep for a minute when nothing is due: only a notification or the timer can wake it sooner.
  workers.push(await startTestWorker(db, t.url, registry, { schedulerPollMs: 60_000 }));
  const created = await admin.mutation("schedules.create", {
    name: "woken",
    cron: "* * * * * *",
    command: { type: "http", payload: { url: `${backend.url}/do/woken` } },
  });
  const id = created.data.id as string;
  const n = async () =>
    (
      await t.db.pool.query(`SELECT count(*)::int AS n FROM commands WHERE idempotency_key LIKE $1`, [
        `schedule:${id}:%`,
      ])
    ).rows[0].n as number;
  await waitUntil(async () => (await n()) >= 3, "three ticks within seconds", 8_000);
  await admin.mutation("schedules.update", { id, enabled: false });
}, 30_000);
