// The REST facade of the intake API (/api/v1, /api/openapi.json) over real HTTP
// on a fresh PostgreSQL database, spoken as a client in another language would:
// plain JSON, no tRPC envelope.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validate, compileErrors } from "@readme/openapi-parser";
import Ajv2020 from "ajv/dist/2020.js";
import { createTestDb, type TestDb } from "../helpers/db";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";
import { createRateLimiter } from "../../server/api/rate-limit";
import { createRestFetchHandler } from "../../server/api/rest";
import { commandViewSchema, receiptSchema, batchReceiptSchema } from "../../server/api/openapi";
import { directIntake } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { resolveSecretKey } from "../../server/db/settings";
import { createLogger } from "../../server/log";

let t: TestDb;
let api: ApiServer;
let tokenA: string;
let tokenB: string;
let adminToken: string;

type Answer = { status: number; headers: Headers; body: any };

function rest(baseUrl: string, token?: string) {
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> => {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
  return {
    call,
    post: (path: string, body: unknown, headers?: Record<string, string>) => call("POST", path, body, headers),
    get: (path: string) => call("GET", path),
  };
}

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
  tokenA = (await newToken(t.db, "client", "a")).token;
  tokenB = (await newToken(t.db, "client", "b")).token;
  adminToken = (await newToken(t.db, "admin", "ops")).token;
});
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

