// A BAD_REQUEST's issues ({ path, message }, as server/api/trpc.ts formats
// them) placed on a react-hook-form form: an issue whose path starts with one
// of the form's fields goes on that path (setError("recipients.1")), several
// on one path joined; any other becomes the form's own error (root.server),
// one line each. Nothing here knows which fields a form has.
import { TRPCClientError } from "@trpc/client";

type Issue = { path: (string | number)[]; message: string };
type SetError = (name: string, error: { type: string; message: string }) => void;

/** The issues of a tRPC error, or none when it is not a validation error. */
function issuesOf(err: unknown): Issue[] {
  if (!(err instanceof TRPCClientError)) return [];
  const issues = (err.data as { issues?: Issue[] } | undefined)?.issues;
  return Array.isArray(issues) ? issues : [];
}

/** Sets the error's issues on the form; answers whether it had any. */
export function setServerIssues(err: unknown, fields: readonly string[], setError: SetError): boolean {
  const issues = issuesOf(err);
  const onField = new Map<string, string[]>();
  const other: string[] = [];
  for (const i of issues) {
    if (i.path.length && fields.includes(String(i.path[0]))) {
      const at = i.path.join(".");
      onField.set(at, [...(onField.get(at) ?? []), i.message]);
    } else other.push(i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message);
  }
  for (const [at, messages] of onField) setError(at, { type: "server", message: messages.join("; ") });
  if (other.length) setError("root.server", { type: "server", message: other.join("\n") });
  return issues.length > 0;
}

/**
 * The messages of a field's error and of its items' errors (an array field:
 * "the item: its message"), as react-hook-form nests them.
 */
export function messagesOf(err: unknown, items?: readonly string[]): string[] {
  if (!err || typeof err !== "object") return [];
  const out: string[] = [];
  const e = err as Record<string, unknown>;
  if (typeof e.message === "string" && e.message) out.push(e.message);
  for (const [k, v] of Object.entries(e)) {
    if (!/^\d+$/.test(k)) continue;
    const item = items?.[Number(k)];
    for (const m of messagesOf(v)) out.push(item ? `${item}: ${m}` : m);
  }
  return out;
}
