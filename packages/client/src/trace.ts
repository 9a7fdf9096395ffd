// W3C Trace Context for submits (DESIGN §10): the SDK sends the caller's
// trace context as `traceparent` / `tracestate` headers, so that every request
// Conveyor makes for the command (and its upstream callback) is in the
// caller's trace. No dependency on OpenTelemetry: when an application has
// registered the OpenTelemetry JS API (any 1.x, which registers itself on
// globalThis under Symbol.for("opentelemetry.js.api.1")), the active context
// is read from there; a `traceContext` hook or a per-call `trace` option
// replaces it.

/** A W3C trace context, as the headers carry it. */
export type TraceContext = {
  /** `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>` */
  traceparent: string;
  tracestate?: string;
};

/** Where the SDK takes the trace context of a submit from; called once per submit (its retries send the same). */
export type TraceContextSource = () => TraceContext | null | undefined;

const TRACEPARENT = /^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$/;

/** Whether a traceparent is well-formed (W3C): the SDK sends nothing else. */
export const isTraceParent = (v: unknown): v is string => typeof v === "string" && TRACEPARENT.test(v.trim());

type SpanContextLike = {
  traceId?: string;
  spanId?: string;
  traceFlags?: number;
  traceState?: { serialize?(): string };
};
type ContextLike = { getValue?(key: symbol): unknown };
type OtelGlobal = {
  context?: { active?(): ContextLike | undefined };
  propagation?: {
    inject?(
      ctx: ContextLike,
      carrier: Record<string, string>,
      setter: { set(c: Record<string, string>, k: string, v: string): void },
    ): void;
  };
};

const OTEL_API = Symbol.for("opentelemetry.js.api.1");
// The OpenTelemetry API's key of the active span in a context (createContextKey: Symbol.for its description).
const SPAN_KEY = Symbol.for("OpenTelemetry Context Key SPAN");

/**
 * The active OpenTelemetry context of the calling code, or undefined (no
 * OpenTelemetry API registered, no active span, or an invalid one). Asks the
 * registered propagator first (W3C's by default), so that what is sent is what
 * the application's own outgoing requests carry; else formats the active
 * span's context. Never throws.
 */
export function activeTraceContext(): TraceContext | undefined {
  try {
    const api = (globalThis as Record<symbol, OtelGlobal | undefined>)[OTEL_API];
    const ctx = api?.context?.active?.();
    if (!ctx) return undefined;
    const carrier: Record<string, string> = {};
    api!.propagation?.inject?.(ctx, carrier, { set: (c, k, v) => void (c[k.toLowerCase()] = v) });
    if (isTraceParent(carrier.traceparent)) return withState(carrier.traceparent, carrier.tracestate);
    const span = ctx.getValue?.(SPAN_KEY) as { spanContext?(): SpanContextLike } | undefined;
    const sc = span?.spanContext?.();
    if (!sc || typeof sc.traceFlags !== "number") return undefined;
    const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, "0");
    const traceparent = `00-${sc.traceId}-${sc.spanId}-${flags}`;
    return isTraceParent(traceparent) ? withState(traceparent, sc.traceState?.serialize?.()) : undefined;
  } catch {
    return undefined;
  }
}

const withState = (traceparent: string, tracestate: string | undefined): TraceContext =>
  tracestate ? { traceparent, tracestate } : { traceparent };

/** The headers for a trace context: none when it is absent or its traceparent is malformed. */
export function traceHeaders(t: TraceContext | null | undefined): Record<string, string> | undefined {
  if (!t || !isTraceParent(t.traceparent)) return undefined;
  return t.tracestate
    ? { traceparent: t.traceparent.trim(), tracestate: t.tracestate }
    : { traceparent: t.traceparent.trim() };
}

/** Reads a source without letting it break a submit: a hook that throws sends no context. */
export function readSource(source: TraceContextSource | false): TraceContext | undefined {
  if (source === false) return undefined;
  try {
    return source() ?? undefined;
  } catch {
    return undefined;
  }
}
