// Commands stored, leased and completed straight through server/db (no worker):
// for tests of the statements themselves (lock order, the completer).
import { randomUUID } from "node:crypto";
import type { Db } from "../../server/db/client";
import { insertCommands, type NewCommand } from "../../server/db/commands";
import { claim } from "../../server/db/claim";
import type { Claimed, Completion } from "../../server/engine/types";

/** A row as intake stores it: no key, no callback, due now, unless `over` says otherwise. */
export const commandRow = (clientId: string, over: Partial<NewCommand> = {}): NewCommand => ({
  id: randomUUID(),
  clientId,
  type: "lockorder",
  payload: {},
  idempotencyKey: null,
  callbackUrl: null,
  priority: 0,
  runAt: null,
  maxAttempts: null,
  backoffMs: null,
  maxBackoffMs: null,
  orderingKey: null,
  targetHost: null,
  traceParent: null,
  traceState: null,
  ...over,
});

/** `n` new commands, claimed by `worker` (all of them, or the test fails). */
export async function leasedCommands(
  db: Db,
  clientId: string,
  n: number,
  over: Partial<NewCommand> = {},
  worker = "test",
): Promise<Claimed[]> {
  await insertCommands(
    db,
    Array.from({ length: n }, () => commandRow(clientId, over)),
  );
  const claimed = await claim(db, worker, n, 60_000, []);
  if (claimed.length !== n) throw new Error(`claimed ${claimed.length} of ${n} commands`);
  return claimed;
}

/** The completion of a first attempt that succeeded with { ok: true }. */
export const succeededCompletion = (c: Claimed, worker = "t"): Completion => {
  const now = new Date();
  return {
    id: c.id,
    leaseId: c.leaseId,
    status: "succeeded",
    phase: "execute",
    runAt: null,
    tries: 0,
    needsReconcile: false,
    result: { ok: true },
    error: null,
    attemptCount: 1,
    attempts: [
      { number: 1, kind: "execute", outcome: "success", startedAt: now, finishedAt: now, error: null, worker },
    ],
  };
};
