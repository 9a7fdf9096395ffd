// Console procedures: every action in every state, and the role matrix of every procedure.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken, startApi, type ApiServer } from "../helpers/api";
import { commandInEveryState, userWithSession } from "../helpers/fixtures";
import { STATES, type State } from "../../server/engine/states";
import { appRouter } from "../../server/api/root";
import { revokeToken } from "../../server/auth/tokens";

let t: TestDb;
let api: ApiServer;
type Who = { headers: Record<string, string> };
const who: Record<string, Who> = {};

async function call(w: Who, path: string, input?: unknown, kind: "query" | "mutation" = "query") {
  const headers = { "content-type": "application/json", ...w.headers };
  const res =
    kind === "mutation"
      ? await fetch(`${api.url}/api/trpc/${path}`, { method: "POST", headers, body: JSON.stringify(input ?? null) })
      : await fetch(
          `${api.url}/api/trpc/${path}${input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`}`,
          { headers },
        );
  const body = (await res.json()) as any;
  return { status: res.status, data: body.result?.data, error: body.error };
}

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  const origin = { origin: api.url };
  const client = await newToken(t.db, "client", "svc");
  const admin = await newToken(t.db, "admin", "automation");
  const revoked = await newToken(t.db, "admin", "old");
  await revokeToken(t.db, revoked.id);
  who.none = { headers: {} };
  who.client = { headers: { authorization: `Bearer ${client.token}` } };
  who.adminToken = { headers: { authorization: `Bearer ${admin.token}` } };
  who.revoked = { headers: { authorization: `Bearer ${revoked.token}` } };
  for (const role of ["viewer", "operator", "admin"] as const) {
    const { cookie } = await userWithSession(t.db, `${role}@example.com`, role);
    who[role] = { headers: { cookie, ...origin } };
  }
});
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

describe("actions in every state", () => {
  const expected: Record<string, { to: Partial<Record<State, State>> }> = {
    retry: { to: { failed: "pending", exception: "pending", cancelled: "pending" } },
    compensate: { to: { succeeded: "compensating", failed: "compensating", exception: "compensating" } },
    cancel: { to: { pending: "cancelled", retrying: "cancelled", awaiting: "cancelled" } },
    resolve: { to: { exception: "succeeded" } },
  };
  for (const [action, { to }] of Object.entries(expected)) {
    it(`${action}: changes exactly the allowed states, skips the rest with a reason, audits, and is safe twice`, async () => {
      const { rows: c } = await t.db.pool.query(`SELECT id FROM api_clients WHERE name = 'svc'`);
      const fx = await commandInEveryState(t.db, c[0].id, action);
      const ids = STATES.map((s) => fx[s]);
      const input =
        action === "resolve"
          ? { ids, outcome: "succeeded", reason: "checked with the bank" }
          : { ids, reason: `test ${action}` };
      const r = await call(who.operator!, `commands.${action}`, input, "mutation");
      expect(r.status).toBe(200);
      const changed = Object.keys(to)
        .map((s) => fx[s as State])
        .sort();
      expect([...r.data.updated].sort()).toEqual(changed);
      expect(r.data.skipped).toHaveLength(STATES.length - changed.length);
      const running = r.data.skipped.find((s: { id: string }) => s.id === fx.running);
      expect(running.reason).toMatch(/^running: a worker is working on it/);
      for (const s of r.data.skipped) expect(s.reason).toMatch(/^[a-z]+: /);
      for (const [from, target] of Object.entries(to)) {
        const { rows } = await t.db.pool.query(`SELECT status FROM commands WHERE id = $1`, [fx[from as State]]);
        expect(rows[0].status, `${action} on ${from}`).toBe(target);
      }
      const audit = (
        await t.db.pool.query(
          `SELECT actor, action, reason, command_ids FROM audit_entries WHERE action = $1 ORDER BY id DESC LIMIT 1`,
          [action],
        )
      ).rows[0];
      expect(audit).toMatchObject({ actor: "operator@example.com", action, reason: input.reason });
      expect([...audit.command_ids].sort()).toEqual(changed);
      // twice: nothing more changes
      const again = await call(who.operator!, `commands.${action}`, input, "mutation");
      if (action === "retry") expect(again.data.updated).toEqual([]); // pending now: not retryable
      for (const id of again.data.updated) expect(changed).not.toContain(id);
    });
  }

  it("retry of an exception met while compensating retries the compensation", async () => {
    const { rows: c } = await t.db.pool.query(`SELECT id FROM api_clients WHERE name = 'svc'`);
    const fx = await commandInEveryState(t.db, c[0].id, "comp-exc");
    await t.db.pool.query(`UPDATE commands SET status = 'exception', phase = 'compensate' WHERE id = $1`, [
      fx.compensating,
    ]);
    const r = await call(who.admin!, "commands.retry", { ids: [fx.compensating] }, "mutation");
    expect(r.data.updated).toEqual([fx.compensating]);
    expect(
      (await t.db.pool.query(`SELECT status, phase FROM commands WHERE id = $1`, [fx.compensating])).rows[0],
    ).toEqual({ status: "compensating", phase: "compensate" });
  });

  it("acts on all that match a filter, and resolve needs a reason", async () => {
    const { rows: c } = await t.db.pool.query(`SELECT id FROM api_clients WHERE name = 'svc'`);
    await commandInEveryState(t.db, c[0].id, "filter");
    const r = await call(
      who.operator!,
      "commands.cancel",
      { filter: { status: ["pending"], q: "filter-pending" } },
      "mutation",
    );
    expect(r.data.updated).toHaveLength(1);
    const bad = await call(
      who.operator!,
      "commands.resolve",
      { ids: [crypto.randomUUID()], outcome: "failed", reason: "" },
      "mutation",
    );
    expect(bad.status).toBe(400);
    expect(bad.error.data.issues[0].path).toEqual(["reason"]);
  });

  it("lists with filters and cursor pages, counts every state, shows details with secrets masked", async () => {
    const { rows: c } = await t.db.pool.query(`SELECT id FROM api_clients WHERE name = 'svc'`);
    const fx = await commandInEveryState(t.db, c[0].id, "list");
    const counts = await call(who.viewer!, "commands.counts");
    expect(Object.keys(counts.data).sort()).toEqual([...STATES].sort());
    const page1 = await call(who.viewer!, "commands.list", { status: ["exception", "failed"], limit: 2 });
    expect(page1.data.items).toHaveLength(2);
    expect(page1.data.items.every((i: { status: string }) => ["exception", "failed"].includes(i.status))).toBe(true);
    const page2 = await call(who.viewer!, "commands.list", {
      status: ["exception", "failed"],
      limit: 2,
      cursor: page1.data.nextCursor,
    });
    expect(page2.data.items[0].id).not.toBe(page1.data.items[0].id);
    const byKey = await call(who.viewer!, "commands.list", { q: "list-awaiting" });
    expect(byKey.data.items.map((i: { id: string }) => i.id)).toEqual([fx.awaiting]);
    const byText = await call(who.viewer!, "commands.list", { q: "backend.example/awaiting" });
    expect(byText.data.items.map((i: { id: string }) => i.id)).toContain(fx.awaiting);
    const byId = await call(who.viewer!, "commands.list", { q: fx.failed });
    expect(byId.data.items.map((i: { id: string }) => i.id)).toEqual([fx.failed]);
    const d = await call(who.viewer!, "commands.get", { id: fx.exception });
    expect(d.data.command.payload.headers.Authorization).toBe("Bearer ••••");
    expect(d.data.command.error).toBe("fixture: gave up");
    expect(Array.isArray(d.data.attempts) && Array.isArray(d.data.audit)).toBe(true);
  });
});

describe("role matrix", () => {
  type Expect = Partial<Record<string, number>>;
  const ok = 200;
  // who → HTTP status, per procedure group
  const intake: Expect = {
    none: 401,
    client: ok,
    adminToken: ok,
    revoked: 401,
    viewer: 401,
    operator: 401,
    admin: 401,
  };
  const read: Expect = { none: 401, client: 403, adminToken: ok, revoked: 401, viewer: ok, operator: ok, admin: ok };
  const act: Expect = { none: 401, client: 403, adminToken: ok, revoked: 401, viewer: 403, operator: ok, admin: ok };
  const adminOnly: Expect = {
    none: 401,
    client: 403,
    adminToken: ok,
    revoked: 401,
    viewer: 403,
    operator: 403,
    admin: ok,
  };
  const anyone: Expect = { none: ok, client: ok, adminToken: ok, revoked: 401, viewer: ok, operator: ok, admin: ok };
  const usersOnly: Expect = {
    none: 401,
    client: 401,
    adminToken: 401,
    revoked: 401,
    viewer: 400,
    operator: 400,
    admin: 400,
  };

  const cases: { path: string; kind: "query" | "mutation"; input?: () => unknown; expect: Expect }[] = [
    {
      path: "intake.submit",
      kind: "mutation",
      input: () => ({ type: "http", payload: { url: "https://x.example/" } }),
      expect: intake,
    },
    {
      path: "intake.submitBatch",
      kind: "mutation",
      input: () => ({ commands: [{ type: "http", payload: { url: "https://x.example/" } }] }),
      expect: intake,
    },
    {
      path: "intake.get",
      kind: "query",
      input: () => ({ idempotencyKey: "none-such" }),
      expect: { ...intake, client: 404, adminToken: 404 },
    },
    { path: "intake.getMany", kind: "query", input: () => ({ ids: [] }), expect: intake },
    {
      path: "intake.getBatch",
      kind: "query",
      input: () => ({ id: "00000000-0000-4000-8000-000000000000" }),
      expect: { ...intake, client: 404, adminToken: 404 },
    },
    { path: "batches.list", kind: "query", input: () => ({}), expect: read },
    {
      path: "batches.get",
      kind: "query",
      input: () => ({ id: "00000000-0000-4000-8000-000000000000" }),
      expect: { ...read, adminToken: 404, viewer: 404, operator: 404, admin: 404 },
    },
    { path: "commands.list", kind: "query", input: () => ({}), expect: read },
    { path: "commands.counts", kind: "query", expect: read },
    { path: "commands.countMatching", kind: "query", input: () => ({ status: ["exception"] }), expect: read },
    { path: "commands.overview", kind: "query", expect: read },
    { path: "commands.types", kind: "query", expect: read },
    {
      path: "commands.get",
      kind: "query",
      input: () => ({ id: "00000000-0000-4000-8000-000000000000" }),
      expect: { ...read, adminToken: 404, viewer: 404, operator: 404, admin: 404 },
    },
    { path: "audit.list", kind: "query", input: () => ({}), expect: read },
    { path: "commands.preview", kind: "query", input: () => ({ ids: [crypto.randomUUID()] }), expect: act },
    { path: "commands.retry", kind: "mutation", input: () => ({ ids: [crypto.randomUUID()] }), expect: act },
    { path: "commands.compensate", kind: "mutation", input: () => ({ ids: [crypto.randomUUID()] }), expect: act },
    { path: "commands.cancel", kind: "mutation", input: () => ({ ids: [crypto.randomUUID()] }), expect: act },
    {
      path: "commands.resolve",
      kind: "mutation",
      input: () => ({ ids: [crypto.randomUUID()], outcome: "failed", reason: "r" }),
      expect: act,
    },
    {
      path: "commands.editAndRetry",
      kind: "mutation",
      input: () => ({ id: crypto.randomUUID(), payload: { url: "https://x.example/" }, reason: "r" }),
      expect: act,
    },
    { path: "tokens.list", kind: "query", expect: adminOnly },
    { path: "tokens.create", kind: "mutation", input: () => ({ name: "m", scope: "client" }), expect: adminOnly },
    {
      path: "tokens.revoke",
      kind: "mutation",
      input: () => ({ id: "00000000-0000-4000-8000-000000000000" }),
      expect: { ...adminOnly, adminToken: 404, admin: 404 },
    },
    {
      path: "tokens.rotateSecret",
      kind: "mutation",
      input: () => ({ id: "00000000-0000-4000-8000-000000000000" }),
      expect: { ...adminOnly, adminToken: 404, admin: 404 },
    },
    { path: "users.list", kind: "query", expect: adminOnly },
    {
      path: "users.create",
      kind: "mutation",
      input: () => ({
        email: `u${Math.random().toString(36).slice(2, 8)}@example.com`,
        password: "a long enough password",
        role: "viewer",
      }),
      expect: adminOnly,
    },
    {
      path: "users.update",
      kind: "mutation",
      input: () => ({ id: "00000000-0000-4000-8000-000000000000", role: "viewer" }),
      expect: { ...adminOnly, adminToken: 404, admin: 404 },
    },
    { path: "alerts.listRules", kind: "query", expect: read },
    { path: "alerts.history", kind: "query", input: () => ({}), expect: read },
    {
      path: "alerts.createRule",
      kind: "mutation",
      input: () => ({ name: "r", kind: "backlog", threshold: 5, recipients: ["a@example.com"] }),
      expect: adminOnly,
    },
    {
      path: "alerts.updateRule",
      kind: "mutation",
      input: () => ({
        id: "00000000-0000-4000-8000-000000000000",
        name: "r",
        kind: "backlog",
        threshold: 5,
        recipients: ["a@example.com"],
      }),
      expect: { ...adminOnly, adminToken: 404, admin: 404 },
    },
    {
      path: "alerts.deleteRule",
      kind: "mutation",
      input: () => ({ id: "00000000-0000-4000-8000-000000000000" }),
      expect: { ...adminOnly, adminToken: 404, admin: 404 },
    },
    {
      path: "alerts.rotateWebhookSecret",
      kind: "mutation",
      input: () => ({ id: "00000000-0000-4000-8000-000000000000" }),
      expect: { ...adminOnly, adminToken: 404, admin: 404 },
    },
    {
      path: "alerts.testRule",
      kind: "mutation",
      input: () => ({ id: "00000000-0000-4000-8000-000000000000" }),
      expect: { ...adminOnly, adminToken: 404, admin: 404 },
    },
    { path: "flow.list", kind: "query", expect: read },
    {
      path: "flow.setLimit",
      kind: "mutation",
      input: () => ({ scope: { host: "matrix.example" }, concurrency: 3 }),
      expect: adminOnly,
    },
    {
      path: "flow.removeLimit",
      kind: "mutation",
      input: () => ({ scope: { host: "matrix.example" } }),
      expect: adminOnly,
    },
    {
      path: "flow.pause",
      kind: "mutation",
      input: () => ({ scope: { host: "matrix.example" }, reason: "matrix" }),
      expect: act,
    },
    { path: "flow.resume", kind: "mutation", input: () => ({ scope: { host: "matrix.example" } }), expect: act },
    { path: "schedules.list", kind: "query", expect: adminOnly },
    {
      path: "schedules.create",
      kind: "mutation",
      input: () => ({
        name: "m",
        cron: "0 3 * * *",
        command: { type: "http", payload: { url: "https://x.example/" } },
      }),
      expect: adminOnly,
    },
    {
      path: "schedules.update",
      kind: "mutation",
      input: () => ({ id: "00000000-0000-4000-8000-000000000000", enabled: false }),
      expect: { ...adminOnly, adminToken: 404, admin: 404 },
    },
    {
      path: "schedules.delete",
      kind: "mutation",
      input: () => ({ id: "00000000-0000-4000-8000-000000000000" }),
      expect: { ...adminOnly, adminToken: 404, admin: 404 },
    },
    {
      path: "schedules.runNow",
      kind: "mutation",
      input: () => ({ id: "00000000-0000-4000-8000-000000000000" }),
      expect: { ...adminOnly, adminToken: 404, admin: 404 },
    },
    { path: "auth.me", kind: "query", expect: anyone },
    {
      path: "auth.changePassword",
      kind: "mutation",
      input: () => ({ current: "wrong", next: "another long password" }),
      expect: usersOnly,
    },
  ];

  it("covers every procedure of the router", () => {
    const procedures = Object.keys(appRouter._def.procedures).sort();
    expect(cases.map((c) => c.path).sort()).toEqual(procedures);
  });

  for (const c of cases) {
    it(`${c.path}`, async () => {
      const got: Expect = {};
      for (const name of Object.keys(c.expect))
        got[name] = (await call(who[name]!, c.path, c.input?.(), c.kind)).status;
      expect(got).toEqual(c.expect);
    });
  }

  it("refuses cookie mutations from another origin", async () => {
    const r = await call(
      { headers: { ...who.operator!.headers, origin: "https://evil.example" } },
      "commands.cancel",
      { ids: [crypto.randomUUID()] },
      "mutation",
    );
    expect(r.status).toBe(403);
    expect(r.error.message).toMatch(/Cross-site/);
  });
});
