// Tracing across processes (DESIGN §10): the production web process (`npm run
// web`) and a worker process (`npm run worker`) with OTEL_EXPORTER_OTLP_ENDPOINT
// pointed at a loopback OTLP/HTTP receiver export their spans there in the
// default protocol (protobuf), in the submit's trace, and the backend sees that
// trace; the same processes without the variable send nothing, not even to the
// spec's default endpoint (127.0.0.1:4318), where a second receiver listens.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import path from "node:path";
import { randomUUID } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { spawnWeb, stopWeb, waitHealthy } from "../helpers/web";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort, runWorker, type Proc } from "../helpers/proc";
import { client } from "../helpers/api";
import { startBackend, type Backend } from "../helpers/backend";
import { startOtlpReceiver, type OtlpReceiver } from "../helpers/otlp";
import { Conveyor } from "../../packages/client/src/index";
import { parseTraceParent } from "../../server/lib/trace-context";

let t: TestDb;
let backend: Backend;
let otlp: OtlpReceiver;
let defaultEndpoint: OtlpReceiver;
const bootstrap = "bootstrap-token-for-the-tracing-test-0123";
const running: { web: ChildProcess; worker: Proc }[] = [];

beforeAll(async () => {
  buildIfNeeded(path.resolve("."));
  t = await createTestDb();
  [backend, otlp] = await Promise.all([startBackend(), startOtlpReceiver()]);
  // Where an OTLP exporter started without an endpoint would send (the spec's default).
  defaultEndpoint = await startOtlpReceiver(4318).catch((err: Error) => {
    throw new Error(`this test listens on 127.0.0.1:4318 (OTLP's default endpoint), which is taken: ${err.message}`);
  });
}, 240_000);

afterAll(async () => {
  for (const p of running) await stop(p);
  await Promise.all([backend?.close(), otlp?.close(), defaultEndpoint?.close()]);
  await t?.drop();
});

/** Starts a web and a worker process with `env`; answers an SDK on the web process with a fresh client token. */
async function start(env: Record<string, string>) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const common = { DATABASE_URL: t.url, HTTP_ALLOWED_HOSTS: "127.0.0.1", LOG_LEVEL: "info", ...env };
  const p = { web: spawnWeb(port, { ...common, BOOTSTRAP_API_TOKEN: bootstrap }, "pipe"), worker: runWorker(common) };
  running.push(p);
  await Promise.all([waitHealthy(base, p.web), p.worker.waitFor(/worker started/, 60_000)]);
  const created = await client(base, bootstrap).mutation("tokens.create", {
    name: `trace-${randomUUID()}`,
    scope: "client",
  });
  return { ...p, sdk: new Conveyor({ url: base, token: created.data.token }) };
}

/** SIGTERM to both; resolves once both have exited (having sent their last spans, if any). */
async function stop(p: { web: ChildProcess; worker: Proc }) {
  const webExited = p.web.exitCode !== null ? Promise.resolve() : new Promise((r) => p.web.once("exit", r));
  stopWeb(p.web);
  p.worker.child.kill("SIGTERM");
  await Promise.all([webExited, p.worker.exited]);
  running.splice(running.indexOf(p), 1);
}

/** Submits an http command to the backend, with a callback; resolves with its id once the callback has arrived. */
async function runOne(sdk: Conveyor, traceparent: string) {
  const key = `trace-${randomUUID()}`;
  const { id } = await sdk.submit(
    { type: "http", payload: { url: `${backend.url}/do/${key}` }, callbackUrl: `${backend.url}/callback` },
    { trace: { traceparent } },
  );
  const arrived = () => backend.requests.some((r) => r.path === "/callback" && r.headers["x-command-id"] === id);
  if (!arrived()) await new Promise<void>((r) => backend.onRequest(() => arrived() && r()));
  return { id, requests: backend.requests.filter((r) => r.headers["x-command-id"] === id) };
}

const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join("");

describe("tracing in the web and worker processes", () => {
  it("with OTEL_EXPORTER_OTLP_ENDPOINT: both export protobuf spans in the submit's trace", async () => {
    const p = await start({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: "100" });
    expect(p.worker.output()).toMatch(/exporting spans over OTLP\/HTTP/);
    const traceId = hex(32);
    const parent = hex(16);
    const { id, requests } = await runOne(p.sdk, `00-${traceId}-${parent}-01`);

    const intake = await otlp.waitForSpan((s) => s.name === "intake.submit" && s.traceId === traceId);
    const execute = await otlp.waitForSpan((s) => s.name === "conveyor.execute" && s.traceId === traceId);
    const callback = await otlp.waitForSpan((s) => s.name === "conveyor.callback" && s.traceId === traceId);
    expect(intake).toMatchObject({ service: "conveyor-web", parentSpanId: parent });
    expect(intake.attributes).toMatchObject({ "conveyor.command.id": id, "conveyor.command.count": 1 });
    expect(execute).toMatchObject({
      service: "conveyor-worker",
      parentSpanId: parent,
      attributes: {
        "conveyor.command.id": id,
        "conveyor.command.type": "http",
        "conveyor.attempt.kind": "execute",
        "conveyor.attempt.outcome": "success",
        "conveyor.attempt.number": 1,
      },
    });
    expect(callback).toMatchObject({ service: "conveyor-worker", parentSpanId: parent });
    expect(requests.map((r) => parseTraceParent(String(r.headers.traceparent)))).toEqual([
      { traceId, spanId: execute.spanId, flags: "01" },
      { traceId, spanId: callback.spanId, flags: "01" },
    ]);
    expect(new Set(otlp.requests.map((r) => `${r.path} ${r.contentType}`))).toEqual(
      new Set(["/v1/traces application/x-protobuf"]),
    );
    await stop(p);
  });

  it("without it: the trace is still carried to the backend, and nothing is sent anywhere", async () => {
    const before = otlp.requests.length;
    // The other OTEL_* variables alone turn nothing on.
    const p = await start({ OTEL_SERVICE_NAME: "should-not-appear", OTEL_TRACES_SAMPLER: "always_on" });
    expect(p.worker.output()).not.toMatch(/exporting spans/);
    const traceId = hex(32);
    const { requests } = await runOne(p.sdk, `00-${traceId}-${hex(16)}-01`);
    for (const r of requests) expect(parseTraceParent(String(r.headers.traceparent))?.traceId).toBe(traceId);
    // Stopped: a process with an exporter would send its last spans before it exits.
    await stop(p);
    expect(otlp.requests.length).toBe(before);
    expect(defaultEndpoint.requests).toEqual([]);
  });
});
