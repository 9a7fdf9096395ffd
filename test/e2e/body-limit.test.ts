// A body over MAX_BODY_BYTES gets a 413 the client can read (DESIGN §3), on
// every road a request can take: the web process (`npm run web`, which serves
// /api/trpc and /api/v1 from node:http before Next) and Next's own route
// handlers (app/api/trpc/[trpc], app/api/v1/[...path]; what `next start` and
// `next dev` serve). The client writes its whole body before reading a byte,
// as most clients do: closing the socket under it made its kernel discard the
// answer (ECONNRESET). The rest of the body is read and thrown away within
// DISCARD_BYTES / DISCARD_MS; past them the connection is cut off.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { DISCARD_BYTES, DISCARD_MS } from "../../server/api/handler";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort } from "../helpers/proc";
import { rawRequest, type RawOutcome } from "../helpers/raw-http";
import { spawnWeb, stopWeb, waitHealthy } from "../helpers/web";

const MB = 1024 * 1024;
const LIMIT = 1024 * 1024; // the default MAX_BODY_BYTES
const token = "bootstrap-token-for-the-body-limit-test-0123456789";
const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };

let t: TestDb;
const servers: Record<"web" | "next", { base: string; child?: ChildProcess }> = {
  web: { base: "" },
  next: { base: "" },
};

