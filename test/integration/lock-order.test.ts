// Row locks on commands are taken so that Conveyor's own statements cannot
// deadlock (server/db/completion.ts): lease renewal skips rows another transaction
// holds, so it never waits and never closes a cycle with a completion,
// whatever order either visits the rows in. A completion that PostgreSQL
// rolls back all the same (a deadlock with some other client) is written
// again as it was.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { testClient } from "../helpers/engine";
import { createDb, type Db } from "../../server/db/client";
import { insertCommands } from "../../server/db/commands";
import { claimCallbacks, finishCallback } from "../../server/db/callbacks";
import { complete } from "../../server/db/completion";
import { renewLeases } from "../../server/db/leases";
import { pruneFinished } from "../../server/db/retention";
import { createCompleter } from "../../server/worker/completer";
import { createLogger } from "../../server/log";
import { commandRow, leasedCommands, succeededCompletion } from "../helpers/completions";
import type { Claimed, Completion } from "../../server/engine/types";
import { cancelCommands, retryCommands } from "../../server/commands/actions";
import { startTestWorker, submitWith, waitForStatus, waitUntil } from "../helpers/engine";
import { createRegistry } from "../../server/command-types/registry";
import { defineCommandType } from "../../server/command-types/types";
import { z } from "zod";
import pino from "pino";

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

/** A pool of one connection that looks for deadlocks after `deadlockTimeout` (PostgreSQL's default: 1 s). */
function connection(deadlockTimeout = "20ms"): Db {
  const u = new URL(t.url);
  u.searchParams.set("options", `-c deadlock_timeout=${deadlockTimeout}`);
  const db = createDb(u.toString(), { max: 1 });
  pools.push(db);
  return db;
}

/** The database's deadlock count, once every connection has reported what it met (statistics are flushed lazily). */
async function deadlocks(conns: Db[]): Promise<number> {
  for (const c of conns) await c.pool.query(`SELECT pg_stat_force_next_flush()`);
  await t.db.pool.query(`SELECT pg_stat_clear_snapshot()`);
  const { rows } = await t.db.pool.query<{ n: string }>(
    `SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()`,
  );
  return Number(rows[0]!.n);
}

const leased = (n: number, callbackUrl: string | null = null) =>
  leasedCommands(t.db, clientId, n, { callbackUrl }, "lock-order-test");
const succeeded = (c: Claimed): Completion => succeededCompletion(c, "lock-order-test");

const lockedUntil = async (id: string) =>
  (
    await t.db.pool.query<{ at: Date }>(`SELECT locked_until AS at FROM commands WHERE id = $1`, [id])
  ).rows[0]!.at.getTime();

