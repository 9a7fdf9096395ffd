// Trace context from intake to backend (DESIGN §10), in one process: the real
// /api/trpc and REST handlers on loopback, a real worker on real PostgreSQL, a
// real backend, and a real OTLP/HTTP receiver that the exporter (http/json
// here; the process test in test/e2e/tracing.test.ts uses the default,
// protobuf) sends to.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken, startApi, type ApiServer } from "../helpers/api";
import { startBackend, type Backend } from "../helpers/backend";
import { attemptsOf, startTestWorker, waitForStatus, waitUntil, type TestWorker } from "../helpers/engine";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../helpers/otlp";
import { registry } from "../../server/command-types";
import { flushTracing, startTracing, stopTracing, tracingOn } from "../../server/lib/tracing";
import { parseTraceParent } from "../../server/lib/trace-context";
import { Interrupt, runClaimed } from "../../server/worker/attempt";
import type { Claimed } from "../../server/engine/types";

let t: TestDb;
let api: ApiServer;
let backend: Backend;
let otlp: OtlpReceiver;
let worker: TestWorker;
let token: string;
let clientId: string;

const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join("");
/** A fresh client context: a new trace id and parent id. */
const context = (flags = "01") => {
  const traceId = hex(32);
  const spanId = hex(16);
  return { traceId, spanId, header: `00-${traceId}-${spanId}-${flags}` };
};

beforeAll(async () => {
  t = await createTestDb();
  const tok = await newToken(t.db, "client");
  token = tok.token;
  clientId = tok.id;
  [backend, otlp, api] = await Promise.all([startBackend(), startOtlpReceiver(), startApi(t.db)]);
  await startTracing({ serviceName: "conveyor-test", url: `${otlp.url}/v1/traces`, protocol: "http/json" });
  worker = await startTestWorker(t.db, t.url, registry);
});
afterAll(async () => {
  await worker?.close();
  await stopTracing();
  await Promise.all([api?.close(), backend?.close(), otlp?.close()]);
  await t?.drop();
});

