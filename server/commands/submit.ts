// Intake (DESIGN §3): validate, store, answer with a receipt.
import { randomUUID } from "node:crypto";
import type { Db } from "../db/client";
import { findByKeys, insertCommands, type NewCommand } from "../db/commands";
import type { Registry } from "../handlers/registry";
import { AppError, toIssues, type Issue } from "../errors";
import { submitInput, type SubmitInput } from "./inputs";

export type Receipt = { ok: true; id: string; status: string; duplicate: boolean };
export type Rejection = { ok: false; error: { code: "BAD_REQUEST" | "CONFLICT"; message: string; issues?: Issue[] } };

type Prepared = { index: number; row: NewCommand };

/** Validates one raw item; returns the row to insert or the rejection. */
function prepare(registry: Registry, raw: unknown, pathPrefix: (string | number)[]): NewCommand | Rejection {
  const parsed = submitInput.safeParse(raw);
  if (!parsed.success) {
    const issues = toIssues(parsed.error.issues, pathPrefix);
    return { ok: false, error: { code: "BAD_REQUEST", message: "Invalid command", issues } };
  }
  const input: SubmitInput = parsed.data;
  try {
    registry.validate(input.type, input.payload);
  } catch (err) {
    if (err instanceof AppError) {
      const issues = (err.issues ?? []).map((i) => ({ ...i, path: [...pathPrefix, ...i.path] }));
      return { ok: false, error: { code: "BAD_REQUEST", message: err.message, issues } };
    }
    throw err;
  }
  if (JSON.stringify(input.payload).includes("\\u0000")) {
    return { ok: false, error: { code: "BAD_REQUEST", message: "Invalid payload", issues: [{ path: [...pathPrefix, "payload"], message: "must not contain NUL characters (\\u0000)" }] } };
  }
  return {
    id: randomUUID(),
    type: input.type,
    payload: input.payload,
    idempotencyKey: input.idempotencyKey ?? null,
    callbackUrl: input.callbackUrl ?? null,
    priority: input.priority ?? 0,
    runAt: input.runAt ?? null,
    maxAttempts: input.retry?.maxAttempts ?? null,
    backoffMs: input.retry?.backoffMs ?? null,
    maxBackoffMs: input.retry?.maxBackoffMs ?? null,
  };
}

const conflict = (key: string): Rejection => ({
  ok: false,
  error: { code: "CONFLICT", message: `idempotencyKey "${key}" was already used for a command with a different type or payload` },
});

/**
 * Stores the valid items of a batch in one statement and answers one receipt
 * per item, in input order. Duplicates (same client + idempotencyKey) answer
 * the original command; a reused key with another type or payload is a CONFLICT.
 */
export async function submitBatch(db: Db, registry: Registry, clientId: string, items: unknown[], opts: { pathPrefix?: boolean } = {}): Promise<(Receipt | Rejection)[]> {
  const out: (Receipt | Rejection | undefined)[] = new Array(items.length);
  const toInsert: Prepared[] = [];
  // Within one batch, a key seen earlier points at that earlier item.
  const firstByKey = new Map<string, Prepared>();
  const sameAsEarlier: { index: number; first: Prepared; same: boolean }[] = [];

  items.forEach((raw, index) => {
    const r = prepare(registry, raw, opts.pathPrefix === false ? [] : ["commands", index]);
    if ("ok" in r) return void (out[index] = r);
    if (r.idempotencyKey !== null) {
      const first = firstByKey.get(r.idempotencyKey);
      if (first) {
        const same = first.row.type === r.type && JSON.stringify(first.row.payload) === JSON.stringify(r.payload);
        return void sameAsEarlier.push({ index, first, same });
      }
      firstByKey.set(r.idempotencyKey, { index, row: r });
    }
    toInsert.push({ index, row: r });
  });

  const inserted = await insertCommands(db, clientId, toInsert.map((p) => p.row));
  const notInserted = toInsert.filter((p) => !inserted.has(p.row.id));
  const existing = await findByKeys(
    db,
    clientId,
    notInserted.map((p) => ({ key: p.row.idempotencyKey!, type: p.row.type, payload: p.row.payload })),
  );

  for (const p of toInsert) {
    if (inserted.has(p.row.id)) {
      out[p.index] = { ok: true, id: p.row.id, status: "pending", duplicate: false };
      continue;
    }
    const e = existing.get(p.row.idempotencyKey!);
    // Not inserted yet not found: the conflicting row vanished (pruned) between the two statements. Rare; ask to resubmit.
    if (!e) throw new AppError("CONFLICT", `idempotencyKey "${p.row.idempotencyKey}" is being changed concurrently; submit again`);
    out[p.index] = e.same ? { ok: true, id: e.id, status: e.status, duplicate: true } : conflict(p.row.idempotencyKey!);
  }
  for (const s of sameAsEarlier) {
    const first = out[s.first.index]!;
    if (!s.same || !first.ok) out[s.index] = s.same ? first : conflict(s.first.row.idempotencyKey!);
    else out[s.index] = { ...first, duplicate: true };
  }
  return out as (Receipt | Rejection)[];
}

/** One command: same path as a batch of one, with errors thrown instead of returned. */
export async function submit(db: Db, registry: Registry, clientId: string, input: unknown): Promise<Omit<Receipt, "ok">> {
  const [r] = await submitBatch(db, registry, clientId, [input], { pathPrefix: false });
  if (!r!.ok) throw new AppError(r!.error.code, r!.error.message, r!.error.issues);
  const { ok: _ok, ...receipt } = r!;
  return receipt;
}
