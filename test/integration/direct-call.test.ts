// The direct road for single POST calls (server/api/direct.ts) must answer
// exactly as tRPC's fetch adapter does, for successes and for every kind of error.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken, startApi, type ApiServer } from "../helpers/api";
import { createTrpcHandler } from "../../server/api/handler";

let t: TestDb;
let api: ApiServer;
let clientToken: string;
let adminToken: string;

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  clientToken = (await newToken(t.db, "client")).token;
  adminToken = (await newToken(t.db, "admin")).token;
});
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

it("answers like the fetch adapter, byte for byte", async () => {
  const full = createTrpcHandler(api.deps);
  const seeded = await fetch(`${api.url}/api/trpc/intake.submit`, {
    method: "POST",
    headers: { authorization: `Bearer ${clientToken}` },
    body: JSON.stringify({ type: "http", payload: { url: "https://x.example/" }, idempotencyKey: "seed" }),
  });
  const seededId = ((await seeded.json()) as any).result.data.id;

  const cases: { path: string; token?: string; body: string }[] = [
    {
      path: "intake.submit",
      token: clientToken,
      body: JSON.stringify({ type: "http", payload: { url: "https://x.example/" }, idempotencyKey: "seed" }),
    },
    {
      path: "intake.submit",
      token: clientToken,
      body: JSON.stringify({ type: "http", payload: { url: "https://y.example/" }, idempotencyKey: "seed" }),
    },
    { path: "intake.submit", token: clientToken, body: JSON.stringify({ type: "nope", payload: {} }) },
    {
      path: "intake.submit",
      token: clientToken,
      body: JSON.stringify({ type: "http", payload: { url: 1 }, extra: true }),
    },
    { path: "intake.submit", token: clientToken, body: "" },
    { path: "intake.submit", token: clientToken, body: "[1,2,3]" },
    { path: "intake.submit", body: JSON.stringify({ type: "http", payload: {} }) },
    { path: "intake.submit", token: "cvy_wrong", body: JSON.stringify({ type: "http", payload: {} }) },
    { path: "intake.submitBatch", token: clientToken, body: JSON.stringify({ commands: [] }) },
    { path: "intake.get", token: clientToken, body: JSON.stringify({ id: seededId }) },
    { path: "intake.get", token: clientToken, body: JSON.stringify({ id: "00000000-0000-4000-8000-000000000000" }) },
    { path: "intake.getMany", token: clientToken, body: JSON.stringify({ ids: [seededId] }) },
    { path: "tokens.list", token: clientToken, body: "" },
    { path: "tokens.revoke", token: adminToken, body: JSON.stringify({ id: "nope" }) },
    { path: "no.such.procedure", token: clientToken, body: "{}" },
  ];
  for (const c of cases) {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      ...(c.token ? { authorization: `Bearer ${c.token}` } : {}),
    };
    const direct = await fetch(`${api.url}/api/trpc/${c.path}`, { method: "POST", headers, body: c.body });
    const viaAdapter = await full(
      new Request(`http://localhost/api/trpc/${c.path}`, { method: "POST", headers, body: c.body }),
    );
    const a = await direct.text();
    const b = await viaAdapter.text();
    expect({ case: c, status: direct.status, body: a }).toEqual({ case: c, status: viaAdapter.status, body: b });
  }
});

it("only POST takes the direct road: PUT, PATCH and DELETE with a valid body get tRPC's 405 and store nothing", async () => {
  const before = (await t.db.pool.query(`SELECT count(*)::int AS n FROM commands`)).rows[0].n;
  for (const method of ["PUT", "PATCH", "DELETE"]) {
    const res = await fetch(`${api.url}/api/trpc/intake.submit`, {
      method,
      headers: { authorization: `Bearer ${clientToken}`, "content-type": "application/json" },
      body: JSON.stringify({ type: "http", payload: { url: "https://x.example/" }, idempotencyKey: `by-${method}` }),
    });
    expect(res.status, method).toBe(405);
    expect(((await res.json()) as any).error.data.code).toBe("METHOD_NOT_SUPPORTED");
  }
  expect((await t.db.pool.query(`SELECT count(*)::int AS n FROM commands`)).rows[0].n).toBe(before);
});
