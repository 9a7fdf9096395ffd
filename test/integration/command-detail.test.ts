// commands.get as an operator reads it, over real HTTP, while a real worker
// carries commands out: the attempt in progress (finishedAt null), attempts in
// the order they were made with one numbering, callbacks apart with their own
// tries, and every count meaning what its label says.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createTestDb, type TestDb } from "../helpers/db";
import { startBackend, type Backend } from "../helpers/backend";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";
import {
  getRow,
  startTestWorker,
  submitWith,
  testClient,
  waitForStatus,
  waitUntil,
  type TestWorker,
} from "../helpers/engine";
import { createRegistry } from "../../server/command-types/registry";
import { http } from "../../server/command-types/http";
import { defineCommandType, type CommandType } from "../../server/command-types/types";
import { claimCallbacks, finishCallback } from "../../server/db/callbacks";

/**
 * A type that does what the test scripts, call by call (execute and query
 * alike), and can hold a call until the test lets it go: that is how the
 * test sees an attempt while it is in progress.
 */
type Step = {
  op: "execute" | "query";
  gate?: boolean;
  then: "success" | "throw" | "accepted" | "not_found" | "unknown";
};
const scripts = new Map<string, Step[]>();
type Deferred = { promise: Promise<void>; resolve: () => void };
const deferred = (): Deferred => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};
const held = new Map<string, { started: Deferred; release: Deferred }>();
const gate = (name: string) => {
  let g = held.get(name);
  if (!g) held.set(name, (g = { started: deferred(), release: deferred() }));
  return g;
};
async function step(script: string, op: Step["op"]) {
  const s = scripts.get(script)?.shift();
  if (!s || s.op !== op) throw new Error(`script ${script}: unexpected ${op}`);
  if (s.gate) {
    const g = gate(script);
    g.started.resolve();
    await g.release.promise;
    held.delete(script);
  }
  if (s.then === "throw") throw new Error("backend did not answer");
  return s.then;
}
const scripted = defineCommandType({
  name: "scripted",
  description: "does what the test's script says",
  schema: z.object({ script: z.string() }),
  retry: { maxAttempts: 2, backoffMs: 10, maxBackoffMs: 20 },
  retryBusinessFailures: false,
  compensateOnFailure: false,
  idempotent: () => true,
  timeoutMs: () => 20_000,
  poll: { intervalMs: 10, maxIntervalMs: 20 },
  execute: async (p) => {
    const r = await step(p.script, "execute");
    return r === "accepted" ? { outcome: "accepted" } : { outcome: "success", result: { done: true } };
  },
  query: async (p) => {
    const r = await step(p.script, "query");
    return r === "success"
      ? { outcome: "success", result: { done: true } }
      : r === "not_found"
        ? { outcome: "not_found" }
        : { outcome: "unknown" };
  },
});
const registry = createRegistry([http, scripted] as CommandType<any>[]);

let t: TestDb;
let api: ApiServer;
let backend: Backend;
let worker: TestWorker | undefined;
let submit: (input: Record<string, unknown>) => Promise<string>;
let admin: ReturnType<typeof client>;
const WORKER = "detail-worker-1";

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db, { registry });
  backend = await startBackend();
  const { clientId } = await testClient(t.db);
  submit = submitWith(t.db, registry, clientId);
  admin = client(api.url, (await newToken(t.db, "admin", "ops")).token);
});
afterEach(async () => {
  for (const g of held.values()) g.release.resolve();
  await worker?.close();
  worker = undefined;
});
afterAll(async () => {
  await backend?.close();
  await api?.close();
  await t?.drop();
});

const start = async (opts = {}) =>
  (worker = await startTestWorker(t.db, t.url, registry, { workerId: WORKER, ...opts }));
async function get(id: string) {
  const r = await admin.query("commands.get", { id });
  expect(r.status).toBe(200);
  return r.data as {
    command: {
      status: string;
      attemptCount: number;
      tries: number;
      maxAttempts: number | null;
      worker: string | null;
      error: string | null;
    };
    readAt: string;
    attempts: {
      number: number;
      kind: string;
      outcome: string | null;
      startedAt: string;
      finishedAt: string | null;
      elapsedMs: number | null;
      error: string | null;
      worker: string;
      leaseExpired: boolean;
    }[];
    callbacks: {
      status: string;
      attempts: number;
      deliveredAt: string | null;
      tries: {
        number: number;
        outcome: string | null;
        httpStatus: number | null;
        inProgress: boolean;
        error: string | null;
      }[];
    }[];
  };
}
const run = (script: string, steps: Step[], extra: Record<string, unknown> = {}) => {
  scripts.set(script, steps);
  return submit({ type: "scripted", payload: { script }, ...extra });
};

