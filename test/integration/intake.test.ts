import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";
import { startListener } from "../../server/db/listener";
import { TokenCache, TOKENS_CHANNEL, revokeToken } from "../../server/auth/tokens";
import { sha256Hex } from "../../server/crypto";
import { createRateLimiter } from "../../server/api/rate-limit";

let t: TestDb;
let api: ApiServer;
let clientA: ReturnType<typeof client>;
let clientB: ReturnType<typeof client>;
let admin: ReturnType<typeof client>;

const httpCmd = (extra: Record<string, unknown> = {}) => ({
  type: "http",
  payload: { url: "https://backend.example/pay", body: { amount: 10 } },
  ...extra,
});
const countCommands = async () =>
  (await t.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM commands")).rows[0]!.n;

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  clientA = client(api.url, (await newToken(t.db, "client", "a")).token);
  clientB = client(api.url, (await newToken(t.db, "client", "b")).token);
  admin = client(api.url, (await newToken(t.db, "admin", "ops")).token);
});
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

describe("intake.submit", () => {
  it("stores a command and answers a receipt, never a result", async () => {
    const r = await clientA.mutation(
      "intake.submit",
      httpCmd({ priority: 5, runAt: "2030-01-01T00:00:00Z", retry: { maxAttempts: 3 } }),
    );
    expect(r.status).toBe(200);
    expect(r.data).toEqual({ id: expect.any(String), status: "pending", duplicate: false });
    const row = (await t.db.pool.query("SELECT * FROM commands WHERE id = $1", [r.data.id])).rows[0];
    expect(row).toMatchObject({ type: "http", status: "pending", priority: 5, max_attempts: 3 });
    expect(row.run_at.toISOString()).toBe("2030-01-01T00:00:00.000Z");
    expect(row.payload).toEqual({ url: "https://backend.example/pay", body: { amount: 10 } });
  });

  it("returns the original command for the same client and idempotency key", async () => {
    const first = await clientA.mutation("intake.submit", httpCmd({ idempotencyKey: "order-1" }));
    // Same payload with keys in another order is the same payload (jsonb equality).
    const again = await clientA.mutation("intake.submit", {
      idempotencyKey: "order-1",
      type: "http",
      payload: { body: { amount: 10 }, url: "https://backend.example/pay" },
    });
    expect(again.data).toEqual({ id: first.data.id, status: "pending", duplicate: true });
    // Another client may use the same key for its own command.
    const other = await clientB.mutation("intake.submit", httpCmd({ idempotencyKey: "order-1" }));
    expect(other.data.duplicate).toBe(false);
    expect(other.data.id).not.toBe(first.data.id);
  });

  it("refuses URLs with credentials in them (fetch cannot send them, and they would be logged), naming the field", async () => {
    const before = await countCommands();
    const a = await clientA.mutation("intake.submit", httpCmd({ callbackUrl: "https://user:pw@hooks.example/cb" }));
    expect(a.status).toBe(400);
    expect(a.error?.data.issues).toEqual([
      expect.objectContaining({
        path: ["callbackUrl"],
        message: "must not contain credentials (user:password@); send them in a header",
      }),
    ]);
    const b = await clientA.mutation("intake.submit", {
      type: "http",
      payload: { url: "https://user:pw@backend.example/pay" },
    });
    expect(b.status).toBe(400);
    expect(b.error?.data.issues).toEqual([
      expect.objectContaining({
        path: ["payload", "url"],
        message: "must not contain credentials (user:password@); send them in a header",
      }),
    ]);
    expect(await countCommands()).toBe(before);
  });

  it("refuses idempotency keys with lone surrogates (two such keys would be stored as the same U+FFFD key)", async () => {
    const before = await countCommands();
    for (const key of ["order-\ud800", "order-\udfff"]) {
      const r = await clientA.mutation("intake.submit", httpCmd({ idempotencyKey: key }));
      expect(r.status).toBe(400);
      expect(r.error?.data.issues).toEqual([
        expect.objectContaining({
          path: ["idempotencyKey"],
          message: "must not contain NUL characters or lone UTF-16 surrogates",
        }),
      ]);
    }
    expect(await countCommands()).toBe(before);
  });

  it("refuses the same key with another payload or type as CONFLICT, storing nothing", async () => {
    await clientA.mutation("intake.submit", httpCmd({ idempotencyKey: "order-2" }));
    const before = await countCommands();
    const r = await clientA.mutation("intake.submit", {
      ...httpCmd({ idempotencyKey: "order-2" }),
      payload: { url: "https://backend.example/pay", body: { amount: 11 } },
    });
    expect(r.status).toBe(409);
    expect(r.error?.data.code).toBe("CONFLICT");
    expect(r.error?.message).toContain("order-2");
    expect(await countCommands()).toBe(before);
  });

  it("creates one command for concurrent submits of the same key", async () => {
    const answers = await Promise.all(
      Array.from({ length: 24 }, () => clientA.mutation("intake.submit", httpCmd({ idempotencyKey: "race-1" }))),
    );
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const ids = new Set(answers.map((a) => a.data.id));
    expect(ids.size).toBe(1);
    expect(answers.filter((a) => a.data.duplicate === false)).toHaveLength(1);
    const n = (await t.db.pool.query("SELECT count(*)::int AS n FROM commands WHERE idempotency_key = 'race-1'"))
      .rows[0].n;
    expect(n).toBe(1);
  });

  it("refuses an unknown type naming the field, storing nothing", async () => {
    const before = await countCommands();
    const r = await clientA.mutation("intake.submit", { type: "nope", payload: {} });
    expect(r.status).toBe(400);
    expect(r.error?.data.code).toBe("BAD_REQUEST");
    expect(r.error?.data.issues).toEqual([
      { path: ["type"], message: expect.stringContaining('unknown command type "nope"') },
    ]);
    expect(await countCommands()).toBe(before);
  });

  it("refuses a payload that fails the type's schema, naming the field", async () => {
    const before = await countCommands();
    const r = await clientA.mutation("intake.submit", { type: "http", payload: { url: "ftp://x", timeoutMs: 5 } });
    expect(r.status).toBe(400);
    const paths = r.error!.data.issues!.map((i) => i.path.join("."));
    expect(paths).toEqual(expect.arrayContaining(["payload.url", "payload.timeoutMs"]));
    expect(r.error!.message).toContain("payload.url");
    expect(await countCommands()).toBe(before);
  });

  it("refuses unknown envelope fields and bad envelope values, naming them", async () => {
    const r = await clientA.mutation("intake.submit", {
      ...httpCmd(),
      priorty: 3,
      runAt: "tomorrow",
      retry: { maxAttempts: 0 },
    });
    expect(r.status).toBe(400);
    const issues = r.error!.data.issues!;
    expect(issues.map((i) => i.path.join("."))).toEqual(expect.arrayContaining(["runAt", "retry.maxAttempts"]));
    expect(JSON.stringify(issues)).toContain("priorty");
  });

  it("refuses NUL characters instead of failing in the database", async () => {
    const r = await clientA.mutation("intake.submit", {
      type: "http",
      payload: { url: "https://x.example/", body: "a\u0000b" },
    });
    expect(r.status).toBe(400);
    expect(r.error!.data.issues![0]!.path).toEqual(["payload", "body"]);
  });
});

