// flow.* (DESIGN §7) over real HTTP on a real PostgreSQL: who may call what,
// every field's bad input refused with nothing changed, the audit entries,
// what flow.list reports, and a real worker that claims nothing of a paused
// scope and takes it up again at once when it is resumed.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken, startApi, type ApiServer } from "../helpers/api";
import { moveTo, userWithSession } from "../helpers/fixtures";
import { startBackend, type Backend } from "../helpers/backend";
import {
  getRow,
  startTestWorker,
  submitWith,
  testTypes,
  waitForStatus,
  waitUntil,
  type TestWorker,
} from "../helpers/engine";
import { startListener } from "../../server/db/listener";
import { createGroupInserter } from "../../server/commands/group-insert";

let t: TestDb;
let api: ApiServer;
let backend: Backend;
let worker: TestWorker | undefined;
let clientId: string;
type Who = { headers: Record<string, string> };
const who: Record<string, Who> = {};
const state = { calls: new Map<string, number>(), running: 0, maxRunning: 0 };
const registry = testTypes(state);
let submit: (input: Record<string, unknown>) => Promise<string>;

async function call(w: Who, path: string, input?: unknown, kind: "query" | "mutation" = "mutation") {
  const headers = { "content-type": "application/json", ...w.headers };
  const res =
    kind === "mutation"
      ? await fetch(`${api.url}/api/trpc/${path}`, { method: "POST", headers, body: JSON.stringify(input ?? null) })
      : await fetch(`${api.url}/api/trpc/${path}`, { headers });
  const body = (await res.json()) as any;
  return { status: res.status, data: body.result?.data, error: body.error };
}
const list = async () => (await call(who.viewer!, "flow.list", undefined, "query")).data;
const scopeOf = async (scope: Record<string, string>) =>
  (await list()).scopes.find((s: any) => JSON.stringify(s.scope) === JSON.stringify(scope));
const tableCounts = async () =>
  (
    await t.db.pool.query(
      `SELECT (SELECT count(*)::int FROM flow_scopes) AS scopes, (SELECT count(*)::int FROM audit_entries) AS audit,
         (SELECT coalesce(string_agg(kind || name || has_limit || paused, ',' ORDER BY kind, name), '') FROM flow_scopes) AS rows`,
    )
  ).rows[0];

beforeAll(async () => {
  t = await createTestDb();
  // The API with the test types, so that a type scope can name them.
  api = await startApi(t.db, { registry, intake: { registry, insert: createGroupInserter(t.db) } });
  backend = await startBackend();
  const client = await newToken(t.db, "client", "orders-service");
  clientId = client.id;
  submit = submitWith(t.db, registry, clientId);
  const admin = await newToken(t.db, "admin", "automation");
  who.client = { headers: { authorization: `Bearer ${client.token}` } };
  who.adminToken = { headers: { authorization: `Bearer ${admin.token}` } };
  for (const role of ["viewer", "operator", "admin"] as const) {
    const { cookie } = await userWithSession(t.db, `${role}@example.com`, role);
    who[role] = { headers: { cookie, origin: api.url } };
  }
});
afterEach(async () => {
  await worker?.close();
  worker = undefined;
});
afterAll(async () => {
  await api?.close();
  await backend?.close();
  await t?.drop();
});

