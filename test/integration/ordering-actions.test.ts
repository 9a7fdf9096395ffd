// Ordering keys (DESIGN §7) when the head does not simply succeed: a command
// retrying holds its key; an exception blocks it until an operator acts, and
// each action releases the key (or not) as the contract says; a worker that
// dies holding a key's only command in flight does not let the next one start
// before the rescued one is reconciled and finished.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { attemptsOf, startTestWorker, testClient, waitForStatus, waitUntil, type TestWorker } from "../helpers/engine";
import { gate, orderedTypes, orderProblems, type Recorder } from "../helpers/ordering";
import { createDb, type Db } from "../../server/db/client";
import { directIntake, submitBatch } from "../../server/commands/submit";
import { cancelCommands, compensateCommands, resolveCommands, retryCommands } from "../../server/commands/actions";
import type { Registry } from "../../server/command-types/registry";

let t: TestDb;
let registry: Registry;
let rec: Recorder;
let clientId: string;
const pools: Db[] = [];
const workers: TestWorker[] = [];
const op = { name: "operator@example.com" };

beforeAll(async () => {
  t = await createTestDb();
  ({ registry, rec } = orderedTypes());
  ({ clientId } = await testClient(t.db));
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.close().catch(() => {})));
  await Promise.all(pools.map((p) => p.close()));
  await t?.drop();
});

async function worker(): Promise<TestWorker> {
  const db = createDb(t.url, { max: 5 });
  pools.push(db);
  const w = await startTestWorker(db, t.url, registry, { concurrency: 10 });
  workers.push(w);
  return w;
}

const cmd = (key: string, seq: number, extra: Record<string, unknown> = {}) => ({
  type: "ordered",
  payload: { key, seq, tag: `${key}#${seq}` },
  orderingKey: key,
  ...extra,
});
/** The head gives up at once: its first attempt's exception leaves it in `exception`. */
const givesUp = { retry: { maxAttempts: 1 } };
const batch = async (items: unknown[]) => {
  const receipts = await submitBatch(directIntake(t.db, registry), clientId, items);
  for (const r of receipts) if (!r.ok) throw new Error(JSON.stringify(r.error));
  return receipts.map((r) => (r as { id: string }).id);
};
const rows = async (ids: string[]) =>
  (
    await t.db.pool.query<{ status: string; key_waiting: boolean }>(
      `SELECT status, key_waiting FROM commands WHERE id = ANY($1::uuid[]) ORDER BY array_position($1::uuid[], id)`,
      [ids],
    )
  ).rows.map((r) => `${r.status}${r.key_waiting ? " (waiting)" : ""}`);
const settled = (ids: string[], states: string[]) => async () => (await rows(ids)).every((s, i) => s === states[i]);
/** What ran for the key, in the order it started: seq and kind. */
const ran = (key: string) =>
  rec.execs
    .filter((e) => e.key === key)
    .sort((a, b) => a.start - b.start)
    .map((e) => `${e.seq} ${e.kind}`);

let canaries = 0;
/**
 * A command of another key, due now and of the lowest priority, run to the
 * end: a worker had every chance to claim what was claimable before it.
 */
async function canary() {
  const key = `canary-${++canaries}`;
  const ids = await batch([cmd(key, 0, { priority: -1000 })]);
  await waitUntil(settled(ids, ["succeeded"]), "the canary to run");
}

