// The Edit & retry dialog's check of a payload typed as JSON text, before it
// is sent: the JSON syntax (with where the parser stopped), what PostgreSQL's
// jsonb cannot hold, and the type's payload schema when the console has it
// (server/command-types/browser-schemas.ts: the very schema the server
// validates with). Issues are as the server words them, with their path
// under the payload. Pure: no React, so that it is tested on its own.
import { BROWSER_SCHEMAS } from "@/server/command-types/browser-schemas";
import { jsonProblem } from "@/server/commands/inputs";

export { changedFields } from "@/server/commands/inputs";

export type PayloadIssue = { path: (string | number)[]; message: string };
export type SyntaxProblem = { message: string; line: number; column: number; offset: number } | null;
export type PayloadCheck =
  | { ok: true; value: unknown; issues: []; syntax: null }
  | { ok: false; value?: unknown; issues: PayloadIssue[]; syntax: SyntaxProblem };

/** Line and column (1-based) of a character offset in the text. */
function lineColumn(text: string, offset: number) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}

/**
 * Where JSON.parse stopped, from its message: V8 says "at position N" (and
 * sometimes "(line L column C)"); some messages name no place, and then the
 * end of the text is where the parser gave up only if the text is cut short.
 */
function syntaxProblem(text: string, err: unknown): NonNullable<SyntaxProblem> {
  const raw = err instanceof Error ? err.message : String(err);
  const pos = /at position (\d+)/.exec(raw);
  const offset = pos ? Math.min(Number(pos[1]), text.length) : /end of JSON input/i.test(raw) ? text.length : -1;
  // The message without its own place (said once, below) and without a quote of the whole text.
  const message = raw
    .replace(/\s*\(line \d+ column \d+\)/, "")
    .replace(/ in JSON at position \d+/, "")
    .replace(/, "[\s\S]*" is not valid JSON$/, "");
  if (offset < 0) return { message, line: 0, column: 0, offset: -1 };
  return { message, ...lineColumn(text, offset), offset };
}

/** The path of an issue as the dialog shows it: "headers.Authorization", or "" for the payload itself. */
export const pathText = (path: readonly (string | number)[]) => path.map(String).join(".");

export function checkPayloadText(text: string, type: string): PayloadCheck {
  if (text.trim() === "")
    return { ok: false, issues: [{ path: [], message: "enter the payload as JSON, e.g. {}" }], syntax: null };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const syntax = syntaxProblem(text, err);
    const where = syntax.offset >= 0 ? ` (line ${syntax.line}, column ${syntax.column})` : "";
    return { ok: false, issues: [{ path: [], message: `not valid JSON: ${syntax.message}${where}` }], syntax };
  }
  const problem = jsonProblem(value);
  if (problem) return { ok: false, value, issues: [{ path: problem.path, message: problem.message }], syntax: null };
  const schema = BROWSER_SCHEMAS[type];
  if (schema) {
    const parsed = schema.safeParse(value);
    if (!parsed.success)
      return {
        ok: false,
        value,
        issues: parsed.error.issues.map((i) => ({
          path: i.path.map((p) => (typeof p === "symbol" ? String(p) : p)),
          message: i.message,
        })),
        syntax: null,
      };
  }
  return { ok: true, value, issues: [], syntax: null };
}
