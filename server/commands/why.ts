// One line that says why a command did not succeed, for lists where the whole
// failure document does not fit: the last error when there is one, otherwise
// the business failure the backend gave (for http: its status and the code or
// message of its body, e.g. "422 card_declined").
import type { State } from "../engine/states";

const MAX = 200;

/**
 * The summary of a command's `error` / `failure`, or null when there is
 * nothing to say. A succeeded or pending command keeps the failure of an
 * earlier attempt (it is history, not the reason for its state): none then.
 */
export function failureSummary(status: State, failure: unknown, error: string | null): string | null {
  if (error?.trim()) return oneLine(error);
  if (failure === null || failure === undefined || status === "succeeded" || status === "pending") return null;
  return oneLine(describeFailure(failure));
}

function describeFailure(f: unknown): string {
  if (typeof f === "string") return f;
  if (f && typeof f === "object" && !Array.isArray(f)) {
    const o = f as Record<string, unknown>;
    if (typeof o.status === "number") {
      const body = describeBody(o.body);
      return body ? `${o.status} ${body}` : `HTTP ${o.status}`;
    }
  }
  return describeBody(f) ?? JSON.stringify(f);
}

const text = (v: unknown): string | null =>
  typeof v === "string" && v.trim() ? v.trim() : typeof v === "number" ? String(v) : null;

/** The usual shapes of error bodies: { code }, { error }, { message }, { error: { code, message } }, { errors: [{ … }] }, RFC 9457 { title, detail }. */
function describeBody(b: unknown, depth = 0): string | null {
  if (b === null || b === undefined) return null;
  if (typeof b === "string") return b.trim() ? htmlToText(b) : null;
  if (typeof b !== "object") return String(b);
  if (Array.isArray(b))
    return depth < 2 && b.length ? describeBody(b[0], depth + 1) : b.length ? JSON.stringify(b) : null;
  const o = b as Record<string, unknown>;
  if (depth < 2 && o.error && typeof o.error === "object") {
    const inner = describeBody(o.error, depth + 1);
    if (inner) return inner;
  }
  if (depth < 2 && Array.isArray(o.errors) && o.errors.length) {
    const inner = describeBody(o.errors[0], depth + 1);
    if (inner) return inner;
  }
  const code = text(o.code) ?? text(o.error) ?? text(o.error_code) ?? text(o.errorCode);
  const message =
    text(o.message) ??
    text(o.error_description) ??
    text(o.detail) ??
    text(o.title) ??
    text(o.reason) ??
    text(o.description);
  if (code && message && message !== code) return `${code}: ${message}`;
  return code ?? message ?? (Object.keys(o).length ? JSON.stringify(o) : null);
}

/** An HTML error page reads as its text. */
function htmlToText(s: string): string {
  if (!/^\s*</.test(s)) return s;
  return s.replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ").replace(/<[^>]*>/g, " ");
}

function oneLine(s: string): string {
  const flat = s.replace(/\s+/g, " ").trim();
  return flat.length > MAX ? `${flat.slice(0, MAX - 1)}…` : flat;
}