describe("POST /api/v1/commands", () => {
  it("stores a command: 201 with the receipt and its Location", async () => {
    const r = await rest(api.url, tokenA).post(
      "/api/v1/commands",
      httpCmd({ priority: 5, runAt: "2030-01-01T00:00:00Z", retry: { maxAttempts: 3 } }),
    );
    expect(r.status).toBe(201);
    expect(r.body).toEqual({ id: expect.any(String), status: "pending", duplicate: false });
    expect(r.headers.get("location")).toBe(`/api/v1/commands/${r.body.id}`);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    const row = (await t.db.pool.query("SELECT * FROM commands WHERE id = $1", [r.body.id])).rows[0];
    expect(row).toMatchObject({ type: "http", status: "pending", priority: 5, max_attempts: 3 });
    expect(row.payload).toEqual({ url: "https://backend.example/pay", body: { amount: 10 } });
  });

  it("reads the body as JSON whatever the content type says (charset, curl -d's form type, none)", async () => {
    const c = rest(api.url, tokenA);
    for (const type of ["application/json; charset=utf-8", "application/x-www-form-urlencoded", "text/plain"]) {
      const r = await c.post("/api/v1/commands", httpCmd(), { "content-type": type });
      expect(r.status, type).toBe(201);
    }
  });

  it("answers the original command for the same idempotency key (200, duplicate) and 409 for another payload, storing nothing", async () => {
    const c = rest(api.url, tokenA);
    const first = await c.post("/api/v1/commands", httpCmd({ idempotencyKey: "order-1" }));
    expect(first.status).toBe(201);
    const again = await c.post("/api/v1/commands", {
      idempotencyKey: "order-1",
      type: "http",
      payload: { body: { amount: 10 }, url: "https://backend.example/pay" },
    });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ id: first.body.id, status: "pending", duplicate: true });
    expect(again.headers.get("location")).toBeNull();
    const before = await countCommands();
    const conflict = await c.post("/api/v1/commands", {
      ...httpCmd({ idempotencyKey: "order-1" }),
      payload: { url: "https://backend.example/pay", body: { amount: 11 } },
    });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toMatchObject({ code: "CONFLICT", message: expect.stringContaining("order-1") });
    expect(await countCommands()).toBe(before);
    // Another client may use the same key for its own command.
    expect((await rest(api.url, tokenB).post("/api/v1/commands", httpCmd({ idempotencyKey: "order-1" }))).status).toBe(
      201,
    );
  });

  it("refuses invalid input with 400 naming each field, and stores nothing", async () => {
    const c = rest(api.url, tokenA);
    const before = await countCommands();
    const payload = await c.post("/api/v1/commands", { type: "http", payload: { url: "ftp://x", timeoutMs: 5 } });
    expect(payload.status).toBe(400);
    expect(payload.body.error.code).toBe("BAD_REQUEST");
    expect(payload.body.error.issues.map((i: { path: unknown[] }) => i.path.join("."))).toEqual(
      expect.arrayContaining(["payload.url", "payload.timeoutMs"]),
    );
    expect(payload.body.error.message).toContain("payload.url");
    const envelope = await c.post("/api/v1/commands", {
      ...httpCmd(),
      priorty: 3,
      runAt: "tomorrow",
      retry: { maxAttempts: 0 },
    });
    expect(envelope.status).toBe(400);
    expect(envelope.body.error.issues.map((i: { path: unknown[] }) => i.path.join("."))).toEqual(
      expect.arrayContaining(["runAt", "retry.maxAttempts"]),
    );
    expect(JSON.stringify(envelope.body.error.issues)).toContain("priorty");
    const unknownType = await c.post("/api/v1/commands", { type: "nope", payload: {} });
    expect(unknownType.status).toBe(400);
    expect(unknownType.body.error.issues).toEqual([
      { path: ["type"], message: expect.stringContaining('unknown command type "nope"') },
    ]);
    expect(await countCommands()).toBe(before);
  });

  it("gives the same errors as /api/trpc for the same input", async () => {
    const bad = { type: "http", payload: { url: 12 }, priority: 1.5 };
    const viaRest = await rest(api.url, tokenA).post("/api/v1/commands", bad);
    const viaTrpc = await client(api.url, tokenA).mutation("intake.submit", bad);
    expect(viaRest.status).toBe(viaTrpc.status);
    expect(viaRest.body.error).toEqual({
      code: viaTrpc.error!.data.code,
      message: viaTrpc.error!.message,
      issues: viaTrpc.error!.data.issues,
    });
  });

  it("answers 400 for malformed JSON or no body, 413 for a body over MAX_BODY_BYTES, and keeps serving", async () => {
    const c = rest(api.url, tokenA);
    const malformed = await c.post("/api/v1/commands", "{not json");
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/JSON/) });
    expect((await c.call("POST", "/api/v1/commands")).status).toBe(400);
    const before = await countCommands();
    const big = await c.post(
      "/api/v1/commands",
      httpCmd({ payload: { url: "https://x.example/", body: "x".repeat(1_100_000) } }),
    );
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe("PAYLOAD_TOO_LARGE");
    // Without a content-length (chunked): counted while reading.
    const stream = new ReadableStream({
      start(ctl) {
        for (let i = 0; i < 12; i++) ctl.enqueue(new TextEncoder().encode("x".repeat(100_000)));
        ctl.close();
      },
    });
    // duplex is needed for a streamed request body (undici's RequestInit has it; the DOM's type does not)
    const init = { method: "POST", headers: { authorization: `Bearer ${tokenA}` }, body: stream, duplex: "half" };
    const chunked = await fetch(`${api.url}/api/v1/commands`, init as RequestInit);
    expect(chunked.status).toBe(413);
    expect(await countCommands()).toBe(before);
    expect((await c.post("/api/v1/commands", httpCmd())).status).toBe(201);
  });
});

describe("POST /api/v1/commands/batch", () => {
  it("answers one receipt per item in input order and stores the valid ones only", async () => {
    const before = await countCommands();
    const r = await rest(api.url, tokenA).post("/api/v1/commands/batch", {
      commands: [
        httpCmd({ idempotencyKey: "b-1" }),
        { type: "http", payload: { url: 12 } },
        httpCmd(),
        { type: "ghost", payload: {} },
        httpCmd({ idempotencyKey: "b-1" }),
      ],
    });
    expect(r.status).toBe(200);
    const receipts = r.body.receipts;
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
    expect(receipts[4]).toEqual({ ...receipts[0], duplicate: true });
    for (const x of receipts) expect(batchReceiptSchema.safeParse(x).success).toBe(true);
    expect(await countCommands()).toBe(before + 2);
  });

  it("refuses an empty batch or more than 1000 commands, naming the field", async () => {
    const c = rest(api.url, tokenA);
    const empty = await c.post("/api/v1/commands/batch", { commands: [] });
    expect(empty.status).toBe(400);
    expect(empty.body.error.issues[0].path).toEqual(["commands"]);
    const tooMany = await c.post("/api/v1/commands/batch", {
      commands: Array.from({ length: 1001 }, () => ({ type: "http", payload: { url: "https://x.example/" } })),
    });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.issues[0].path).toEqual(["commands"]);
  });
});

