// Ordering keys take advisory locks (one per client and key): intake and
// operator actions take their keys' locks in lock order before anything else,
// and the release trigger takes the key's lock at commit. A statement that
// moves commands of several keys to a free state (a completion of several
// heads, an inbound result) must take the same locks in the same order, or
// it closes a cycle with an intake or an action that holds one and waits for
// another. PostgreSQL rolls one of them back; these tests count on none.
import { commandRow, succeededCompletion } from "../helpers/completions";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { testClient } from "../helpers/engine";
import { createDb, type Db } from "../../server/db/client";
import { insertCommands, type NewCommand } from "../../server/db/commands";
import { claim } from "../../server/db/claim";
import { complete } from "../../server/db/completion";
import { settleAwaiting } from "../../server/db/inbound";
import { cancelCommands } from "../../server/commands/actions";
import type { Claimed, Completion } from "../../server/engine/types";

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

/** A pool of one connection that looks for deadlocks after 20 ms (PostgreSQL's default: 1 s). */
function connection(): Db {
  const u = new URL(t.url);
  u.searchParams.set("options", "-c deadlock_timeout=20ms");
  const db = createDb(u.toString(), { max: 1 });
  pools.push(db);
  return db;
}

async function deadlocks(conns: Db[]): Promise<number> {
  for (const c of conns) await c.pool.query(`SELECT pg_stat_force_next_flush()`);
  await t.db.pool.query(`SELECT pg_stat_clear_snapshot()`);
  const { rows } = await t.db.pool.query(`SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`);
  return Number(rows[0].deadlocks);
}

const row = (orderingKey: string, runAt: string | null = null): NewCommand =>
  commandRow(clientId, { orderingKey, runAt });
const succeeded = (c: Claimed): Completion => succeededCompletion(c);

const shuffled = <T>(xs: T[]) =>
  xs
    .map((x) => [Math.random(), x] as const)
    .sort((a, b) => a[0] - b[0])
    .map(([, x]) => x);

it("completions of several keys' heads, intake of those keys and operator actions on them never deadlock", async () => {
  const ROUNDS = 40;
  const KEYS = 30;
  const completers = [connection(), connection()];
  const intakers = [connection(), connection()];
  const operator = connection();
  const all = [...completers, ...intakers, operator];
  const before = await deadlocks(all);
  const errors: string[] = [];
  const run = async <T>(p: Promise<T>, who = "") => {
    try {
      return await p;
    } catch (err) {
      errors.push(`${who}${(err as { code?: string }).code}: ${(err as Error).message}`);
    }
  };
  for (let round = 0; round < ROUNDS; round++) {
    const keys = Array.from({ length: KEYS }, (_, i) => `r${round}-k${i}`);
    // a head per key, and a command waiting behind it (far in the future, so that it is never claimed)
    await insertCommands(t.db, [...keys.map((k) => row(k)), ...keys.map((k) => row(k, "infinity"))]);
    const heads = await claim(t.db, "lock-test", KEYS, 60_000, []);
    expect(heads).toHaveLength(KEYS);
    const followers = (
      await t.db.pool.query<{ id: string }>(
        `SELECT id FROM commands WHERE ordering_key = ANY($1::text[]) AND key_waiting`,
        [keys],
      )
    ).rows.map((r) => r.id);
    let busy = true;
    const intake = intakers.map(async (db) => {
      while (busy)
        await run(
          insertCommands(
            db,
            shuffled(keys).map((k) => row(k, "infinity")),
          ),
          "intake ",
        );
    });
    const acting = (async () => {
      while (busy)
        await run(cancelCommands(operator, { ids: shuffled(followers).slice(0, 10) }, { name: "op" }, null), "op ");
    })();
    // each completion finishes the heads of several keys at once, in no particular order
    const share = shuffled(heads);
    await Promise.all(
      completers.map(async (db, i) => {
        const mine = share.filter((_, j) => j % completers.length === i);
        for (let j = 0; j < mine.length; j += 5)
          await run(complete(db.pool, mine.slice(j, j + 5).map(succeeded)), "complete ");
      }),
    );
    busy = false;
    await Promise.all([...intake, acting]);
  }
  expect({ errors: errors.length, first: errors[0], deadlocks: (await deadlocks(all)) - before }).toEqual({
    errors: 0,
    first: undefined,
    deadlocks: 0,
  });
  // and the heads' keys moved on: each key has a head again (its earliest waiting command)
  const { rows } = await t.db.pool.query(
    `SELECT count(DISTINCT ordering_key)::int AS n FROM commands
     WHERE ordering_key LIKE 'r%' AND NOT key_waiting AND status = 'pending'`,
  );
  expect(rows[0].n).toBe(ROUNDS * KEYS);
});

it("an inbound result for an awaiting head and an operator's cancel of it never deadlock", async () => {
  const ROUNDS = 150;
  const inbound = connection();
  const operator = connection();
  const before = await deadlocks([inbound, operator]);
  const errors: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const key = `awaiting-${round}`;
    await insertCommands(t.db, [row(key), row(key, "infinity")]);
    // the head is accepted by its backend: awaiting, with no lease
    await t.db.pool.query(
      `UPDATE commands SET status = 'running', lease_id = gen_random_uuid(), locked_by = 't', locked_until = now() + interval '1 minute'
       WHERE ordering_key = $1 AND NOT key_waiting`,
      [key],
    );
    const { rows } = await t.db.pool.query<{ id: string }>(
      `UPDATE commands SET status = 'awaiting', lease_id = NULL, locked_by = NULL, locked_until = NULL, run_at = 'infinity'
       WHERE ordering_key = $1 AND NOT key_waiting RETURNING id`,
      [key],
    );
    const id = rows[0]!.id;
    await Promise.all([
      settleAwaiting(inbound, id, { status: "succeeded", result: {} }, "test").catch((e) =>
        errors.push(`${e.code}: ${e.message}`),
      ),
      cancelCommands(operator, { ids: [id] }, { name: "op" }, null).catch((e) =>
        errors.push(`${e.code}: ${e.message}`),
      ),
    ]);
  }
  expect({
    errors: errors.length,
    first: errors[0],
    deadlocks: (await deadlocks([inbound, operator])) - before,
  }).toEqual({ errors: 0, first: undefined, deadlocks: 0 });
});
