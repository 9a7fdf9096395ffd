// The worker engine against a real PostgreSQL and a real HTTP backend on loopback.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createHmac } from "node:crypto";
import { createTestDb, type TestDb } from "../helpers/db";
import { startBackend, type Backend } from "../helpers/backend";
import {
  attemptsOf,
  getRow,
  startTestWorker,
  submitWith,
  testClient,
  testTypes,
  waitForStatus,
  waitUntil,
  type TestWorker,
} from "../helpers/engine";
import { STATES, TRANSITIONS } from "../../server/engine/states";
import { acceptInboundResult, resultEndpoint } from "../../server/commands/inbound";
import { resolveSecretKey } from "../../server/db/settings";
import { signBody } from "../../server/crypto";

let t: TestDb;
let backend: Backend;
let worker: TestWorker | undefined;
let clientId: string;
let signingSecret: string;
const state = { calls: new Map<string, number>(), running: 0, maxRunning: 0 };
const registry = testTypes(state);
let submit: (input: Record<string, unknown>) => Promise<string>;

beforeAll(async () => {
  t = await createTestDb();
  backend = await startBackend();
  ({ clientId, signingSecret } = await testClient(t.db));
  submit = submitWith(t.db, registry, clientId);
});
afterEach(async () => {
  await worker?.close();
  worker = undefined;
  // Every test here talks to the same loopback backend: its circuit breaker would carry one test's exceptions into the next.
  await t.db.pool.query(`DELETE FROM flow_scopes`);
});
afterAll(async () => {
  await backend?.close();
  await t?.drop();
});

const start = async (opts = {}) => (worker = await startTestWorker(t.db, t.url, registry, opts));
const httpCmd = (
  key: string,
  extra: Record<string, unknown> = {},
  retry: Record<string, number> = { backoffMs: 10, maxBackoffMs: 20 },
) => ({
  type: "http",
  payload: {
    url: `${backend.url}/do/${key}`,
    body: { amount: 5 },
    statusUrl: `${backend.url}/status/{commandId}`,
    timeoutMs: 1000,
    ...extra,
  },
  retry,
});
const postsFor = (id: string) =>
  backend.requests.filter((r) => r.method === "POST" && r.headers["x-command-id"] === id);

