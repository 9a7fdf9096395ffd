// Traffic per scope (the /flow page's attempts per second): a real worker
// counts its attempts, exceptions and held-back attempts per (type, host) per
// minute and adds them to flow_traffic every few seconds and on stop; two
// workers flushing the same minutes add up; the pruner drops what is older
// than a day.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { startBackend, type Backend } from "../helpers/backend";
import {
  attemptsOf,
  startTestWorker,
  submitWith,
  testClient,
  testTypes,
  waitForStatus,
  waitUntil,
  type TestWorker,
} from "../helpers/engine";
import { addTraffic, type TrafficRow } from "../../server/db/flow-traffic";
import { startPruner } from "../../server/worker/pruner";
import { createLogger } from "../../server/log";
import { listFlow } from "../../server/commands/flow";

let t: TestDb;
let backend: Backend;
let worker: TestWorker | undefined;
const state = { calls: new Map<string, number>(), running: 0, maxRunning: 0 };
const registry = testTypes(state);
let submit: (input: Record<string, unknown>) => Promise<string>;
const log = createLogger({ name: "test", level: "silent" });

const traffic = async () =>
  (
    await t.db.pool.query<{ type: string; host: string; attempts: number; exceptions: number; held: number }>(
      `SELECT type, host, sum(attempts)::int AS attempts, sum(exceptions)::int AS exceptions, sum(held)::int AS held
       FROM flow_traffic GROUP BY type, host ORDER BY type, host`,
    )
  ).rows;
const of = async (type: string, host = "") =>
  (await traffic()).find((r) => r.type === type && r.host === host) ?? { attempts: 0, exceptions: 0, held: 0 };

beforeAll(async () => {
  t = await createTestDb();
  backend = await startBackend();
  const { clientId } = await testClient(t.db);
  submit = submitWith(t.db, registry, clientId);
});
afterEach(async () => {
  await worker?.close();
  worker = undefined;
  await t.db.pool.query(`DELETE FROM flow_traffic; DELETE FROM flow_scopes`);
});
afterAll(async () => {
  await backend?.close();
  await t?.drop();
});

describe("the worker's traffic recorder", () => {
  it("counts every attempt per (type, host) and minute, and the exceptions among them", async () => {
    worker = await startTestWorker(t.db, t.url, registry, { trafficFlushMs: 50 });
    // One exception (a 503), reconciled (statusUrl says not received), then executed again: three attempts.
    backend.plan("t-1", [{ kind: "status", status: 503 }]);
    const a = await submit({
      type: "http",
      payload: { url: `${backend.url}/do/t-1`, statusUrl: `${backend.url}/status/{commandId}` },
      retry: { backoffMs: 10, maxBackoffMs: 20 },
    });
    const b = await submit({ type: "flaky", payload: { succeedOn: 2 }, retry: { backoffMs: 10, maxBackoffMs: 20 } });
    await waitForStatus(t.db, a, ["succeeded"]);
    await waitForStatus(t.db, b, ["succeeded"]);
    const httpAttempts = (await attemptsOf(t.db, a)).length;
    const flakyAttempts = (await attemptsOf(t.db, b)).length;
    expect(httpAttempts).toBe(3);
    expect(flakyAttempts).toBe(2);
    await waitUntil(
      async () => (await of("http", "127.0.0.1")).attempts === httpAttempts && (await of("flaky")).attempts === 2,
      "the traffic flushed",
    );
    expect(await of("http", "127.0.0.1")).toMatchObject({ attempts: 3, exceptions: 1, held: 0 });
    // a business failure is an answer, not an exception
    expect(await of("flaky")).toMatchObject({ attempts: 2, exceptions: 0 });
    // flow.list reads it back: both scopes, with their rate over the last minute
    const list = await listFlow(t.db, registry);
    const host = list.scopes.find((s) => s.scope.host === "127.0.0.1")!;
    expect(host.lastHour).toEqual({ attempts: 3, exceptions: 1, held: 0 });
    expect(host.attemptsPerSecond).toBeGreaterThan(0);
    expect(list.scopes.find((s) => s.scope.type === "flaky")?.lastHour.attempts).toBe(2);
  });

  it("counts the attempts a paused scope held back", async () => {
    await t.db.pool.query(`INSERT INTO flow_scopes (kind, name, paused) VALUES ('host', '127.0.0.1', true)`);
    worker = await startTestWorker(t.db, t.url, registry, { trafficFlushMs: 50 });
    await submit({ type: "http", payload: { url: `${backend.url}/do/held-1` } });
    await waitUntil(async () => (await of("http", "127.0.0.1")).held > 0, "held attempts counted");
    expect((await of("http", "127.0.0.1")).attempts).toBe(0);
  });

  it("saves what it counted when the worker stops, however long until the next flush", async () => {
    worker = await startTestWorker(t.db, t.url, registry, { trafficFlushMs: 3_600_000 });
    const id = await submit({ type: "flaky", payload: { succeedOn: 1 } });
    await waitForStatus(t.db, id, ["succeeded"]);
    expect(await of("flaky")).toMatchObject({ attempts: 0 });
    await worker.close();
    worker = undefined;
    expect(await of("flaky")).toMatchObject({ attempts: 1 });
  });
});

describe("flow_traffic", () => {
  it("two flushes of the same minutes, at once and in any order, add up (no deadlock, no lost count)", async () => {
    const minutes = Array.from({ length: 20 }, (_, i) => new Date(Math.floor(Date.now() / 60_000 - i) * 60_000));
    const rows: TrafficRow[] = minutes.flatMap((minute) =>
      ["a.example", "b.example", ""].map((host) => ({
        minute,
        type: "http",
        host,
        attempts: 2,
        exceptions: 1,
        held: 3,
      })),
    );
    const shuffled = () => [...rows].sort(() => Math.random() - 0.5);
    await Promise.all(Array.from({ length: 8 }, () => addTraffic(t.db, shuffled())));
    const { rows: got } = await t.db.pool.query(
      `SELECT count(*)::int AS n, min(attempts) AS lo, max(attempts) AS hi, sum(exceptions)::int AS e, sum(held)::int AS h FROM flow_traffic`,
    );
    expect(got[0]).toEqual({ n: 60, lo: 16, hi: 16, e: 60 * 8, h: 60 * 24 });
  });

  it("the pruner deletes the minutes older than a day", async () => {
    await t.db.pool.query(
      `INSERT INTO flow_traffic (minute, type, host, attempts) VALUES
         (date_trunc('minute', now()) - interval '25 hours', 'http', 'old.example', 1),
         (date_trunc('minute', now()) - interval '23 hours', 'http', 'recent.example', 1)`,
    );
    const p = startPruner({ db: t.db, log, days: 30, everyMs: 3_600_000 });
    try {
      await p.runOnce();
    } finally {
      await p.stop();
    }
    expect((await traffic()).map((r) => r.host)).toEqual(["recent.example"]);
  });
});
