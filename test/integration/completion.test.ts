// complete() writes its two JSON documents as text (server/db/completion.ts): what a
// handler returns or throws must reach the database unchanged, times to the millisecond.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { submitWith, testClient, testTypes } from "../helpers/engine";
import { claim } from "../../server/db/claim";
import { complete, completionDocuments } from "../../server/db/completion";
import type { Completion } from "../../server/engine/types";

let t: TestDb;
let submit: (input: Record<string, unknown>) => Promise<string>;
const registry = testTypes({ calls: new Map(), running: 0, maxRunning: 0 });

beforeAll(async () => {
  t = await createTestDb();
  const { clientId } = await testClient(t.db);
  submit = submitWith(t.db, registry, clientId);
});
afterAll(async () => {
  await t?.drop();
});

const awkward = `quotes " and \\ backslash, a newline\nand a tab\t, unicode é ✓ 🚚, </script>, {"json": 1}`;

async function claimOne(id: string) {
  const [c] = (await claim(t.db, "test-completion", 100, 30_000, [])).filter((x) => x.id === id);
  expect(c).toBeDefined();
  return c!;
}

describe("complete()", () => {
  it("stores awkward text, nested results and attempt times exactly", async () => {
    const id = await submit({ type: "http", payload: { url: "http://127.0.0.1:9/x" } });
    const c = await claimOne(id);
    const startedAt = new Date(Date.UTC(2026, 10, 29, 12, 34, 56, 789));
    const finishedAt = new Date(startedAt.getTime() + 1_001);
    const result = { text: awkward, n: 1.5, list: [null, true, { deep: awkward }] };
    const completion: Completion = {
      id,
      leaseId: c.leaseId,
      status: "succeeded",
      phase: "execute",
      runAt: null,
      tries: 1,
      needsReconcile: false,
      result,
      error: null,
      attemptCount: 2,
      attempts: [
        {
          number: 1,
          kind: "reconcile",
          outcome: "not_found",
          startedAt,
          finishedAt: startedAt,
          error: null,
          worker: `w"1`,
          detail: { said: awkward },
        },
        {
          number: 2,
          kind: "execute",
          outcome: "success",
          startedAt,
          finishedAt,
          error: awkward,
          worker: `w"1`,
          detail: () => "not JSON",
        },
      ],
    };
    expect([...(await complete(t.db.pool, [completion]))]).toEqual([id]);
    const row = (
      await t.db.pool.query(`SELECT status, result, error, attempt_count, lease_id FROM commands WHERE id = $1`, [id])
    ).rows[0];
    expect(row).toEqual({ status: "succeeded", result, error: null, attempt_count: 2, lease_id: null });
    const attempts = (
      await t.db.pool.query(
        `SELECT number, kind, outcome, started_at, finished_at, error, worker, detail FROM attempts WHERE command_id = $1 ORDER BY number`,
        [id],
      )
    ).rows;
    expect(attempts).toEqual([
      {
        number: 1,
        kind: "reconcile",
        outcome: "not_found",
        started_at: startedAt,
        finished_at: startedAt,
        error: null,
        worker: `w"1`,
        detail: { said: awkward },
      },
      {
        number: 2,
        kind: "execute",
        outcome: "success",
        started_at: startedAt,
        finished_at: finishedAt,
        error: awkward,
        worker: `w"1`,
        detail: null,
      },
    ]);
  });

  it("keeps the stored result and failure when the completion leaves them undefined, and sets run_at", async () => {
    const id = await submit({ type: "http", payload: { url: "http://127.0.0.1:9/x" } });
    await t.db.pool.query(`UPDATE commands SET failure = '{"kept": true}' WHERE id = $1`, [id]);
    const c = await claimOne(id);
    const runAt = new Date(Date.now() + 60_000);
    await complete(t.db.pool, [
      {
        id,
        leaseId: c.leaseId,
        status: "retrying",
        phase: "execute",
        runAt,
        tries: 1,
        needsReconcile: true,
        error: awkward,
        attemptCount: 1,
        attempts: [],
      },
    ]);
    const row = (
      await t.db.pool.query(`SELECT status, failure, error, run_at, needs_reconcile FROM commands WHERE id = $1`, [id])
    ).rows[0];
    expect(row).toEqual({
      status: "retrying",
      failure: { kept: true },
      error: awkward,
      run_at: runAt,
      needs_reconcile: true,
    });
  });

  it("clears a stored result or failure when the completion sets it to null, and needs_reconcile when it is false", async () => {
    const id = await submit({ type: "http", payload: { url: "http://127.0.0.1:9/x" } });
    await t.db.pool.query(
      `UPDATE commands SET result = '{"old": 1}', failure = '{"old": 2}', needs_reconcile = true WHERE id = $1`,
      [id],
    );
    const c = await claimOne(id);
    await complete(t.db.pool, [
      {
        id,
        leaseId: c.leaseId,
        status: "retrying",
        phase: "execute",
        runAt: null,
        tries: 1,
        needsReconcile: false,
        result: null,
        failure: undefined,
        error: null,
        attemptCount: 1,
        attempts: [],
      },
    ]);
    expect(
      (await t.db.pool.query(`SELECT result, failure, needs_reconcile FROM commands WHERE id = $1`, [id])).rows[0],
    ).toEqual({ result: null, failure: { old: 2 }, needs_reconcile: false });
  });

  it("writes documents that are plain JSON", () => {
    const startedAt = new Date(1_800_000_000_123);
    const docs = completionDocuments([
      {
        id: "a",
        leaseId: "b",
        status: "awaiting",
        phase: "execute",
        runAt: "infinity",
        tries: 0,
        needsReconcile: false,
        result: undefined,
        failure: Symbol("x"),
        error: null,
        attemptCount: 1,
        attempts: [
          {
            number: 1,
            kind: "execute",
            outcome: "accepted",
            startedAt,
            finishedAt: startedAt,
            error: null,
            worker: "w",
            detail: undefined,
          },
        ],
      },
    ]);
    // SQL NULLs are left out (json_to_recordset reads a missing key as NULL)
    expect(JSON.parse(docs.input)).toEqual([
      {
        id: "a",
        lease_id: "b",
        status: "awaiting",
        phase: "execute",
        run_at: "infinity",
        tries: 0,
        set_failure: true,
        attempt_count: 1,
      },
    ]);
    expect(JSON.parse(docs.attempts)).toEqual([
      {
        command_id: "a",
        number: 1,
        kind: "execute",
        outcome: "accepted",
        started_at: 1_800_000_000_123,
        finished_at: 1_800_000_000_123,
        worker: "w",
      },
    ]);
  });
});