describe("roles", () => {
  const host = { host: "roles.example" };
  const cases: [string, unknown, Record<string, number>][] = [
    ["flow.list", undefined, { viewer: 200, operator: 200, admin: 200, adminToken: 200, client: 403 }],
    [
      "flow.setLimit",
      { scope: host, concurrency: 2 },
      { viewer: 403, operator: 403, admin: 200, adminToken: 200, client: 403 },
    ],
    ["flow.removeLimit", { scope: host }, { viewer: 403, operator: 403, admin: 200, adminToken: 200, client: 403 }],
    [
      "flow.pause",
      { scope: host, reason: "roles" },
      { viewer: 403, operator: 200, admin: 200, adminToken: 200, client: 403 },
    ],
    ["flow.resume", { scope: host }, { viewer: 403, operator: 200, admin: 200, adminToken: 200, client: 403 }],
  ];
  for (const [path, input, expected] of cases)
    it(`${path}: ${JSON.stringify(expected)}`, async () => {
      const got: Record<string, number> = {};
      for (const name of Object.keys(expected)) {
        const r = await call(who[name]!, path, input, path === "flow.list" ? "query" : "mutation");
        got[name] = r.status;
        if (r.status === 403) expect(r.error.data.code).toBe("FORBIDDEN");
      }
      expect(got).toEqual(expected);
    });
});

describe("bad input: refused naming the field, nothing changed", () => {
  const scope = { host: "api.example.com" };
  const bad: [string, Record<string, unknown>, (string | number)[], RegExp?][] = [
    ["flow.setLimit", { concurrency: 2 }, ["scope"], /exactly one of type or host/],
    ["flow.setLimit", { scope: {}, concurrency: 2 }, ["scope"], /exactly one of type or host/],
    ["flow.setLimit", { scope: { type: "http", host: "a.example" }, concurrency: 2 }, ["scope"]],
    ["flow.setLimit", { scope: { host: "a.example:8080" }, concurrency: 2 }, ["scope", "host"], /without .*port/],
    ["flow.setLimit", { scope: { host: "https://a.example/x" }, concurrency: 2 }, ["scope", "host"]],
    ["flow.setLimit", { scope: { host: "" }, concurrency: 2 }, ["scope", "host"]],
    ["flow.setLimit", { scope: { host: 5 }, concurrency: 2 }, ["scope", "host"]],
    ["flow.setLimit", { scope: { type: "no-such-type" }, concurrency: 2 }, ["scope", "type"], /unknown command type/],
    ["flow.setLimit", { scope: { port: 1 }, concurrency: 2 }, ["scope"]],
    ["flow.setLimit", { scope, concurrency: 0 }, ["concurrency"]],
    ["flow.setLimit", { scope, concurrency: 1.5 }, ["concurrency"], /whole number/],
    ["flow.setLimit", { scope, concurrency: "2" }, ["concurrency"]],
    ["flow.setLimit", { scope, ratePerSecond: 0 }, ["ratePerSecond"], /more than 0/],
    ["flow.setLimit", { scope, ratePerSecond: -1 }, ["ratePerSecond"]],
    ["flow.setLimit", { scope, ratePerSecond: 5, burst: 0 }, ["burst"]],
    ["flow.setLimit", { scope, ratePerSecond: 5, burst: 2.5 }, ["burst"]],
    ["flow.setLimit", { scope, burst: 3 }, ["burst"], /ratePerSecond/],
    ["flow.setLimit", { scope, circuit: { threshold: 0 } }, ["circuit", "threshold"]],
    ["flow.setLimit", { scope, circuit: { cooldownSeconds: 0 } }, ["circuit", "cooldownSeconds"]],
    ["flow.setLimit", { scope, circuit: { cooldownSeconds: 3601 } }, ["circuit", "cooldownSeconds"], /3600/],
    ["flow.setLimit", { scope, circuit: { threshold: 3, extra: 1 } }, ["circuit"]],
    ["flow.setLimit", { scope }, [], /at least one of/],
    ["flow.setLimit", { scope, concurrency: 2, colour: "red" }, []],
    ["flow.removeLimit", { scope: { type: "nope" } }, ["scope", "type"]],
    ["flow.pause", { scope }, ["reason"], /say why/],
    ["flow.pause", { scope, reason: "   " }, ["reason"], /say why/],
    ["flow.pause", { scope, reason: "r".repeat(1001) }, ["reason"]],
    ["flow.pause", { scope, reason: "a\u0000b" }, ["reason"]],
    ["flow.pause", { scope: { host: "a b.example" }, reason: "x" }, ["scope", "host"]],
    ["flow.resume", { scope, reason: 5 }, ["reason"]],
  ];
  for (const [path, input, field, message] of bad)
    it(`${path} ${JSON.stringify(input).slice(0, 90)} → ${JSON.stringify(field)}`, async () => {
      const before = await tableCounts();
      const r = await call(who.admin!, path, input);
      expect(r.status).toBe(400);
      expect(r.error.data.code).toBe("BAD_REQUEST");
      const issues = r.error.data.issues as { path: (string | number)[]; message: string }[];
      expect(issues.map((i) => i.path)).toContainEqual(field);
      if (message) expect(r.error.message).toMatch(message);
      expect(await tableCounts()).toEqual(before);
    });
});