describe("http type, each path", () => {
  it("success: result recorded, Idempotency-Key and X-Command-Id sent", async () => {
    await start();
    const id = await submit(httpCmd("ok-1"));
    const row = await waitForStatus(t.db, id, ["succeeded"]);
    expect(row.result).toEqual({ status: 200, body: { ok: true, id } });
    const [req] = postsFor(id);
    expect(req!.headers["idempotency-key"]).toBe(id);
    expect(JSON.parse(req!.body)).toEqual({ amount: 5 });
    expect(await attemptsOf(t.db, id)).toEqual([
      { number: 1, kind: "execute", outcome: "success", error: null, worker: expect.stringMatching(/^test-/) },
    ]);
    expect(row.finished_at).toBeInstanceOf(Date);
    // the claim and the completion keep the timestamps themselves (the row trigger's function is skipped): as it would have
    const ts = (
      await t.db.pool.query(
        `SELECT created_at, updated_at, state_changed_at, finished_at FROM commands WHERE id = $1`,
        [id],
      )
    ).rows[0];
    expect(ts.state_changed_at.getTime()).toBe(ts.finished_at.getTime());
    expect(ts.updated_at.getTime()).toBe(ts.finished_at.getTime());
    expect(ts.finished_at.getTime()).toBeGreaterThanOrEqual(ts.created_at.getTime());
  });

  it("business failure (4xx) is final", async () => {
    backend.plan("fail-1", [{ kind: "status", status: 422, body: { reason: "insufficient funds" } }]);
    await start();
    const id = await submit(httpCmd("fail-1"));
    const row = await waitForStatus(t.db, id, ["failed"]);
    expect(row.failure).toEqual({ status: 422, body: { reason: "insufficient funds" } });
    expect(postsFor(id)).toHaveLength(1);
  });

  it("a retryable business failure is retried, then succeeds", async () => {
    await start();
    const id = await submit({ type: "flaky", payload: { succeedOn: 3 } });
    const row = await waitForStatus(t.db, id, ["succeeded"]);
    expect(row.result).toEqual({ attempt: 3 });
    expect((await attemptsOf(t.db, id)).map((a) => a.outcome)).toEqual(["failure", "failure", "success"]);
  });

  it("a retryable business failure that never clears ends failed after maxAttempts", async () => {
    await start();
    const id = await submit({ type: "flaky", payload: { succeedOn: 99 } });
    const row = await waitForStatus(t.db, id, ["failed"]);
    expect(row.failure).toEqual({ code: "not yet" });
    expect(await attemptsOf(t.db, id)).toHaveLength(3);
  });

  it("exception, then reconcile says done: no second request reaches the backend", async () => {
    backend.plan("drop-1", [{ kind: "apply-then-drop" }]);
    await start();
    const id = await submit(httpCmd("drop-1"));
    const row = await waitForStatus(t.db, id, ["succeeded"]);
    expect(postsFor(id)).toHaveLength(1);
    expect(backend.applied.filter((a) => a === id)).toHaveLength(1);
    expect(row.result).toEqual({ status: 200, body: { applied: true, id } });
    expect((await attemptsOf(t.db, id)).map((a) => [a.kind, a.outcome])).toEqual([
      ["execute", "exception"],
      ["reconcile", "success"],
    ]);
  });

  it("reconcile says never received: sent again with the same Idempotency-Key", async () => {
    backend.plan("lost-1", [{ kind: "drop" }]);
    await start();
    const id = await submit(httpCmd("lost-1"));
    await waitForStatus(t.db, id, ["succeeded"]);
    const posts = postsFor(id);
    expect(posts).toHaveLength(2);
    expect(posts.map((p) => p.headers["idempotency-key"])).toEqual([id, id]);
    expect((await attemptsOf(t.db, id)).map((a) => [a.kind, a.outcome])).toEqual([
      ["execute", "exception"],
      ["reconcile", "not_found"],
      ["execute", "success"],
    ]);
  });

  it("reconcile cannot tell: retried later, then exception when attempts run out", async () => {
    backend.plan("unknown-1", [{ kind: "apply-then-drop" }]);
    await start();
    const id = await submit(httpCmd("unknown-1", {}, { maxAttempts: 3, backoffMs: 10, maxBackoffMs: 20 }));
    backend.statusOverride(id, 503);
    const row = await waitForStatus(t.db, id, ["exception"]);
    expect(row.error).toMatch(/cannot tell yet.*gave up after 3 tries \(maxAttempts 3\)/);
    expect(postsFor(id)).toHaveLength(1);
    expect((await attemptsOf(t.db, id)).map((a) => `${a.kind}:${a.outcome}`)).toEqual([
      "execute:exception",
      "reconcile:unknown",
      "reconcile:unknown",
    ]);
  });

  it("attempts exhausted → exception", async () => {
    backend.plan("down-1", [
      { kind: "status", status: 503 },
      { kind: "status", status: 503 },
      { kind: "status", status: 503 },
    ]);
    await start();
    // without statusUrl the http type re-sends (idempotent by default)
    const id = await submit(
      httpCmd("down-1", { statusUrl: undefined }, { maxAttempts: 3, backoffMs: 10, maxBackoffMs: 20 }),
    );
    const row = await waitForStatus(t.db, id, ["exception"]);
    expect(row.error).toMatch(/HTTP 503; gave up after 3 tries \(maxAttempts 3\)/);
    expect(postsFor(id)).toHaveLength(3);
  });

  it("idempotent: false without statusUrl → exception at the first unknown outcome", async () => {
    backend.plan("noidem-1", [{ kind: "drop" }]);
    await start();
    const id = await submit(httpCmd("noidem-1", { statusUrl: undefined, idempotent: false }));
    const row = await waitForStatus(t.db, id, ["exception"]);
    expect(row.error).toMatch(/neither be reconciled.*nor safely sent again/);
    expect(postsFor(id)).toHaveLength(1);
  });

  it("a timeout aborts the request and counts as an exception", async () => {
    backend.plan("hang-1", [{ kind: "hang" }]);
    await start();
    const id = await submit(httpCmd("hang-1", { timeoutMs: 200 }));
    await waitForStatus(t.db, id, ["succeeded"]);
    const a = await attemptsOf(t.db, id);
    expect(a[0]).toMatchObject({
      kind: "execute",
      outcome: "exception",
      error: "TimeoutError: timed out after 200 ms",
    });
    expect(a.map((x) => `${x.kind}:${x.outcome}`)).toEqual([
      "execute:exception",
      "reconcile:not_found",
      "execute:success",
    ]);
  });

  it("a result or error PostgreSQL cannot store (NUL characters) is stored with U+FFFD, not retried for ever", async () => {
    await start();
    const ok = await submit({ type: "nul", payload: { where: "result" } });
    expect((await waitForStatus(t.db, ok, ["succeeded"])).result).toEqual({ text: "a\ufffdb" });
    const bad = await submit({
      type: "nul",
      payload: { where: "error" },
      retry: { maxAttempts: 2, backoffMs: 10, maxBackoffMs: 10 },
    });
    const row = await waitForStatus(t.db, bad, ["exception"]);
    expect(row.error).toContain("backend said bad\ufffdbyte");
    expect((await attemptsOf(t.db, bad)).map((a) => a.error)).toEqual([
      "backend said bad\ufffdbyte",
      "backend said bad\ufffdbyte",
    ]);
  });

  it("a result that cannot be stored at all leaves an exception to reconcile, not a worker stuck retrying", async () => {
    await start();
    const id = await submit({ type: "nul", payload: { where: "deep" } });
    const row = await waitForStatus(t.db, id, ["exception"]);
    expect(row.error).toMatch(
      /^could not record the outcome \(.+\); the backend may have acted: reconcile before acting again$/,
    );
    expect(row.needs_reconcile).toBe(true);
  });

  it("a handler that ignores its abort signal still times out", async () => {
    await start();
    const id = await submit({ type: "sticky", payload: {} });
    const row = await waitForStatus(t.db, id, ["exception"]);
    expect(row.error).toMatch(/timed out after 100 ms/);
  });

  it("refuses targets outside HTTP_ALLOWED_HOSTS as a final failure", async () => {
    await start({ checkUrl: (await import("../../server/outbound/url-guard")).createUrlGuard(undefined) });
    const id = await submit(httpCmd("ssrf-1"));
    const row = await waitForStatus(t.db, id, ["failed"]);
    expect(row.failure.error).toMatch(/127\.0\.0\.1, a loopback, private or link-local address/);
    expect(postsFor(id)).toHaveLength(0);
  });

  it("DNS rebinding: a name that resolves to a public address for the check and to loopback at connection time is refused, and nothing is sent", async () => {
    const { createOutboundFetch, createUrlGuard } = await import("../../server/outbound/url-guard");
    // The first answer (the check) is public; every later one (the connection's own lookup) is loopback.
    const answers: string[] = [];
    const resolve = async (host: string) => {
      const address = answers.length === 0 ? "93.184.215.14" : "127.0.0.1";
      answers.push(`${host}=${address}`);
      return [{ address, family: 4 }];
    };
    await start({ checkUrl: createUrlGuard(undefined, resolve), fetch: createOutboundFetch(undefined, resolve) });
    const port = new URL(backend.url).port;
    const id = await submit({ type: "http", payload: { url: `http://rebind.test:${port}/do/rebind-1` } });
    const row = await waitForStatus(t.db, id, ["failed"]);
    expect(row.failure.error).toBe(
      "host rebind.test resolves to 127.0.0.1, a loopback, private or link-local address; list it in HTTP_ALLOWED_HOSTS to allow it",
    );
    expect(answers).toEqual(["rebind.test=93.184.215.14", "rebind.test=127.0.0.1"]);
    expect(backend.requests.filter((r) => r.path.includes("rebind-1"))).toHaveLength(0);
  });

  it("the outbound fetch connects to the address its own lookup checked (a name only our resolver knows)", async () => {
    const { createOutboundFetch } = await import("../../server/outbound/url-guard");
    const fetchPinned = createOutboundFetch(
      undefined,
      async () => [{ address: "127.0.0.1", family: 4 }],
      () => true,
    );
    await start({ fetch: fetchPinned });
    const port = new URL(backend.url).port;
    const id = await submit({
      type: "http",
      payload: { url: `http://pinned.test:${port}/do/pinned-1`, body: { amount: 5 } },
    });
    const row = await waitForStatus(t.db, id, ["succeeded"]);
    expect(row.result.status).toBe(200);
    const [req] = postsFor(id);
    expect(req!.headers.host).toBe(`pinned.test:${port}`);
    expect(req!.headers["idempotency-key"]).toBe(id);
    expect(JSON.parse(req!.body)).toEqual({ amount: 5 });
  });
});

