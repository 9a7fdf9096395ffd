// The console's counts of finished commands come from finished_counts, kept by
// triggers on commands (migration 20261215000000_finished_counts), not from
// counting the table. Here they are held against the table itself after every
// kind of write: the fixtures' path through every state, inserts in a finished
// state, three workers finishing commands at once while the compaction folds
// the counts, an operator's retry and cancel, the pruner's deletes, a
// truncate, and the migration's start from a table that already has a history.
import { afterAll, beforeAll, expect, it } from "vitest";
import { cp, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createEmptyDb, createTestDb, type TestDb } from "../helpers/db";
import { startTestWorker, submitWith, testClient, testTypes, waitUntil } from "../helpers/engine";
import { commandInEveryState } from "../helpers/fixtures";
import { countByStatus } from "../../server/db/commands-read";
import { compactFinishedCounts, pruneFinished } from "../../server/db/retention";
import { cancelCommands, retryCommands } from "../../server/commands/actions";
import { createDb, type Db } from "../../server/db/client";
import { migrate, listMigrations } from "../../server/db/migrate";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => t?.drop());

const registry = testTypes({ calls: new Map(), running: 0, maxRunning: 0 });
const actor = { name: "counts-test" };

/** count(*) by state, from the table itself. */
const table = async (db: Db) =>
  Object.fromEntries(
    (
      await db.pool.query<{ status: string; n: number }>(
        `SELECT status::text, count(*)::int AS n FROM commands GROUP BY 1`,
      )
    ).rows.map((r) => [r.status, r.n]),
  );
const countsHold = async (db: Db, when: string) => expect(await countByStatus(db), when).toEqual(await table(db));

it("hold the table's counts through every kind of write", async () => {
  const { clientId } = await testClient(t.db);
  await commandInEveryState(t.db, clientId, "a");
  await countsHold(t.db, "the fixtures' path through every state");

  // inserted in a finished state (as an import or a test fixture would)
  await t.db.pool.query(
    `INSERT INTO commands (id, client_id, type, payload, status, finished_at, attempt_count, tries)
     SELECT gen_random_uuid(), $1, 'http', '{}', s::command_status, now(), 1, 1
     FROM unnest(ARRAY['succeeded', 'succeeded', 'failed', 'cancelled', 'compensated']) s`,
    [clientId],
  );
  await countsHold(t.db, "inserts in finished states");

  // three workers finish 300 commands at once (succeeded, failed after retries, compensated), while the
  // compaction folds what they write
  const submit = submitWith(t.db, registry, clientId);
  const ids: string[] = [];
  for (let i = 0; i < 300; i++)
    ids.push(
      await submit(
        i % 3 === 0
          ? { type: "flaky", payload: { succeedOn: 1 } }
          : i % 3 === 1
            ? { type: "flaky", payload: { succeedOn: 9 } }
            : { type: "refundable", payload: { compensation: "ok" } },
      ),
    );
  const workers = await Promise.all([0, 1, 2].map(() => startTestWorker(t.db, t.url, registry)));
  let compacting = true;
  let folded = 0;
  const compaction = (async () => {
    while (compacting) folded += await compactFinishedCounts(t.db);
  })();
  try {
    await waitUntil(
      async () =>
        (
          await t.db.pool.query(
            `SELECT 1 FROM commands WHERE id = ANY($1::uuid[]) AND status NOT IN ('succeeded', 'failed', 'compensated')`,
            [ids],
          )
        ).rowCount === 0,
      "every command to finish",
      60_000,
    );
  } finally {
    compacting = false;
    await compaction;
    await Promise.all(workers.map((w) => w.close()));
  }
  expect(folded).toBeGreaterThan(0);
  await countsHold(t.db, "three workers finishing commands while the counts were folded");

  // an operator's retry takes commands out of failed and cancelled; a cancel puts pending ones in cancelled
  const failed = (await t.db.pool.query(`SELECT id FROM commands WHERE status IN ('failed', 'cancelled') LIMIT 20`))
    .rows;
  const retried = await retryCommands(t.db, { ids: failed.map((r) => r.id) }, actor, "counts");
  expect(retried.updated.length).toBeGreaterThan(0);
  await countsHold(t.db, "an operator's retry");
  const cancelled = await cancelCommands(t.db, { ids: retried.updated }, actor, "counts");
  expect(cancelled.updated.length).toBeGreaterThan(0);
  await countsHold(t.db, "an operator's cancel");
  const { rows: shards } = await t.db.pool.query(`SELECT DISTINCT shard FROM finished_counts`);
  expect(shards.length).toBeGreaterThan(1);
  await compactFinishedCounts(t.db);
  expect((await t.db.pool.query(`SELECT DISTINCT shard FROM finished_counts`)).rows).toEqual([{ shard: 0 }]);
  await countsHold(t.db, "after the compaction");

  // the pruner deletes finished commands (a batch at a time)
  await t.db.pool.query(`UPDATE commands SET created_at = now() - interval '40 days'`);
  expect(await pruneFinished(t.db, 30, 100)).toBe(100);
  await countsHold(t.db, "the pruner's delete of 100");
  while ((await pruneFinished(t.db, 30, 100)) > 0);
  await countsHold(t.db, "the pruner's deletes of the rest");
  expect(await countByStatus(t.db)).not.toHaveProperty("succeeded");

  await t.db.pool.query(`TRUNCATE commands CASCADE`);
  expect(await countByStatus(t.db)).toEqual({});
  expect((await t.db.pool.query(`SELECT * FROM finished_counts`)).rows).toEqual([]);
});

it("start from the history already in the table when the migration runs", async () => {
  const e = await createEmptyDb();
  const dir = await mkdtemp(path.join(os.tmpdir(), "conveyor-migrations-"));
  const db = createDb(e.url, { max: 2 });
  try {
    const all = await listMigrations(path.resolve("prisma/migrations"));
    const last = all.findIndex((m) => m.name === "20261215000000_finished_counts");
    expect(last).toBeGreaterThan(0);
    for (const m of all.slice(0, last))
      await cp(path.resolve("prisma/migrations", m.name), path.join(dir, m.name), { recursive: true });
    await migrate(e.url, dir);
    const { clientId } = await testClient(db);
    await commandInEveryState(db, clientId, "before");
    await db.pool.query(
      `INSERT INTO commands (id, client_id, type, payload, status, finished_at, attempt_count, tries)
       SELECT gen_random_uuid(), $1, 'http', '{}', 'succeeded', now(), 1, 1 FROM generate_series(1, 50)`,
      [clientId],
    );
    await migrate(e.url);
    await countsHold(db, "right after the migration");
    await commandInEveryState(db, clientId, "after");
    await countsHold(db, "and after more writes");
  } finally {
    await db.close();
    await e.drop();
    await rm(dir, { recursive: true, force: true });
  }
});
