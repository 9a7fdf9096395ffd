// Input schemas of the intake API (DESIGN §3). Strict objects: an unknown or
// misspelt field is an error naming it, rather than silently ignored.
import { z } from "zod";

// PostgreSQL text cannot hold NUL characters, and a lone UTF-16 surrogate
// would be stored as U+FFFD (so that two different idempotency keys could
// become one): refuse both at the edge.
export const storable = (s: string) =>
  !s.includes("\u0000") && (s as string & { isWellFormed(): boolean }).isWellFormed();
/** fetch refuses URLs with user:password@ (and they would be logged): put credentials in headers instead. */
export const noCredentials = (u: string) => {
  try {
    const p = new URL(u);
    return !p.username && !p.password;
  } catch {
    return true; // the URL check itself reports it
  }
};
export const NO_CREDENTIALS = "must not contain credentials (user:password@); send them in a header";
export const NOT_STORABLE = "must not contain NUL characters or lone UTF-16 surrogates";
export const text = (max: number) => z.string().min(1).max(max).refine(storable, NOT_STORABLE);
/** Free text (filters, reasons): any string up to `max`, but no NUL. */
export const freeText = (max: number) => z.string().max(max).refine(storable, NOT_STORABLE);

/**
 * An ISO 8601 date-time that PostgreSQL's timestamptz also accepts: zod's
 * format allows year 0000 and UTC offsets up to ±23:59, PostgreSQL neither
 * (no year 0; offsets up to ±15:59).
 */
export const isoDateTime = (error = "must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z") =>
  z.iso
    .datetime({ offset: true, error })
    .refine(
      (s) => !s.startsWith("0000") && !/[+-](1[6-9]|2\d):?\d\d$/.test(s),
      "must be a date-time from year 1, with a UTC offset within ±15:59",
    );

/** How deeply a payload may nest (PostgreSQL's jsonb parser and JSON.stringify are recursive). */
const MAX_PAYLOAD_DEPTH = 100;

type Problem = { path: (string | number)[]; message: string };
const wellFormed = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
const badString = (s: string) =>
  s.includes("\u0000")
    ? "must not contain NUL characters (\\u0000)"
    : wellFormed(s)
      ? null
      : "must be valid Unicode (no lone UTF-16 surrogates)";

/**
 * What jsonb cannot store, or should not: NUL characters and lone UTF-16
 * surrogates (in keys or strings), and nesting deeper than MAX_PAYLOAD_DEPTH
 * (the recursion stops there, so no input can overflow the stack). Returns
 * the first problem, with its path under the value, or null.
 */
export function jsonProblem(v: unknown, depth = 0): Problem | null {
  if (typeof v === "string") {
    const m = badString(v);
    return m ? { path: [], message: m } : null;
  }
  if (v === null || typeof v !== "object") return null;
  if (depth >= MAX_PAYLOAD_DEPTH) return { path: [], message: `must not nest deeper than ${MAX_PAYLOAD_DEPTH} levels` };
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = jsonProblem(v[i], depth + 1);
      if (p) return (p.path.unshift(i), p);
    }
    return null;
  }
  for (const k of Object.keys(v)) {
    const m = badString(k);
    if (m) return { path: [k], message: `key ${m}` };
    const p = jsonProblem((v as Record<string, unknown>)[k], depth + 1);
    if (p) return (p.path.unshift(k), p);
  }
  return null;
}

/** JSON text with every object's keys sorted: equal for equal values whatever the key order (jsonb reorders keys). */
function canonicalJson(v: unknown, depth = 0): string {
  if (depth > MAX_PAYLOAD_DEPTH || v === null || typeof v !== "object") return JSON.stringify(v ?? null);
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x, depth + 1)).join(",")}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k], depth + 1)}`).join(",")}}`;
}

/**
 * The top-level fields whose value differs between two payloads (compared as
 * JSON, whatever the key order; a field left out and one set to null are the
 * same), or [""] when either is not an object and they differ: what an Edit &
 * retry changes, as its dialog and its audit entry say.
 */
export function changedFields(before: unknown, after: unknown): string[] {
  const obj = (v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  const b = obj(before);
  const a = obj(after);
  if (!a || !b) return canonicalJson(before) === canonicalJson(after) ? [] : [""];
  return [...new Set([...Object.keys(b), ...Object.keys(a)])]
    .sort()
    .filter((k) => canonicalJson(b[k]) !== canonicalJson(a[k]));
}

export const retryInput = z.strictObject({
  maxAttempts: z.int().min(1).max(100).optional(),
  backoffMs: z.int().min(0).max(86_400_000).optional(),
  maxBackoffMs: z
    .int()
    .min(0)
    .max(7 * 86_400_000)
    .optional(),
});

const callbackUrl = z
  .url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" })
  .max(2048)
  .refine(storable)
  .refine(noCredentials, NO_CREDENTIALS);

export const submitInput = z.strictObject({
  type: text(64),
  payload: z.unknown().refine((v) => v !== undefined, "payload is required"),
  idempotencyKey: text(200).optional(),
  callbackUrl: callbackUrl.optional(),
  priority: z.int().min(-1000).max(1000).optional(),
  runAt: isoDateTime().optional(),
  retry: retryInput.optional(),
  /** DESIGN §7: commands of a client with the same key run one at a time, in the order received. */
  orderingKey: text(200)
    .meta({
      description:
        "Commands of this client with the same orderingKey run one at a time, in the order received (within a batch, input order)",
    })
    .optional(),
});
export type SubmitInput = z.infer<typeof submitInput>;

export const MAX_BATCH = 1000;

/**
 * Batch items are validated one by one (an invalid item gets its own receipt),
 * so the batch schema only checks the envelope.
 */
export const submitBatchInput = z.strictObject({
  commands: z
    .array(z.unknown())
    .min(1, "at least one command is required")
    .max(MAX_BATCH, `at most ${MAX_BATCH} commands per batch`),
  /** DESIGN §8: the commands stored make one batch, with its progress, `done`, and a callback when done. */
  batch: z
    .strictObject({
      name: text(200).optional(),
      callbackUrl: callbackUrl
        .meta({ description: "POSTed the batch view (signed) each time the batch becomes done" })
        .optional(),
    })
    .optional(),
});
export const getBatchInput = z.strictObject({ id: z.uuid({ error: "must be a batch id (UUID)" }) });

const uuid = z.uuid({ error: "must be a command id (UUID)" });
const GET_EXACTLY_ONE = "give exactly one of id or idempotencyKey";
/**
 * `{ id }` or `{ idempotencyKey }`: one object rather than a union, so that
 * both or neither is one clear issue rather than a union's guesses. Neither
 * names `id`, as a missing required field would be named.
 */
export const getInput = z
  .strictObject(
    { id: uuid.optional(), idempotencyKey: text(200).optional() },
    { error: (i) => (i.input === undefined ? GET_EXACTLY_ONE : undefined) },
  )
  .superRefine((v, ctx) => {
    const both = v.id !== undefined && v.idempotencyKey !== undefined;
    if (both || (v.id === undefined && v.idempotencyKey === undefined))
      ctx.addIssue({ code: "custom", path: both ? [] : ["id"], message: GET_EXACTLY_ONE });
  })
  .transform((v): { id: string } | { idempotencyKey: string } =>
    v.id !== undefined ? { id: v.id } : { idempotencyKey: v.idempotencyKey! },
  );
export const getManyInput = z.strictObject({ ids: z.array(uuid).max(1000, "at most 1000 ids") });