/** `next start`, in its own process group, on the same build and environment. */
function spawnNextStart(port: number, env: Record<string, string>): ChildProcess {
  return spawn(
    process.execPath,
    [path.resolve("node_modules/next/dist/bin/next"), "start", "-p", String(port), "-H", "127.0.0.1"],
    {
      env: { ...process.env, NODE_ENV: "production", NEXT_TELEMETRY_DISABLED: "1", PORT: String(port), ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
}

beforeAll(async () => {
  buildIfNeeded(path.resolve("."));
  t = await createTestDb();
  const env = { DATABASE_URL: t.url, BOOTSTRAP_API_TOKEN: token, LOG_LEVEL: "warn" };
  const [webPort, nextPort] = [await freePort(), await freePort()];
  servers.web = { base: `http://127.0.0.1:${webPort}`, child: spawnWeb(webPort, env, "pipe") };
  servers.next = { base: `http://127.0.0.1:${nextPort}`, child: spawnNextStart(nextPort, env) };
  await Promise.all([
    waitHealthy(servers.web.base, servers.web.child!),
    waitHealthy(servers.next.base, servers.next.child!),
  ]);
}, 300_000);

afterAll(async () => {
  stopWeb(servers.web.child);
  stopWeb(servers.next.child);
  await t?.drop();
});

/** An intake.submit input of exactly `bytes` bytes (the padding in the payload's body). */
function submitBody(bytes: number): Buffer {
  const head = '{"type":"http","payload":{"url":"https://backend.example/pay","body":"';
  const tail = '"}}';
  return Buffer.concat([Buffer.from(head), Buffer.alloc(bytes - head.length - tail.length, "z"), Buffer.from(tail)]);
}

const roads = [
  {
    server: "web",
    path: "/api/trpc/intake.submit",
    shape: "trpc",
    label: "npm run web, /api/trpc (node:http listener)",
  },
  { server: "web", path: "/api/v1/commands", shape: "rest", label: "npm run web, /api/v1 (node:http listener)" },
  {
    server: "next",
    path: "/api/trpc/intake.submit",
    shape: "trpc",
    label: "next start, /api/trpc (route handler, fetch adapter)",
  },
  { server: "next", path: "/api/v1/commands", shape: "rest", label: "next start, /api/v1 (route handler)" },
] as const;

function expect413(o: RawOutcome, shape: "trpc" | "rest") {
  expect(o.error === undefined || o.answer !== undefined, `no answer; the socket failed with ${o.error}`).toBe(true);
  expect(o.answer?.status).toBe(413);
  expect(o.answer?.headers["content-type"]).toMatch(/^application\/json/);
  const message = `Request body is larger than MAX_BODY_BYTES (${LIMIT} bytes)`;
  const body = JSON.parse(o.answer!.body);
  if (shape === "trpc")
    expect(body).toEqual({ error: { message, code: -32013, data: { code: "PAYLOAD_TOO_LARGE", httpStatus: 413 } } });
  else expect(body).toEqual({ error: { code: "PAYLOAD_TOO_LARGE", message } });
  expect(o.closed).toBe(true);
}

/** The server still serves: a normal submit on the same road is stored. */
async function stillServes(base: string, road: (typeof roads)[number]) {
  const res = await fetch(`${base}${road.path}`, { method: "POST", headers: auth, body: submitBody(200).toString() });
  expect([200, 201]).toContain(res.status);
  const body = (await res.json()) as any;
  const id = road.shape === "trpc" ? body.result.data.id : body.id;
  const stored = await t.db.pool.query("SELECT 1 FROM commands WHERE id = $1", [id]);
  expect(stored.rowCount).toBe(1);
}

describe.each(roads)("$label", (road) => {
  const base = () => servers[road.server].base;

  it.each([1.5, 5, 10])("answers a %s MB body with a 413 the client reads after writing all of it", async (mb) => {
    const body = submitBody(Math.round(mb * MB));
    // Declared length (answered before any byte is read) and chunked (answered once the limit is passed).
    for (const chunked of [false, true]) {
      const o = await rawRequest(base(), {
        method: "POST",
        path: road.path,
        headers: auth,
        body,
        chunked,
        writeFirst: true,
        deadlineMs: DISCARD_MS + 10_000,
      });
      expect413(o, road.shape);
      expect(o.error, chunked ? "chunked" : "content-length").toBeUndefined();
    }
    await stillServes(base(), road);
  });

  it("cuts off a body over the discard bound, or one that stops arriving, without hanging", async () => {
    const over = submitBody(DISCARD_BYTES + 4 * MB);
    for (const chunked of [false, true]) {
      const o = await rawRequest(base(), {
        method: "POST",
        path: road.path,
        headers: auth,
        body: over,
        chunked,
        writeFirst: true,
        deadlineMs: DISCARD_MS + 10_000,
      });
      expect(o.closed, chunked ? "chunked" : "content-length").toBe(true);
      expect(o.ms).toBeLessThan(DISCARD_MS + 5_000);
    }
    // 5 MB declared, 2 MB sent, then silence: the 413 arrives at once, the connection is closed after DISCARD_MS.
    const stalled = await rawRequest(base(), {
      method: "POST",
      path: road.path,
      headers: auth,
      body: submitBody(2 * MB),
      declaredLength: 5 * MB,
      deadlineMs: DISCARD_MS + 10_000,
    });
    expect413(stalled, road.shape);
    expect(stalled.ms).toBeGreaterThanOrEqual(DISCARD_MS - 500);
    expect(stalled.ms).toBeLessThan(DISCARD_MS + 5_000);
    await stillServes(base(), road);
  }, 60_000);
});

describe("the inbound result route (POST /api/commands/<id>/result, a route handler on both servers)", () => {
  it.each(["web", "next"] as const)(
    "answers a 5 MB body with a 413 the client reads after writing all of it (%s)",
    async (server) => {
      const path = "/api/commands/00000000-0000-4000-8000-000000000000/result";
      for (const chunked of [false, true]) {
        const o = await rawRequest(servers[server].base, {
          method: "POST",
          path,
          headers: { "content-type": "application/json" },
          body: submitBody(5 * MB),
          chunked,
          writeFirst: true,
          deadlineMs: DISCARD_MS + 10_000,
        });
        expect(o.error, chunked ? "chunked" : "content-length").toBeUndefined();
        expect(o.answer?.status).toBe(413);
        expect(JSON.parse(o.answer!.body)).toEqual({ error: `body is larger than MAX_BODY_BYTES (${LIMIT} bytes)` });
      }
    },
  );
});
