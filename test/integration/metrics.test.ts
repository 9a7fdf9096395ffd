import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { createMetrics, metricsResponse } from "../../server/metrics";
import pino from "pino";
import { createLogger } from "../../server/log";
import { createWorkerMetrics, startMetricsPush } from "../../server/worker/metrics";
import { startTestWorker, submitWith, testClient, testTypes, waitForStatus, waitUntil } from "../helpers/engine";
import { startBackend } from "../helpers/backend";
import { describeError } from "../../server/worker/attempt";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => t?.drop());

it("answers Prometheus text, and only with the token when METRICS_TOKEN is set", async () => {
  const m = createMetrics(t.db);
  m.observe("trpc:intake.submit", 200, 0.012);
  const open = await metricsResponse(m, undefined, null);
  expect(open.status).toBe(200);
  const text = await open.text();
  expect(text).toContain("# TYPE conveyor_commands gauge");
  expect(text).toMatch(/^conveyor_queue_oldest_due_seconds 0$/m);
  expect(text).toMatch(
    /^conveyor_http_request_duration_seconds_bucket\{le="0.025",route="trpc:intake.submit",status="200"\} 1$/m,
  );
  expect((await metricsResponse(m, "s3cret", null)).status).toBe(401);
  expect((await metricsResponse(m, "s3cret", "Bearer wrong")).status).toBe(401);
  expect((await metricsResponse(m, "s3cret", "Bearer s3cret")).status).toBe(200);
});

it("conveyor_db_deadlocks_total counts the deadlocks PostgreSQL detected in the database", async () => {
  const m = createMetrics(t.db);
  const scrape = async () => {
    const text = await (await metricsResponse(m, undefined, null)).text();
    expect(text).toContain("# TYPE conveyor_db_deadlocks_total counter");
    return Number(/^conveyor_db_deadlocks_total (\S+)$/m.exec(text)?.[1]);
  };
  const before = await scrape();
  expect(before).toBeGreaterThanOrEqual(0);
  // Two transactions lock two rows in opposite orders: PostgreSQL rolls one of them back.
  await t.db.pool.query(`CREATE TABLE deadlock_demo (id int PRIMARY KEY); INSERT INTO deadlock_demo VALUES (1), (2)`);
  const [a, b] = [await t.db.pool.connect(), await t.db.pool.connect()];
  try {
    await a.query("BEGIN");
    await b.query("BEGIN");
    await a.query("UPDATE deadlock_demo SET id = id WHERE id = 1");
    await b.query("UPDATE deadlock_demo SET id = id WHERE id = 2");
    const both = await Promise.allSettled([
      a.query("UPDATE deadlock_demo SET id = id WHERE id = 2"),
      b.query("UPDATE deadlock_demo SET id = id WHERE id = 1"),
    ]);
    expect(both.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason.code)).toEqual([
      "40P01",
    ]);
    // each backend reports its statistics within seconds; ask for it now
    for (const c of [a, b]) {
      await c.query("ROLLBACK");
      await c.query("SELECT pg_stat_force_next_flush()");
    }
  } finally {
    a.release();
    b.release();
  }
  await waitUntil(async () => (await scrape()) === before + 1, "the deadlock to be counted in /api/metrics");
});