describe("compensation", () => {
  it("a final failure is compensated automatically when the type says so", async () => {
    await start();
    const id = await submit({ type: "refundable", payload: { compensation: "ok" } });
    const row = await waitForStatus(t.db, id, ["compensated"]);
    expect(row.failure).toEqual({ code: "declined" });
    expect((await attemptsOf(t.db, id)).map((a) => `${a.kind}:${a.outcome}`)).toEqual([
      "execute:failure",
      "compensate:success",
    ]);
  });

  it("a compensation that keeps throwing is retried, then exception with the phase shown", async () => {
    await start();
    const id = await submit({ type: "refundable", payload: { compensation: "throws" } });
    const row = await waitForStatus(t.db, id, ["exception"]);
    expect(row.phase).toBe("compensate");
    expect(row.error).toMatch(
      /^compensation could not complete: .*refund service down; gave up after 3 tries \(maxAttempts 3\)/,
    );
    expect((await attemptsOf(t.db, id)).map((a) => a.kind)).toEqual([
      "execute",
      "compensate",
      "compensate",
      "compensate",
    ]);
  });

  it("a compensation refused by the backend goes to exception at once", async () => {
    await start();
    const id = await submit({ type: "refundable", payload: { compensation: "fails" } });
    const row = await waitForStatus(t.db, id, ["exception"]);
    expect(row.error).toMatch(/^compensation failed/);
  });

  it("http compensate POSTs compensateUrl with the same headers", async () => {
    await start();
    const id = await submit(httpCmd("ok-comp", { compensateUrl: `${backend.url}/refund` }));
    await waitForStatus(t.db, id, ["succeeded"]);
    // an operator asks for compensation (the console's action does this)
    await t.db.pool.query(
      `UPDATE commands SET status = 'compensating', phase = 'compensate', tries = 0 WHERE id = $1`,
      [id],
    );
    await waitForStatus(t.db, id, ["compensated"]);
    const refund = backend.requests.find((r) => r.path === "/refund" && r.headers["x-command-id"] === id)!;
    expect(refund.headers["idempotency-key"]).toBe(id);
  });
});