describe("commands.get: the attempt in progress", () => {
  it("lists a running command's attempt with finishedAt and outcome null, its start, elapsed time and worker; then as finished", async () => {
    await start();
    const id = await run("running-1", [{ op: "execute", gate: true, then: "success" }]);
    await gate("running-1").started.promise;

    const d = await get(id);
    expect(d.command).toMatchObject({ status: "running", attemptCount: 0, worker: WORKER });
    expect(d.attempts).toHaveLength(1);
    const a = d.attempts[0]!;
    expect(a).toMatchObject({
      number: 1,
      kind: "execute",
      outcome: null,
      finishedAt: null,
      error: null,
      worker: WORKER,
      leaseExpired: false,
    });
    // started when the worker claimed it; elapsed as of the read, on the database's clock
    const row = (await t.db.pool.query(`SELECT attempt_started_at FROM commands WHERE id = $1`, [id])).rows[0];
    expect(a.startedAt).toBe(row.attempt_started_at.toISOString());
    expect(a.elapsedMs).toBe(Date.parse(d.readAt) - Date.parse(a.startedAt));
    expect(a.elapsedMs).toBeGreaterThanOrEqual(0);

    gate("running-1").release.resolve();
    await waitForStatus(t.db, id, ["succeeded"]);
    const done = await get(id);
    expect(done.command).toMatchObject({ status: "succeeded", attemptCount: 1, worker: null });
    expect(done.attempts).toMatchObject([
      { number: 1, kind: "execute", outcome: "success", worker: WORKER, elapsedMs: null },
    ]);
    expect(done.attempts[0]!.finishedAt).not.toBeNull();
  });

  it("names the attempt in progress by what the claim does: a reconcile after an unknown outcome, a poll while awaiting", async () => {
    await start();
    const id = await run("reconcile-1", [
      { op: "execute", then: "throw" },
      { op: "query", gate: true, then: "not_found" },
      { op: "execute", then: "success" },
    ]);
    await gate("reconcile-1").started.promise;
    const d = await get(id);
    expect(d.command).toMatchObject({ status: "running", attemptCount: 1 });
    expect(d.attempts.map((a) => [a.number, a.kind, a.outcome, a.finishedAt === null])).toEqual([
      [1, "execute", "exception", false],
      [2, "reconcile", null, true],
    ]);
    gate("reconcile-1").release.resolve();
    await waitForStatus(t.db, id, ["succeeded"]);
    expect((await get(id)).attempts.map((a) => [a.number, a.kind, a.outcome])).toEqual([
      [1, "execute", "exception"],
      [2, "reconcile", "not_found"],
      [3, "execute", "success"],
    ]);

    const polled = await run("poll-1", [
      { op: "execute", then: "accepted" },
      { op: "query", gate: true, then: "success" },
    ]);
    await gate("poll-1").started.promise;
    const p = await get(polled);
    expect(p.command).toMatchObject({ status: "awaiting", attemptCount: 1, worker: WORKER });
    expect(p.attempts.map((a) => [a.number, a.kind, a.outcome, a.finishedAt === null])).toEqual([
      [1, "execute", "accepted", false],
      [2, "poll", null, true],
    ]);
    gate("poll-1").release.resolve();
    await waitForStatus(t.db, polled, ["succeeded"]);
    expect((await get(polled)).attempts.filter((a) => a.finishedAt === null)).toEqual([]);
  });

  it("says when the lease of the attempt in progress has expired (its worker stopped renewing it)", async () => {
    const w = await startTestWorker(t.db, t.url, registry, { workerId: "doomed-worker", rescueEveryMs: 60_000 });
    const id = await run("expired-1", [{ op: "execute", gate: true, then: "success" }]);
    await gate("expired-1").started.promise;
    w.abandon();
    await t.db.pool.query(`UPDATE commands SET locked_until = now() - interval '1 second' WHERE id = $1`, [id]);
    const d = await get(id);
    expect(d.attempts).toMatchObject([
      { number: 1, kind: "execute", outcome: null, finishedAt: null, worker: "doomed-worker", leaseExpired: true },
    ]);
    gate("expired-1").release.resolve();
    await w.close();
  });
});

