// When results cannot be written (here: a lock that holds back the inserts of
// attempt records), the claim loop stops claiming at twice its usual leases
// instead of claiming on while its handlers finish; once writing resumes every
// command finishes, each with its one attempt. (In a soak, a stalled write had
// let two workers hold ~360,000 leases whose renewal in turn blocked writes.)
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import { createTestDb, type TestDb } from "../helpers/db";
import { startTestWorker, testClient, waitUntil } from "../helpers/engine";
import { createRegistry } from "../../server/command-types/registry";
import { defineCommandType } from "../../server/command-types/types";
import { directIntake, submitItems } from "../../server/commands/submit";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => t?.drop());

const instant = defineCommandType({
  name: "instant",
  description: "succeeds at once",
  schema: z.object({}),
  execute: async () => ({ outcome: "success" }),
  retry: { maxAttempts: 3, backoffMs: 100, maxBackoffMs: 1000 },
  retryBusinessFailures: false,
  compensateOnFailure: false,
  idempotent: () => true,
  timeoutMs: () => 10_000,
});
const registry = createRegistry([instant]);

it("claims no more than twice its concurrency and prefetch while results wait to be written, and finishes them all once they can be", async () => {
  const { clientId } = await testClient(t.db);
  const intake = directIntake(t.db, registry);
  const submitMany = (n: number) =>
    submitItems(
      intake,
      clientId,
      Array.from({ length: n }, () => ({ type: "instant", payload: {} })),
    );
  await submitMany(400);
  const leased = async () =>
    (await t.db.pool.query(`SELECT count(*)::int AS n FROM commands WHERE lease_id IS NOT NULL`)).rows[0].n as number;
  const blocker = await t.db.pool.connect();
  await blocker.query("BEGIN");
  await blocker.query("LOCK TABLE attempts IN EXCLUSIVE MODE"); // reads go on; the completions' inserts wait
  const worker = await startTestWorker(t.db, t.url, registry, { concurrency: 2, prefetch: 3, pollMs: 50 });
  try {
    const bound = 2 * (2 + 3);
    await waitUntil(async () => (await leased()) >= bound, "the worker to claim up to its bound");
    // New work wakes the loop (NOTIFY), and it polls every 50 ms: that it claims nothing more is an absence,
    // which no event announces, so it is checked after 20 polls.
    await submitMany(20);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await leased()).toBe(bound);
  } finally {
    await blocker.query("COMMIT");
    blocker.release();
  }
  await waitUntil(
    async () =>
      (await t.db.pool.query(`SELECT count(*)::int AS n FROM commands WHERE status = 'succeeded'`)).rows[0].n === 420,
    "every command to finish",
  );
  await worker.close();
  const { rows } = await t.db.pool.query(
    `SELECT count(*)::int AS n FROM commands c WHERE (SELECT count(*) FROM attempts a WHERE a.command_id = c.id) <> 1`,
  );
  expect(rows[0].n).toBe(0);
});
