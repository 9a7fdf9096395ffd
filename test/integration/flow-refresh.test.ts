// A worker's knowledge of circuits against a real PostgreSQL: a refresh of the
// flow scopes that read its snapshot before a circuit opened must not make the
// worker forget the opening it heard of meanwhile, or a command it claimed
// earlier would start against the open circuit (the fault suite's bound on
// requests to a dead backend).
import { afterAll, beforeAll, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { createTestDb, type TestDb } from "../helpers/db";
import { createRegistry } from "../../server/command-types/registry";
import { http as httpType } from "../../server/command-types/http";
import { flowControl } from "../../server/worker/flow";
import { createLogger } from "../../server/log";
import type { Db } from "../../server/db/client";
import type { Claimed } from "../../server/engine/types";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => t?.drop());

/** The real pool, except that the result of the next read of the gated scopes is held back until released. */
function holdingScopesRead(db: Db) {
  let armed = false;
  let read!: () => void;
  const wasRead = new Promise<void>((r) => (read = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let delivered!: Promise<unknown>;
  const pool = new Proxy(db.pool, {
    get(target, prop, receiver) {
      if (prop !== "query") return Reflect.get(target, prop, receiver);
      return (text: unknown, ...rest: unknown[]) => {
        const q = (target.query as (...a: unknown[]) => Promise<pg.QueryResult>).call(target, text, ...rest);
        if (!armed || typeof text !== "string" || !text.includes("WHERE gated OR consecutive_exceptions > 0")) return q;
        armed = false;
        return (delivered = q.then(async (r) => {
          read();
          await released;
          return r;
        }));
      };
    },
  });
  return {
    db: { ...db, pool } as Db,
    arm: () => (armed = true),
    wasRead,
    release: async () => {
      release();
      await delivered;
      // what the worker does with the result runs in the promise callbacks after it
      await new Promise<void>((r) => setImmediate(r));
    },
  };
}

it("keeps a circuit opening it heard of while a refresh was reading an older snapshot", async () => {
  const gate = holdingScopesRead(t.db);
  const registry = createRegistry([httpType]);
  const flow = flowControl({
    db: gate.db,
    registry,
    log: createLogger({ name: "flow-refresh-test", level: "silent" }),
    workerId: "w-refresh",
    leaseMs: 30_000,
    pollMs: 1_000,
    wake: () => {},
  });
  const claimed = (): Claimed => ({
    id: randomUUID(),
    leaseId: randomUUID(),
    type: "http",
    payload: {},
    status: "running",
    phase: "execute",
    tries: 1,
    attemptCount: 1,
    needsReconcile: false,
    maxAttempts: 3,
    backoffMs: 100,
    maxBackoffMs: 200,
    stateChangedAt: new Date(),
    clientId: "c",
    runAt: new Date(),
    targetHost: "127.0.0.1",
    probe: false,
    keyed: false,
    trace: null,
  });
  gate.arm();
  flow.start(); // its first refresh reads the scopes now: no circuit has counted anything yet
  try {
    await gate.wasRead;
    // meanwhile five exceptions (the default threshold) open the circuit of 127.0.0.1
    for (let i = 0; i < 5; i++) await flow.exception(claimed());
    const { rows } = await t.db.pool.query(
      `SELECT circuit_state FROM flow_scopes WHERE kind = 'host' AND name = '127.0.0.1'`,
    );
    expect(rows[0]?.circuit_state).toBe("open");
    expect(flow.holdBack(claimed())).toBe(true);
    await gate.release(); // the old snapshot arrives
    expect(flow.holdBack(claimed())).toBe(true);
  } finally {
    flow.stop();
  }
});
