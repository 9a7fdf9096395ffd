import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { testClient } from "../helpers/engine";
import { commandInEveryState, ruleSecrets } from "../helpers/fixtures";
import { startPruner } from "../../server/worker/pruner";
import { createLogger } from "../../server/log";
import { createUser } from "../../server/auth/users";
import { createRule } from "../../server/alerts/rules";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => t?.drop());

it("prunes finished commands older than the retention, with their attempts; keeps exceptions, work in flight and recent history", async () => {
  const { clientId } = await testClient(t.db);
  const old = await commandInEveryState(t.db, clientId, "old");
  const recent = await commandInEveryState(t.db, clientId, "recent");
  await t.db.pool.query(`UPDATE commands SET created_at = now() - interval '40 days' WHERE id = ANY($1::uuid[])`, [
    Object.values(old),
  ]);
  await t.db.pool.query(
    `INSERT INTO attempts (command_id, number, kind, outcome, finished_at, worker) VALUES ($1, 1, 'execute', 'success', now(), 'w')`,
    [old.succeeded],
  );
  const pruner = startPruner({
    db: t.db,
    log: createLogger({ name: "t", level: "silent" }),
    days: 30,
    batch: 2,
    everyMs: 3_600_000,
  });
  await pruner.runOnce();
  await pruner.stop();
  const { rows } = await t.db.pool.query<{ id: string }>(`SELECT id FROM commands`);
  const left = new Set(rows.map((r) => r.id));
  for (const s of ["succeeded", "failed", "compensated", "cancelled"] as const)
    expect(left.has(old[s]), `old ${s}`).toBe(false);
  for (const s of ["pending", "running", "awaiting", "retrying", "exception", "compensating"] as const)
    expect(left.has(old[s]), `old ${s}`).toBe(true);
  for (const id of Object.values(recent)) expect(left.has(id)).toBe(true);
  expect(
    (await t.db.pool.query(`SELECT count(*)::int AS n FROM attempts WHERE command_id = $1`, [old.succeeded])).rows[0].n,
  ).toBe(0);
});

it("also prunes expired sessions and alert history older than the retention whose emails are sent; keeps unsent emails and recent history", async () => {
  const user = await createUser(t.db, {
    email: `prune-${Date.now()}@example.com`,
    password: "correct horse battery staple",
    role: "viewer",
  });
  await t.db.pool.query(
    `INSERT INTO sessions (id, user_id, expires_at) VALUES ('expired', $1, now() - interval '1 minute'), ('live', $1, now() + interval '1 hour')`,
    [user.id],
  );
  const { id: ruleId } = await createRule(
    t.db,
    { name: "r", kind: "backlog", threshold: 1, recipients: ["a@example.com"] },
    "test",
    await ruleSecrets(t.db),
  );
  const event = async (daysAgo: number, sent: boolean) => {
    const { rows } = await t.db.pool.query<{ id: string }>(
      `INSERT INTO alert_events (rule_id, kind, at) VALUES ($1, 'firing', now() - make_interval(days => $2)) RETURNING id::text`,
      [ruleId, daysAgo],
    );
    await t.db.pool.query(
      `INSERT INTO alert_deliveries (event_id, recipient, subject, text_body, html_body, sent_at)
       VALUES ($1, 'a@example.com', 's', 't', 'h', CASE WHEN $2 THEN now() END)`,
      [rows[0]!.id, sent],
    );
    return rows[0]!.id;
  };
  const oldSent = await event(40, true);
  const oldUnsent = await event(40, false);
  const recent = await event(1, true);
  const pruner = startPruner({
    db: t.db,
    log: createLogger({ name: "t", level: "silent" }),
    days: 30,
    everyMs: 3_600_000,
  });
  await pruner.runOnce();
  await pruner.stop();
  expect(
    (await t.db.pool.query(`SELECT id FROM sessions WHERE user_id = $1 ORDER BY id`, [user.id])).rows.map((r) => r.id),
  ).toEqual(["live"]);
  const left = (await t.db.pool.query(`SELECT id::text FROM alert_events WHERE rule_id = $1`, [ruleId])).rows.map(
    (r) => r.id,
  );
  expect(left.sort()).toEqual([oldUnsent, recent].sort());
  expect(left).not.toContain(oldSent);
});

/** `n` succeeded commands made `ago` ago, as workers leave them (claimed, then finished: the table's triggers check each step). */
async function finishedCommands(clientId: string, n: number, ago: string) {
  await t.db.pool.query(
    `INSERT INTO commands (id, client_id, type, payload, created_at)
     SELECT gen_random_uuid(), $1, 'http', '{}', now() - $3::interval FROM generate_series(1, $2)`,
    [clientId, n, ago],
  );
  await t.db.pool.query(
    `UPDATE commands SET status = 'running', lease_id = gen_random_uuid(), locked_by = 'w', locked_until = now() + interval '1 hour',
            attempt_started_at = now(), state_changed_at = now(), updated_at = now()
     WHERE status = 'pending' AND client_id = $1`,
    [clientId],
  );
  await t.db.pool.query(
    `UPDATE commands SET status = 'succeeded', lease_id = NULL, locked_by = NULL, locked_until = NULL, finished_at = now(),
            state_changed_at = now(), updated_at = now(), attempt_count = 1, tries = 1
     WHERE status = 'running' AND client_id = $1`,
    [clientId],
  );
}

it("one run deletes the whole backlog, batch after batch (no ceiling per run to fall behind a steady intake), within its time budget; retention may be a fraction of a day", async () => {
  const { clientId } = await testClient(t.db);
  const count = async () =>
    (await t.db.pool.query(`SELECT count(*)::int AS n FROM commands WHERE client_id = $1`, [clientId])).rows[0].n;
  await finishedCommands(clientId, 2_500, "10 minutes");
  await finishedCommands(clientId, 40, "1 minute");
  const log = createLogger({ name: "t", level: "silent" });
  // a budget of 0: one batch, then the run ends (the next run goes on)
  const bounded = startPruner({ db: t.db, log, days: 5 / 1440, batch: 100, budgetMs: 0, everyMs: 3_600_000 });
  await bounded.runOnce();
  await bounded.stop();
  expect(await count()).toBe(2_540 - 100);
  // 24 batches of 100 in one run (the old ceiling was 20); what is younger than 5 minutes stays
  const pruner = startPruner({ db: t.db, log, days: 5 / 1440, batch: 100, everyMs: 3_600_000 });
  await pruner.runOnce();
  await pruner.stop();
  expect(await count()).toBe(40);
});
