import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { testClient } from "../helpers/engine";
import { commandInEveryState } from "../helpers/fixtures";
import { startPruner } from "../../server/worker/pruner";
import { createLogger } from "../../server/log";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => t?.drop());

it("prunes finished commands older than the retention, with their attempts; keeps exceptions, work in flight and recent history", async () => {
  const { clientId } = await testClient(t.db);
  const old = await commandInEveryState(t.db, clientId, "old");
  const recent = await commandInEveryState(t.db, clientId, "recent");
  await t.db.pool.query(`UPDATE commands SET created_at = now() - interval '40 days' WHERE id = ANY($1::uuid[])`, [Object.values(old)]);
  await t.db.pool.query(`INSERT INTO attempts (command_id, number, kind, outcome, finished_at, worker) VALUES ($1, 1, 'execute', 'success', now(), 'w')`, [old.succeeded]);
  const pruner = startPruner({ db: t.db, log: createLogger({ name: "t", level: "silent" }), days: 30, batch: 2, everyMs: 3_600_000 });
  await pruner.runOnce();
  await pruner.stop();
  const { rows } = await t.db.pool.query<{ id: string }>(`SELECT id FROM commands`);
  const left = new Set(rows.map((r) => r.id));
  for (const s of ["succeeded", "failed", "compensated", "cancelled"] as const) expect(left.has(old[s]), `old ${s}`).toBe(false);
  for (const s of ["pending", "running", "awaiting", "retrying", "exception", "compensating"] as const) expect(left.has(old[s]), `old ${s}`).toBe(true);
  for (const id of Object.values(recent)) expect(left.has(id)).toBe(true);
  expect((await t.db.pool.query(`SELECT count(*)::int AS n FROM attempts WHERE command_id = $1`, [old.succeeded])).rows[0].n).toBe(0);
});
