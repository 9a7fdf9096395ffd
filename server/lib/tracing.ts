// Spans over OTLP/HTTP (DESIGN §10, docs/operations.md "Tracing"). Off unless
// startTracing is called (the web and worker processes do when
// OTEL_EXPORTER_OTLP_ENDPOINT is set): then, and only then, the OpenTelemetry
// SDK is loaded (dynamic imports), so that a process without the variable never
// loads it. The span helpers below cost a property read when it is off.
//
// No global registration: the provider is not set as the process's global
// TracerProvider and no context manager is installed; every span's parent is
// passed explicitly (a command's stored trace context, or the request's
// headers). The state lives on globalThis so that the copies of this module
// Next.js bundles (instrumentation, route handlers) share one provider.
import type * as OtelApi from "@opentelemetry/api";
import { childTraceParent, type StoredTrace } from "./trace-context";

export type SpanAttributes = Record<string, string | number | boolean | undefined>;
export type SpanKindName = "server" | "client" | "consumer" | "internal";

/** A span in progress: the traceparent of requests made under it, and its end. */
export type OpenSpan = {
  /** A child of the span's parent trace (version 00), whose parent id is this span. */
  readonly traceparent: string;
  readonly tracestate: string | null;
  /** Ends the span with more attributes; `error`: it failed (status ERROR, with the message). */
  end(attributes?: SpanAttributes, error?: string | null): void;
};

type Provider = { forceFlush(): Promise<void>; shutdown(): Promise<void> };
type Active = { api: typeof OtelApi; tracer: OtelApi.Tracer; provider: Provider };
type Holder = { active: Active | null; starting: Promise<void> | null };

const KEY = Symbol.for("conveyor.tracing");
const holder: Holder = ((globalThis as Record<symbol, Holder | undefined>)[KEY] ??= { active: null, starting: null });

/** Whether spans are being exported (startTracing has run). */
export const tracingOn = (): boolean => holder.active !== null;

export type TracingOptions = {
  /** service.name unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) says otherwise. */
  serviceName: string;
  serviceVersion?: string;
  /** The OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces. */
  url: string;
  protocol: "http/protobuf" | "http/json";
  /** Where the SDK's own warnings go (an unreachable collector, a refused export). */
  warn?: (message: string) => void;
  /** Batch delay (default: OTEL_BSP_SCHEDULE_DELAY, else 5 s); tests make it short. */
  scheduledDelayMillis?: number;
};

/**
 * Loads the OpenTelemetry SDK and starts exporting: a BasicTracerProvider
 * (sampler from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, default
 * parentbased_always_on), a BatchSpanProcessor (OTEL_BSP_*) and the OTLP/HTTP
 * exporter of the protocol (its headers from OTEL_EXPORTER_OTLP_HEADERS).
 * Once per process; later calls wait for the first.
 */
export function startTracing(o: TracingOptions): Promise<void> {
  holder.starting ??= load(o).catch((err) => {
    holder.starting = null;
    throw err;
  });
  return holder.starting;
}

async function load(o: TracingOptions): Promise<void> {
  const [api, sdk, resources, exporterModule] = await Promise.all([
    import("@opentelemetry/api"),
    import("@opentelemetry/sdk-trace-base"),
    import("@opentelemetry/resources"),
    o.protocol === "http/json"
      ? import("@opentelemetry/exporter-trace-otlp-http")
      : import("@opentelemetry/exporter-trace-otlp-proto"),
  ]);
  if (o.warn) {
    const warn = o.warn;
    const say = (m: string, ...args: unknown[]) => warn([m, ...args.map(String)].join(" "));
    api.diag.setLogger(
      { error: say, warn: say, info: () => {}, debug: () => {}, verbose: () => {} },
      api.DiagLogLevel.WARN,
    );
  }
  const resource = resources
    .defaultResource()
    .merge(
      resources.resourceFromAttributes({
        "service.name": o.serviceName,
        ...(o.serviceVersion ? { "service.version": o.serviceVersion } : {}),
      }),
    )
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the defaults above.
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const exporter = new exporterModule.OTLPTraceExporter({ url: o.url });
  const provider = new sdk.BasicTracerProvider({
    resource,
    spanProcessors: [
      new sdk.BatchSpanProcessor(
        exporter,
        o.scheduledDelayMillis !== undefined ? { scheduledDelayMillis: o.scheduledDelayMillis } : undefined,
      ),
    ],
  });
  holder.active = { api, tracer: provider.getTracer("conveyor", o.serviceVersion), provider };
}

/** Exports what is pending (returns at once when tracing is off). */
export async function flushTracing(): Promise<void> {
  await holder.active?.provider.forceFlush();
}

/** Exports what is pending and stops; spans started later are not recorded. */
export async function stopTracing(): Promise<void> {
  await holder.starting?.catch(() => {});
  const a = holder.active;
  holder.active = null;
  holder.starting = null;
  await a?.provider.shutdown();
}

const noop = () => {};

/**
 * Starts a span whose parent is `parent` (a stored trace context), or a root
 * span when it is null. Tracing off: no span; with a parent, requests still
 * get a child traceparent (a random parent id, the trace's flags); without
 * one, undefined (nothing to propagate).
 */
export function startSpan(
  name: string,
  kind: SpanKindName,
  parent: StoredTrace | null,
  attributes: SpanAttributes,
): OpenSpan | undefined {
  const a = holder.active;
  if (a === null) {
    if (parent === null) return undefined;
    return { traceparent: childTraceParent(parent.parent), tracestate: parent.state, end: noop };
  }
  return open(a, name, kind, parent, attributes);
}

const KINDS = { server: 1, client: 2, consumer: 4, internal: 0 } as const satisfies Record<SpanKindName, number>;

function open(
  a: Active,
  name: string,
  kind: SpanKindName,
  parent: StoredTrace | null,
  attributes: SpanAttributes,
): OpenSpan {
  const { api } = a;
  let ctx = api.ROOT_CONTEXT;
  if (parent !== null) {
    const p = parent.parent;
    ctx = api.trace.setSpanContext(ctx, {
      traceId: p.slice(3, 35),
      spanId: p.slice(36, 52),
      traceFlags: parseInt(p.slice(53, 55), 16),
      isRemote: true,
      traceState: parent.state ? api.createTraceState(parent.state) : undefined,
    });
  }
  const span = a.tracer.startSpan(
    name,
    { kind: KINDS[kind] as OtelApi.SpanKind, attributes: defined(attributes) },
    ctx,
  );
  const sc = span.spanContext();
  // The W3C flags byte: the sampled bit as decided (kept from the parent by the default, parent-based sampler),
  // the other bits as the parent had them.
  const inherited = parent === null ? 0 : parseInt(parent.parent.slice(53, 55), 16) & ~1;
  const flags = ((sc.traceFlags & 1) | inherited).toString(16).padStart(2, "0");
  return {
    traceparent: `00-${sc.traceId}-${sc.spanId}-${flags}`,
    tracestate: sc.traceState?.serialize() || parent?.state || null,
    end(more, error) {
      if (more) span.setAttributes(defined(more));
      if (error) span.setStatus({ code: api.SpanStatusCode.ERROR, message: error });
      span.end();
    },
  };
}

function defined(attrs: SpanAttributes): OtelApi.Attributes {
  const out: OtelApi.Attributes = {};
  for (const k in attrs) if (attrs[k] !== undefined) out[k] = attrs[k];
  return out;
}