describe("intake.submitBatch", () => {
  it("answers one receipt per item in input order; stores the valid ones only", async () => {
    const before = await countCommands();
    const r = await clientA.mutation("intake.submitBatch", {
      commands: [
        httpCmd({ idempotencyKey: "b-1" }),
        { type: "http", payload: { url: 12 } },
        httpCmd(),
        { type: "ghost", payload: {} },
        httpCmd({ idempotencyKey: "b-1" }),
      ],
    });
    expect(r.status).toBe(200);
    const receipts = r.data.receipts;
    expect(receipts).toHaveLength(5);
    expect(receipts[0]).toEqual({ ok: true, id: expect.any(String), status: "pending", duplicate: false });
    expect(receipts[1]).toMatchObject({
      ok: false,
      error: { code: "BAD_REQUEST", issues: [{ path: ["commands", 1, "payload", "url"] }] },
    });
    expect(receipts[2]).toMatchObject({ ok: true, duplicate: false });
    expect(receipts[3]).toMatchObject({
      ok: false,
      error: { code: "BAD_REQUEST", issues: [{ path: ["commands", 3, "type"] }] },
    });
    // The same key twice in one batch: the second is a duplicate of the first.
    expect(receipts[4]).toEqual({ ...receipts[0], duplicate: true });
    expect(await countCommands()).toBe(before + 2);
  });

  it("marks duplicates of stored commands and conflicts per item", async () => {
    const first = await clientA.mutation("intake.submit", httpCmd({ idempotencyKey: "b-2" }));
    const r = await clientA.mutation("intake.submitBatch", {
      commands: [
        httpCmd({ idempotencyKey: "b-2" }),
        { ...httpCmd({ idempotencyKey: "b-2" }), payload: { url: "https://other.example/" } },
        httpCmd({ idempotencyKey: "b-3" }),
        { ...httpCmd({ idempotencyKey: "b-3" }), type: "http", payload: { url: "https://z.example/" } },
      ],
    });
    const [a, b, c, d] = r.data.receipts;
    expect(a).toEqual({ ok: true, id: first.data.id, status: "pending", duplicate: true });
    expect(b).toMatchObject({ ok: false, error: { code: "CONFLICT" } });
    expect(c).toMatchObject({ ok: true, duplicate: false });
    expect(d).toMatchObject({ ok: false, error: { code: "CONFLICT" } });
  });

  it("stores 1000 commands in one call and refuses 1001", async () => {
    const before = await countCommands();
    const ok = await clientA.mutation("intake.submitBatch", {
      commands: Array.from({ length: 1000 }, (_, i) => httpCmd({ idempotencyKey: `k-${i}` })),
    });
    expect(ok.status).toBe(200);
    expect(ok.data.receipts.filter((x: { ok: boolean }) => x.ok)).toHaveLength(1000);
    expect(await countCommands()).toBe(before + 1000);
    const tooMany = await clientA.mutation("intake.submitBatch", {
      commands: Array.from({ length: 1001 }, () => httpCmd()),
    });
    expect(tooMany.status).toBe(400);
    expect(tooMany.error!.data.issues![0]!.path).toEqual(["commands"]);
    expect(await countCommands()).toBe(before + 1000);
    const empty = await clientA.mutation("intake.submitBatch", { commands: [] });
    expect(empty.status).toBe(400);
  });
});