describe("one worker", () => {
  beforeAll(async () => {
    await worker();
  });

  it("a head that is retrying (backoff) keeps the key's later commands waiting until it succeeds", async () => {
    rec.script.set("retry#0", ["throw"]);
    const ids = await batch([
      cmd("retry", 0, { retry: { backoffMs: 1500, maxBackoffMs: 1500 } }),
      cmd("retry", 1, { priority: 1000 }),
      cmd("retry", 2),
    ]);
    await waitUntil(settled(ids, ["retrying", "pending (waiting)", "pending (waiting)"]), "the head to be retrying");
    await canary();
    expect(ran("retry")).toEqual(["0 execute"]);
    await waitUntil(settled(ids, ["succeeded", "succeeded", "succeeded"]), "the key to finish");
    // the retry reconciles first (the outcome was unknown), finds nothing, executes; then the others
    expect(ran("retry")).toEqual(["0 execute", "0 reconcile", "0 execute", "1 execute", "2 execute"]);
    expect(rec.overlaps).toEqual([]);
  });

  it("an exception blocks the key; retry runs the blocked command again first, then the next ones", async () => {
    rec.script.set("x-retry#0", ["throw"]);
    const ids = await batch([cmd("x-retry", 0, givesUp), cmd("x-retry", 1), cmd("x-retry", 2)]);
    await waitUntil(settled(ids, ["exception", "pending (waiting)", "pending (waiting)"]), "the exception");
    await canary();
    expect(ran("x-retry")).toEqual(["0 execute"]);
    expect((await retryCommands(t.db, { ids: [ids[0]!] }, op, "backend fixed")).updated).toEqual([ids[0]]);
    await waitUntil(settled(ids, ["succeeded", "succeeded", "succeeded"]), "the key to finish");
    expect(ran("x-retry")).toEqual(["0 execute", "0 reconcile", "0 execute", "1 execute", "2 execute"]);
  });

  it.each(["succeeded", "failed"] as const)(
    "an exception resolved as %s releases the key: the next command runs, the resolved one does not",
    async (outcome) => {
      const key = `x-resolve-${outcome}`;
      rec.script.set(`${key}#0`, ["throw"]);
      const ids = await batch([cmd(key, 0, givesUp), cmd(key, 1)]);
      await waitUntil(settled(ids, ["exception", "pending (waiting)"]), "the exception");
      await canary();
      expect(ran(key)).toEqual(["0 execute"]);
      await resolveCommands(t.db, { ids: [ids[0]!] }, outcome, op, "checked at the backend");
      await waitUntil(settled(ids, [outcome, "succeeded"]), "the next command to run");
      expect(ran(key)).toEqual(["0 execute", "1 execute"]);
    },
  );

  it("an exception compensated: the compensating command holds the key until compensated, then the next runs", async () => {
    rec.script.set("x-comp#0", ["throw"]);
    const compensation = gate();
    rec.compensateGate.set("x-comp#0", compensation.promise);
    const ids = await batch([cmd("x-comp", 0, givesUp), cmd("x-comp", 1)]);
    await waitUntil(settled(ids, ["exception", "pending (waiting)"]), "the exception");
    const started = rec.started("x-comp#0");
    await compensateCommands(t.db, registry, { ids: [ids[0]!] }, op, "undo it");
    await started;
    await canary();
    expect(await rows(ids)).toEqual(["compensating", "pending (waiting)"]);
    expect(ran("x-comp")).toEqual(["0 execute", "0 compensate"]);
    compensation.open();
    await waitUntil(settled(ids, ["compensated", "succeeded"]), "the compensation and the next command");
    expect(ran("x-comp")).toEqual(["0 execute", "0 compensate", "1 execute"]);
    expect(
      orderProblems(
        rec.execs.filter((e) => e.key === "x-comp"),
        new Map([["x-comp", [0, 0, 1]]]),
      ),
    ).toEqual([]);
  });

  it("cancelling a waiting command skips it; the key stays blocked by its exception, and the rest keep order", async () => {
    rec.script.set("x-cancel#0", ["throw"]);
    const ids = await batch([cmd("x-cancel", 0, givesUp), cmd("x-cancel", 1), cmd("x-cancel", 2), cmd("x-cancel", 3)]);
    await waitUntil(settled(ids, ["exception", "pending (waiting)", "pending (waiting)", "pending (waiting)"]), "exc");
    expect((await cancelCommands(t.db, { ids: [ids[1]!] }, op, "not needed")).updated).toEqual([ids[1]]);
    await canary();
    expect(ran("x-cancel")).toEqual(["0 execute"]);
    expect((await rows(ids)).slice(2)).toEqual(["pending (waiting)", "pending (waiting)"]);
    await resolveCommands(t.db, { ids: [ids[0]!] }, "succeeded", op, "done by hand");
    await waitUntil(settled(ids, ["succeeded", "cancelled", "succeeded", "succeeded"]), "the rest");
    expect(ran("x-cancel")).toEqual(["0 execute", "2 execute", "3 execute"]);
  });

  it("cancelling the head (not due yet) lets the next command run", async () => {
    const ids = await batch([cmd("head-cancel", 0, { runAt: "2999-01-01T00:00:00Z" }), cmd("head-cancel", 1)]);
    await canary();
    expect(await rows(ids)).toEqual(["pending", "pending (waiting)"]);
    await cancelCommands(t.db, { ids: [ids[0]!] }, op, "wrong one");
    await waitUntil(settled(ids, ["cancelled", "succeeded"]), "the next command to run");
    expect(ran("head-cancel")).toEqual(["1 execute"]);
  });

  it("retrying a failed command while a later one is the head: it runs after that head, before the rest", async () => {
    rec.script.set("late-retry#0", ["fail"]);
    const hold = gate();
    rec.script.set("late-retry#1", [{ gate: hold.promise }]);
    const started = rec.started("late-retry#1");
    const ids = await batch([cmd("late-retry", 0), cmd("late-retry", 1), cmd("late-retry", 2)]);
    await started;
    expect(await rows(ids)).toEqual(["failed", "running", "pending (waiting)"]);
    await retryCommands(t.db, { ids: [ids[0]!] }, op, "try again");
    expect(await rows(ids)).toEqual(["pending (waiting)", "running", "pending (waiting)"]);
    await canary();
    expect(ran("late-retry")).toEqual(["0 execute", "1 execute"]);
    hold.open();
    await waitUntil(settled(ids, ["succeeded", "succeeded", "succeeded"]), "the key to finish");
    expect(ran("late-retry")).toEqual(["0 execute", "1 execute", "0 execute", "2 execute"]);
    expect(rec.overlaps).toEqual([]);
  });

  it("several failed commands of a key retried at once (in any order) run one at a time, in receipt order", async () => {
    for (let i = 0; i < 3; i++) rec.script.set(`multi#${i}`, ["fail"]);
    const ids = await batch([0, 1, 2].map((i) => cmd("multi", i)));
    await waitUntil(settled(ids, ["failed", "failed", "failed"]), "all three to fail");
    await retryCommands(t.db, { ids: [ids[2]!, ids[0]!, ids[1]!] }, op, "all again");
    await waitUntil(settled(ids, ["succeeded", "succeeded", "succeeded"]), "the retries");
    expect(ran("multi")).toEqual(["0 execute", "1 execute", "2 execute", "0 execute", "1 execute", "2 execute"]);
    expect(rec.overlaps).toEqual([]);
  });
});

