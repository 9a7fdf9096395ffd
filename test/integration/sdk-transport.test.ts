// @conveyor/client's retries over real HTTP: through a loopback proxy that
// loses answers after Conveyor stored the command (exactly one command per
// submit all the same), that answers 429 with Retry-After or 5xx first, or
// that never answers; against the real /api/trpc handler on a real PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken, startApi, type ApiServer } from "../helpers/api";
import { startProxy, type Decision, type Proxy } from "../helpers/proxy";
import { freePort } from "../helpers/proc";
import { createRateLimiter } from "../../server/api/rate-limit";
import { Conveyor, ConveyorError, type SubmitInput } from "../../packages/client/src/index";

let t: TestDb;
let api: ApiServer;
let token: string;
const proxies: Proxy[] = [];

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  token = (await newToken(t.db, "client")).token;
});
afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await api?.close();
  await t?.drop();
});

async function proxy(decide: Parameters<typeof startProxy>[1], target: string | null = api.url) {
  const p = await startProxy(target, decide);
  proxies.push(p);
  return p;
}
const fast = { baseDelayMs: 10, maxDelayMs: 50 };
const command = (n: string): SubmitInput => ({
  type: "http",
  payload: { url: `https://backend.example/${n}` },
  runAt: "2999-01-01T00:00:00Z",
});
const stored = async (like: string) =>
  (await t.db.pool.query(`SELECT count(*)::int AS n FROM commands WHERE payload->>'url' LIKE $1`, [like])).rows[0].n;
const trpcError = (code: string, httpStatus: number, message = code) =>
  JSON.stringify({ error: { message, code: -32000, data: { code, httpStatus } } });

describe("retries through a proxy that loses the first answer of every request", () => {
  const dropFirst = (_: unknown, seenBefore: number): Decision =>
    seenBefore === 0 ? { kind: "drop-answer" } : { kind: "forward" };

  it("stores exactly one command per submit, and answers the stored one", async () => {
    const p = await proxy(dropFirst);
    const sdk = new Conveyor({ url: p.url, token, retry: fast });
    const receipts = [];
    for (let i = 0; i < 5; i++) receipts.push(await sdk.submit(command(`lost/${i}`)));
    // Each first answer (a new command) was lost; the retry, with the same key, found it.
    expect(p.dropped.map((d) => JSON.parse(d.body).result.data.duplicate)).toEqual([false, false, false, false, false]);
    expect(receipts.map((r) => r.duplicate)).toEqual([true, true, true, true, true]);
    expect(receipts.map((r) => r.id)).toEqual(p.dropped.map((d) => JSON.parse(d.body).result.data.id));
    expect(await stored("https://backend.example/lost/%")).toBe(5);
    expect(p.requests.length).toBe(10);
  });

  it("stores each command of a batch once", async () => {
    const p = await proxy(dropFirst);
    const sdk = new Conveyor({ url: p.url, token, retry: fast });
    const r = await sdk.submitBatch([command("lost-batch/1"), command("lost-batch/2"), command("lost-batch/3")]);
    expect(r.receipts.map((x) => x.ok && x.duplicate)).toEqual([true, true, true]);
    expect(await stored("https://backend.example/lost-batch/%")).toBe(3);
  });

  it("keeps the caller's own key across retries", async () => {
    const p = await proxy(dropFirst);
    const sdk = new Conveyor({ url: p.url, token, retry: fast });
    const r = await sdk.submit({ ...command("own-key"), idempotencyKey: "caller-key-1" });
    expect(r.duplicate).toBe(true);
    expect(p.requests.map((x) => JSON.parse(x.body).idempotencyKey)).toEqual(["caller-key-1", "caller-key-1"]);
    expect((await sdk.get({ idempotencyKey: "caller-key-1" })).id).toBe(r.id);
  });

  it("retries reads too, by GET", async () => {
    const direct = new Conveyor({ url: api.url, token });
    const { id } = await direct.submit(command("read"));
    const p = await proxy(dropFirst);
    const sdk = new Conveyor({ url: p.url, token, retry: fast });
    expect((await sdk.get(id)).id).toBe(id);
    expect((await sdk.getMany([id])).items.map((v) => v.id)).toEqual([id]);
    expect(p.requests.map((r) => `${r.method} ${r.url.split("?")[0]}`)).toEqual([
      "GET /api/trpc/intake.get",
      "GET /api/trpc/intake.get",
      "GET /api/trpc/intake.getMany",
      "GET /api/trpc/intake.getMany",
    ]);
  });

  it("without retries, the lost answer is a NETWORK error (and the command was stored)", async () => {
    const p = await proxy(dropFirst);
    const sdk = new Conveyor({ url: p.url, token, retry: false });
    const err = await sdk.submit(command("no-retry")).catch((e) => e);
    expect(err).toBeInstanceOf(ConveyorError);
    expect(err).toMatchObject({ code: "NETWORK", httpStatus: null, attempts: 1, procedure: "intake.submit" });
    expect(err.message).toMatch(/^No answer from Conveyor to intake\.submit: /);
    expect(await stored("https://backend.example/no-retry")).toBe(1);
  });
});