it("lease renewal and completion on overlapping rows, visited in opposite orders, never deadlock", async () => {
  const ROUNDS = 100;
  const ROWS = 120;
  const BATCH = 10;
  const renewers = [connection(), connection()];
  const completers = [connection(), connection(), connection(), connection()];
  const before = await deadlocks([...renewers, ...completers]);
  const errors: string[] = [];
  let statements = 0;
  const run = async <T>(p: Promise<T>) => {
    try {
      return await p;
    } catch (err) {
      errors.push(`${(err as { code?: string }).code}: ${(err as Error).message}`);
    } finally {
      statements++;
    }
  };
  for (let round = 0; round < ROUNDS; round++) {
    const held = await leased(ROWS);
    // The renewal visits the rows in their physical order (a bitmap heap scan over the primary key);
    // the completion in the order of its input (completions are written in the order handlers finish).
    // Completing in reverse physical order is the interleaving most likely to close a cycle.
    const { rows } = await t.db.pool.query<{ id: string }>(
      `SELECT id FROM commands WHERE id = ANY($1::uuid[]) ORDER BY ctid DESC`,
      [held.map((c) => c.id)],
    );
    const byId = new Map(held.map((c) => [c.id, c]));
    const reversed = rows.map((r) => byId.get(r.id)!);
    const chunk = Math.ceil(ROWS / completers.length);
    let completing = true;
    const renewing = renewers.map(async (db) => {
      while (completing) await run(renewLeases(db, held, 60_000));
    });
    // each completer writes its share in several batches, as a worker writes what finished meanwhile
    await Promise.all(
      completers.map(async (db, i) => {
        const mine = reversed.slice(i * chunk, (i + 1) * chunk);
        for (let j = 0; j < mine.length; j += BATCH)
          await run(complete(db.pool, mine.slice(j, j + BATCH).map(succeeded)));
      }),
    );
    completing = false;
    await Promise.all(renewing);
  }
  const after = await deadlocks([...renewers, ...completers]);
  // errors met by either statement, and PostgreSQL's own count of deadlocks in this database
  expect({
    statements: statements > 2_000,
    errors: errors.length,
    first: errors[0],
    deadlocks: after - before,
  }).toEqual({ statements: true, errors: 0, first: undefined, deadlocks: 0 });
  // every completion was applied
  const { rows } = await t.db.pool.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM commands WHERE type = 'lockorder' GROUP BY status`,
  );
  expect(rows).toEqual([{ status: "succeeded", n: ROUNDS * ROWS }]);
});

it("lease renewal does not wait for a row another transaction holds, and does not count its lease as lost", async () => {
  const [busy, free, gone] = await leased(3);
  await complete(t.db.pool, [succeeded(gone!)]); // its lease has ended: lost, as far as the renewal can tell
  const before = { busy: await lockedUntil(busy!.id), free: await lockedUntil(free!.id) };
  // as a completion of that command, in flight, holds its row
  const x = await t.db.pool.connect();
  try {
    await x.query("BEGIN");
    await x.query("SELECT 1 FROM commands WHERE id = $1 FOR UPDATE", [busy!.id]);
    let timer: NodeJS.Timeout | undefined;
    const renewed = await Promise.race([
      renewLeases(t.db, [busy!, free!, gone!], 60_000),
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error("the renewal waited for the row lock")), 5_000)),
      ),
    ]).finally(() => clearTimeout(timer));
    expect([...renewed].sort()).toEqual([busy!.leaseId, free!.leaseId].sort());
    expect(await lockedUntil(free!.id)).toBeGreaterThan(before.free);
    expect(await lockedUntil(busy!.id)).toBe(before.busy);
  } finally {
    await x.query("ROLLBACK");
    x.release();
  }
  // the completion rolled back: the next heartbeat renews that lease
  expect([...(await renewLeases(t.db, [busy!, free!, gone!], 60_000))].sort()).toEqual(
    [busy!.leaseId, free!.leaseId].sort(),
  );
  expect(await lockedUntil(busy!.id)).toBeGreaterThan(before.busy);
});

it("a completion the database rolls back to break a deadlock is written again as it was, however often", async () => {
  const [c] = await leased(1);
  const wdb = connection("500ms");
  const x = await connection("60s").pool.connect();
  const before = await deadlocks([wdb]);
  const completer = createCompleter(wdb, createLogger({ name: "test", level: "silent" }));
  try {
    await x.query("BEGIN");
    // X holds the table where the completion's statement trigger adds up state entries (their rows are
    // per backend, and a connection the database rolled back is replaced by one with another pid):
    // the completion waits there, holding the command's row.
    await x.query(`LOCK TABLE state_entries IN SHARE MODE`);
    const waiting = async () =>
      (
        await t.db.pool.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%json_to_recordset%'`,
        )
      ).rowCount === 1;
    let settled = false;
    const written = completer.complete(succeeded(c!)).finally(() => (settled = true));
    for (let i = 0; i < 3; i++) {
      await waitUntil(async () => settled || (await waiting()), "the completion to wait for its state entries row");
      if (settled) break; // written as something else, which X does not hold up
      // X now waits for the command's row: a cycle. The completion's backend, which looks for deadlocks
      // sooner, finds it and is rolled back; X gets the row, and lets go of it again.
      await x.query("SAVEPOINT s");
      await x.query("SELECT 1 FROM commands WHERE id = $1 FOR UPDATE", [c!.id]);
      await x.query("ROLLBACK TO SAVEPOINT s");
    }
    await x.query("ROLLBACK");
    expect(await written).toBe(true);
  } finally {
    await x.query("ROLLBACK").catch(() => {});
    x.release();
  }
  const row = (
    await t.db.pool.query(`SELECT status, result, error, needs_reconcile, lease_id FROM commands WHERE id = $1`, [
      c!.id,
    ])
  ).rows[0];
  expect(row).toEqual({
    status: "succeeded",
    result: { ok: true },
    error: null,
    needs_reconcile: false,
    lease_id: null,
  });
  const attempts = (
    await t.db.pool.query(`SELECT number, kind, outcome, error FROM attempts WHERE command_id = $1`, [c!.id])
  ).rows;
  expect(attempts).toEqual([{ number: 1, kind: "execute", outcome: "success", error: null }]);
  expect((await deadlocks([wdb])) - before).toBe(3);
});