describe("a worker dies holding the key's only command in flight", () => {
  it("the rescued command is reconciled and finished before the key's next command starts", async () => {
    await Promise.all(workers.splice(0).map((w) => w.close()));
    const victim = await worker();
    rec.script.set("crash#0", ["apply-then-hang"]);
    const started = rec.started("crash#0");
    const ids = await batch([cmd("crash", 0), cmd("crash", 1), cmd("crash", 2)]);
    await started;
    victim.abandon(); // as a crash: its lease is left to expire
    await worker();
    await waitUntil(settled(ids, ["succeeded", "succeeded", "succeeded"]), "the key to finish", 30_000);
    // applied once: the rescued attempt was reconciled (the backend had done it), not executed again
    expect(ran("crash")).toEqual(["0 execute", "0 reconcile", "1 execute", "2 execute"]);
    const a = await attemptsOf(t.db, ids[0]!);
    expect(a.map((x) => [x.kind, x.outcome])).toEqual([
      ["execute", "exception"],
      ["reconcile", "success"],
    ]);
    expect(a[0]!.error).toMatch(/lease expired/);
    const execs = rec.execs.filter((e) => e.key === "crash").sort((x, y) => x.start - y.start);
    expect(execs[2]!.start).toBeGreaterThan(execs[1]!.end);
    expect(rec.overlaps).toEqual([]);
    expect((await waitForStatus(t.db, ids[2]!, ["succeeded"])).attempt_count).toBe(1);
  });
});