describe("reading commands", () => {
  it("gets a command by id and by idempotency key, as /api/trpc shows it", async () => {
    const c = rest(api.url, tokenA);
    const s = await c.post("/api/v1/commands", httpCmd({ idempotencyKey: "read-1" }));
    const byId = await c.get(`/api/v1/commands/${s.body.id}`);
    expect(byId.status).toBe(200);
    expect(byId.body).toMatchObject({
      id: s.body.id,
      type: "http",
      status: "pending",
      attemptCount: 0,
      idempotencyKey: "read-1",
      result: null,
      failure: null,
      error: null,
      finishedAt: null,
    });
    expect(commandViewSchema.parse(byId.body)).toEqual(byId.body);
    const byKey = await c.get(`/api/v1/commands?idempotencyKey=${encodeURIComponent("read-1")}`);
    expect(byKey.status).toBe(200);
    expect(byKey.body).toEqual(byId.body);
    const viaTrpc = await client(api.url, tokenA).query("intake.get", { id: s.body.id });
    expect(viaTrpc.data).toEqual(byId.body);
    expect(receiptSchema.safeParse(s.body).success).toBe(true);
  });

  it("answers 404 for an unknown id or another client's command, 400 for a malformed id or a missing key", async () => {
    const a = rest(api.url, tokenA);
    const theirs = await rest(api.url, tokenB).post("/api/v1/commands", httpCmd({ idempotencyKey: "theirs-1" }));
    const notMine = await a.get(`/api/v1/commands/${theirs.body.id}`);
    expect(notMine.status).toBe(404);
    expect(notMine.body.error.code).toBe("NOT_FOUND");
    expect((await a.get("/api/v1/commands?idempotencyKey=theirs-1")).status).toBe(404);
    expect((await a.get("/api/v1/commands/00000000-0000-4000-8000-000000000000")).status).toBe(404);
    expect((await rest(api.url, adminToken).get(`/api/v1/commands/${theirs.body.id}`)).status).toBe(200);
    const malformed = await a.get("/api/v1/commands/not-a-uuid");
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.issues).toEqual([{ path: ["id"], message: "must be a command id (UUID)" }]);
    const noKey = await a.get("/api/v1/commands");
    expect(noKey.status).toBe(400);
    expect(noKey.body.error.issues[0].path).toEqual(["idempotencyKey"]);
  });

  it("gets many by id in the order asked, leaving out the ones not found or not visible", async () => {
    const a = rest(api.url, tokenA);
    const mine = await a.post("/api/v1/commands", httpCmd());
    const theirs = await rest(api.url, tokenB).post("/api/v1/commands", httpCmd());
    const many = await a.post("/api/v1/commands/get-many", {
      ids: [theirs.body.id, mine.body.id, "00000000-0000-4000-8000-000000000000"],
    });
    expect(many.status).toBe(200);
    expect(many.body.items.map((i: { id: string }) => i.id)).toEqual([mine.body.id]);
    const all = await rest(api.url, adminToken).post("/api/v1/commands/get-many", {
      ids: [theirs.body.id, mine.body.id],
    });
    expect(all.body.items.map((i: { id: string }) => i.id)).toEqual([theirs.body.id, mine.body.id]);
    const tooMany = await a.post("/api/v1/commands/get-many", { ids: Array(1001).fill(mine.body.id) });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.issues[0].path).toEqual(["ids"]);
  });
});