it("retention and upstream callback deliveries of the same old commands never deadlock", async () => {
  // Old finished commands whose callbacks still fail (they are retried for as long as it takes):
  // retention deletes them with their deliveries while the sender records another try of those.
  const ROUNDS = 20;
  const ROWS = 300;
  const senders = [connection(), connection(), connection()];
  const pruner = connection();
  const before = await deadlocks([...senders, pruner]);
  const errors: string[] = [];
  let statements = 0;
  const run = async <T>(p: Promise<T>) => {
    try {
      return await p;
    } catch (err) {
      errors.push(`${(err as { code?: string }).code}: ${(err as Error).message}`);
    } finally {
      statements++;
    }
  };
  for (let round = 0; round < ROUNDS; round++) {
    const held = await leased(ROWS, "http://127.0.0.1:9/callback");
    await complete(t.db.pool, held.map(succeeded)); // the statement trigger queues one delivery per command
    await t.db.pool.query(`UPDATE commands SET created_at = now() - interval '40 days' WHERE id = ANY($1::uuid[])`, [
      held.map((c) => c.id),
    ]);
    const due = await claimCallbacks(t.db, ROWS, 60_000);
    expect(due.length).toBe(ROWS);
    const share = Math.ceil(ROWS / senders.length);
    let sending = true;
    const pruning = (async () => {
      while (sending) await run(pruneFinished(pruner, 30, 50));
    })();
    await Promise.all(
      senders.map(async (db, i) => {
        for (const d of due.slice(i * share, (i + 1) * share))
          await run(
            finishCallback(db, d, {
              ok: false,
              status: 500,
              error: "HTTP 500",
              retryInMs: 60_000,
              startedAt: new Date(),
              worker: "lock-order-test",
            }),
          );
      }),
    );
    sending = false;
    await pruning;
    await run(pruneFinished(pruner, 30, 10_000));
  }
  const after = await deadlocks([...senders, pruner]);
  expect({
    statements: statements > 2_000,
    errors: errors.length,
    first: errors[0],
    deadlocks: after - before,
  }).toEqual({ statements: true, errors: 0, first: undefined, deadlocks: 0 });
  expect(
    (await t.db.pool.query(`SELECT count(*)::int AS n FROM commands WHERE callback_url IS NOT NULL`)).rows[0]!.n,
  ).toBe(0);
});

it("operator actions on overlapping selections, at the same time, never deadlock", async () => {
  // Two operators cancel and retry overlapping selections over and over: every action moves the
  // rows it changes (new row versions), so the two rarely see them in the same physical order.
  const ROWS = 200;
  const ROUNDS = 150;
  const rows = Array.from({ length: ROWS }, () => commandRow(clientId, { runAt: "infinity" }));
  const ids = rows.map((r) => r.id);
  await insertCommands(t.db, rows);
  const operators = [connection(), connection(), connection()];
  const vacuum = connection();
  const before = await deadlocks(operators);
  const errors: string[] = [];
  let statements = 0;
  let acting = true;
  // VACUUM frees the space of old row versions, so that new ones land in earlier pages, out of order
  const vacuuming = (async () => {
    while (acting) await vacuum.pool.query("VACUUM commands");
  })();
  await Promise.all(
    operators.map(async (db, i) => {
      // overlapping thirds: each operator's selection shares rows with both others
      const mine = [...ids.slice((i * ROWS) / 3), ...ids.slice(0, (i * ROWS) / 3)].slice(0, (2 * ROWS) / 3);
      for (let r = 0; r < ROUNDS; r++) {
        for (const act of [cancelCommands, retryCommands] as const) {
          try {
            await act(db, { ids: r % 2 ? mine : [...mine].reverse() }, { name: `operator-${i}` }, null);
          } catch (err) {
            errors.push(`${(err as { code?: string }).code}: ${(err as Error).message}`);
          } finally {
            statements++;
          }
        }
      }
    }),
  );
  acting = false;
  await vacuuming;
  const after = await deadlocks(operators);
  expect({ errors: errors.length, first: errors[0], deadlocks: after - before }).toEqual({
    errors: 0,
    first: undefined,
    deadlocks: 0,
  });
  expect(statements).toBe(operators.length * ROUNDS * 2);
});

