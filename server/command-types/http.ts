// The built-in `http` type (DESIGN §2): lets clients use Conveyor with no code.
// Execution, reconciliation and compensation are carried out by the worker
// engine; this file owns how HTTP answers map to outcomes, and
// ./http-payload.ts the payload contract (browser-safe, for the console).
import type { z } from "zod";
import { CommandTypeError, defineCommandType, type AttemptContext } from "./types";
import { defaultOutboundRequest, refusedBy, type OutboundAnswer, type OutboundFetch } from "../outbound/url-guard";
import { hostOf } from "../flow/scopes";
import { httpPayload, type HttpPayload } from "./http-payload";

export { httpPayload, type HttpPayload };

/** Default business-failure statuses: 400–499 except 408 (timeout) and 429 (rate limit). */
export function isFailureStatus(p: HttpPayload, status: number): boolean {
  if (p.failureStatuses) return p.failureStatuses.includes(status);
  return status >= 400 && status <= 499 && status !== 408 && status !== 429;
}

function requestHeaders(p: HttpPayload, ctx: AttemptContext, withBody: boolean): Record<string, string> {
  const h: Record<string, string> = { ...(p.headers ?? {}) };
  if (withBody && !Object.keys(h).some((k) => k.toLowerCase() === "content-type"))
    h["Content-Type"] = "application/json";
  if (!Object.keys(h).some((k) => k.toLowerCase() === "user-agent")) h["User-Agent"] = "Conveyor";
  h["Idempotency-Key"] = ctx.idempotencyKey;
  h["X-Command-Id"] = ctx.commandId;
  if (ctx.traceparent) {
    // The command's trace (DESIGN §10) replaces any trace header the payload names, whatever its case.
    for (const k of Object.keys(h)) if (/^trace(parent|state)$/i.test(k)) delete h[k];
    h.traceparent = ctx.traceparent;
    if (ctx.tracestate) h.tracestate = ctx.tracestate;
  }
  return h;
}

async function readBody(res: OutboundAnswer): Promise<unknown> {
  const text = await res.text();
  if ((res.header("content-type") ?? "").includes("json")) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

type Request = { method: string; headers: Record<string, string>; body?: string };

/**
 * Sends one request after checking its target. A refused target (by the
 * check, or by the connection's own lookup when the name now resolves
 * elsewhere) is a configuration matter, never retried: `{ refused }`.
 * Through the outbound fetch's `request` (same connections and lookup, far
 * less CPU than fetch); a plain fetch given instead (a test's) is used as is.
 */
async function send(ctx: AttemptContext, url: string, init: Request): Promise<OutboundAnswer | { refused: string }> {
  try {
    await ctx.checkUrl?.(url);
    const f = ctx.fetch as Partial<OutboundFetch> | undefined;
    const request = f ? f.request : defaultOutboundRequest;
    if (request) return await request(url, { ...init, signal: ctx.signal });
    const res = await ctx.fetch!(url, { ...init, signal: ctx.signal, redirect: "manual" });
    return { status: res.status, header: (name) => res.headers.get(name), text: () => res.text() };
  } catch (err) {
    const refused = refusedBy(err);
    if (refused) return { refused: refused.message };
    throw err;
  }
}

class HttpStatusError extends CommandTypeError {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}

export const http = defineCommandType<HttpPayload>({
  name: "http",
  description: "Calls an HTTP endpoint; reconciles through statusUrl; compensates through compensateUrl.",
  schema: httpPayload as unknown as z.ZodType<HttpPayload>,
  targets: (p) =>
    (["url", "statusUrl", "compensateUrl"] as const).flatMap((k) => (p[k] ? [{ path: [k], url: p[k] }] : [])),
  async execute(p, ctx) {
    const withBody = p.body !== undefined && p.method !== "GET";
    const res = await send(ctx, p.url, {
      method: p.method,
      headers: requestHeaders(p, ctx, withBody),
      body: withBody ? JSON.stringify(p.body) : undefined,
    });
    if ("refused" in res) return { outcome: "failure", failure: { error: res.refused } };
    const body = await readBody(res);
    if (res.status >= 200 && res.status < 300) return { outcome: "success", result: { status: res.status, body } };
    if (isFailureStatus(p, res.status)) return { outcome: "failure", failure: { status: res.status, body } };
    throw new HttpStatusError(res.status, body);
  },
  scopeHost: (p) => hostOf(p.url),
  canQuery: (p) => !!p.statusUrl,
  canCompensate: (p) => !!p.compensateUrl,
  async query(p, ctx) {
    if (!p.statusUrl) return { outcome: "unknown", detail: "no statusUrl" };
    const statusUrl = p.statusUrl.replaceAll("{commandId}", encodeURIComponent(ctx.commandId));
    const res = await send(ctx, statusUrl, { method: "GET", headers: requestHeaders(p, ctx, false) });
    if ("refused" in res) return { outcome: "unknown", detail: res.refused };
    const body = await readBody(res);
    if (res.status === 200) return { outcome: "success", result: { status: res.status, body } };
    if (res.status === 404) return { outcome: "not_found" };
    if (isFailureStatus(p, res.status)) return { outcome: "failure", failure: { status: res.status, body } };
    return { outcome: "unknown", detail: { status: res.status } };
  },
  async compensate(p, ctx) {
    if (!p.compensateUrl) return { outcome: "failure", failure: "this command has no compensateUrl" };
    const withBody = p.body !== undefined;
    const res = await send(ctx, p.compensateUrl, {
      method: "POST",
      headers: requestHeaders(p, ctx, withBody),
      body: withBody ? JSON.stringify(p.body) : undefined,
    });
    if ("refused" in res) return { outcome: "failure", failure: { error: res.refused } };
    const body = await readBody(res);
    if (res.status >= 200 && res.status < 300) return { outcome: "success", result: { status: res.status, body } };
    throw new HttpStatusError(res.status, body);
  },
  retry: { maxAttempts: 8, backoffMs: 1000, maxBackoffMs: 5 * 60_000 },
  retryBusinessFailures: false,
  compensateOnFailure: false,
  // Without statusUrl, an unknown outcome is sent again unless the payload says idempotent: false.
  idempotent: (p) => p.idempotent,
  timeoutMs: (p) => p.timeoutMs,
});