describe("credentials, limits and routing", () => {
  it("refuses a missing, unknown or revoked token with 401", async () => {
    const before = await countCommands();
    const none = await rest(api.url).post("/api/v1/commands", httpCmd());
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe("UNAUTHORIZED");
    expect((await rest(api.url).get("/api/v1/commands/00000000-0000-4000-8000-000000000000")).status).toBe(401);
    expect((await rest(api.url, "cvy_nope").post("/api/v1/commands/batch", { commands: [httpCmd()] })).status).toBe(
      401,
    );
    expect(await countCommands()).toBe(before);
    const { id, token } = await newToken(t.db, "client");
    expect((await rest(api.url, token).post("/api/v1/commands", httpCmd())).status).toBe(201);
    expect((await client(api.url, adminToken).mutation("tokens.revoke", { id })).status).toBe(200);
    expect((await rest(api.url, token).post("/api/v1/commands", httpCmd())).status).toBe(401);
  });

  it("applies the intake rate limit: 429 TOO_MANY_REQUESTS, nothing stored", async () => {
    let now = 1_000_000;
    const limited = await startApi(t.db, { intakeLimiter: createRateLimiter(5, () => now) });
    try {
      const c = rest(limited.url, (await newToken(t.db, "client")).token);
      expect(
        (await c.post("/api/v1/commands/batch", { commands: Array.from({ length: 10 }, () => httpCmd()) })).status,
      ).toBe(200);
      const before = await countCommands();
      const refused = await c.post("/api/v1/commands", httpCmd());
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({
        code: "TOO_MANY_REQUESTS",
        message: expect.stringMatching(/at most 5 commands per second/),
      });
      expect(refused.headers.get("retry-after")).toBe("1");
      expect(await countCommands()).toBe(before);
      now += 1000;
      expect((await c.post("/api/v1/commands", httpCmd())).status).toBe(201);
    } finally {
      await limited.close();
    }
  });

  it("answers 404 for an unknown endpoint and 405 for a wrong method", async () => {
    const c = rest(api.url, tokenA);
    const unknown = await c.get("/api/v1/nothing-here");
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("NOT_FOUND");
    const wrong = await c.call("DELETE", "/api/v1/commands/00000000-0000-4000-8000-000000000000");
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET");
    const batchByGet = await c.get("/api/v1/commands/batch");
    expect(batchByGet.status).toBe(405);
    expect(batchByGet.headers.get("allow")).toBe("POST");
    expect((await c.get("/api/v1/commands/get-many")).status).toBe(405);
    expect((await c.post("/api/openapi.json", {})).status).toBe(405);
  });

  it("leaves /api/trpc as it was on the same server", async () => {
    const r = await client(api.url, tokenA).mutation("intake.submit", httpCmd());
    expect(r.status).toBe(200);
    expect(r.data).toEqual({ id: expect.any(String), status: "pending", duplicate: false });
  });
});