describe("wire format and limits", () => {
  it("answers 413 PAYLOAD_TOO_LARGE for a body over MAX_BODY_BYTES and keeps serving", async () => {
    const big = JSON.stringify(httpCmd({ payload: { url: "https://x.example/", body: "x".repeat(1_100_000) } }));
    const res = await clientA.raw("intake.submit", {
      method: "POST",
      body: big,
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).error.data.code).toBe("PAYLOAD_TOO_LARGE");
    // Same without a content-length (chunked): counted while reading.
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 12; i++) c.enqueue(new TextEncoder().encode("x".repeat(100_000)));
        c.close();
      },
    });
    // @ts-expect-error duplex is needed for a streamed request body
    const chunked = await clientA.raw("intake.submit", { method: "POST", body: stream, duplex: "half" });
    expect(chunked.status).toBe(413);
    const after = await clientA.mutation("intake.submit", httpCmd());
    expect(after.status).toBe(200);
  });

  it("answers malformed JSON with a 400", async () => {
    const res = await clientA.raw("intake.submit", {
      method: "POST",
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as any;
    expect(body.error.data.code).toBe("BAD_REQUEST");
    expect(body.error.message).toMatch(/JSON/i);
  });

  it("accepts queries by GET and by POST", async () => {
    const s = await clientA.mutation("intake.submit", httpCmd({ idempotencyKey: "q-1" }));
    const byGet = await clientA.query("intake.get", { id: s.data.id });
    const byPost = await clientA.queryPost("intake.get", { idempotencyKey: "q-1" });
    expect(byGet.data).toEqual(byPost.data);
    expect(byGet.data).toMatchObject({
      id: s.data.id,
      type: "http",
      status: "pending",
      attemptCount: 0,
      idempotencyKey: "q-1",
      result: null,
      failure: null,
      error: null,
      finishedAt: null,
    });
    expect(new Date(byGet.data.createdAt).toISOString()).toBe(byGet.data.createdAt);
  });
});

