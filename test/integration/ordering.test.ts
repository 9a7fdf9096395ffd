// Ordering keys (DESIGN §7) end to end on a real PostgreSQL: commands of one
// client and key run one at a time, in the order received, while commands of
// different keys run side by side; priority and runAt order across keys only;
// duplicates in a batch do not leave a key stuck.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { createTestDb, type TestDb } from "../helpers/db";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";
import { runWorker, type Proc } from "../helpers/proc";
import { startTestWorker, testClient, waitUntil, type TestWorker } from "../helpers/engine";
import {
  maxSimultaneous,
  orderedTypes,
  orderProblems,
  startRecordingBackend,
  type Recorder,
} from "../helpers/ordering";
import { createDb, type Db } from "../../server/db/client";
import { directIntake, submitBatch } from "../../server/commands/submit";
import type { Registry } from "../../server/command-types/registry";

let t: TestDb;
let registry: Registry;
let rec: Recorder;
let clientId: string;
const pools: Db[] = [];

beforeAll(async () => {
  t = await createTestDb();
  ({ registry, rec } = orderedTypes());
  ({ clientId } = await testClient(t.db));
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await t?.drop();
});

/** A worker of its own: its own pool and listener, as another process would have. */
async function worker(): Promise<TestWorker> {
  const db = createDb(t.url, { max: 5 });
  pools.push(db);
  return startTestWorker(db, t.url, registry, { concurrency: 10 });
}

const cmd = (key: string, seq: number, extra: Record<string, unknown> = {}) => ({
  type: "ordered",
  payload: { key, seq, tag: `${key}#${seq}` },
  orderingKey: key,
  ...extra,
});
const batch = async (items: unknown[]) => {
  const receipts = await submitBatch(directIntake(t.db, registry), clientId, items);
  for (const r of receipts) if (!r.ok) throw new Error(JSON.stringify(r.error));
  return receipts.map((r) => (r as { id: string }).id);
};
const statuses = async (ids: string[]) =>
  (
    await t.db.pool.query<{ status: string }>(
      `SELECT status FROM commands WHERE id = ANY($1::uuid[]) ORDER BY array_position($1::uuid[], id)`,
      [ids],
    )
  ).rows.map((r) => r.status);
const allSucceeded = (ids: string[]) => async () => (await statuses(ids)).every((s) => s === "succeeded");
const execsOf = (key: string) => rec.execs.filter((e) => e.key === key);
const deadlocks = async () => {
  await t.db.pool.query(`SELECT pg_stat_clear_snapshot()`);
  return Number(
    (await t.db.pool.query(`SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`)).rows[0]
      .deadlocks,
  );
};