describe("GET /api/openapi.json", () => {
  it("serves a valid OpenAPI 3 document listing the intake paths, without a token", async () => {
    const res = await fetch(`${api.url}/api/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const doc = JSON.parse(await res.text());
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual([
      "/api/v1/batches/{id}",
      "/api/v1/commands",
      "/api/v1/commands/batch",
      "/api/v1/commands/get-many",
      "/api/v1/commands/{id}",
    ]);
    expect(Object.keys(doc.paths["/api/v1/commands"]).sort()).toEqual(["get", "post"]);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });

    const result = await validate(structuredClone(doc));
    expect(result.valid, result.valid ? "" : compileErrors(result)).toBe(true);

    // Even with a revoked or unknown token the document is served.
    expect((await fetch(`${api.url}/api/openapi.json`, { headers: { authorization: "Bearer cvy_nope" } })).status).toBe(
      200,
    );
  });

  it("documents what the server accepts and answers", async () => {
    const doc = (await (await fetch(`${api.url}/api/openapi.json`)).json()) as any;
    const s = doc.components.schemas;
    // The request schemas come from the schemas intake validates with, per command type.
    expect(s.SubmitCommand.discriminator.mapping).toEqual({ http: "#/components/schemas/SubmitCommand_http" });
    expect(s.SubmitCommand_http.required).toEqual(expect.arrayContaining(["type", "payload"]));
    expect(s.SubmitCommand_http.properties.payload.required).toEqual(["url"]);
    expect(s.SubmitCommand_http.additionalProperties).toBe(false);
    expect(s.SubmitBatch.properties.commands.maxItems).toBe(1000);

    // Every component is a valid JSON Schema (2020-12, OpenAPI 3.1's dialect)…
    const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
    for (const [name, schema] of Object.entries(s))
      expect(ajv.validateSchema(schema as object), `${name}: ${ajv.errorsText()}`).toBe(true);
    ajv.addSchema(doc, "doc");
    const conforms = (name: string, value: unknown) => {
      const check = ajv.getSchema(`doc#/components/schemas/${name}`)!;
      expect(check(value), `${name}: ${ajv.errorsText(check.errors)}`).toBe(true);
    };
    // …that accepts what clients are told to send…
    conforms(
      "SubmitCommand",
      httpCmd({ idempotencyKey: "k", priority: 1, runAt: "2030-01-01T00:00:00Z", retry: { maxAttempts: 2 } }),
    );
    const strictCheck = ajv.getSchema("doc#/components/schemas/SubmitCommand")!;
    expect(strictCheck({ ...httpCmd(), priorty: 1 })).toBe(false);
    // …and describes what the server really answers, field by field.
    const c = rest(api.url, tokenA);
    const receipt = await c.post("/api/v1/commands", httpCmd({ idempotencyKey: "doc-1" }));
    conforms("Receipt", receipt.body);
    expect(Object.keys(receipt.body).sort()).toEqual(Object.keys(s.Receipt.properties).sort());
    const view = await c.get(`/api/v1/commands/${receipt.body.id}`);
    conforms("CommandView", view.body);
    expect(Object.keys(view.body).sort()).toEqual(Object.keys(s.CommandView.properties).sort());
    conforms("CommandViews", (await c.post("/api/v1/commands/get-many", { ids: [receipt.body.id] })).body);
    conforms(
      "BatchReceipts",
      (await c.post("/api/v1/commands/batch", { commands: [httpCmd(), { type: "ghost", payload: {} }] })).body,
    );
    const batch = await c.post("/api/v1/commands/batch", { commands: [httpCmd()], batch: { name: "doc" } });
    conforms("BatchReceipts", batch.body);
    const batchView = await c.get(`/api/v1/batches/${batch.body.batchId}`);
    conforms("BatchView", batchView.body);
    expect(Object.keys(batchView.body).sort()).toEqual(Object.keys(s.BatchView.properties).sort());
    expect(Object.keys(batchView.body.counts).sort()).toEqual(
      Object.keys(s.BatchView.properties.counts.properties).sort(),
    );
    const strictBatch = ajv.getSchema("doc#/components/schemas/SubmitBatch")!;
    expect(strictBatch({ commands: [httpCmd()], batch: { name: "n", size: 1 } })).toBe(false);
    const bad = await c.post("/api/v1/commands", { type: "http", payload: {} });
    conforms("Error", bad.body);
    expect(Object.keys(bad.body.error).sort()).toEqual(Object.keys(s.Error.properties.error.properties).sort());
    conforms("Error", (await rest(api.url).get(`/api/v1/commands/${receipt.body.id}`)).body);
  });
});

describe("the fetch handler behind app/api/v1/[...path]/route.ts (next dev)", () => {
  it("submits, reads back, serves the document, and refuses a body over the limit with 413", async () => {
    const { token } = await newToken(t.db, "client");
    const handler = createRestFetchHandler({
      db: t.db,
      registry,
      intake: directIntake(t.db, registry),
      secretKey: () => resolveSecretKey(t.db, undefined),
      maxBodyBytes: 2048,
      publicUrl: "http://x",
      emailConfigured: false,
      retentionDays: 30,
      log: createLogger({ name: "t", level: "silent" }),
    });
    const auth = { authorization: `Bearer ${token}` };
    const post = (body: string) =>
      handler(new Request("http://localhost/api/v1/commands", { method: "POST", headers: auth, body }));
    const ok = await post(JSON.stringify({ type: "http", payload: { url: "https://x.example/" } }));
    expect(ok.status).toBe(201);
    const receipt = (await ok.json()) as { id: string };
    const read = await handler(new Request(`http://localhost${ok.headers.get("location")}`, { headers: auth }));
    expect(read.status).toBe(200);
    expect(((await read.json()) as { id: string }).id).toBe(receipt.id);
    const big = await post(
      JSON.stringify({ type: "http", payload: { url: "https://x.example/", body: "z".repeat(4000) } }),
    );
    expect(big.status).toBe(413);
    expect(((await big.json()) as any).error.code).toBe("PAYLOAD_TOO_LARGE");
    const doc = await handler(new Request("http://localhost/api/openapi.json"));
    expect(doc.status).toBe(200);
    expect(((await doc.json()) as any).openapi).toMatch(/^3\./);
  });
});
