// Intake (DESIGN §3): validate, store, answer with a receipt.
import type { Db } from "../db/client";
import type { ExistingByKey, NewCommand } from "../db/commands";
import type { Registry } from "../command-types/registry";
import { insertAndResolve, type GroupInserter } from "./group-insert";
import { AppError, toIssues, type Issue } from "../errors";
import { jsonProblem, submitInput, type SubmitInput } from "./inputs";
import type { StoredTrace } from "../lib/trace-context";
import { newCommandId } from "../engine/ids";

export type Receipt = { ok: true; id: string; status: string; duplicate: boolean };
export type Rejection = { ok: false; error: { code: "BAD_REQUEST" | "CONFLICT"; message: string; issues?: Issue[] } };

type Prepared = { index: number; row: NewCommand };

/** Validates one raw item; returns the row to insert or the rejection. */
function prepare(
  { registry, hostCheck }: IntakeDeps,
  clientId: string,
  raw: unknown,
  pathPrefix: (string | number)[],
  trace: StoredTrace | null,
): NewCommand | Rejection {
  const parsed = submitInput.safeParse(raw);
  if (!parsed.success) {
    const issues = toIssues(parsed.error.issues, pathPrefix);
    return { ok: false, error: { code: "BAD_REQUEST", message: "Invalid command", issues } };
  }
  const input: SubmitInput = parsed.data;
  // Before the type's schema: what PostgreSQL's jsonb cannot hold, and nesting no parser should recurse into.
  const problem = jsonProblem(input.payload);
  if (problem) {
    return {
      ok: false,
      error: {
        code: "BAD_REQUEST",
        message: "Invalid payload",
        issues: [{ path: [...pathPrefix, "payload", ...problem.path], message: problem.message }],
      },
    };
  }
  let payload: unknown;
  try {
    payload = registry.validate(input.type, input.payload);
  } catch (err) {
    if (err instanceof AppError) {
      const issues = (err.issues ?? []).map((i) => ({ ...i, path: [...pathPrefix, ...i.path] }));
      return { ok: false, error: { code: "BAD_REQUEST", message: err.message, issues } };
    }
    throw err;
  }
  if (hostCheck) {
    const issues = (registry.get(input.type)!.targets?.(payload) ?? []).flatMap((t) => {
      const refused = hostCheck(t.url);
      return refused ? [{ path: [...pathPrefix, "payload", ...t.path], message: refused }] : [];
    });
    if (issues.length > 0)
      return { ok: false, error: { code: "BAD_REQUEST", message: `Invalid payload for type "${input.type}"`, issues } };
    // The upstream callback goes through the same allow-list: refused now rather than given up after the command ran.
    const callbackRefused = input.callbackUrl ? hostCheck(input.callbackUrl) : null;
    if (callbackRefused)
      return {
        ok: false,
        error: {
          code: "BAD_REQUEST",
          message: "Invalid callbackUrl",
          issues: [{ path: [...pathPrefix, "callbackUrl"], message: callbackRefused }],
        },
      };
  }
  return {
    id: newCommandId(),
    clientId,
    type: input.type,
    payload: input.payload,
    idempotencyKey: input.idempotencyKey ?? null,
    callbackUrl: input.callbackUrl ?? null,
    priority: input.priority ?? 0,
    runAt: input.runAt ?? null,
    maxAttempts: input.retry?.maxAttempts ?? null,
    backoffMs: input.retry?.backoffMs ?? null,
    maxBackoffMs: input.retry?.maxBackoffMs ?? null,
    orderingKey: input.orderingKey ?? null,
    targetHost: registry.get(input.type)!.scopeHost?.(payload) ?? null,
    traceParent: trace?.parent ?? null,
    traceState: trace?.state ?? null,
  };
}

const conflict = (key: string): Rejection => ({
  ok: false,
  error: {
    code: "CONFLICT",
    message: `idempotencyKey "${key}" was already used for a command with a different type or payload`,
  },
});

export type IntakeDeps = {
  registry: Registry;
  /** How rows reach the database: directly, or through a group inserter shared by concurrent requests. */
  insert: GroupInserter;
  /**
   * With an explicit HTTP_ALLOWED_HOSTS list: why a target URL is refused, or
   * null (server/outbound/url-guard.ts createHostListCheck). Absent: no check
   * at intake (address-based rules are applied when connecting).
   */
  hostCheck?: ((url: string) => string | null) | null;
};

export const directIntake = (db: Db, registry: Registry): IntakeDeps => ({
  registry,
  insert: (rows, lookups, batch) => insertAndResolve(db, rows, lookups, batch),
});