describe("3 worker processes, 3,000 commands over 300 keys, submitted in batches and singles at once", () => {
  let api: ApiServer;
  const workers: Proc[] = [];
  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGTERM");
    await Promise.all(workers.map((w) => w.exited));
    await api?.close();
  });

  it("runs each key's commands in receipt order, never two at once, while keys run side by side", async () => {
    const KEYS = 300;
    const ROUNDS = 5; // two commands per key and round
    const backend = await startRecordingBackend(() => 2 + Math.random() * 6);
    api = await startApi(t.db);
    const http = client(api.url, (await newToken(t.db, "client", "fleet")).token);
    const env = {
      DATABASE_URL: t.url,
      HTTP_ALLOWED_HOSTS: "127.0.0.1",
      WORKER_CONCURRENCY: "10",
      WORKER_LEASE_MS: "5000",
      WORKER_POLL_MS: "200",
      LOG_LEVEL: "info",
    };
    workers.push(...Array.from({ length: 3 }, () => runWorker(env)));
    await Promise.all(workers.map((w) => w.waitFor(/worker started/)));
    const deadlocksBefore = await deadlocks();

    const key = (k: number) => `account-${k}`;
    const item = (k: number, seq: number) => ({
      type: "http",
      payload: { url: `${backend.url}/do?key=${key(k)}&seq=${seq}`, timeoutMs: 10_000 },
      orderingKey: key(k),
      // random idempotency keys on half the items: the batch's own order, not theirs, is the receipt order
      ...(Math.random() < 0.5 ? { idempotencyKey: randomUUID() } : {}),
    });
    const ids: string[] = [];
    const ok = (r: { status: number; data?: any; error?: unknown }) => {
      if (r.status !== 200) throw new Error(`submit failed: ${JSON.stringify(r.error)}`);
      return r.data;
    };
    const single = async (k: number, seq: number) =>
      void ids.push(ok(await http.mutation("intake.submit", item(k, seq))).id);
    const many = async (items: ReturnType<typeof item>[]) => {
      const { receipts } = ok(await http.mutation("intake.submitBatch", { commands: items }));
      for (const r of receipts) ids.push(r.id);
    };
    for (let r = 0; r < ROUNDS; r++) {
      // each key travels another road each round; the roads run at the same time
      const road = (k: number) => (k + r) % 3;
      const a = [...Array(KEYS).keys()].filter((k) => road(k) === 0);
      const b = [...Array(KEYS).keys()].filter((k) => road(k) === 1);
      const c = [...Array(KEYS).keys()].filter((k) => road(k) === 2);
      await Promise.all([
        // one batch holding both of a key's commands, far apart
        many([...a.map((k) => item(k, 2 * r)), ...a.map((k) => item(k, 2 * r + 1))]),
        // a batch with the first, then a single with the second
        many(b.map((k) => item(k, 2 * r))).then(() => Promise.all(b.map((k) => single(k, 2 * r + 1)))),
        // two singles, one after the other, for each key at once
        ...c.map((k) => single(k, 2 * r).then(() => single(k, 2 * r + 1))),
      ]);
    }
    expect(ids).toHaveLength(KEYS * ROUNDS * 2);

    await waitUntil(
      async () =>
        (
          await t.db.pool.query(
            `SELECT count(*)::int AS n FROM commands WHERE id = ANY($1::uuid[]) AND status = 'succeeded'`,
            [ids],
          )
        ).rows[0].n === ids.length,
      "all 3,000 commands to succeed",
      180_000,
    );
    await backend.close();

    const expected = new Map([...Array(KEYS).keys()].map((k) => [key(k), [...Array(ROUNDS * 2).keys()]]));
    expect(orderProblems(backend.execs, expected).slice(0, 10)).toEqual([]);
    // every command executed once
    expect(new Set(backend.execs.map((e) => e.id)).size).toBe(ids.length);
    expect(backend.execs).toHaveLength(ids.length);
    const { rows } = await t.db.pool.query(
      `SELECT count(*) FILTER (WHERE attempt_count <> 1)::int AS retried, count(DISTINCT a.worker)::int AS workers
       FROM commands c JOIN attempts a ON a.command_id = c.id WHERE c.id = ANY($1::uuid[])`,
      [ids],
    );
    expect(rows[0]).toEqual({ retried: 0, workers: 3 });
    // keys ran side by side
    expect(maxSimultaneous(backend.execs)).toBeGreaterThanOrEqual(10);
    // receipt order as stored (ordering_seq) is the order sent, key by key
    const stored = await t.db.pool.query(
      `SELECT ordering_key AS key, array_agg((payload->>'url') ORDER BY ordering_seq) AS urls
       FROM commands WHERE id = ANY($1::uuid[]) GROUP BY ordering_key`,
      [ids],
    );
    const misordered = stored.rows.filter((r: { urls: string[] }) => r.urls.some((u, i) => !u.endsWith(`seq=${i}`)));
    expect(misordered.map((r: { key: string }) => r.key)).toEqual([]);
    const rolledBack = workers.flatMap((w) => w.output().split("\n")).filter((l) => /deadlock/i.test(l));
    expect({ deadlocks: (await deadlocks()) - deadlocksBefore, rolledBack: rolledBack.slice(0, 3) }).toEqual({
      deadlocks: 0,
      rolledBack: [],
    });
  });
});