describe("asynchronous backends", () => {
  it("awaiting, resolved by polling the type's query", async () => {
    await start();
    const id = await submit({ type: "async-polled", payload: { readyAfterPolls: 2 } });
    const row = await waitForStatus(t.db, id, ["succeeded"]);
    expect(row.result).toEqual({ done: true });
    expect((await attemptsOf(t.db, id)).map((a) => `${a.kind}:${a.outcome}`)).toEqual([
      "execute:accepted",
      "poll:unknown",
      "poll:unknown",
      "poll:success",
    ]);
  });

  it("awaiting, resolved by a signed inbound callback", async () => {
    await start();
    const id = await submit({ type: "async-callback", payload: {} });
    await waitForStatus(t.db, id, ["awaiting"]);
    const key = await resolveSecretKey(t.db, undefined);
    const { url, secret } = resultEndpoint("http://conveyor.example", key)(id);
    expect(url).toBe(`http://conveyor.example/api/commands/${id}/result`);
    const body = JSON.stringify({ outcome: "success", result: { settled: "by callback" } });
    expect((await acceptInboundResult(t.db, key, id, body, "sha256=00")).status).toBe(401);
    expect((await acceptInboundResult(t.db, key, id, body, signBody(secret, body))).status).toBe(200);
    const row = await waitForStatus(t.db, id, ["succeeded"]);
    expect(row.result).toEqual({ settled: "by callback" });
    expect((await acceptInboundResult(t.db, key, id, body, signBody(secret, body))).status).toBe(409);
  });
});