/** The receipt of an item whose key is held by the command `e`: that command when type and payload are the same, else CONFLICT. */
function answerByHolder(e: ExistingByKey | undefined, key: string): Receipt | Rejection {
  // Not inserted yet not found: the command holding the key vanished (pruned) between the two statements. Rare; ask to resubmit.
  if (!e) throw new AppError("CONFLICT", `idempotencyKey "${key}" is being changed concurrently; submit again`);
  return e.same ? { ok: true, id: e.id, status: e.status, duplicate: true } : conflict(key);
}

/** DESIGN §8: what makes the commands a submitBatch stores one batch. */
export type BatchInput = { name?: string; callbackUrl?: string };

/**
 * Stores the valid items of a batch in one statement and answers one receipt
 * per item, in input order (DESIGN §3). An item with an idempotency key is
 * answered by the command that holds the key: one stored before (or by a
 * concurrent request) whatever else the batch holds, else the batch's own
 * first item with that key. The first item of each key is offered for insert;
 * later items with the same key are looked up after the insert, so that they
 * are judged against what then holds the key, in the same way (jsonb
 * equality) as against a stored command.
 */
export async function submitBatch(
  deps: IntakeDeps,
  clientId: string,
  items: unknown[],
  /** trace: the request's W3C trace context (server/lib/trace-context.ts), kept with every command it stores. */
  opts: { pathPrefix?: boolean; trace?: StoredTrace | null } = {},
): Promise<(Receipt | Rejection)[]> {
  return (await submitItems(deps, clientId, items, opts)).receipts;
}

/**
 * submitBatch, and with `batch` (DESIGN §8) the commands it stores made one
 * batch: `batchId` is that batch. Nothing stored, no batch is made; when every
 * item was answered by commands of one earlier batch (a retry of a request
 * whose answer was lost), `batchId` is that batch.
 */
export async function submitItems(
  deps: IntakeDeps,
  clientId: string,
  items: unknown[],
  /** trace: the request's W3C trace context (server/lib/trace-context.ts), kept with every command it stores. */
  opts: { pathPrefix?: boolean; batch?: BatchInput; trace?: StoredTrace | null } = {},
): Promise<{ receipts: (Receipt | Rejection)[]; batchId?: string }> {
  const out: (Receipt | Rejection | undefined)[] = new Array(items.length);
  const toInsert: Prepared[] = [];
  const seenKeys = new Set<string>();
  const repeats: Prepared[] = [];

  items.forEach((raw, index) => {
    const r = prepare(deps, clientId, raw, opts.pathPrefix === false ? [] : ["commands", index], opts.trace ?? null);
    if ("ok" in r) return void (out[index] = r);
    if (r.idempotencyKey !== null) {
      if (seenKeys.has(r.idempotencyKey)) return void repeats.push({ index, row: r });
      seenKeys.add(r.idempotencyKey);
    }
    toInsert.push({ index, row: r });
  });

  const batch = opts.batch
    ? { id: newCommandId(), clientId, name: opts.batch.name ?? null, callbackUrl: opts.batch.callbackUrl ?? null }
    : undefined;
  const { rows, lookups } = await deps.insert(
    toInsert.map((p) => p.row),
    repeats.map(({ row: r }) => ({ clientId: r.clientId, key: r.idempotencyKey!, type: r.type, payload: r.payload })),
    batch,
  );

  toInsert.forEach((p, i) => {
    const o = rows[i]!;
    out[p.index] = o.inserted
      ? { ok: true, id: p.row.id, status: "pending", duplicate: false }
      : answerByHolder(o.existing, p.row.idempotencyKey!);
  });
  repeats.forEach((p, i) => void (out[p.index] = answerByHolder(lookups[i], p.row.idempotencyKey!)));
  const receipts = out as (Receipt | Rejection)[];
  if (!batch) return { receipts };
  if (rows.some((o) => o.inserted)) return { receipts, batchId: batch.id };
  const holders = new Set([...rows.map((o) => o.existing), ...lookups].map((e) => e?.batchId ?? null));
  const [only] = holders;
  return only && holders.size === 1 && receipts.every((r) => r.ok) ? { receipts, batchId: only } : { receipts };
}

/** One command: same path as a batch of one, with errors thrown instead of returned. */
export async function submit(
  deps: IntakeDeps,
  clientId: string,
  input: unknown,
  trace: StoredTrace | null = null,
): Promise<Omit<Receipt, "ok">> {
  const [r] = await submitBatch(deps, clientId, [input], { pathPrefix: false, trace });
  if (!r!.ok) throw new AppError(r!.error.code, r!.error.message, r!.error.issues);
  const { ok: _ok, ...receipt } = r!;
  return receipt;
}
