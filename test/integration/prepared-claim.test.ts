// The claim as a named (prepared) statement (server/db/claim.ts): used only
// once the statistics know the commands table, where its generic plan walks
// the claim index; never with DB_PREPARED_STATEMENTS=off; and a schema change
// under it sends the worker back to the unprepared claim, losing nothing.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import {
  startTestWorker,
  submitWith,
  testClient,
  testTypes,
  waitForStatus,
  waitUntil,
  type TestWorker,
} from "../helpers/engine";
import { claim, commandsRowEstimate, PREPARED_CLAIM_MIN_ROWS, PREPARED_CLAIM_TEXT } from "../../server/db/claim";
import { createDb, type Db } from "../../server/db/client";
import { createRegistry } from "../../server/command-types/registry";

let t: TestDb;
let submit: (input: Record<string, unknown>) => Promise<string>;
let worker: TestWorker | undefined;
let wdb: Db | undefined;
// Without a capped type: a worker with one claims with a type filter, which is never prepared.
const registry = createRegistry([testTypes({ calls: new Map(), running: 0, maxRunning: 0 }).get("flaky")!]);

beforeAll(async () => {
  t = await createTestDb();
  const { clientId } = await testClient(t.db);
  submit = submitWith(t.db, registry, clientId);
});
afterEach(async () => {
  await worker?.close();
  worker = undefined;
  await wdb?.close();
  wdb = undefined;
});
afterAll(async () => {
  await t?.drop();
});

/** A worker on its own pool that records what it sends: statement names, and when its table-size check has answered. */
async function recordingWorker(opts: { preparedStatements?: boolean } = {}) {
  // One connection: a prepared statement lives on the connection that prepared it, so with several the claim
  // after a schema change may land on one that never prepared it (and is not refused).
  wdb = createDb(t.url, { max: 1 });
  const sent: string[] = [];
  const query = wdb.pool.query.bind(wdb.pool) as (...args: unknown[]) => Promise<unknown>;
  (wdb.pool as unknown as { query: unknown }).query = async (...args: unknown[]) => {
    const q = args[0] as string | { name?: string; text: string };
    const label =
      typeof q === "string"
        ? q.includes("reltuples")
          ? "size-check"
          : "sql"
        : (q.name ?? (q.text.includes("WITH due AS") ? "unnamed-claim" : "sql"));
    try {
      const out = await query(...args);
      sent.push(label);
      return out;
    } catch (err) {
      sent.push(`${label} refused`);
      throw err;
    }
  };
  worker = await startTestWorker(wdb, t.url, registry, opts);
  if (opts.preparedStatements !== false) await waitUntil(() => sent.includes("size-check"), "the table-size check");
  return sent;
}

const runOne = async () => {
  const id = await submit({ type: "flaky", payload: { succeedOn: 1 } });
  await waitForStatus(t.db, id, ["succeeded"]);
};

describe("the prepared claim", () => {
  it("is not used while the statistics see the table as empty", async () => {
    expect(await commandsRowEstimate(t.db)).toBeLessThan(PREPARED_CLAIM_MIN_ROWS);
    const sent = await recordingWorker();
    await runOne();
    expect(sent).toContain("unnamed-claim");
    expect(sent).not.toContain("conveyor_claim_v2");
  });

  it("has a generic plan that walks the claim index once the table is known, whatever its mix of states", async () => {
    const { clientId } = await testClient(t.db);
    await t.db.pool.query(
      `INSERT INTO commands (id, client_id, type, payload) SELECT gen_random_uuid(), $1, 'flaky', '{"succeedOn": 1}' FROM generate_series(1, 1500)`,
      [clientId],
    );
    await t.db.pool.query(`UPDATE commands SET status = 'cancelled', run_at = 'infinity' WHERE status = 'pending'`);
    for (const pending of [0, 50, 3000]) {
      if (pending)
        await t.db.pool.query(
          `INSERT INTO commands (id, client_id, type, payload, run_at)
           SELECT gen_random_uuid(), $1, 'flaky', '{}', 'infinity' FROM generate_series(1, $2::int)`,
          [clientId, pending],
        );
      await t.db.pool.query("ANALYZE commands");
      expect(await commandsRowEstimate(t.db)).toBeGreaterThanOrEqual(PREPARED_CLAIM_MIN_ROWS);
      const plan = (await t.db.pool.query(`EXPLAIN (GENERIC_PLAN) ${PREPARED_CLAIM_TEXT}`)).rows
        .map((r) => r["QUERY PLAN"])
        .join("\n");
      expect(plan, `${pending} pending`).toMatch(/Index Scan using commands_claim_idx/);
      expect(plan, `${pending} pending`).not.toMatch(/Sort/);
    }
  });

  it("runs on its generic plan once PostgreSQL has seen a few executions (no planning per claim)", async () => {
    const one = createDb(t.url, { max: 1 }); // one connection: the statement and the view of it share a session
    try {
      for (let i = 0; i < 8; i++) expect(await claim(one, "test-prepared", 210, 30_000, [], true)).toEqual([]);
      const { rows } = await one.pool.query(
        `SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'conveyor_claim_v2'`,
      );
      expect(rows).toHaveLength(1);
      expect(Number(rows[0].generic_plans)).toBeGreaterThanOrEqual(2);
    } finally {
      await one.close();
    }
  });

  it("is used on a known table, and commands run as before", async () => {
    const sent = await recordingWorker();
    for (let i = 0; i < 3; i++) await runOne();
    expect(sent).toContain("conveyor_claim_v2");
  });

  it("is never used with DB_PREPARED_STATEMENTS=off", async () => {
    const sent = await recordingWorker({ preparedStatements: false });
    await runOne();
    expect(sent).toContain("unnamed-claim");
    expect(sent).not.toContain("conveyor_claim_v2");
  });

  it("gives way when a migration changes a column it returns, and nothing is lost", async () => {
    const sent = await recordingWorker();
    await runOne();
    expect(sent).toContain("conveyor_claim_v2");
    // as a migration would, while this worker runs: the prepared statement's result type changes. Counted from
    // before the change: the worker's idle claim may meet it (and be refused) before this await resumes.
    const before = sent.length;
    await t.db.pool.query(`ALTER TABLE commands ALTER COLUMN max_attempts TYPE bigint`);
    await runOne();
    await runOne();
    const after = sent.slice(before);
    expect(after).toContain("conveyor_claim_v2 refused");
    // after the refusal, the worker claims unprepared only
    const refusal = after.indexOf("conveyor_claim_v2 refused");
    expect(after.slice(refusal + 1)).toContain("unnamed-claim");
    expect(after.slice(refusal + 1).filter((x) => x.startsWith("conveyor_claim_v2"))).toEqual([]);
  });
});