describe("upstream callbacks", () => {
  it("POSTs the command view signed with the client's secret, retrying until a 2xx", async () => {
    backend.callbackPlan([500, 503]);
    await start();
    const id = await submit({ ...httpCmd("cb-1"), callbackUrl: `${backend.url}/callback` });
    await waitForStatus(t.db, id, ["succeeded"]);
    await waitUntil(
      async () =>
        (
          await t.db.pool.query(
            "SELECT 1 FROM callback_deliveries WHERE command_id = $1 AND delivered_at IS NOT NULL",
            [id],
          )
        ).rowCount === 1,
      "delivery",
      30_000,
    );
    const calls = backend.requests.filter((r) => r.path === "/callback" && r.headers["x-command-id"] === id);
    expect(calls).toHaveLength(3);
    for (const c of calls) {
      expect(c.headers["x-conveyor-signature"]).toBe(
        `sha256=${createHmac("sha256", signingSecret).update(c.body).digest("hex")}`,
      );
      expect(JSON.parse(c.body)).toMatchObject({ id, status: "succeeded", result: { status: 200 } });
    }
    const d = (
      await t.db.pool.query("SELECT attempts, last_status FROM callback_deliveries WHERE command_id = $1", [id])
    ).rows[0];
    expect(d).toEqual({ attempts: 3, last_status: 200 });
    expect((await attemptsOf(t.db, id)).filter((a) => a.kind === "callback").map((a) => a.outcome)).toEqual([
      "exception",
      "exception",
      "success",
    ]);
  });

  it("a callback URL that HTTP_ALLOWED_HOSTS refuses is given up at once, with the reason, and never sent", async () => {
    const { createUrlGuard } = await import("../../server/outbound/url-guard");
    await start({ checkUrl: createUrlGuard("api.example.com") });
    const id = await submit({ type: "flaky", payload: { succeedOn: 1 }, callbackUrl: `${backend.url}/callback` });
    await waitForStatus(t.db, id, ["succeeded"]);
    await waitUntil(
      async () => (await attemptsOf(t.db, id)).some((a) => a.kind === "callback"),
      "the callback attempt",
    );
    const d = (
      await t.db.pool.query(
        "SELECT attempts, delivered_at, next_at = 'infinity' AS never, last_error FROM callback_deliveries WHERE command_id = $1",
        [id],
      )
    ).rows[0];
    expect(d).toEqual({
      attempts: 1,
      delivered_at: null,
      never: true,
      last_error: "host 127.0.0.1 is not in HTTP_ALLOWED_HOSTS; not retried",
    });
    expect((await attemptsOf(t.db, id)).filter((a) => a.kind === "callback").map((a) => a.outcome)).toEqual([
      "failure",
    ]);
    expect(backend.requests.filter((r) => r.path === "/callback" && r.headers["x-command-id"] === id)).toHaveLength(0);
    // the console's detail shows it as given up (no next try)
    const { detail } = await import("../../server/commands/console-read");
    expect((await detail(t.db, registry, id)).callbacks).toMatchObject([
      { attempts: 1, deliveredAt: null, nextAt: null, lastError: expect.stringContaining("not retried") },
    ]);
  });
});

describe("leases and competition", () => {
  it("caps a type's concurrency across workers", async () => {
    state.maxRunning = 0;
    await start();
    const other = await startTestWorker(t.db, t.url, registry);
    try {
      const ids = await Promise.all(Array.from({ length: 12 }, () => submit({ type: "capped", payload: {} })));
      for (const id of ids) await waitForStatus(t.db, id, ["succeeded"]);
      expect(state.maxRunning).toBe(2);
    } finally {
      await other.close();
    }
  });

  it("takes back an expired lease, and the old holder's late result is not written", async () => {
    backend.plan("slow-1", [{ kind: "slow", ms: 1500 }]);
    const slowWorker = await startTestWorker(t.db, t.url, registry, { leaseMs: 60_000, rescueEveryMs: 60_000 });
    const id = await submit(httpCmd("slow-1"));
    await waitUntil(() => postsFor(id).length === 1, "the first request");
    // The holder stops renewing (as if partitioned from the database): expire its lease by hand.
    slowWorker.abandon();
    await t.db.pool.query(`UPDATE commands SET locked_until = now() - interval '1 second' WHERE id = $1`, [id]);
    await start();
    const row = await waitForStatus(t.db, id, ["succeeded"]);
    const a = await attemptsOf(t.db, id);
    expect(a[0]).toMatchObject({
      kind: "execute",
      outcome: "exception",
      error: expect.stringMatching(/lease expired/),
    });
    expect(a.map((x) => x.kind)).toContain("reconcile");
    expect(row.status).toBe("succeeded");
  });
});

describe("states", () => {
  it("the database holds the same transitions as server/engine/states.ts and refuses others", async () => {
    const rows = (
      await t.db.pool.query<{ from_status: string; to_status: string }>(
        "SELECT from_status, to_status FROM command_transitions",
      )
    ).rows;
    const db = rows.map((r) => `${r.from_status}->${r.to_status}`).sort();
    const code = STATES.flatMap((s) => TRANSITIONS[s].map((to) => `${s}->${to}`)).sort();
    expect(db).toEqual(code);
    const id = await submit(httpCmd("never", { url: "https://example.invalid/" }, {}));
    await t.db.pool.query(`UPDATE commands SET run_at = 'infinity' WHERE id = $1`, [id]);
    await expect(t.db.pool.query(`UPDATE commands SET status = 'succeeded' WHERE id = $1`, [id])).rejects.toThrow(
      /pending -> succeeded is not an allowed transition/,
    );
    await expect(
      t.db.pool.query(`UPDATE commands SET status = 'cancelled' WHERE id = $1`, [id]),
    ).resolves.toBeDefined();
    expect((await getRow(t.db, id)).finished_at).toBeInstanceOf(Date);
  });
});