describe("429 and Retry-After", () => {
  it("waits the seconds Retry-After names, then succeeds", async () => {
    const p = await proxy((_, n) =>
      n === 0
        ? { kind: "answer", status: 429, headers: { "retry-after": "1" }, body: trpcError("TOO_MANY_REQUESTS", 429) }
        : { kind: "forward" },
    );
    const r = await new Conveyor({ url: p.url, token, retry: fast }).submit(command("429-seconds"));
    expect(r.duplicate).toBe(false);
    expect(p.requests.length).toBe(2);
    expect(p.requests[1]!.at - p.requests[0]!.at).toBeGreaterThanOrEqual(995);
    expect(await stored("https://backend.example/429-seconds")).toBe(1);
  });

  it("waits until the HTTP date Retry-After names", async () => {
    let until = 0;
    const p = await proxy((_, n) => {
      if (n > 0) return { kind: "forward" };
      const at = new Date(Math.ceil((Date.now() + 1_500) / 1000) * 1000); // HTTP dates are whole seconds
      until = at.getTime();
      return { kind: "answer", status: 429, headers: { "retry-after": at.toUTCString() }, body: "" };
    });
    await new Conveyor({ url: p.url, token, retry: fast }).submit(command("429-date"));
    expect(p.requests.length).toBe(2);
    expect(p.requests[1]!.wallAt).toBeGreaterThanOrEqual(until - 5);
  });

  it("does not wait longer than maxRetryAfterMs: the error says how long was asked", async () => {
    const p = await proxy(() => ({
      kind: "answer",
      status: 429,
      headers: { "retry-after": "120" },
      body: trpcError("TOO_MANY_REQUESTS", 429, "slow down"),
    }));
    const err = await new Conveyor({ url: p.url, token, retry: { ...fast, maxRetryAfterMs: 5_000 } })
      .submit(command("429-long"))
      .catch((e) => e);
    expect(err).toMatchObject({
      code: "TOO_MANY_REQUESTS",
      httpStatus: 429,
      retryAfterMs: 120_000,
      message: "slow down",
    });
    expect(p.requests.length).toBe(1);
  });

  it("honours the Retry-After of Conveyor's own intake rate limit", async () => {
    const limited = await startApi(t.db, { intakeLimiter: createRateLimiter(1) });
    try {
      const sdk = new Conveyor({ url: limited.url, token, retry: fast });
      const started = performance.now();
      // Two seconds of burst at 1/s: the third submit is refused with Retry-After: 1, then stored.
      for (const n of [1, 2, 3]) await sdk.submit(command(`limited/${n}`));
      expect(performance.now() - started).toBeGreaterThanOrEqual(990);
      expect(await stored("https://backend.example/limited/%")).toBe(3);
    } finally {
      await limited.close();
    }
  });
});

