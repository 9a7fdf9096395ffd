// The SQL each operator action writes (server/db/operator-actions.ts), column
// by column: the decision table of test/helpers/operator-table.ts, walked over
// commands that have every column set, so that a column the action should keep
// and one it should set both show.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { testClient, submitWith } from "../helpers/engine";
import { moveTo } from "../helpers/fixtures";
import { OPERATOR_ROWS, rowName, type OperatorRow } from "../helpers/operator-table";
import { registry } from "../../server/command-types";
import {
  cancelCommands,
  compensateCommands,
  editAndRetryCommand,
  resolveCommands,
  retryCommands,
} from "../../server/commands/actions";
import type { State } from "../../server/engine/states";

let t: TestDb;
let clientId: string;

beforeAll(async () => {
  t = await createTestDb();
  ({ clientId } = await testClient(t.db));
});
afterAll(async () => {
  await t?.drop();
});

/** The transitions that lead to each starting point of the table (the database allows no shortcut). */
const PATHS: Record<string, string[]> = {
  "pending/execute": [],
  "retrying/execute": ["running", "retrying"],
  "awaiting/execute": ["running", "awaiting"],
  "succeeded/execute": ["running", "succeeded"],
  "failed/execute": ["running", "failed"],
  "exception/execute": ["running", "exception"],
  "exception/compensate": ["running", "succeeded", "compensating", "exception"],
  "cancelled/execute": ["cancelled"],
};

const BEFORE = { tries: 2, runAt: "2999-01-01T00:00:00.000Z", error: "before", failure: { before: 1 } };

async function commandAt(r: OperatorRow, n: number): Promise<string> {
  const id = await submitWith(
    t.db,
    registry,
    clientId,
  )({
    type: "http",
    idempotencyKey: `op-${n}`,
    payload: { url: "https://backend.example/x", compensateUrl: "https://backend.example/undo" },
    runAt: BEFORE.runAt,
  });
  await moveTo(t.db, id, PATHS[`${r.from}/${r.phase}`]!);
  // Every column the actions may change holds something (status stays: no transition).
  await t.db.pool.query(
    `UPDATE commands SET tries = $2, run_at = $3, needs_reconcile = true, error = $4, failure = $5, result = '{"r":1}'
     WHERE id = $1`,
    [id, BEFORE.tries, BEFORE.runAt, BEFORE.error, BEFORE.failure],
  );
  return id;
}

function act(r: OperatorRow, id: string) {
  const target = { ids: [id] };
  const actor = { name: "table" };
  switch (r.action) {
    case "retry":
      return retryCommands(t.db, target, actor, null);
    case "compensate":
      return compensateCommands(t.db, registry, target, actor, null);
    case "cancel":
      return cancelCommands(t.db, target, actor, null);
    case "resolve":
      return resolveCommands(t.db, target, r.outcome!, actor, "by hand");
    case "editAndRetry":
      return editAndRetryCommand(
        { db: t.db, registry },
        id,
        { url: "https://backend.example/edited", compensateUrl: "https://backend.example/undo" },
        actor,
        "corrected",
      );
  }
}

OPERATOR_ROWS.forEach((r, n) => {
  it(rowName(r), async () => {
    const id = await commandAt(r, n);
    const before = (await t.db.pool.query(`SELECT status, phase FROM commands WHERE id = $1`, [id])).rows[0];
    expect(before).toEqual({ status: r.from, phase: r.phase });
    const done = await act(r, id);
    expect(done).toEqual({ updated: [id], skipped: [] });
    const { rows } = await t.db.pool.query<{
      status: State;
      phase: string;
      tries: number;
      run_at: Date;
      due_now: boolean;
      needs_reconcile: boolean;
      error: string | null;
      failure: unknown;
      result: unknown;
    }>(
      `SELECT status, phase, tries, run_at, run_at <= now() AS due_now, needs_reconcile, error, failure, result
       FROM commands WHERE id = $1`,
      [id],
    );
    const row = rows[0]!;
    const e = r.expect;
    expect({
      status: row.status,
      phase: row.phase,
      tries: row.tries,
      runAt: row.due_now ? "now" : row.run_at.toISOString(),
      needsReconcile: row.needs_reconcile,
      error: row.error,
      failure: row.failure,
      result: row.result,
    }).toEqual({
      status: e.status,
      phase: e.phase,
      tries: e.tries === "reset" ? 0 : BEFORE.tries,
      runAt: e.runAt === "now" ? "now" : BEFORE.runAt,
      needsReconcile: e.needsReconcile === "kept",
      error: e.error === "kept" ? BEFORE.error : null,
      failure: e.failure === "kept" ? BEFORE.failure : null,
      result: { r: 1 },
    });
  });
});
