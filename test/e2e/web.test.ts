// The real Next.js production server (next start) against a real database:
// health, a client call, the body limit, bootstrap token and bad environment.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import path from "node:path";
import { spawnWeb, stopWeb, waitHealthy } from "../helpers/web";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort } from "../helpers/proc";
import { client } from "../helpers/api";
import { resultEndpoint } from "../../server/commands/inbound";
import { resolveSecretKey } from "../../server/db/settings";
import { signBody } from "../../server/crypto";

let t: TestDb;
let web: ChildProcess;
let base: string;
const bootstrap = "bootstrap-token-for-the-e2e-test-0123456789";

// `npm run web`: the production web process (Next.js for pages, the API served beside it).
const startNext = (port: number, env: Record<string, string>) => spawnWeb(port, env, "pipe");

beforeAll(async () => {
  buildIfNeeded(path.resolve("."));
  t = await createTestDb();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  web = startNext(port, {
    DATABASE_URL: t.url,
    BOOTSTRAP_API_TOKEN: bootstrap,
    MAX_BODY_BYTES: "65536",
    LOG_LEVEL: "warn",
  });
  await waitHealthy(base, web);
}, 240_000);

afterAll(async () => {
  stopWeb(web);
  await t?.drop();
});

describe("npm run web", () => {
  it("serves the intake API with the bootstrap token", async () => {
    const c = client(base, bootstrap);
    const created = await c.mutation("tokens.create", { name: "svc", scope: "client" });
    expect(created.status).toBe(200);
    const svc = client(base, created.data.token);
    const r = await svc.mutation("intake.submit", {
      type: "http",
      payload: { url: "https://backend.example/x" },
      idempotencyKey: "e2e-1",
    });
    expect(r.data).toMatchObject({ status: "pending", duplicate: false });
    const got = await svc.query("intake.get", { idempotencyKey: "e2e-1" });
    expect(got.data.id).toBe(r.data.id);
  });

  it("answers 413 over MAX_BODY_BYTES and keeps serving", async () => {
    const c = client(base, bootstrap);
    const res = await c.raw("intake.submit", {
      method: "POST",
      body: JSON.stringify({ type: "http", payload: { url: "https://x.example/", body: "y".repeat(70_000) } }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).error.data.code).toBe("PAYLOAD_TOO_LARGE");
    expect((await c.mutation("intake.submit", { type: "http", payload: { url: "https://x.example/" } })).status).toBe(
      200,
    );
    expect((await fetch(`${base}/api/health`)).status).toBe(200);
  });

  it("settles an awaiting command from a signed inbound result", async () => {
    const c = client(base, bootstrap);
    const r = await c.mutation("intake.submit", { type: "http", payload: { url: "https://x.example/" } });
    const id = r.data.id;
    // as if a worker had executed it and the backend had answered "accepted"
    await t.db.pool.query(
      `UPDATE commands SET status = 'running', lease_id = gen_random_uuid(), locked_by = 'e2e', locked_until = now() + interval '1 minute' WHERE id = $1`,
      [id],
    );
    await t.db.pool.query(
      `UPDATE commands SET status = 'awaiting', lease_id = NULL, locked_by = NULL, locked_until = NULL, run_at = 'infinity' WHERE id = $1`,
      [id],
    );
    const { secret } = resultEndpoint(base, await resolveSecretKey(t.db, undefined))(id);
    const body = JSON.stringify({ outcome: "success", result: { ref: "A-1" } });
    const post = (sig: string) =>
      fetch(`${base}/api/commands/${id}/result`, {
        method: "POST",
        headers: { "x-conveyor-signature": sig, "content-type": "application/json" },
        body,
      });
    expect((await post("sha256=0000")).status).toBe(401);
    expect((await post(signBody(secret, body))).status).toBe(200);
    const got = await c.query("intake.get", { id });
    expect(got.data).toMatchObject({ status: "succeeded", result: { ref: "A-1" } });
  });

  it("says it is ready", async () => {
    const res = await fetch(`${base}/api/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ready" });
  });

  it("exposes Prometheus metrics", async () => {
    const res = await fetch(`${base}/api/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^conveyor_commands\{state="(pending|succeeded)",type="http"\} \d+$/m);
    expect(text).toMatch(/^conveyor_queue_due \d+$/m);
    expect(text).toMatch(
      /^conveyor_http_request_duration_seconds_count\{route="trpc:intake.submit",status="200"\} \d+$/m,
    );
    expect(text).toContain("conveyor_web_process_cpu_seconds_total");
  });

  it("serves the pages through Next.js", async () => {
    const res = await fetch(`${base}/login`);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await res.text()).toContain("Conveyor");
  });

  it("refuses to start with an invalid variable, naming it", async () => {
    const port = await freePort();
    const bad = startNext(port, { DATABASE_URL: t.url, MAX_BODY_BYTES: "-1" });
    let out = "";
    bad.stdout!.on("data", (d) => (out += d));
    bad.stderr!.on("data", (d) => (out += d));
    const code = await new Promise<number | null>((r) => bad.on("exit", (c) => r(c)));
    expect(code).not.toBe(0);
    expect(out).toMatch(/MAX_BODY_BYTES: must be a whole number/);
  });
});