describe("two in-process workers", () => {
  const running: TestWorker[] = [];
  beforeAll(async () => {
    // started together: both wake to the first submit and claim at the same moment
    running.push(...(await Promise.all([worker(), worker()])));
  });
  afterAll(async () => {
    await Promise.all(running.map((w) => w.close()));
  });

  it("claiming at the same moment, never run two commands of a key at once", async () => {
    const ids = await batch(Array.from({ length: 50 }, (_, i) => cmd("race", i)));
    await waitUntil(allSucceeded(ids), "the 50 commands to succeed");
    expect(rec.overlaps).toEqual([]);
    expect(orderProblems(execsOf("race"), new Map([["race", [...Array(50).keys()]]]))).toEqual([]);
  });

  it("keeps the batch's input order within a key, whatever the items' idempotency keys", async () => {
    const ids = await batch([
      cmd("idem-order", 0, { idempotencyKey: "z-first" }),
      cmd("idem-order", 1),
      cmd("idem-order", 2, { idempotencyKey: "a-third" }),
      cmd("idem-order", 3, { idempotencyKey: "m-fourth" }),
    ]);
    await waitUntil(allSucceeded(ids), "the batch to succeed");
    expect(orderProblems(execsOf("idem-order"), new Map([["idem-order", [0, 1, 2, 3]]]))).toEqual([]);
  });

  it("an item repeating a stored command's idempotency key (not inserted) does not leave its key stuck", async () => {
    const [first] = await batch([cmd("dup", 0, { idempotencyKey: "dup-0" })]);
    await waitUntil(allSucceeded([first!]), "the first to succeed");
    // the repeat comes first in its key: its place is not taken, the next item is the head
    const again = await submitBatch(directIntake(t.db, registry), clientId, [
      cmd("dup", 0, { idempotencyKey: "dup-0" }),
      cmd("dup", 1),
      cmd("dup", 0, { idempotencyKey: "dup-0" }), // and a repeat of the repeat, within the batch
      cmd("dup", 2),
    ]);
    expect(again.map((r) => r.ok && r.duplicate)).toEqual([true, false, true, false]);
    const rest = [again[1]!, again[3]!].map((r) => (r as { id: string }).id);
    await waitUntil(allSucceeded(rest), "the rest of the key to run");
    expect(orderProblems(execsOf("dup"), new Map([["dup", [0, 1, 2]]]))).toEqual([]);
  });

  it("two batches racing for one idempotency key: the loser's other items of the key still run", async () => {
    const one = () =>
      submitBatch(directIntake(t.db, registry), clientId, [
        cmd("dup-race", 0, { idempotencyKey: "dup-race-0" }),
        { ...cmd("dup-race", 1), payload: { key: "dup-race", seq: 1, tag: randomUUID() } },
      ]);
    const [a, b] = await Promise.all([one(), one()]);
    expect([a[0], b[0]].filter((r) => r!.ok && r!.duplicate)).toHaveLength(1);
    const ids = [...new Set([...a, ...b].map((r) => (r as { id: string }).id))];
    expect(ids).toHaveLength(3);
    await waitUntil(allSucceeded(ids), "all three to succeed");
    const seqs = execsOf("dup-race").map((e) => e.seq);
    expect(seqs).toEqual([0, 1, 1]);
    expect(rec.overlaps).toEqual([]);
  });

  it("the same key of another client is another key", async () => {
    const other = (await testClient(t.db)).clientId;
    const [blocked] = await batch([cmd("shared", 0, { runAt: "2999-01-01T00:00:00Z" })]);
    const receipts = await submitBatch(directIntake(t.db, registry), other, [cmd("shared", 1)]);
    const theirs = (receipts[0] as { id: string }).id;
    await waitUntil(allSucceeded([theirs]), "the other client's command to run");
    expect(await statuses([blocked!])).toEqual(["pending"]);
  });

  it("priority and runAt never reorder commands within a key", async () => {
    const soon = new Date(Date.now() + 1_500).toISOString();
    const ids = await batch([
      cmd("prio", 0, { runAt: soon }),
      cmd("prio", 1, { priority: 1000 }),
      cmd("prio", 2, { priority: -1000, runAt: "2020-01-01T00:00:00Z" }),
    ]);
    // a command of another key, due now, runs meanwhile: the workers are not idle while the key waits
    const [other] = await batch([cmd("prio-other", 0, { priority: -5 })]);
    await waitUntil(allSucceeded([other!]), "the other key's command");
    expect(execsOf("prio")).toEqual([]);
    await waitUntil(allSucceeded(ids), "the key's commands");
    expect(orderProblems(execsOf("prio"), new Map([["prio", [0, 1, 2]]]))).toEqual([]);
  });
});
