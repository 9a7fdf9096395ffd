// commands.preview: what each operator action would change and skip, asked
// over real HTTP with an operator's session, and then compared with what the
// action really does to the same commands.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken, startApi, type ApiServer } from "../helpers/api";
import { commandInEveryState, moveTo, userWithSession } from "../helpers/fixtures";
import { directIntake, submit } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { STATES } from "../../server/engine/states";

const ACTION_NAMES = ["retry", "compensate", "cancel", "resolve"] as const;
type ActionName = (typeof ACTION_NAMES)[number];

let t: TestDb;
let api: ApiServer;
let clientId: string;
let operator: Record<string, string>;
let viewer: Record<string, string>;

async function call(headers: Record<string, string>, path: string, input: unknown, kind: "query" | "mutation") {
  const h = { "content-type": "application/json", ...headers };
  // Queries go by POST (method override): a selection of ids is too long for a URL.
  const res = await fetch(`${api.url}/api/trpc/${path}`, {
    method: "POST",
    headers: kind === "query" ? { ...h, "x-trpc-method-override": "1" } : h,
    body: JSON.stringify(input),
  });
  const body = (await res.json()) as any;
  return { status: res.status, data: body.result?.data, error: body.error };
}
const preview = (input: unknown, who = operator) => call(who, "commands.preview", input, "query");
const act = (action: ActionName, target: object) =>
  call(
    operator,
    `commands.${action}`,
    action === "resolve" ? { ...target, outcome: "failed", reason: "checked by hand" } : { ...target, reason: "test" },
    "mutation",
  );

/** Skip reasons of an action's answer, counted like the preview counts them. */
function grouped(skipped: { reason: string }[]) {
  const m = new Map<string, number>();
  for (const s of skipped) m.set(s.reason, (m.get(s.reason) ?? 0) + 1);
  return [...m]
    .map(([reason, count]) => ({ reason, count }))
    .sort((x, y) => y.count - x.count || x.reason.localeCompare(y.reason));
}
const statuses = async (ids: string[]) =>
  (await t.db.pool.query(`SELECT id, status FROM commands WHERE id = ANY($1::uuid[]) ORDER BY id`, [ids])).rows;

/** A command in every state, one succeeded command with nothing to compensate with, and an id that names no command. */
async function fixtures(prefix: string) {
  const every = await commandInEveryState(t.db, clientId, prefix);
  const { id: bare } = await submit(directIntake(t.db, registry), clientId, {
    type: "http",
    idempotencyKey: `${prefix}-bare`,
    payload: { url: `https://backend.example/${prefix}-bare` },
    runAt: "2999-01-01T00:00:00Z",
  });
  await moveTo(t.db, bare, ["running", "succeeded"]);
  return { every, bare, missing: crypto.randomUUID(), ids: [...STATES.map((s) => every[s]), bare] };
}

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  clientId = (await newToken(t.db, "client", "svc")).id;
  operator = { cookie: (await userWithSession(t.db, "operator@example.com", "operator")).cookie, origin: api.url };
  viewer = { cookie: (await userWithSession(t.db, "viewer@example.com", "viewer")).cookie, origin: api.url };
});
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

