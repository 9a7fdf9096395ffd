// @conveyor/client forwards the caller's trace context on submits (DESIGN
// §10): read from the OpenTelemetry JS API when the application registered it
// (here the real @opentelemetry/api with a real SDK tracer), from a hook, or
// per call; kept across retries; and Conveyor stores it with the command.
// Against the real /api/trpc handler on a real PostgreSQL, through a loopback
// proxy that shows the headers as sent.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import * as otel from "@opentelemetry/api";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken, startApi, type ApiServer } from "../helpers/api";
import { startProxy, type Proxy } from "../helpers/proxy";
import { activeTraceContext, Conveyor, type SubmitInput } from "../../packages/client/src/index";

let t: TestDb;
let api: ApiServer;
let token: string;
let proxy: Proxy;

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  token = (await newToken(t.db, "client")).token;
  proxy = await startProxy(api.url);
});
afterAll(async () => {
  await proxy?.close();
  await api?.close();
  await t?.drop();
});
afterEach(() => {
  otel.trace.disable();
  otel.context.disable();
  otel.propagation.disable();
});

const command = (): SubmitInput => ({
  type: "http",
  payload: { url: "https://backend.example/x" },
  runAt: "2999-01-01T00:00:00Z",
});
const storedTrace = async (id: string) =>
  (
    await t.db.pool.query<{ trace_parent: string | null; trace_state: string | null }>(
      "SELECT trace_parent, trace_state FROM commands WHERE id = $1",
      [id],
    )
  ).rows[0]!;

/** The smallest synchronous context manager: what an application's AsyncLocalStorage one does within one call. */
function stackContextManager(): otel.ContextManager {
  let current = otel.ROOT_CONTEXT;
  return {
    active: () => current,
    with(ctx, fn, thisArg, ...args) {
      const before = current;
      current = ctx;
      try {
        return fn.call(thisArg, ...args);
      } finally {
        current = before;
      }
    },
    bind: (_ctx, target) => target,
    enable() {
      return this;
    },
    disable() {
      current = otel.ROOT_CONTEXT;
      return this;
    },
  };
}

/** Registers the OpenTelemetry API as an application would: a real tracer provider and a context manager. */
function registerOtel() {
  otel.context.setGlobalContextManager(stackContextManager());
  otel.trace.setGlobalTracerProvider(new BasicTracerProvider());
  return otel.trace.getTracer("app");
}

describe("the SDK's trace context", () => {
  it("forwards the active OpenTelemetry span's context: Conveyor stores it", async () => {
    const tracer = registerOtel();
    const sdk = new Conveyor({ url: proxy.url, token });
    let expected = "";
    const receipt = await tracer.startActiveSpan("checkout", (span) => {
      const sc = span.spanContext();
      expected = `00-${sc.traceId}-${sc.spanId}-01`;
      const p = sdk.submit(command());
      span.end();
      return p;
    });
    expect(proxy.requests.at(-1)!.headers.traceparent).toBe(expected);
    expect(await storedTrace(receipt.id)).toEqual({ trace_parent: expected, trace_state: null });

    // Outside any span: nothing to forward.
    const plain = await sdk.submit(command());
    expect(proxy.requests.at(-1)!.headers.traceparent).toBeUndefined();
    expect((await storedTrace(plain.id)).trace_parent).toBeNull();
  });

  it("asks the registered propagator first, and forwards its tracestate", async () => {
    const tracer = registerOtel();
    const fixed = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    otel.propagation.setGlobalPropagator({
      // As W3C's propagator does: something to inject only within a span.
      inject: (ctx, carrier, setter) => {
        if (!otel.trace.getSpan(ctx)) return;
        setter.set(carrier, "traceparent", fixed);
        setter.set(carrier, "tracestate", "app=1");
      },
      extract: (ctx) => ctx,
      fields: () => ["traceparent", "tracestate"],
    });
    const sdk = new Conveyor({ url: proxy.url, token });
    const r = await tracer.startActiveSpan("x", (span) => sdk.submit(command()).finally(() => span.end()));
    expect(await storedTrace(r.id)).toEqual({ trace_parent: fixed, trace_state: "app=1" });
    expect(activeTraceContext()).toBeUndefined(); // no active span out here
  });

  it("sends the same context on every retry of a submit", async () => {
    const tracer = registerOtel();
    const lossy = await startProxy(api.url, (_r, seenBefore) =>
      seenBefore === 0 ? { kind: "drop-answer" } : { kind: "forward" },
    );
    try {
      const sdk = new Conveyor({ url: lossy.url, token, retry: { baseDelayMs: 10, maxDelayMs: 20 } });
      const r = await tracer.startActiveSpan("x", (span) => sdk.submit(command()).finally(() => span.end()));
      expect(lossy.requests).toHaveLength(2);
      const [first, second] = lossy.requests.map((q) => q.headers.traceparent);
      expect(first).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(second).toBe(first);
      expect((await storedTrace(r.id)).trace_parent).toBe(first);
    } finally {
      await lossy.close();
    }
  });

  it("takes a hook's context, or a call's own; `false` and `trace: null` send none; a malformed one is not sent", async () => {
    const tracer = registerOtel();
    const hooked = "00-11111111111111111111111111111111-2222222222222222-01";
    const own = "00-33333333333333333333333333333333-4444444444444444-00";
    const viaHook = new Conveyor({ url: proxy.url, token, traceContext: () => ({ traceparent: hooked }) });
    expect((await storedTrace((await viaHook.submit(command())).id)).trace_parent).toBe(hooked);
    const r = await viaHook.submitBatch([command()], { trace: { traceparent: own, tracestate: "k=v" } });
    expect(await storedTrace((r.receipts[0] as { id: string }).id)).toEqual({ trace_parent: own, trace_state: "k=v" });
    await viaHook.submit(command(), { trace: null });
    expect(proxy.requests.at(-1)!.headers.traceparent).toBeUndefined();

    const off = new Conveyor({ url: proxy.url, token, traceContext: false });
    await tracer.startActiveSpan("x", (span) => off.submit(command()).finally(() => span.end()));
    expect(proxy.requests.at(-1)!.headers.traceparent).toBeUndefined();

    const bad = new Conveyor({ url: proxy.url, token, traceContext: () => ({ traceparent: "nonsense" }) });
    await bad.submit(command());
    expect(proxy.requests.at(-1)!.headers.traceparent).toBeUndefined();
    const throwing = new Conveyor({
      url: proxy.url,
      token,
      traceContext: () => {
        throw new Error("hook failed");
      },
    });
    const ok = await throwing.submit(command());
    expect(ok.duplicate).toBe(false);
  });
});