describe("limits, pauses and their audit entries", () => {
  it("setLimit stores what is given (the rest cleared, the bucket full again), tells the fleet, and audits", async () => {
    // Subscribed before it connects: the LISTEN is then in place once it says it is connected.
    const listener = startListener(t.url);
    const heard: string[] = [];
    listener.on("conveyor_flow", (p) => heard.push(p));
    await new Promise<void>((r) => listener.onConnect(r));
    try {
      const scope = { host: "API.Example.COM" };
      await t.db.pool.query(
        `INSERT INTO flow_scopes (kind, name, tokens, tokens_at) VALUES ('host', 'api.example.com', -3, now())`,
      );
      const r = await call(who.admin!, "flow.setLimit", {
        scope,
        concurrency: 4,
        ratePerSecond: 2.5,
        circuit: { threshold: 3 },
        reason: "their capacity",
      });
      expect(r.status).toBe(200);
      expect(r.data).toMatchObject({
        scope: { host: "api.example.com" },
        limit: { concurrency: 4, ratePerSecond: 2.5, circuit: { threshold: 3 } },
        changed: true,
      });
      const row = (await t.db.pool.query(`SELECT * FROM flow_scopes WHERE kind = 'host' AND name = 'api.example.com'`))
        .rows[0];
      expect(row).toMatchObject({
        has_limit: true,
        concurrency: 4,
        rate_per_second: 2.5,
        burst: null,
        circuit_threshold: 3,
        circuit_cooldown_seconds: null,
        tokens: null,
        tokens_at: null,
        gated: true,
      });
      await waitUntil(() => heard.length > 0, "NOTIFY conveyor_flow");
      // A second call replaces the limit: what it does not give is cleared.
      await call(who.admin!, "flow.setLimit", { scope, ratePerSecond: 10, burst: 20 });
      expect(await scopeOf({ host: "api.example.com" })).toMatchObject({
        limit: { ratePerSecond: 10, burst: 20 },
        paused: false,
      });
      expect((await scopeOf({ host: "api.example.com" })).limit.concurrency).toBeUndefined();
      const audit = (
        await t.db.pool.query(
          `SELECT actor, action, reason, details FROM audit_entries WHERE action = 'flow.setLimit' ORDER BY id`,
        )
      ).rows;
      expect(audit.at(-2)).toMatchObject({
        actor: "admin@example.com",
        action: "flow.setLimit",
        reason: "their capacity",
        details: {
          scope: { host: "api.example.com" },
          before: { limit: null, paused: false },
          after: { limit: { concurrency: 4, ratePerSecond: 2.5, circuit: { threshold: 3 } }, paused: false },
        },
      });
      expect(audit.at(-1).details.before.limit).toEqual({
        concurrency: 4,
        ratePerSecond: 2.5,
        circuit: { threshold: 3 },
      });

      // removeLimit clears it and keeps the row; the scope is no longer gated.
      const rm = await call(who.adminToken!, "flow.removeLimit", { scope });
      expect(rm.data).toMatchObject({ limit: null, changed: true });
      const after = (
        await t.db.pool.query(`SELECT * FROM flow_scopes WHERE kind = 'host' AND name = 'api.example.com'`)
      ).rows[0];
      expect(after).toMatchObject({
        has_limit: false,
        concurrency: null,
        rate_per_second: null,
        burst: null,
        gated: false,
      });
      const last = (await t.db.pool.query(`SELECT actor, action, details FROM audit_entries ORDER BY id DESC LIMIT 1`))
        .rows[0];
      expect(last).toMatchObject({
        actor: "token:automation",
        action: "flow.removeLimit",
        details: { before: { limit: { ratePerSecond: 10, burst: 20 } }, after: { limit: null } },
      });
      // Gone from the list: nothing is set and there was no traffic.
      expect(await scopeOf({ host: "api.example.com" })).toBeUndefined();
    } finally {
      await listener.close();
    }
  });

  it("a type scope must be a registered type; its code limit is shown beside the one set", async () => {
    const r = await call(who.admin!, "flow.setLimit", { scope: { type: "capped" }, concurrency: 5 });
    expect(r.status).toBe(200);
    expect(await scopeOf({ type: "capped" })).toMatchObject({
      limit: { concurrency: 5 },
      codeLimit: { concurrency: 2 },
    });
    await call(who.admin!, "flow.removeLimit", { scope: { type: "capped" } });
    // Still listed: its limit in code gates it.
    expect(await scopeOf({ type: "capped" })).toMatchObject({ limit: null, codeLimit: { concurrency: 2 } });
  });

  it("pause and resume: audited with the reason, shown by flow.list", async () => {
    const scope = { type: "flaky" };
    const p = await call(who.operator!, "flow.pause", { scope, reason: "  their maintenance window  " });
    expect(p.status).toBe(200);
    expect(p.data).toMatchObject({
      paused: true,
      pausedReason: "their maintenance window",
      pausedBy: "operator@example.com",
    });
    expect(await scopeOf(scope)).toMatchObject({
      paused: true,
      pausedReason: "their maintenance window",
      pausedBy: "operator@example.com",
      circuit: { state: "closed", consecutiveExceptions: 0 },
    });
    const r = await call(who.operator!, "flow.resume", { scope, reason: "window over" });
    expect(r.data).toMatchObject({ paused: false, pausedReason: null, changed: true });
    expect(await scopeOf(scope)).toBeUndefined();
    const again = await call(who.operator!, "flow.resume", { scope });
    expect(again.data.changed).toBe(false);
    const audit = (
      await t.db.pool.query(
        `SELECT actor, action, reason, details FROM audit_entries WHERE action LIKE 'flow.%sume' OR action = 'flow.pause' ORDER BY id DESC LIMIT 3`,
      )
    ).rows.reverse();
    expect(audit).toMatchObject([
      {
        action: "flow.pause",
        reason: "their maintenance window",
        details: {
          scope,
          before: { paused: false },
          after: { paused: true, pausedReason: "their maintenance window" },
        },
      },
      { action: "flow.resume", reason: "window over", details: { before: { paused: true }, after: { paused: false } } },
      { action: "flow.resume", reason: null },
    ]);
    // audit.list shows them to viewers
    const page = await fetch(`${api.url}/api/trpc/audit.list?input=${encodeURIComponent("{}")}`, who.viewer);
    const items = ((await page.json()) as any).result.data.items;
    expect(items.map((i: any) => i.action)).toContain("flow.pause");
  });
});

