// The per-minute state counters (state_entries) that the statement trigger
// conveyor_commands_changed adds to. One statement adds to several rows (one
// per minute, state and type of its shard), and the trigger takes their row
// locks in key order: another statement writing the same rows in key order
// then waits for it, or it for the other, and the two never deadlock. A shard
// is the backend's pid, which no two live backends share.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { testClient, waitUntil } from "../helpers/engine";
import { createDb, type Db } from "../../server/db/client";

let t: TestDb;
let clientId: string;
const pools: Db[] = [];

beforeAll(async () => {
  t = await createTestDb();
  ({ clientId } = await testClient(t.db));
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await t?.drop();
});

/** A connection of its own that looks for deadlocks after `deadlockTimeout`. */
function connection(deadlockTimeout: string): Db {
  const u = new URL(t.url);
  u.searchParams.set("options", `-c deadlock_timeout=${deadlockTimeout}`);
  const db = createDb(u.toString(), { max: 1 });
  pools.push(db);
  return db;
}

const TYPES = Array.from({ length: 8 }, (_, i) => `se-${i}`);

async function pendingCommands(prefix: string, perType: number) {
  await t.db.pool.query(
    `INSERT INTO commands (id, client_id, type, payload, priority)
     SELECT gen_random_uuid(), $1, $2::text || '-' || (g % $3::int), '{}', (g / $3::int) % 2
     FROM generate_series(0, $3::int * $4::int - 1) g`,
    [clientId, prefix, TYPES.length, perType],
  );
}

it("a statement's counter rows are locked in key order: a statement that shares them waits, never deadlocks", async () => {
  await pendingCommands("se", 3);
  await t.db.pool.query(
    `INSERT INTO commands (id, client_id, type, payload) VALUES (gen_random_uuid(), $1, 'warm', '{}')`,
    [clientId],
  );
  // B: the statement whose trigger adds up 16 rows (2 states × 8 types) of its shard; it is the one
  // rolled back if there is a deadlock (it looks for one long before A does).
  const b = connection("20ms");
  const bPid = (await b.pool.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`)).rows[0]!.pid;
  await b.pool.query(`UPDATE commands SET status = 'cancelled' WHERE type = 'warm'`);
  const { shard } = (await t.db.pool.query<{ shard: number }>(`SELECT shard FROM state_entries WHERE type = 'warm'`))
    .rows[0]!;
  // A: another writer of B's rows (a backend that shares its shard, the compaction), in key order.
  const a = await connection("1s").pool.connect();
  const minutes = `unnest(ARRAY[date_trunc('minute', now()), date_trunc('minute', now()) + interval '1 minute'])`;
  const upsert = (where: string) =>
    a.query(
      `INSERT INTO state_entries (minute, status, type, shard, n)
       SELECT m, s, ty, $1, 0
       FROM ${minutes} AS m, unnest(ARRAY['running', 'cancelled']::command_status[]) AS s, unnest($2::text[]) AS ty
       WHERE ${where}
       ORDER BY m, s, ty
       ON CONFLICT (minute, status, type, shard) DO UPDATE SET n = state_entries.n`,
      [shard, TYPES],
    );
  try {
    await a.query("BEGIN");
    // A holds the first row B will want in either minute (B's clock may have moved on)…
    await upsert(`s = 'running' AND ty = $2[1]`);
    const statement = b.pool.query(
      `UPDATE commands SET status = CASE WHEN priority = 0 THEN 'running' ELSE 'cancelled' END::command_status,
         lease_id = CASE WHEN priority = 0 THEN gen_random_uuid() END,
         locked_by = CASE WHEN priority = 0 THEN 'w' END,
         locked_until = CASE WHEN priority = 0 THEN now() + interval '1 hour' END
       WHERE type LIKE 'se-%'`,
    );
    const outcome = statement.then(
      () => "done",
      (err: { code?: string; message: string }) => `${err.code}: ${err.message}`,
    );
    await waitUntil(
      async () =>
        (await t.db.pool.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'`, [bPid]))
          .rowCount === 1,
      "B to wait for the row A holds",
    );
    // …and takes the others, in key order: B, waiting at its first row, holds none of them.
    await upsert(`NOT (s = 'running' AND ty = $2[1])`);
    await a.query("COMMIT");
    expect(await outcome).toBe("done");
  } finally {
    await a.query("ROLLBACK").catch(() => {});
    a.release();
  }
  const { rows } = await t.db.pool.query<{ status: string; type: string; n: number }>(
    `SELECT status, type, sum(n)::int AS n FROM state_entries WHERE type LIKE 'se-%' GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  expect(rows).toEqual(
    (["running", "cancelled"] as const).flatMap((status) =>
      TYPES.map((type) => ({ status, type, n: status === "running" ? 2 : 1 })),
    ),
  );
});

it("each backend counts under its own pid, which no other live backend has", async () => {
  await t.db.pool.query(
    `INSERT INTO commands (id, client_id, type, payload) VALUES (gen_random_uuid(), $1, 'own', '{}'), (gen_random_uuid(), $1, 'own', '{}')`,
    [clientId],
  );
  const [x, y] = [connection("1s"), connection("1s")];
  const pids: number[] = [];
  for (const [i, c] of [x, y].entries()) {
    pids.push((await c.pool.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`)).rows[0]!.pid);
    await c.pool.query(
      `UPDATE commands SET status = 'cancelled' WHERE id = (SELECT id FROM commands WHERE type = 'own' ORDER BY id OFFSET $1 LIMIT 1)`,
      [i],
    );
  }
  const { rows } = await t.db.pool.query<{ shard: number }>(
    `SELECT shard FROM state_entries WHERE type = 'own' ORDER BY n, shard`,
  );
  expect(rows.map((r) => r.shard).sort()).toEqual([...pids].sort());
  const { rows: col } = await t.db.pool.query(
    `SELECT data_type FROM information_schema.columns WHERE table_name = 'state_entries' AND column_name = 'shard'`,
  );
  // a pid can be above 32767 (kernel.pid_max is up to 4194304): the column holds any
  expect(col).toEqual([{ data_type: "integer" }]);
});