describe("other failures", () => {
  it("retries 5xx answers, Conveyor's or a proxy's, then succeeds", async () => {
    const p = await proxy((_, n) =>
      n === 0
        ? { kind: "answer", status: 502, headers: { "content-type": "text/html" }, body: "<h1>Bad gateway</h1>" }
        : n === 1
          ? { kind: "answer", status: 500, body: trpcError("INTERNAL_SERVER_ERROR", 500) }
          : { kind: "forward" },
    );
    const r = await new Conveyor({ url: p.url, token, retry: fast }).submit(command("5xx"));
    expect(r.duplicate).toBe(false);
    expect(p.requests.length).toBe(3);
  });

  it("gives up after `attempts` requests with the last error", async () => {
    const p = await proxy(() => ({ kind: "answer", status: 503, body: "" }));
    const err = await new Conveyor({ url: p.url, token, retry: { ...fast, attempts: 3 } })
      .submit(command("down"))
      .catch((e) => e);
    expect(err).toMatchObject({ code: "SERVICE_UNAVAILABLE", httpStatus: 503, attempts: 3 });
    expect(p.requests.length).toBe(3);
  });

  it("a refused connection is NETWORK, an answer that never comes TIMEOUT, each retried", async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const refused = await new Conveyor({ url: nowhere, token, retry: { ...fast, attempts: 2 } })
      .get("00000000-0000-4000-8000-000000000000")
      .catch((e) => e);
    expect(refused).toMatchObject({ code: "NETWORK", httpStatus: null, attempts: 2 });
    expect(refused.message).toMatch(/ECONNREFUSED/);

    const p = await proxy(() => ({ kind: "hang" }), null);
    const hung = await new Conveyor({ url: p.url, token, timeoutMs: 200, retry: { ...fast, attempts: 2 } })
      .submit(command("hang"))
      .catch((e) => e);
    expect(hung).toMatchObject({ code: "TIMEOUT", attempts: 2 });
    expect(hung.message).toBe("No answer from Conveyor to intake.submit within 200 ms (after 2 attempts)");
    expect(p.requests.length).toBe(2);
  });

  it("does not retry what cannot succeed when sent again (4xx), nor an answer that is not Conveyor's", async () => {
    const p = await proxy(() => ({ kind: "forward" }));
    const sdk = new Conveyor({ url: p.url, token, retry: fast });
    const err = await sdk.submit({ type: "http" as string, payload: {} }).catch((e) => e);
    expect(err).toMatchObject({ code: "BAD_REQUEST", httpStatus: 400, attempts: 1 });
    expect(p.requests.length).toBe(1);

    const page = await proxy(() => ({
      kind: "answer",
      status: 200,
      headers: { "content-type": "text/html" },
      body: "<html>",
    }));
    const odd = await new Conveyor({ url: page.url, token, retry: fast }).get({ idempotencyKey: "k" }).catch((e) => e);
    expect(odd).toMatchObject({ code: "BAD_RESPONSE", httpStatus: 200, attempts: 1 });
  });

  it("an abort during the wait between two tries stops at once, with the signal's reason", async () => {
    const p = await proxy(() => ({ kind: "answer", status: 503, headers: { "retry-after": "30" }, body: "" }));
    const ctl = new AbortController();
    const sdk = new Conveyor({ url: p.url, token, retry: { ...fast, attempts: 5 } });
    const first = p.nextRequest();
    const call = sdk.submit(command("abort"), { signal: ctl.signal }).catch((e) => e);
    await first;
    const started = performance.now();
    ctl.abort("stop");
    expect(await call).toBe("stop");
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(p.requests.length).toBe(1);
  });
});

// intake.getBatch and submitBatch's `batch` (DESIGN §8) are not served by this build yet: their wire format, as sent.
describe("the batch procedures' wire format", () => {
  it("sends submitBatch's batch beside the commands, and getBatch as a GET query", async () => {
    const view = { id: "b-1", name: "nightly", total: 1, counts: {}, done: false, createdAt: "x", doneAt: null };
    const p = await proxy((r) => ({
      kind: "answer",
      status: 200,
      body: JSON.stringify({
        result: { data: r.url.includes("getBatch") ? view : { receipts: [], batchId: "b-1" } },
      }),
    }));
    const sdk = new Conveyor({ url: p.url, token });
    const r = await sdk.submitBatch([command("in-batch")], {
      batch: { name: "nightly", callbackUrl: "https://shop.example/batch-done" },
    });
    expect(r.batchId).toBe("b-1");
    expect(await sdk.getBatch("b-1")).toEqual(view);
    const [submitted, read] = p.requests;
    expect(submitted!.url).toBe("/api/trpc/intake.submitBatch");
    expect(JSON.parse(submitted!.body)).toEqual({
      commands: [{ ...command("in-batch"), idempotencyKey: expect.any(String) }],
      batch: { name: "nightly", callbackUrl: "https://shop.example/batch-done" },
    });
    expect(read!.method).toBe("GET");
    expect(decodeURIComponent(read!.url)).toBe('/api/trpc/intake.getBatch?input={"id":"b-1"}');
    expect(read!.headers.authorization).toBe(`Bearer ${token}`);
  });
});