describe("visibility and credentials", () => {
  it("shows a client only its own commands; an admin sees all", async () => {
    const mine = await clientA.mutation("intake.submit", httpCmd());
    const theirs = await clientB.mutation("intake.submit", httpCmd());
    expect((await clientA.query("intake.get", { id: theirs.data.id })).error?.data.code).toBe("NOT_FOUND");
    expect((await clientA.query("intake.get", { id: mine.data.id })).status).toBe(200);
    expect((await admin.query("intake.get", { id: theirs.data.id })).status).toBe(200);
    const many = await clientA.queryPost("intake.getMany", {
      ids: [theirs.data.id, mine.data.id, "00000000-0000-4000-8000-000000000000"],
    });
    expect(many.data.items.map((i: { id: string }) => i.id)).toEqual([mine.data.id]);
    const all = await admin.queryPost("intake.getMany", { ids: [theirs.data.id, mine.data.id] });
    expect(all.data.items.map((i: { id: string }) => i.id)).toEqual([theirs.data.id, mine.data.id]);
    expect((await clientA.queryPost("intake.getMany", { ids: Array(1001).fill(mine.data.id) })).status).toBe(400);
    expect((await clientA.query("intake.get", { id: "not-a-uuid" })).error?.data.issues?.[0]?.message).toBeTruthy();
  });

  it("refuses missing, unknown and revoked tokens", async () => {
    expect((await client(api.url).mutation("intake.submit", httpCmd())).status).toBe(401);
    expect((await client(api.url, "cvy_nope").mutation("intake.submit", httpCmd())).status).toBe(401);
    const { id, token } = await newToken(t.db, "client");
    const c = client(api.url, token);
    expect((await c.mutation("intake.submit", httpCmd())).status).toBe(200);
    expect((await admin.mutation("tokens.revoke", { id })).status).toBe(200);
    const refused = await c.mutation("intake.submit", httpCmd());
    expect(refused.status).toBe(401);
    expect(refused.error?.data.code).toBe("UNAUTHORIZED");
  });
});

