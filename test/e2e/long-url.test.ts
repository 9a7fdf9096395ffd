// A query whose URL is over Node's header limit (16 KB) gets a JSON error in
// the shape of the API it was sent to, saying to send it by POST, from the
// real web process (`npm run web`): before, Node answered an empty 431.
import type { ChildProcess } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { HEADER_LIMIT, PARSER_HEADER_LIMIT } from "../../server/web/node-fetch";
import { client } from "../helpers/api";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort } from "../helpers/proc";
import { rawRequest } from "../helpers/raw-http";
import { spawnWeb, stopWeb, waitHealthy } from "../helpers/web";

const token = "bootstrap-token-for-the-long-url-test-0123456789";
const auth = { authorization: `Bearer ${token}` };
let t: TestDb;
let web: ChildProcess;
let base: string;
let stored: string;

beforeAll(async () => {
  buildIfNeeded(path.resolve("."));
  t = await createTestDb();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  web = spawnWeb(port, { DATABASE_URL: t.url, BOOTSTRAP_API_TOKEN: token, LOG_LEVEL: "warn" }, "pipe");
  await waitHealthy(base, web);
  stored = (
    await client(base, token).mutation("intake.submit", {
      type: "http",
      payload: { url: "https://backend.example/pay" },
    })
  ).data.id;
}, 300_000);

afterAll(async () => {
  stopWeb(web);
  await t?.drop();
});

/** ids for intake.getMany: the stored one, then random ones (absent, so left out of the answer). */
const ids = (n: number) => [stored, ...Array.from({ length: n - 1 }, () => crypto.randomUUID())];
const getManyUrl = (n: number) =>
  `/api/trpc/intake.getMany?input=${encodeURIComponent(JSON.stringify({ ids: ids(n) }))}`;
const said = `The request's URL and headers are larger than this server accepts (${HEADER_LIMIT} bytes)`;

function expectTrpc431(status: number | undefined, body: any) {
  expect(status).toBe(431);
  expect(body.error).toMatchObject({ code: -32600, data: { code: "BAD_REQUEST", httpStatus: 431 } });
  expect(body.error.message).toBe(
    `${said}: send the query by POST to the same URL without its input parameter, with the input as the JSON request body`,
  );
}

describe("a query URL over Node's header limit", () => {
  it("intake.getMany with 1000 ids by GET (~45 KB): 431 in tRPC's shape, saying to POST; by POST it answers", async () => {
    const url = getManyUrl(1000);
    expect(url.length).toBeGreaterThan(HEADER_LIMIT);
    expect(url.length).toBeLessThan(PARSER_HEADER_LIMIT);
    const res = await fetch(`${base}${url}`, { headers: auth });
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expectTrpc431(res.status, await res.json());
    // Doing as told works.
    const byPost = await client(base, token).queryPost("intake.getMany", { ids: ids(1000) });
    expect(byPost.status).toBe(200);
    expect(byPost.data.items.map((i: { id: string }) => i.id)).toEqual([stored]);
  });

  it("a REST URL over the limit: 431 in the REST shape", async () => {
    const res = await fetch(`${base}/api/v1/commands?idempotencyKey=${"k".repeat(HEADER_LIMIT + 100)}`, {
      headers: auth,
    });
    expect(res.status).toBe(431);
    const body = (await res.json()) as any;
    expect(body).toEqual({
      error: { code: "BAD_REQUEST", message: expect.stringContaining(`${said}: send the query by POST`) },
    });
  });

  it("past what the parser reads (3,500 ids, ~157 KB), in one piece or in many: still the JSON 431", async () => {
    const url = getManyUrl(3500);
    expect(url.length).toBeGreaterThan(PARSER_HEADER_LIMIT);
    const whole = await rawRequest(base, {
      method: "GET",
      path: url,
      headers: auth,
      writeFirst: true,
      deadlineMs: 15_000,
    });
    expect(whole.error).toBeUndefined();
    expectTrpc431(whole.answer?.status, JSON.parse(whole.answer!.body));
    expect(whole.closed).toBe(true);
    // In 4 KB pieces the parser fails in the middle of the URL, where the path cannot be read: tRPC's shape, where long queries come from.
    const pieces = await rawRequest(base, {
      method: "GET",
      path: url,
      headers: auth,
      pieceBytes: 4096,
      pieceGapMs: 5,
      deadlineMs: 15_000,
    });
    expectTrpc431(pieces.answer?.status, JSON.parse(pieces.answer!.body));
    expect(pieces.closed).toBe(true);
    // REST: the parser fails past the first 64 KB read, where the path is no longer seen; still JSON, still saying what to do.
    const rest = await rawRequest(base, {
      method: "GET",
      path: `/api/v1/commands?idempotencyKey=${"k".repeat(PARSER_HEADER_LIMIT)}`,
      headers: auth,
      writeFirst: true,
      deadlineMs: 15_000,
    });
    expect(rest.answer?.status).toBe(431);
    expect(JSON.parse(rest.answer!.body).error.message).toContain(`${said}: send the query by POST`);
  });

  it("on a kept-alive connection after other requests, and for headers too; the server keeps serving", async () => {
    const ok = await fetch(`${base}/api/health`);
    expect(ok.status).toBe(200);
    // fetch reuses the connection it just used.
    const res = await fetch(`${base}${getManyUrl(1000)}`, { headers: auth });
    expectTrpc431(res.status, await res.json());
    const cookie = await fetch(
      `${base}/api/trpc/intake.get?input=${encodeURIComponent(JSON.stringify({ id: stored }))}`,
      { headers: { ...auth, cookie: `x=${"c".repeat(HEADER_LIMIT)}` } },
    );
    expectTrpc431(cookie.status, await cookie.json());
    // A console page says it in plain text.
    const page = await fetch(`${base}/commands?q=${"q".repeat(HEADER_LIMIT)}`);
    expect(page.status).toBe(431);
    expect(await page.text()).toBe(`${said}.\n`);
    // Within the limit all is as before.
    expect((await client(base, token).query("intake.getMany", { ids: ids(300) })).data.items).toHaveLength(1);
    expect((await fetch(`${base}/api/health`)).status).toBe(200);
  });
});
