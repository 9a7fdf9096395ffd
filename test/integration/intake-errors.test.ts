// Errors that say what to do (issue 13, item 4): a token sent without the
// Bearer scheme, and intake.get with both or neither of id / idempotencyKey.
// Over tRPC and REST, on real HTTP and a real PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";

let t: TestDb;
let api: ApiServer;
let token: string;

const httpCmd = { type: "http", payload: { url: "https://backend.example/pay" } };
const countCommands = async () =>
  (await t.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM commands")).rows[0]!.n;
const call = async (method: string, path: string, authorization: string | null, body?: unknown) => {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: {
      ...(authorization === null ? {} : { authorization }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
};
const BEARER_HINT =
  "Send the API token as Authorization: Bearer <token>; this Authorization header is not in that form";
const EXACTLY_ONE = "give exactly one of id or idempotencyKey";

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  token = (await newToken(t.db, "client", "errors")).token;
});
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

describe("a token sent without the Bearer scheme", () => {
  it("is a 401 that says to send Authorization: Bearer <token>, on tRPC and REST; nothing stored", async () => {
    const before = await countCommands();
    for (const authorization of [token, `Token ${token}`, `Basic ${token}`, "Bearer", `Bearer ${token} extra`]) {
      const trpc = await call("POST", "/api/trpc/intake.submit", authorization, httpCmd);
      expect(trpc.status, authorization).toBe(401);
      expect(trpc.body.error.data.code).toBe("UNAUTHORIZED");
      expect(trpc.body.error.message).toBe(BEARER_HINT);
      const rest = await call("POST", "/api/v1/commands", authorization, httpCmd);
      expect(rest.status, authorization).toBe(401);
      expect(rest.body.error).toEqual({ code: "UNAUTHORIZED", message: BEARER_HINT });
    }
    expect(await countCommands()).toBe(before);
  });

  it("while a Bearer token nobody issued is still unknown or revoked, and the right header works (any case of Bearer)", async () => {
    const unknown = await call("POST", "/api/trpc/intake.submit", "Bearer cvy_nope", httpCmd);
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.message).toBe("The API token is unknown or revoked");
    expect((await call("POST", "/api/trpc/intake.submit", `bearer ${token}`, httpCmd)).status).toBe(200);
    expect((await call("POST", "/api/v1/commands", `Bearer ${token}`, httpCmd)).status).toBe(201);
  });
});

describe("intake.get with both or neither of id and idempotencyKey", () => {
  it("tRPC: BAD_REQUEST saying give exactly one of id or idempotencyKey, by GET and by POST", async () => {
    const c = client(api.url, token);
    const s = await c.mutation("intake.submit", { ...httpCmd, idempotencyKey: "get-1" });
    // Neither names id, as a missing required field is named; both names the input as a whole.
    for (const [input, path] of [
      [{}, ["id"]],
      [{ id: s.data.id, idempotencyKey: "get-1" }, []],
    ] as const) {
      for (const r of [await c.query("intake.get", input), await c.queryPost("intake.get", input)]) {
        expect(r.status, JSON.stringify(input)).toBe(400);
        expect(r.error?.data.code).toBe("BAD_REQUEST");
        expect(r.error?.data.issues).toEqual([{ path, message: EXACTLY_ONE }]);
        expect(r.error?.message).toBe(`Invalid input: ${path.length ? `${path.join(".")}: ` : ""}${EXACTLY_ONE}`);
      }
    }
    // No input at all is the same as neither.
    const none = await c.query("intake.get");
    expect(none.status).toBe(400);
    expect(none.error?.message).toContain(EXACTLY_ONE);
    // Exactly one still works either way, and a bad one names its field.
    expect((await c.query("intake.get", { id: s.data.id })).data).toMatchObject({
      id: s.data.id,
      idempotencyKey: "get-1",
    });
    expect((await c.query("intake.get", { idempotencyKey: "get-1" })).data).toMatchObject({ id: s.data.id });
    expect((await c.query("intake.get", { id: "not-a-uuid" })).error?.data.issues).toEqual([
      { path: ["id"], message: "must be a command id (UUID)" },
    ]);
    expect((await c.query("intake.get", { idempotencyKey: "get-1", extra: 1 })).error?.data.issues).toEqual([
      expect.objectContaining({ path: [], message: expect.stringContaining("extra") }),
    ]);
  });

  it("REST: GET /api/v1/commands with both says the same; with neither it says how to ask", async () => {
    const s = await call("POST", "/api/v1/commands", `Bearer ${token}`, { ...httpCmd, idempotencyKey: "get-2" });
    const both = await call("GET", `/api/v1/commands?idempotencyKey=get-2&id=${s.body.id}`, `Bearer ${token}`);
    expect(both.status).toBe(400);
    expect(both.body.error).toEqual({
      code: "BAD_REQUEST",
      message: `Invalid input: ${EXACTLY_ONE}`,
      issues: [{ path: [], message: EXACTLY_ONE }],
    });
    const neither = await call("GET", "/api/v1/commands", `Bearer ${token}`);
    expect(neither.status).toBe(400);
    expect(neither.body.error.message).toMatch(/idempotencyKey=<key> \(or GET \/api\/v1\/commands\/<id>\)/);
    expect((await call("GET", `/api/v1/commands?idempotencyKey=get-2`, `Bearer ${token}`)).body).toMatchObject({
      id: s.body.id,
    });
  });
});