const restSubmit = (body: unknown, headers: Record<string, string>, path = "/api/v1/commands") =>
  fetch(`${api.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
const trpcSubmit = (body: unknown, headers: Record<string, string>) =>
  fetch(`${api.url}/api/trpc/intake.submit`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

/** An http command whose first request is applied and its answer lost (so the next attempt reconciles), with a callback. */
const command = (key: string) => {
  backend.plan(key, [{ kind: "apply-then-drop" }]);
  return {
    type: "http",
    payload: { url: `${backend.url}/do/${key}`, statusUrl: `${backend.url}/status/{commandId}`, timeoutMs: 2000 },
    callbackUrl: `${backend.url}/callback`,
    retry: { backoffMs: 10, maxBackoffMs: 10 },
  };
};

/** The backend's requests for a command, once its callback's delivery is recorded (its span has ended by then). */
async function requestsOf(id: string) {
  await waitForStatus(t.db, id, ["succeeded"]);
  await waitUntil(
    async () => (await attemptsOf(t.db, id)).some((a) => a.kind === "callback"),
    `the callback of ${id} to be recorded`,
  );
  return backend.requests.filter((r) => r.headers["x-command-id"] === id);
}

const stored = async (id: string) =>
  (
    await t.db.pool.query<{ trace_parent: string | null; trace_state: string | null }>(
      "SELECT trace_parent, trace_state FROM commands WHERE id = $1",
      [id],
    )
  ).rows[0]!;

const spansOf = (id: string) => otlp.spans.filter((s) => s.attributes["conveyor.command.id"] === id);
const named = (spans: ReceivedSpan[], name: string) => spans.filter((s) => s.name === name);

describe("trace context at intake", () => {
  it("REST: the backend sees the submit's trace on execute, reconcile and the callback; attempt spans are children of it", async () => {
    const c = context();
    const res = await restSubmit(command(`rest-${randomUUID()}`), { traceparent: c.header, tracestate: "vendor=abc" });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    expect(await stored(id)).toEqual({ trace_parent: c.header, trace_state: "vendor=abc" });

    const reqs = await requestsOf(id);
    expect(reqs.map((r) => `${r.method} ${r.path}`)).toEqual([
      expect.stringMatching(/^POST \/do\//),
      `GET /status/${id}`,
      "POST /callback",
    ]);
    const sent = reqs.map((r) => parseTraceParent(String(r.headers.traceparent)));
    for (const [i, p] of sent.entries()) {
      expect(p, `${reqs[i]!.path} carries a traceparent`).not.toBeNull();
      expect(p!.traceId).toBe(c.traceId);
      expect(p!.flags).toBe("01");
      expect(p!.spanId).not.toBe(c.spanId);
      expect(reqs[i]!.headers.tracestate).toBe("vendor=abc");
    }
    expect(new Set(sent.map((p) => p!.spanId)).size).toBe(3);

    await flushTracing();
    const spans = spansOf(id);
    const [intake] = named(spans, "intake.submit");
    expect(intake).toMatchObject({
      traceId: c.traceId,
      parentSpanId: c.spanId,
      kind: 2, // SERVER (OTLP numbering)
      attributes: { "conveyor.client.id": clientId, "conveyor.command.count": 1, "conveyor.command.duplicate": false },
    });
    const [execute] = named(spans, "conveyor.execute");
    const [reconcile] = named(spans, "conveyor.reconcile");
    const [callback] = named(spans, "conveyor.callback");
    const attempt = (kind: string, outcome: string, n: number) => ({
      "conveyor.command.id": id,
      "conveyor.command.type": "http",
      "conveyor.attempt.kind": kind,
      "conveyor.attempt.outcome": outcome,
      "conveyor.attempt.number": n,
    });
    expect(execute).toMatchObject({
      traceId: c.traceId,
      parentSpanId: c.spanId,
      attributes: attempt("execute", "exception", 1),
    });
    expect(execute!.status.code).toBe(2); // ERROR, with the attempt's error
    expect(execute!.status.message).toMatch(/network error|socket|fetch failed/i);
    expect(reconcile).toMatchObject({
      traceId: c.traceId,
      parentSpanId: c.spanId,
      attributes: attempt("reconcile", "success", 2),
    });
    expect(callback).toMatchObject({
      traceId: c.traceId,
      parentSpanId: c.spanId,
      attributes: {
        "conveyor.attempt.kind": "callback",
        "conveyor.attempt.outcome": "success",
        "http.response.status_code": 200,
      },
    });
    // Each request's parent id is its attempt's span: the backend's own spans hang under the attempt.
    expect(sent.map((p) => p!.spanId)).toEqual([execute!.spanId, reconcile!.spanId, callback!.spanId]);
    expect(execute!.traceState).toBe("vendor=abc");
    expect(execute!.service).toBe("conveyor-test");
  });

  it("tRPC: the same; an unsampled context (flags 00) is carried with its flags and exports no span", async () => {
    const sampled = context();
    const res = await trpcSubmit(command(`trpc-${randomUUID()}`), { traceparent: sampled.header });
    expect(res.status).toBe(200);
    const id = ((await res.json()) as { result: { data: { id: string } } }).result.data.id;
    const reqs = await requestsOf(id);
    expect(reqs).toHaveLength(3);
    for (const r of reqs) expect(parseTraceParent(String(r.headers.traceparent))?.traceId).toBe(sampled.traceId);
    await flushTracing();
    expect(named(spansOf(id), "conveyor.execute")[0]?.parentSpanId).toBe(sampled.spanId);
    expect(named(spansOf(id), "intake.submit")[0]?.parentSpanId).toBe(sampled.spanId);

    const unsampled = context("00");
    const res2 = await trpcSubmit(command(`trpc-${randomUUID()}`), { traceparent: unsampled.header });
    const id2 = ((await res2.json()) as { result: { data: { id: string } } }).result.data.id;
    for (const r of await requestsOf(id2)) {
      const p = parseTraceParent(String(r.headers.traceparent))!;
      expect(p.traceId).toBe(unsampled.traceId);
      expect(p.flags).toBe("00");
    }
    await flushTracing();
    expect(otlp.spans.filter((s) => s.traceId === unsampled.traceId)).toEqual([]);
  });

  it("a batch is one intake span, and every command in it keeps the context", async () => {
    const c = context();
    const res = await restSubmit(
      { commands: [command(`b1-${randomUUID()}`), command(`b2-${randomUUID()}`), { type: "nope", payload: {} }] },
      { traceparent: c.header },
      "/api/v1/commands/batch",
    );
    expect(res.status).toBe(200);
    const { receipts } = (await res.json()) as { receipts: { ok: boolean; id?: string }[] };
    const ids = receipts.filter((r) => r.ok).map((r) => r.id!);
    expect(ids).toHaveLength(2);
    for (const id of ids) {
      expect((await stored(id)).trace_parent).toBe(c.header);
      for (const r of await requestsOf(id))
        expect(parseTraceParent(String(r.headers.traceparent))?.traceId).toBe(c.traceId);
    }
    await flushTracing();
    const batch = otlp.spans.filter((s) => s.name === "intake.submitBatch" && s.traceId === c.traceId);
    expect(batch).toHaveLength(1);
    expect(batch[0]).toMatchObject({
      parentSpanId: c.spanId,
      attributes: {
        "conveyor.command.count": 3,
        "conveyor.command.stored": 2,
        "conveyor.command.rejected": 1,
      },
    });
  });

  it("ignores a malformed traceparent (and its tracestate): the command is traced from the intake span, a root", async () => {
    const c = context();
    const malformed = c.header.toUpperCase();
    const res = await restSubmit(command(`bad-${randomUUID()}`), { traceparent: malformed, tracestate: "a=1" });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    await flushTracing();
    const intake = named(spansOf(id), "intake.submit")[0]!;
    expect(intake.parentSpanId).toBe("");
    expect(intake.traceId).not.toBe(c.traceId);
    const kept = await stored(id);
    expect(kept).toEqual({ trace_parent: `00-${intake.traceId}-${intake.spanId}-01`, trace_state: null });
    for (const r of await requestsOf(id)) {
      expect(parseTraceParent(String(r.headers.traceparent))?.traceId).toBe(intake.traceId);
      expect(r.headers.tracestate).toBeUndefined();
    }
    await flushTracing();
    expect(named(spansOf(id), "conveyor.execute")[0]?.parentSpanId).toBe(intake.spanId);
  });

  it("poll and compensate requests carry the trace too, each as its attempt's span", async () => {
    const c = context();
    const base = (status: Claimed["status"], phase: Claimed["phase"]): Claimed => ({
      id: randomUUID(),
      leaseId: randomUUID(),
      type: "http",
      payload: {
        url: `${backend.url}/do/async`,
        statusUrl: `${backend.url}/status/{commandId}`,
        compensateUrl: `${backend.url}/refund`,
      },
      status,
      phase,
      tries: 0,
      attemptCount: 3,
      needsReconcile: false,
      maxAttempts: null,
      backoffMs: null,
      maxBackoffMs: null,
      stateChangedAt: new Date(),
      clientId,
      runAt: new Date(),
      targetHost: null,
      probe: false,
      keyed: false,
      trace: { parent: c.header, state: null },
    });
    const env = () => ({ workerId: "tracing-test", intr: new Interrupt() });
    const awaiting = base("awaiting", "execute");
    const compensating = base("compensating", "compensate");
    await runClaimed(awaiting, registry, env());
    await runClaimed(compensating, registry, env());
    const poll = backend.requests.find((r) => r.path === `/status/${awaiting.id}`)!;
    const refund = backend.requests.find((r) => r.path === "/refund" && r.headers["x-command-id"] === compensating.id)!;
    await flushTracing();
    const [pollSpan] = named(spansOf(awaiting.id), "conveyor.poll");
    const [compensateSpan] = named(spansOf(compensating.id), "conveyor.compensate");
    expect(pollSpan).toMatchObject({
      traceId: c.traceId,
      parentSpanId: c.spanId,
      attributes: {
        "conveyor.attempt.kind": "poll",
        "conveyor.attempt.outcome": "not_found",
        "conveyor.attempt.number": 4,
      },
    });
    expect(compensateSpan).toMatchObject({
      traceId: c.traceId,
      parentSpanId: c.spanId,
      attributes: { "conveyor.attempt.kind": "compensate", "conveyor.attempt.outcome": "success" },
    });
    expect(poll.headers.traceparent).toBe(`00-${c.traceId}-${pollSpan!.spanId}-01`);
    expect(refund.headers.traceparent).toBe(`00-${c.traceId}-${compensateSpan!.spanId}-01`);
  });

  it("a command without trace context sends no traceparent when tracing is off; nothing reaches the receiver", async () => {
    await stopTracing();
    expect(tracingOn()).toBe(false);
    const before = otlp.requests.length;

    // With a context: still carried (a random parent id per request), without spans.
    const c = context();
    const res = await restSubmit(command(`off-${randomUUID()}`), { traceparent: c.header });
    const { id } = (await res.json()) as { id: string };
    const reqs = await requestsOf(id);
    const sent = reqs.map((r) => parseTraceParent(String(r.headers.traceparent))!);
    for (const p of sent) expect(p).toMatchObject({ traceId: c.traceId, flags: "01" });
    expect(new Set([c.spanId, ...sent.map((p) => p.spanId)]).size).toBe(4);

    // Without one (or with a malformed one): nothing stored, no header sent.
    const res2 = await trpcSubmit(command(`off-${randomUUID()}`), { traceparent: "00-garbage" });
    const id2 = ((await res2.json()) as { result: { data: { id: string } } }).result.data.id;
    expect(await stored(id2)).toEqual({ trace_parent: null, trace_state: null });
    for (const r of await requestsOf(id2)) expect(r.headers.traceparent).toBeUndefined();

    await flushTracing();
    expect(otlp.requests.length).toBe(before);
  });
});
