// With an explicit HTTP_ALLOWED_HOSTS list, intake refuses an `http` command
// whose target host is not on it (the worker would refuse to call it), over
// tRPC and REST, naming the field and storing nothing. The API is served with
// the web process's own dependencies (server/app.ts), built from the
// environment as `npm run web` builds them. Unset or "*": nothing changes at
// intake.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";
import { createGroupInserter } from "../../server/commands/group-insert";
import { registry } from "../../server/command-types";
import { createHostListCheck } from "../../server/outbound/url-guard";
import type { ApiDeps } from "../../server/api/deps";

let t: TestDb;
let deps: ApiDeps;
let api: ApiServer;
let token: string;
let trpc: ReturnType<typeof client>;

const countCommands = async () =>
  (await t.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM commands")).rows[0]!.n;
const rest = async (path: string, body: unknown) => {
  const res = await fetch(`${api.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
};
const refusedHost = (host: string) => `host ${host} is not in HTTP_ALLOWED_HOSTS`;

beforeAll(async () => {
  t = await createTestDb();
  Object.assign(process.env, {
    DATABASE_URL: t.url,
    HTTP_ALLOWED_HOSTS: "payments.internal, *.svc.example",
    LOG_LEVEL: "silent",
  });
  const { appDeps } = await import("../../server/app");
  deps = appDeps();
  api = await startApi(deps.db, deps);
  token = (await newToken(t.db, "client", "hosts")).token;
  trpc = client(api.url, token);
});
afterAll(async () => {
  await api?.close();
  await deps?.db.close();
  await t?.drop();
});

describe("HTTP_ALLOWED_HOSTS set to a list", () => {
  it("intake.submit refuses a url whose host is not listed, naming payload.url; nothing is stored", async () => {
    const before = await countCommands();
    const r = await trpc.mutation("intake.submit", { type: "http", payload: { url: "https://evil.example/pay" } });
    expect(r.status).toBe(400);
    expect(r.error?.data.code).toBe("BAD_REQUEST");
    expect(r.error?.data.issues).toEqual([{ path: ["payload", "url"], message: refusedHost("evil.example") }]);
    expect(r.error?.message).toBe(`Invalid payload for type "http": payload.url: ${refusedHost("evil.example")}`);
    expect(await countCommands()).toBe(before);
  });

  it("names statusUrl and compensateUrl too, each on its own", async () => {
    const before = await countCommands();
    const r = await trpc.mutation("intake.submit", {
      type: "http",
      payload: {
        url: "https://payments.internal/charges",
        statusUrl: "https://status.example/charges/{commandId}",
        compensateUrl: "https://undo.svc.example.evil.example/refund",
      },
    });
    expect(r.status).toBe(400);
    expect(r.error?.data.issues).toEqual([
      { path: ["payload", "statusUrl"], message: refusedHost("status.example") },
      { path: ["payload", "compensateUrl"], message: refusedHost("undo.svc.example.evil.example") },
    ]);
    expect(await countCommands()).toBe(before);
  });

  it("refuses a callbackUrl whose host is not listed, naming callbackUrl (callbacks go through the same list)", async () => {
    const before = await countCommands();
    const r = await trpc.mutation("intake.submit", {
      type: "http",
      payload: { url: "https://payments.internal/charges" },
      callbackUrl: "https://hooks.evil.example/cb",
    });
    expect(r.status).toBe(400);
    expect(r.error?.data.issues).toEqual([{ path: ["callbackUrl"], message: refusedHost("hooks.evil.example") }]);
    const ok = await trpc.mutation("intake.submit", {
      type: "http",
      payload: { url: "https://payments.internal/charges" },
      callbackUrl: "https://cb.svc.example/conveyor",
    });
    expect(ok.status).toBe(200);
    expect(await countCommands()).toBe(before + 1);
  });

  it("accepts listed hosts and patterns, whatever their case and port", async () => {
    const r = await trpc.mutation("intake.submit", {
      type: "http",
      payload: {
        url: "https://PAYMENTS.internal:8443/charges",
        statusUrl: "https://status.svc.example/charges/{commandId}",
        compensateUrl: "http://a.b.svc.example/refund",
      },
    });
    expect(r.status).toBe(200);
    expect(r.data).toMatchObject({ status: "pending", duplicate: false });
  });

  it("intake.submitBatch refuses only the items with an unlisted host, naming commands.<i>.payload.url", async () => {
    const before = await countCommands();
    const r = await trpc.mutation("intake.submitBatch", {
      commands: [
        { type: "http", payload: { url: "https://payments.internal/a" } },
        { type: "http", payload: { url: "https://svc.example/b" } },
        { type: "http", payload: { url: "https://x.svc.example/c", compensateUrl: "https://10.0.0.1/undo" } },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.data.receipts).toEqual([
      expect.objectContaining({ ok: true, duplicate: false }),
      {
        ok: false,
        error: {
          code: "BAD_REQUEST",
          message: 'Invalid payload for type "http"',
          issues: [{ path: ["commands", 1, "payload", "url"], message: refusedHost("svc.example") }],
        },
      },
      {
        ok: false,
        error: {
          code: "BAD_REQUEST",
          message: 'Invalid payload for type "http"',
          issues: [{ path: ["commands", 2, "payload", "compensateUrl"], message: refusedHost("10.0.0.1") }],
        },
      },
    ]);
    expect(await countCommands()).toBe(before + 1);
  });

  it("REST: POST /api/v1/commands and /api/v1/commands/batch refuse the same way", async () => {
    const before = await countCommands();
    const one = await rest("/api/v1/commands", { type: "http", payload: { url: "https://[::1]:9000/pay" } });
    expect(one.status).toBe(400);
    expect(one.body.error).toMatchObject({
      code: "BAD_REQUEST",
      issues: [{ path: ["payload", "url"], message: refusedHost("::1") }],
    });
    const batch = await rest("/api/v1/commands/batch", {
      commands: [{ type: "http", payload: { url: "https://evil.example/" } }],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.receipts).toEqual([
      {
        ok: false,
        error: {
          code: "BAD_REQUEST",
          message: 'Invalid payload for type "http"',
          issues: [{ path: ["commands", 0, "payload", "url"], message: refusedHost("evil.example") }],
        },
      },
    ]);
    expect(await countCommands()).toBe(before);
    const ok = await rest("/api/v1/commands", { type: "http", payload: { url: "https://payments.internal/pay" } });
    expect(ok.status).toBe(201);
  });
});

describe("HTTP_ALLOWED_HOSTS unset or *", () => {
  it("has no list to check names against: intake accepts any host, as before (the worker applies the address rules)", async () => {
    expect(createHostListCheck(undefined)).toBeNull();
    expect(createHostListCheck("*")).toBeNull();
    expect(createHostListCheck("payments.internal,*")).toBeNull();
    for (const allowed of [undefined, "*"]) {
      const other = await startApi(t.db, {
        intake: { registry, insert: createGroupInserter(t.db), hostCheck: createHostListCheck(allowed) },
      });
      try {
        const r = await client(other.url, token).mutation("intake.submit", {
          type: "http",
          payload: { url: "http://127.0.0.1:9/pay", statusUrl: "https://evil.example/{commandId}" },
        });
        expect(r.status, String(allowed)).toBe(200);
      } finally {
        await other.close();
      }
    }
  });
});
