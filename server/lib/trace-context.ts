// W3C Trace Context (https://www.w3.org/TR/trace-context/, DESIGN §10): the
// `traceparent` and `tracestate` headers read at intake, kept with the
// command, and a child `traceparent` (same trace, new parent id, flags kept)
// made for every outbound request. Pure functions; no OpenTelemetry here.
import { randomBytes } from "node:crypto";

/** A parsed traceparent. Hex fields in lower case, as on the wire. */
export type TraceParent = { traceId: string; spanId: string; flags: string };

/** What a command keeps: its traceparent (version 00, 55 characters) and tracestate, if any. */
export type StoredTrace = { parent: string; state: string | null };

const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);
// version-traceid-parentid-flags; a later version may append fields after a "-".
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * Reads a traceparent header; null when it is absent or malformed (W3C: a
 * receiver that cannot parse it ignores it, as if none was sent). Version ff
 * is invalid; version 00 has exactly four fields; a later version is read by
 * its first four (and propagated as 00). All-zero trace or parent ids are
 * invalid.
 */
export function parseTraceParent(header: string | null | undefined): TraceParent | null {
  if (!header || header.length > 512) return null;
  const m = TRACEPARENT.exec(header.trim());
  if (!m) return null;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === "ff" || (version === "00" && rest !== undefined)) return null;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  return { traceId: traceId!, spanId: spanId!, flags: flags! };
}

export const formatTraceParent = (t: TraceParent) => `00-${t.traceId}-${t.spanId}-${t.flags}`;

/** The most tracestate members W3C allows, and the length it asks every vendor to propagate at least. */
const MAX_MEMBERS = 32;
const MAX_STATE = 512;
const KEY = /^(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})$/;
// Printable ASCII except "," and "=", not ending in a space.
const VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * Reads a tracestate header (several headers arrive joined by ","): its list
 * members, normalized (no optional whitespace, no empty members), or null when
 * it is absent, empty or malformed (W3C: a malformed tracestate is dropped,
 * the traceparent kept). Over 512 characters, members are dropped from the end
 * (W3C allows a vendor to truncate to what it propagates).
 */
export function parseTraceState(header: string | null | undefined): string | null {
  if (!header || header.length > 8192) return null;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const raw of header.split(",")) {
    const member = raw.trim();
    if (member === "") continue;
    const eq = member.indexOf("=");
    if (eq <= 0) return null;
    const key = member.slice(0, eq);
    if (!KEY.test(key) || !VALUE.test(member.slice(eq + 1)) || keys.has(key)) return null;
    keys.add(key);
    members.push(member);
  }
  if (members.length === 0 || members.length > MAX_MEMBERS) return null;
  let state = members.join(",");
  while (state.length > MAX_STATE) {
    members.pop();
    state = members.join(",");
  }
  return state || null;
}

/** A request's trace context as a command keeps it; null without a valid traceparent (its tracestate is then ignored too). */
export function readTraceHeaders(header: (name: string) => string | null | undefined): StoredTrace | null {
  const parent = parseTraceParent(header("traceparent"));
  if (!parent) return null;
  return { parent: formatTraceParent(parent), state: parseTraceState(header("tracestate")) };
}

/** A random parent id (8 bytes, not all zero). */
export function newSpanId(): string {
  for (;;) {
    const id = randomBytes(8).toString("hex");
    if (id !== ZERO_SPAN) return id;
  }
}

/**
 * The traceparent of a request made on behalf of a command stored with
 * `parent` (a valid version-00 traceparent): the same trace id and flags, a
 * new parent id (`spanId`, or a random one).
 */
export function childTraceParent(parent: string, spanId: string = newSpanId()): string {
  // Stored values were normalized at intake: 00-<32 hex>-<16 hex>-<2 hex>.
  return `00-${parent.slice(3, 35)}-${spanId}-${parent.slice(53, 55)}`;
}