it("sums the workers' own metrics: attempts by kind and outcome, durations, pickup lag, live workers", async () => {
  const state = { calls: new Map<string, number>(), running: 0, maxRunning: 0 };
  const registry = testTypes(state);
  const { clientId } = await testClient(t.db);
  const submitOne = submitWith(t.db, registry, clientId);
  const silent = createLogger({ name: "test", level: "silent" });
  const workers = await Promise.all(
    [0, 1].map(async (i) => {
      const metrics = createWorkerMetrics();
      const w = await startTestWorker(t.db, t.url, registry, { metrics, workerId: `metrics-test-${i}` });
      return {
        w,
        push: startMetricsPush({ db: t.db, log: silent, workerId: `metrics-test-${i}`, metrics, everyMs: 60_000 }),
      };
    }),
  );
  // 20 that succeed at the second try (one business failure each, retried), 1 that fails and compensates.
  const ids = await Promise.all(
    Array.from({ length: 20 }, () => submitOne({ type: "flaky", payload: { succeedOn: 2 } })),
  );
  const refund = await submitOne({ type: "refundable", payload: { compensation: "ok" } });
  for (const id of ids) await waitForStatus(t.db, id, ["succeeded"]);
  await waitForStatus(t.db, refund, ["compensated"]);
  for (const { w, push } of workers) {
    await w.close();
    await push.stop();
  }
  const text = await (await metricsResponse(createMetrics(t.db), undefined, null)).text();
  if (process.env.SHOW_METRICS) console.log(text);
  // the value of a sample by name and labels, whatever the order of its labels
  const value = (name: string, labels: Record<string, string> = {}) => {
    for (const line of text.split("\n")) {
      const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const got = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
      if (
        Object.keys(got).length === Object.keys(labels).length &&
        Object.entries(labels).every(([k, v]) => got[k] === v)
      )
        return Number(m[3]);
    }
    return NaN;
  };
  expect(value("conveyor_attempts_total", { type: "flaky", kind: "execute", outcome: "success" })).toBe(20);
  expect(value("conveyor_attempts_total", { type: "flaky", kind: "execute", outcome: "failure" })).toBe(20);
  expect(value("conveyor_attempts_total", { type: "refundable", kind: "compensate", outcome: "success" })).toBe(1);
  expect(value("conveyor_attempt_duration_seconds_count", { type: "flaky", kind: "execute" })).toBe(40);
  // one pickup per attempt started: 40 executions of flaky, 2 of refundable (execute, then compensate)
  expect(value("conveyor_pickup_lag_seconds_count", { type: "flaky" })).toBe(40);
  expect(value("conveyor_pickup_lag_seconds_count", { type: "refundable" })).toBe(2);
  expect(value("conveyor_workers")).toBe(2);
  // the database agrees with the counters
  const { rows } = await t.db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM attempts a JOIN commands c ON c.id = a.command_id WHERE c.type = 'flaky' AND a.kind = 'execute'`,
  );
  expect(rows[0]!.n).toBe(40);
});

it("log lines about an attempt carry the command, its type, the attempt number and the worker", async () => {
  const state = { calls: new Map<string, number>(), running: 0, maxRunning: 0 };
  const registry = testTypes(state);
  const { clientId } = await testClient(t.db);
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) }).child({
    worker: "log-test-worker",
  });
  const w = await startTestWorker(t.db, t.url, registry, { log, workerId: "log-test-worker" });
  // refundable with a compensation that is refused: ends in exception, which is logged as needing an operator
  const id = await submitWith(t.db, registry, clientId)({ type: "refundable", payload: { compensation: "fails" } });
  await waitForStatus(t.db, id, ["exception"]);
  await w.close();
  const line = lines.find((l) => l.command === id && l.msg === "command needs an operator");
  expect(line).toMatchObject({
    level: 40,
    command: id,
    type: "refundable",
    attempt: 2,
    kind: "compensate",
    worker: "log-test-worker",
  });
  expect(String(line!.error)).toContain("compensation failed");
});

it("secrets never reach the logs: request headers, callback URL tokens and userinfo stay out", async () => {
  const state = { calls: new Map<string, number>(), running: 0, maxRunning: 0 };
  const registry = testTypes(state);
  const { clientId } = await testClient(t.db);
  const backend = await startBackend();
  backend.setDefault({ kind: "status", status: 503 });
  backend.callbackPlan([500, 500, 500, 500, 500, 500]);
  const lines: string[] = [];
  const log = pino({ level: "trace" }, { write: (s: string) => void lines.push(s) });
  const w = await startTestWorker(t.db, t.url, registry, { log });
  try {
    const callbackUrl = `${backend.url}/callback?token=cb-token-7d1e`;
    const id = await submitWith(
      t.db,
      registry,
      clientId,
    )({
      type: "http",
      payload: {
        url: `${backend.url}/do/secret-log`,
        headers: { Authorization: "Bearer hdr-secret-5c2b" },
        timeoutMs: 500,
      },
      retry: { maxAttempts: 2, backoffMs: 10, maxBackoffMs: 10 },
      callbackUrl,
    });
    await waitForStatus(t.db, id, ["exception"]);
    await waitUntil(() => lines.some((l) => l.includes("upstream callback failed")), "a logged callback failure");
  } finally {
    await w.close();
    await backend.close();
  }
  const all = lines.join("\n");
  expect(all).toContain("command needs an operator"); // the logs did record the story…
  for (const secret of ["hdr-secret-5c2b", "cb-token-7d1e"]) expect(all, secret).not.toContain(secret); // …without the secrets
  // error messages that quote a URL whole (fetch's do) are stripped of its credentials and query string too
  expect(
    describeError(
      new TypeError(
        "Request cannot be constructed from a URL that includes credentials: https://u:pw-9@h.example/cb?token=t-1",
      ),
    ),
  ).toBe("TypeError: Request cannot be constructed from a URL that includes credentials: https://h.example/cb?…");
});

it("the console's overview says which workers are alive, and warns when none is while commands wait", async () => {
  const { overview } = await import("../../server/commands/console-read");
  await t.db.pool.query(`DELETE FROM worker_metrics`);
  const none = await overview(t.db, 30);
  expect(none.workers).toEqual([]);
  await t.db.pool.query(
    `INSERT INTO worker_metrics (worker_id, started_at, updated_at, metrics) VALUES
     ('live-1', now() - interval '1 hour', now(), '[]'), ('gone-1', now() - interval '2 hours', now() - interval '5 minutes', '[]')`,
  );
  expect((await overview(t.db, 30)).workers).toEqual([
    { id: "live-1", startedAt: expect.any(String), seenAt: expect.any(String) },
  ]);
});
