// @conveyor/client against a running Conveyor: the production web process
// (`npm run web`) and a worker process on a real PostgreSQL, a real backend
// and a real callback receiver on loopback.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http from "node:http";
import path from "node:path";
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { ChildProcess } from "node:child_process";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { spawnWeb, stopWeb, waitHealthy } from "../helpers/web";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort, runWorker, type Proc } from "../helpers/proc";
import { client } from "../helpers/api";
import { startBackend, type Backend } from "../helpers/backend";
import {
  Conveyor,
  ConveyorError,
  verifyNodeRequest,
  verifyRequest,
  verifySignature,
  isBatchView,
  type CallbackBody,
  type CommandView,
  type FetchLike,
} from "../../packages/client/src/index";

let t: TestDb;
let web: ChildProcess;
let worker: Proc;
let base: string;
let backend: Backend;
let receiver: Receiver;
let token: string;
let signingSecret: string;
let sdk: Conveyor;
const bootstrap = "bootstrap-token-for-the-sdk-test-0123456789";

type Delivery = { path: string; headers: http.IncomingHttpHeaders; raw?: Buffer; verified?: unknown; refused?: string };
type Receiver = { url: string; deliveries: Delivery[]; close: () => Promise<void> };

/** Records raw callbacks on /raw; checks those on /verified with verifyNodeRequest on the real IncomingMessage (401 when refused). */
async function startReceiver(secret: () => string): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const server = http.createServer(async (req, res) => {
    const d: Delivery = { path: req.url ?? "", headers: req.headers };
    if (req.url === "/verified") {
      try {
        d.verified = await verifyNodeRequest(req, secret());
      } catch (err) {
        d.refused = err instanceof ConveyorError ? `${err.code}: ${err.message}` : String(err);
      }
    } else {
      const parts: Buffer[] = [];
      for await (const c of req) parts.push(c as Buffer);
      d.raw = Buffer.concat(parts);
    }
    deliveries.push(d);
    res.writeHead(d.refused ? 401 : 200).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    deliveries,
    close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

/** Polls `get` until it returns something, for at most `ms`. */
async function eventually<T>(get: () => T | undefined, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  buildIfNeeded(path.resolve("."));
  t = await createTestDb();
  backend = await startBackend();
  receiver = await startReceiver(() => signingSecret);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env = { DATABASE_URL: t.url, HTTP_ALLOWED_HOSTS: "127.0.0.1", LOG_LEVEL: "warn" };
  web = spawnWeb(port, { ...env, BOOTSTRAP_API_TOKEN: bootstrap }, "pipe");
  worker = runWorker({ ...env, LOG_LEVEL: "info" });
  await Promise.all([waitHealthy(base, web), worker.waitFor(/worker started/, 60_000)]);
  const created = await client(base, bootstrap).mutation("tokens.create", { name: "sdk-e2e", scope: "client" });
  ({ token, signingSecret } = created.data);
  sdk = new Conveyor({ url: base, token });
}, 240_000);

afterAll(async () => {
  stopWeb(web);
  worker?.child.kill("SIGTERM");
  await worker?.exited;
  await backend?.close();
  await receiver?.close();
  await t?.drop();
});

// Command ids and the SDK's keys are UUID v7 (time-ordered: server/engine/ids.ts, newIdempotencyKey).
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("@conveyor/client against npm run web and a worker", () => {
  it("submits, waits for the outcome, and reads the command by id and by key", async () => {
    const receipt = await sdk.submit({ type: "http", payload: { url: `${backend.url}/do/sdk-1`, body: { n: 1 } } });
    expect(receipt).toEqual({ id: expect.stringMatching(UUID), status: "pending", duplicate: false });
    const done = await sdk.waitFor(receipt.id, { timeoutMs: 30_000, pollMs: 50 });
    expect(done).toMatchObject({ id: receipt.id, status: "succeeded", result: { status: 200 }, attemptCount: 1 });
    expect(backend.applied).toContain(receipt.id);
    // The SDK gave the command a key of its own, by which it can be found again.
    expect(done.idempotencyKey).toMatch(UUID);
    expect(await sdk.get({ idempotencyKey: done.idempotencyKey! })).toEqual(done);
    expect(await sdk.get(receipt.id)).toEqual(done);
  });

  it("answers the original command for a key used before", async () => {
    const key = `order-${randomUUID()}`;
    const input = {
      type: "http",
      payload: { url: `${backend.url}/do/sdk-2` },
      idempotencyKey: key,
      runAt: "2999-01-01T00:00:00Z",
    };
    const first = await sdk.submit(input);
    expect(await sdk.submit(input)).toEqual({ id: first.id, status: "pending", duplicate: true });
    const conflict = await sdk.submit({ ...input, payload: { url: `${backend.url}/do/other` } }).catch((e) => e);
    expect(conflict).toBeInstanceOf(ConveyorError);
    expect(conflict).toMatchObject({ code: "CONFLICT", httpStatus: 409, issues: [], attempts: 1 });
  });

  it("submits a batch: one receipt per command in input order, the invalid one refused with its issues", async () => {
    const r = await sdk.submitBatch([
      { type: "http", payload: { url: `${backend.url}/do/b-1` } },
      // Typed as any type's input, so that the invalid payload reaches the server.
      { type: "http" as string, payload: { method: "POST" } },
      { type: "http", payload: { url: `${backend.url}/do/b-3` } },
    ]);
    expect(r.receipts).toMatchObject([
      { ok: true, status: "pending", duplicate: false },
      { ok: false, error: { code: "BAD_REQUEST", issues: [{ path: ["commands", 1, "payload", "url"] }] } },
      { ok: true, status: "pending", duplicate: false },
    ]);
    const ids = r.receipts.flatMap((x) => (x.ok ? [x.id] : []));
    const views = await Promise.all(ids.map((id) => sdk.waitFor(id, { timeoutMs: 30_000, pollMs: 50 })));
    expect(views.map((v) => v.status)).toEqual(["succeeded", "succeeded"]);
    expect(new Set(views.map((v) => v.idempotencyKey)).size).toBe(2);
  });

  it("makes a batch: getBatch follows its counts to done, and its signed callback passes verifyNodeRequest", async () => {
    const r = await sdk.submitBatch(
      [1, 2, 3].map((n) => ({ type: "http", payload: { url: `${backend.url}/do/batch-${n}` } })),
      { batch: { name: "sdk batch", callbackUrl: `${receiver.url}/verified` } },
    );
    expect(r.batchId).toEqual(expect.any(String));
    const first = await sdk.getBatch(r.batchId!);
    expect(first).toMatchObject({ id: r.batchId, name: "sdk batch", total: 3 });
    let view = first;
    while (!view.done) {
      await new Promise((res) => setTimeout(res, 50));
      view = await sdk.getBatch(r.batchId!);
    }
    expect(view.counts.succeeded).toBe(3);
    const d = await eventually(() =>
      receiver.deliveries.find((x) => x.path === "/verified" && x.headers["x-batch-id"] === r.batchId),
    );
    expect(d.refused).toBeUndefined();
    expect(isBatchView(d.verified as CallbackBody)).toBe(true);
    expect(d.verified).toEqual(view);
    const missing = await sdk.getBatch(randomUUID()).catch((e) => e);
    expect(missing).toMatchObject({ code: "NOT_FOUND", httpStatus: 404 });
  });

  it("reads many commands, asking for over 1,000 ids in pieces by POST, in the order asked", async () => {
    const sent: { method: string; ids: number }[] = [];
    const recording: FetchLike = async (url, init) => {
      if (url.includes("intake.getMany"))
        sent.push({ method: String(init.method), ids: JSON.parse(String(init.body ?? "{}")).ids?.length ?? -1 });
      return fetch(url, init);
    };
    const counting = new Conveyor({ url: base, token, fetch: recording });
    const r = await counting.submitBatch(
      [1, 2].map((n) => ({
        type: "http",
        payload: { url: `${backend.url}/do/m-${n}` },
        runAt: "2999-01-01T00:00:00Z",
      })),
    );
    const [a, b] = r.receipts.map((x) => (x.ok ? x.id : "")) as [string, string];
    const ids: string[] = Array.from({ length: 1_500 }, () => randomUUID());
    ids[10] = b;
    ids[1_200] = a;
    ids[1_300] = b; // asked twice: answered once
    const { items } = await counting.getMany(ids);
    expect(items.map((v) => v.id)).toEqual([b, a]);
    expect(sent).toEqual([
      { method: "POST", ids: 1_000 },
      { method: "POST", ids: 499 },
    ]);
    expect((await sdk.getMany([])).items).toEqual([]);
  });

  it("gives up waiting after timeoutMs with a clear error and the command as last seen", async () => {
    const { id } = await sdk.submit({
      type: "http",
      payload: { url: `${backend.url}/do/later` },
      runAt: "2999-01-01T00:00:00Z",
    });
    const started = performance.now();
    const err = await sdk.waitFor(id, { timeoutMs: 700, pollMs: 50 }).catch((e) => e);
    const took = performance.now() - started;
    expect(err).toBeInstanceOf(ConveyorError);
    expect(err.code).toBe("WAIT_TIMEOUT");
    expect(err.message).toBe(`Command ${id} was still pending after 700 ms (waitFor timeoutMs)`);
    expect(err.view).toMatchObject({ id, status: "pending" });
    expect(took).toBeGreaterThanOrEqual(690);
    expect(took).toBeLessThan(3_000);
  });

  it("stops waiting when the signal aborts, with the signal's reason", async () => {
    const { id } = await sdk.submit({
      type: "http",
      payload: { url: `${backend.url}/do/x` },
      runAt: "2999-01-01T00:00:00Z",
    });
    let gets = 0;
    let onSecondGet: () => void = () => {};
    const secondGet = new Promise<void>((r) => (onSecondGet = r));
    const watching = new Conveyor({
      url: base,
      token,
      fetch: (url, init) => {
        if (url.includes("intake.get") && ++gets === 2) onSecondGet();
        return fetch(url, init);
      },
    });
    const ctl = new AbortController();
    const waiting = watching.waitFor(id, { signal: ctl.signal, timeoutMs: 60_000, pollMs: 20 }).catch((e) => e);
    await secondGet;
    const reason = new Error("the user went away");
    ctl.abort(reason);
    expect(await waiting).toBe(reason);
    const already = AbortSignal.abort(new Error("before it began"));
    expect(await sdk.waitFor(id, { signal: already }).catch((e) => e)).toBe(already.reason);
    expect(await sdk.get(id, { signal: already }).catch((e) => e)).toBe(already.reason);
  });

  it("reports errors as ConveyorError: BAD_REQUEST with issues, NOT_FOUND, UNAUTHORIZED", async () => {
    const bad = await sdk.submit({ type: "http", payload: { url: "not a url" } }).catch((e) => e);
    expect(bad).toBeInstanceOf(ConveyorError);
    expect(bad).toMatchObject({ code: "BAD_REQUEST", httpStatus: 400, procedure: "intake.submit" });
    expect(bad.issues).toEqual([{ path: ["payload", "url"], message: "must be an http:// or https:// URL" }]);
    const unknownType = await sdk.submit({ type: "nope", payload: {} }).catch((e) => e);
    expect(unknownType).toMatchObject({ code: "BAD_REQUEST", issues: [{ path: ["type"] }] });
    const missing = await sdk.get(randomUUID()).catch((e) => e);
    expect(missing).toMatchObject({ code: "NOT_FOUND", httpStatus: 404, message: "No such command", issues: [] });
    const stranger = new Conveyor({ url: base, token: "cvy_not-a-token" });
    const denied = await stranger.get(randomUUID()).catch((e) => e);
    expect(denied).toBeInstanceOf(ConveyorError);
    expect(denied).toMatchObject({ code: "UNAUTHORIZED", httpStatus: 401, attempts: 1 });
  });

  it("verifies real callbacks, and refuses tampered ones", async () => {
    const raw = await sdk.submit({
      type: "http",
      payload: { url: `${backend.url}/do/cb-raw` },
      callbackUrl: `${receiver.url}/raw`,
    });
    const checked = await sdk.submit({
      type: "http",
      payload: { url: `${backend.url}/do/cb-checked` },
      callbackUrl: `${receiver.url}/verified`,
    });
    const view = await sdk.waitFor(raw.id, { timeoutMs: 30_000, pollMs: 50 });
    const got = await eventually(() => receiver.deliveries.find((d) => d.path === "/raw"));
    const header = got.headers["x-conveyor-signature"] as string;
    expect(header).toMatch(/^sha256=[0-9a-f]{64}$/);
    const body = got.raw!;
    expect(JSON.parse(body.toString()) as CommandView).toMatchObject({ id: raw.id, status: "succeeded" });
    expect(JSON.parse(body.toString())).toEqual(await sdk.get(view.id));

    expect(await verifySignature(body, header, signingSecret)).toBe(true);
    expect(await verifySignature(body.toString("utf8"), header, signingSecret)).toBe(true);
    expect(
      await verifySignature(
        new Uint8Array(body).buffer,
        header.toUpperCase().replace("SHA256", "sha256"),
        signingSecret,
      ),
    ).toBe(true);
    const tampered = Buffer.from(body.toString().replace('"succeeded"', '"failed"'));
    expect(await verifySignature(tampered, header, signingSecret)).toBe(false);
    const flipped = header.slice(0, -1) + (header.endsWith("0") ? "1" : "0");
    expect(await verifySignature(body, flipped, signingSecret)).toBe(false);
    expect(await verifySignature(body, header, `${signingSecret}x`)).toBe(false);
    for (const h of [undefined, null, "", header.slice(7), `sha1=${header.slice(7)}`, header.slice(0, -2)])
      expect(await verifySignature(body, h, signingSecret)).toBe(false);

    // A fetch-style route (a Next.js route handler) is given a Request.
    const request = (b: Buffer, h: Record<string, string>) =>
      new Request("http://shop.internal/conveyor-callback", { method: "POST", headers: h, body: new Uint8Array(b) });
    const headers = { "content-type": "application/json", "x-conveyor-signature": header };
    expect(await verifyRequest(request(body, headers), signingSecret)).toEqual(JSON.parse(body.toString()));
    for (const [b, h] of [
      [tampered, headers],
      [body, { "content-type": "application/json" }],
      [body, { ...headers, "x-conveyor-signature": flipped }],
    ] as const) {
      const err = await verifyRequest(request(b, h), signingSecret).catch((e) => e);
      expect(err).toMatchObject({ code: "INVALID_SIGNATURE" });
    }

    // verifyNodeRequest in a node:http server: the real callback passes, a forged one is refused.
    await sdk.waitFor(checked.id, { timeoutMs: 30_000, pollMs: 50 });
    // (The batch test's callback went to /verified too: this command's is the one with its id.)
    const passed = await eventually(() =>
      receiver.deliveries.find((d) => d.path === "/verified" && !d.refused && d.headers["x-command-id"] === checked.id),
    );
    expect(passed.verified).toMatchObject({ id: checked.id, status: "succeeded" });
    const forged = await fetch(`${receiver.url}/verified`, {
      method: "POST",
      headers: { "x-conveyor-signature": header },
      body: tampered,
    });
    expect(forged.status).toBe(401);
    expect(receiver.deliveries.at(-1)!.refused).toMatch(/^INVALID_SIGNATURE: /);
  });
});