describe("rate limit", () => {
  it("refuses a client over INTAKE_RATE_LIMIT with 429 TOO_MANY_REQUESTS, storing nothing, and not its neighbours", async () => {
    let now = 1_000_000;
    const limited = await startApi(t.db, { intakeLimiter: createRateLimiter(5, () => now) });
    try {
      const a = client(limited.url, (await newToken(t.db, "client")).token);
      const b = client(limited.url, (await newToken(t.db, "client")).token);
      expect(
        (await a.mutation("intake.submitBatch", { commands: Array.from({ length: 10 }, () => httpCmd()) })).status,
      ).toBe(200);
      const before = await countCommands();
      const refused = await a.mutation("intake.submit", httpCmd());
      expect(refused.status).toBe(429);
      expect(refused.error?.data.code).toBe("TOO_MANY_REQUESTS");
      expect(refused.error?.message).toMatch(/at most 5 commands per second.*retry in 1 s/);
      // Retry-After on both roads: the direct one (a single POST) and tRPC's own (here a batch of one)
      const direct = await a.raw("intake.submit", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(httpCmd()),
      });
      expect([direct.status, direct.headers.get("retry-after")]).toEqual([429, "1"]);
      const batched = await a.raw("intake.submit?batch=1", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ 0: httpCmd() }),
      });
      expect([batched.status, batched.headers.get("retry-after")]).toEqual([429, "1"]);
      expect(await countCommands()).toBe(before);
      expect((await b.mutation("intake.submit", httpCmd())).status).toBe(200);
      now += 1000; // a second later, five more are allowed
      expect(
        (await a.mutation("intake.submitBatch", { commands: Array.from({ length: 5 }, () => httpCmd()) })).status,
      ).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe("token cache", () => {
  it("forgets a token the moment another process revokes it", async () => {
    const listener = startListener(t.url);
    const cache = new TokenCache(() => listener.connected);
    let heard!: () => void;
    listener.on(TOKENS_CHANNEL, () => (cache.clear(), heard?.()));
    await new Promise<void>((r) => listener.onConnect(r));
    const cached = await startApi(t.db, { tokenCache: cache });
    try {
      const { id, token } = await newToken(t.db, "client");
      const c = client(cached.url, token);
      expect((await c.mutation("intake.submit", httpCmd())).status).toBe(200);
      expect(cache.get(sha256Hex(token))).toBeDefined();
      // Revoked through another process's path (no access to this cache): the notification empties it.
      const notified = new Promise<void>((r) => (heard = r));
      await revokeToken(t.db, id);
      await notified;
      expect((await c.mutation("intake.submit", httpCmd())).status).toBe(401);
    } finally {
      await cached.close();
      await listener.close();
    }
  });

  it("caches nothing while it cannot hear revocations", async () => {
    const cache = new TokenCache(() => false);
    const cached = await startApi(t.db, { tokenCache: cache });
    try {
      const { token } = await newToken(t.db, "client");
      expect((await client(cached.url, token).mutation("intake.submit", httpCmd())).status).toBe(200);
      expect(cache.get(sha256Hex(token))).toBeUndefined();
    } finally {
      await cached.close();
    }
  });
});

describe("tokens", () => {
  it("lets admins create, list and revoke tokens; shows the secret once and stores it hashed/encrypted", async () => {
    const created = await admin.mutation("tokens.create", { name: "billing", scope: "client" });
    expect(created.data).toEqual({
      id: expect.any(String),
      token: expect.stringMatching(/^cvy_/),
      signingSecret: expect.stringMatching(/^whsec_/),
    });
    const stored = JSON.stringify(
      (await t.db.pool.query("SELECT * FROM api_clients WHERE id = $1", [created.data.id])).rows[0],
    );
    expect(stored).not.toContain(created.data.token);
    expect(stored).not.toContain(created.data.signingSecret);
    const list = await admin.query("tokens.list");
    const item = list.data.items.find((i: { id: string }) => i.id === created.data.id);
    expect(item).toMatchObject({ name: "billing", scope: "client", revokedAt: null });
    expect(JSON.stringify(list.data)).not.toContain(created.data.token);
    const worked = await client(api.url, created.data.token).mutation("intake.submit", httpCmd());
    expect(worked.status).toBe(200);
    const revoked = await admin.mutation("tokens.revoke", { id: created.data.id });
    expect(revoked.data.revokedAt).toBeTruthy();
    expect((await admin.mutation("tokens.revoke", { id: created.data.id })).status).toBe(200);
    expect((await admin.mutation("tokens.revoke", { id: "00000000-0000-4000-8000-000000000000" })).status).toBe(404);
  });

  it("refuses token management to client tokens and bad input naming the field", async () => {
    expect((await clientA.mutation("tokens.create", { name: "x", scope: "admin" })).status).toBe(403);
    expect((await clientA.query("tokens.list")).status).toBe(403);
    const bad = await admin.mutation("tokens.create", { name: "", scope: "root" });
    expect(bad.status).toBe(400);
    expect(bad.error!.data.issues!.map((i) => i.path[0])).toEqual(expect.arrayContaining(["name", "scope"]));
  });
});