describe("flow.list", () => {
  it("reports in flight, waiting, circuits, traffic and the ordering keys an exception blocks", async () => {
    const host = "list.example";
    const url = (k: string) => `https://${host}/${k}`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await submit({ type: "http", payload: { url: url(`w${i}`) } }));
    // two leased (in flight), three due and waiting, one not due yet
    await moveTo(t.db, ids[0]!, ["running"]);
    await moveTo(t.db, ids[1]!, ["running"]);
    await submit({ type: "http", payload: { url: url("later") }, runAt: "2999-01-01T00:00:00Z" });
    await t.db.pool.query(
      `INSERT INTO flow_scopes (kind, name, circuit_state, circuit_since, consecutive_exceptions, cooldown_ms, next_probe_at)
       VALUES ('host', $1, 'open', now() - interval '3 seconds', 5, 10000, now() + interval '7 seconds')`,
      [host],
    );
    await t.db.pool.query(
      `INSERT INTO flow_traffic (minute, type, host, attempts, exceptions, held)
       VALUES (date_trunc('minute', now()), 'http', $1, 30, 5, 2), (date_trunc('minute', now()) - interval '30 minutes', 'http', $1, 100, 1, 0)`,
      [host],
    );
    const s = await scopeOf({ host });
    expect(s).toMatchObject({
      limit: null,
      paused: false,
      inFlight: 2,
      waiting: 3,
      circuit: { state: "open", consecutiveExceptions: 5 },
      lastHour: { attempts: 130, exceptions: 6, held: 2 },
    });
    expect(Date.parse(s.circuit.nextProbeAt)).toBeGreaterThan(Date.now());
    expect(Date.parse(s.circuit.since)).toBeLessThan(Date.now());
    expect(s.attemptsPerSecond).toBeGreaterThan(0.2);
    expect(s.attemptsPerSecond).toBeLessThanOrEqual(0.5);
    // the type scope counts every http command, of every host
    const http = await scopeOf({ type: "http" });
    expect(http.inFlight).toBeGreaterThanOrEqual(2);
    expect(http.waiting).toBeGreaterThanOrEqual(3);

    // An ordering key whose head is in exception: the two behind it wait.
    const k = [];
    for (let i = 0; i < 3; i++)
      k.push(await submit({ type: "http", payload: { url: url(`k${i}`) }, orderingKey: "customer-42" }));
    await moveTo(t.db, k[0]!, ["running", "exception"]);
    // and a key that moves on (its head succeeded): not blocked
    const free = await submit({ type: "http", payload: { url: url("f") }, orderingKey: "customer-7" });
    await moveTo(t.db, free, ["running", "succeeded"]);
    const { blockedKeys } = await list();
    expect(blockedKeys).toEqual([
      expect.objectContaining({
        clientName: "orders-service",
        orderingKey: "customer-42",
        blockedBy: k[0],
        waiting: 2,
      }),
    ]);
  });
});