describe("commands.preview and commands.countMatching", () => {
  for (const action of ACTION_NAMES) {
    it(`${action}: says how many of a selection it would change and skip, and why, changes nothing, and the action then does exactly that`, async () => {
      const f = await fixtures(`pv-${action}`);
      const ids = [...f.ids, f.missing, f.every.failed]; // the repeated id counts once, as the action takes it
      const before = await statuses(ids);
      const p = await preview({ ids });
      expect(p.status).toBe(200);
      expect(await statuses(ids)).toEqual(before);
      expect(p.data).toMatchObject({ total: 12, considered: 12 });
      const mine = p.data.actions[action];
      expect(mine.change + mine.skip).toBe(12);

      const r = await act(action, { ids });
      expect(r.status).toBe(200);
      expect(mine.change).toBe(r.data.updated.length);
      expect(mine.skip).toBe(r.data.skipped.length);
      expect(mine.skipped).toEqual(grouped(r.data.skipped));
      expect(mine.skipped).toContainEqual({ reason: "no such command", count: 1 });
      expect(mine.skipped).toContainEqual({ reason: "running: a worker is working on it right now", count: 1 });
    });
  }

  it("names the reasons a succeeded command gets for each action", async () => {
    const f = await fixtures("pv-succeeded");
    const p = await preview({ ids: [f.every.succeeded] });
    const a = p.data.actions;
    expect(a.retry).toEqual({
      change: 0,
      skip: 1,
      skipped: [{ reason: "succeeded: retry applies only to failed, exception, cancelled commands", count: 1 }],
    });
    expect(a.cancel).toEqual({
      change: 0,
      skip: 1,
      skipped: [{ reason: "succeeded: cancel applies only to pending, retrying, awaiting commands", count: 1 }],
    });
    expect(a.resolve).toEqual({
      change: 0,
      skip: 1,
      skipped: [{ reason: "succeeded: resolve applies only to exception commands", count: 1 }],
    });
    expect(a.compensate).toEqual({ change: 1, skip: 0, skipped: [] });
    const bare = await preview({ ids: [f.bare] });
    expect(bare.data.actions.compensate.skipped).toEqual([
      { reason: "this http command has nothing to compensate with (no compensateUrl)", count: 1 },
    ]);
  });

  it("all that match a filter: counts them, and the action agrees with the preview", async () => {
    const createdAfter = (await t.db.pool.query(`SELECT now() AS at`)).rows[0].at.toISOString();
    await fixtures("pv-filter");
    const filter = { createdAfter };
    const p = await preview({ filter });
    expect(p.data).toMatchObject({ total: 11, considered: 11 });
    const listed = await call(viewer, "commands.list", { ...filter, limit: 200 }, "query");
    expect(listed.data.items).toHaveLength(11);
    expect((await call(viewer, "commands.countMatching", filter, "query")).data).toEqual({ total: 11 });
    const r = await act("retry", { filter });
    expect(p.data.actions.retry).toEqual({
      change: r.data.updated.length,
      skip: r.data.skipped.length,
      skipped: grouped(r.data.skipped),
    });
    expect(p.data.actions.retry.change).toBe(3); // failed, exception, cancelled
  });

  it("all that match beyond what one action takes: counts all, and previews the ones the action would take", async () => {
    await t.db.pool.query(
      `INSERT INTO commands (id, client_id, type, payload, run_at)
       SELECT gen_random_uuid(), $1, 'http', jsonb_build_object('url', 'https://backend.example/pv-many/' || g), 'infinity' FROM generate_series(1, 10001) g`,
      [clientId],
    );
    const filter = { q: "pv-many", status: ["pending"] };
    const p = await preview({ filter });
    expect(p.data).toMatchObject({ total: 10001, considered: 10000, max: 10000 });
    expect((await call(viewer, "commands.countMatching", filter, "query")).data).toEqual({ total: 10001 });
    expect(p.data.actions.cancel).toEqual({ change: 10000, skip: 0, skipped: [] });
    const r = await act("cancel", { filter });
    expect(r.data.updated).toHaveLength(10000);
    expect((await preview({ filter })).data).toMatchObject({ total: 1, considered: 1 });
  });

  it("preview is for operators, and bad input names the field", async () => {
    const v = await preview({ ids: [crypto.randomUUID()] }, viewer);
    expect(v.status).toBe(403);
    expect(v.error.message).toBe("This needs the operator role; you are viewer");
    const bad = await preview({ ids: ["not-a-uuid"] });
    expect(bad.status).toBe(400);
    expect(bad.error.data.issues).toEqual([{ path: ["ids", 0], message: "must be a command id (UUID)" }]);
    const none = await preview({ ids: [] });
    expect(none.error.data.issues).toEqual([{ path: ["ids"], message: "select at least one command" }]);
    const stray = await preview({ filter: { status: ["nope"] } });
    expect(stray.status).toBe(400);
    expect(stray.error.data.issues[0].path).toEqual(["filter", "status", 0]);
    const count = await call(viewer, "commands.countMatching", { createdAfter: "yesterday" }, "query");
    expect(count.status).toBe(400);
    expect(count.error.data.issues[0].path).toEqual(["createdAfter"]);
  });
});