describe("commands.get: one history, one numbering, counts that agree", () => {
  it("keeps callbacks out of the attempts, numbers attempts once in time order across an operator's retry, and says tries where it counts tries", async () => {
    await start();
    backend.callbackPlan([500]); // the first notification's first try fails, its second is delivered
    const id = await run(
      "history-1",
      [
        { op: "execute", then: "throw" }, // try 1: outcome unknown
        { op: "query", then: "unknown" }, // try 2: the backend cannot tell: maxAttempts 2 reached
        { op: "query", then: "not_found" }, // after the operator's retry: never arrived (uses no try)
        { op: "execute", then: "success" }, // try 1 of the new round
      ],
      { callbackUrl: `${backend.url}/callback` },
    );
    await waitForStatus(t.db, id, ["exception"]);
    const ex = await get(id);
    expect(ex.command.error).toBe(
      "reconcile: the backend cannot tell yet what became of the last attempt; gave up after 2 tries (maxAttempts 2)",
    );
    expect(ex.command).toMatchObject({ attemptCount: 2, tries: 2, maxAttempts: 2 });
    await waitUntil(
      async () => (await get(id)).callbacks[0]?.deliveredAt != null,
      "the exception's notification delivered",
    );

    const retried = await admin.mutation("commands.retry", { ids: [id], reason: "backend is back" });
    expect(retried.data.updated).toEqual([id]);
    await waitForStatus(t.db, id, ["succeeded"]);
    await waitUntil(
      async () => (await get(id)).callbacks.length === 2 && (await get(id)).callbacks[1]!.deliveredAt != null,
      "the success's notification delivered",
    );

    const d = await get(id);
    // attempts: the requests to the backend, in the order made, numbered 1..n once
    expect(d.attempts.map((a) => [a.number, a.kind, a.outcome])).toEqual([
      [1, "execute", "exception"],
      [2, "reconcile", "unknown"],
      [3, "reconcile", "not_found"],
      [4, "execute", "success"],
    ]);
    const starts = d.attempts.map((a) => Date.parse(a.startedAt));
    expect(starts).toEqual([...starts].sort((x, y) => x - y));
    // every count of attempts is the same number: the command's attemptCount, the list's, the entries listed
    const row = await getRow(t.db, id);
    expect(d.command.attemptCount).toBe(4);
    expect(row.attempt_count).toBe(4);
    expect(d.attempts.filter((a) => a.finishedAt !== null)).toHaveLength(d.command.attemptCount);
    const listed = await admin.query("commands.list", { q: id });
    expect(listed.data.items.map((i: { attemptCount: number }) => i.attemptCount)).toEqual([4]);
    // tries: this round's use of the retry budget (the reconcile that found nothing sent used none)
    expect(d.command).toMatchObject({ status: "succeeded", tries: 1, maxAttempts: 2, error: null });

    // callbacks: one delivery per notified state, each with its own tries (the counter = the tries listed)
    expect(
      d.callbacks.map((b) => [b.status, b.attempts, b.tries.map((x) => [x.number, x.outcome, x.httpStatus])]),
    ).toEqual([
      [
        "exception",
        2,
        [
          [1, "exception", 500],
          [2, "success", 200],
        ],
      ],
      ["succeeded", 1, [[1, "success", 200]]],
    ]);
  });

  it("lists a callback try being sent, and one whose sender stopped before recording it, so that the count is the tries shown", async () => {
    await start({ callbacks: false });
    const id = await run("cb-tries-1", [{ op: "execute", then: "success" }], {
      callbackUrl: `${backend.url}/callback`,
    });
    await waitForStatus(t.db, id, ["succeeded"]);

    // The engine's own sender steps: take the delivery (try 1 in flight) …
    const [due] = await claimCallbacks(t.db, 10, 60_000);
    expect(due!.commandId).toBe(id);
    expect((await get(id)).callbacks[0]!.tries).toMatchObject([{ number: 1, inProgress: true, outcome: null }]);
    // … record it as failed and due again now …
    await finishCallback(t.db, due!, {
      ok: false,
      status: 503,
      error: "HTTP 503",
      retryInMs: 0,
      startedAt: new Date(),
      worker: WORKER,
    });
    // … then a sender takes try 2 and dies: its hold runs out with nothing recorded.
    await claimCallbacks(t.db, 10, 1);
    await waitUntil(
      async () =>
        (
          await t.db.pool.query(`SELECT locked_until < now() AS over FROM callback_deliveries WHERE command_id = $1`, [
            id,
          ])
        ).rows[0].over,
      "the sender's hold to run out",
    );

    const b = (await get(id)).callbacks[0]!;
    expect(b.attempts).toBe(2);
    expect(b.tries).toMatchObject([
      { number: 1, outcome: "exception", httpStatus: 503, inProgress: false },
      { number: 2, outcome: null, inProgress: false, error: expect.stringMatching(/no result recorded/) },
    ]);
    expect((await get(id)).attempts.map((a) => a.kind)).toEqual(["execute"]);
  });
});