describe("a worker and a paused scope", () => {
  it("claims nothing of a paused host and takes it up at once when resumed", async () => {
    const scope = { host: "127.0.0.1" };
    expect((await call(who.operator!, "flow.pause", { scope, reason: "backend deploy" })).status).toBe(200);
    worker = await startTestWorker(t.db, t.url, registry);
    const held = await submit({ type: "http", payload: { url: `${backend.url}/do/paused-1` }, priority: 10 });
    // A command of another scope, submitted after it with a lower priority, runs: the worker is claiming.
    const other = await submit({ type: "flaky", payload: { succeedOn: 1 } });
    await waitForStatus(t.db, other, ["succeeded"]);
    // Let the worker go round its claim loop a few more times (poll 100 ms), watching for any claim.
    const deadline = Date.now() + 1_000;
    while (Date.now() < deadline) {
      const r = await getRow(t.db, held);
      expect(r.status).toBe("pending");
      expect(r.lease_id).toBeNull();
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(backend.requests.filter((r) => r.path === "/do/paused-1")).toHaveLength(0);
    expect(await scopeOf(scope)).toMatchObject({ paused: true, waiting: 1, inFlight: 0 });

    const resumedAt = Date.now();
    expect((await call(who.operator!, "flow.resume", { scope, reason: "deploy done" })).status).toBe(200);
    await waitForStatus(t.db, held, ["succeeded"], 3_000);
    expect(Date.now() - resumedAt).toBeLessThan(3_000);
    expect(backend.requests.filter((r) => r.path === "/do/paused-1")).toHaveLength(1);
  });
});
