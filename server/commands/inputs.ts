// Input schemas of the intake API (DESIGN §3). Strict objects: an unknown or
// misspelt field is an error naming it, rather than silently ignored.
import { z } from "zod";

// PostgreSQL text and jsonb cannot hold NUL characters: refuse them at the edge.
const noNul = (s: string) => !s.includes("\u0000");
export const text = (max: number) => z.string().min(1).max(max).refine(noNul, "must not contain NUL characters");

export const retryInput = z.strictObject({
  maxAttempts: z.int().min(1).max(100).optional(),
  backoffMs: z.int().min(0).max(86_400_000).optional(),
  maxBackoffMs: z.int().min(0).max(7 * 86_400_000).optional(),
});

export const submitInput = z.strictObject({
  type: text(64),
  payload: z.unknown().refine((v) => v !== undefined, "payload is required"),
  idempotencyKey: text(200).optional(),
  callbackUrl: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).max(2048).refine(noNul).optional(),
  priority: z.int().min(-1000).max(1000).optional(),
  runAt: z.iso.datetime({ offset: true, error: "must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z" }).optional(),
  retry: retryInput.optional(),
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
});

const uuid = z.uuid({ error: "must be a command id (UUID)" });
export const getInput = z.union([z.strictObject({ id: uuid }), z.strictObject({ idempotencyKey: text(200) })], {
  error: "give either { id } or { idempotencyKey }",
});
export const getManyInput = z.strictObject({ ids: z.array(uuid).max(1000, "at most 1000 ids") });