it("inserts of batches that share idempotency keys, in opposite orders, never deadlock", async () => {
  // A client resubmits a batch (in another order) while the first is still being written: each
  // insert waits at a key the other has written and not committed yet.
  const ROUNDS = 100;
  const KEYS = 40;
  const writers = [connection(), connection(), connection()];
  const before = await deadlocks(writers);
  const errors: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const keys = Array.from({ length: KEYS }, (_, i) => `round-${round}-key-${i}`);
    const orders = [keys, [...keys].reverse(), [...keys.slice(KEYS / 2), ...keys.slice(0, KEYS / 2)]];
    const inserted = await Promise.all(
      writers.map((db, i) =>
        insertCommands(
          db,
          orders[i]!.map((key) => commandRow(clientId, { idempotencyKey: key, runAt: "infinity" })),
        ).catch((err) => {
          errors.push(`${(err as { code?: string }).code}: ${(err as Error).message}`);
          return new Set<string>();
        }),
      ),
    );
    if (errors.length === 0) expect(inserted.reduce((n, s) => n + s.size, 0)).toBe(KEYS); // each key stored once
  }
  const after = await deadlocks(writers);
  expect({ errors: errors.length, first: errors[0], deadlocks: after - before }).toEqual({
    errors: 0,
    first: undefined,
    deadlocks: 0,
  });
});

it("a lease renewal that fails for a passing reason is tried again at once, and the attempt keeps its lease", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let started = false;
  const gated = defineCommandType({
    name: "gated",
    description: "runs until the test lets it finish",
    schema: z.object({}),
    retry: { maxAttempts: 3, backoffMs: 10, maxBackoffMs: 50 },
    retryBusinessFailures: false,
    compensateOnFailure: false,
    idempotent: () => true,
    timeoutMs: () => 60_000,
    execute: async () => {
      started = true;
      await gate;
      return { outcome: "success" };
    },
  });
  const registry = createRegistry([gated]);
  const lines: { msg: string; attempt?: number }[] = [];
  const log = pino({ level: "debug" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const worker = await startTestWorker(t.db, t.url, registry, { log, leaseMs: 6_000 });
  const x = await t.db.pool.connect();
  try {
    const id = await submitWith(t.db, registry, clientId)({ type: "gated", payload: {} });
    await waitUntil(() => started, "the attempt to start");
    const before = await lockedUntil(id);
    // Nothing can change commands while X holds this lock: the next renewal waits for it, and is cut off.
    await x.query("BEGIN; LOCK TABLE commands IN SHARE MODE");
    const renewal = async () =>
      (
        await t.db.pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%renewed AS (%'`,
        )
      ).rows.map((r) => r.pid);
    await waitUntil(async () => (await renewal()).length > 0, "a lease renewal waiting for the table", 10_000);
    const [victim] = await renewal();
    await t.db.pool.query(`SELECT pg_terminate_backend($1)`, [victim]);
    await waitUntil(
      () => lines.some((l) => l.msg === "could not renew leases; trying again"),
      "the renewal to be tried again",
      5_000,
    );
    await x.query("COMMIT");
    await waitUntil(async () => (await lockedUntil(id)) > before, "the lease to be renewed");
    release();
    await waitForStatus(t.db, id, ["succeeded"]);
  } finally {
    await x.query("ROLLBACK").catch(() => {});
    x.release();
    release();
    await worker.close();
  }
  expect(lines.filter((l) => /lease lost|lease expired|taken back/.test(l.msg))).toEqual([]);
});
