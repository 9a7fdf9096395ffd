// Batches (DESIGN §8): the intake of a batch, its view for clients, and its
// presenters for the console.
import type { Db } from "../db/client";
import { selectBatch, selectRecentBatches, type BatchRow } from "../db/batches";
import { selectBatchDeliveries } from "../db/batch-callbacks";
import { AppError } from "../errors";
import { STATES, type State } from "../engine/states";
import { submitItems, type BatchInput, type IntakeDeps } from "./submit";
import type { Visibility } from "./read";
import type { StoredTrace } from "../lib/trace-context";

export type BatchView = {
  id: string;
  name: string | null;
  total: number;
  counts: Record<State, number>;
  done: boolean;
  createdAt: string;
  doneAt: string | null;
};

export function toBatchView(r: BatchRow): BatchView {
  return {
    id: r.id,
    name: r.name,
    total: r.total,
    counts: Object.fromEntries(STATES.map((s) => [s, r.counts[s] ?? 0])) as Record<State, number>,
    done: r.done,
    createdAt: r.created_at.toISOString(),
    doneAt: r.done_at?.toISOString() ?? null,
  };
}

/** intake.submitBatch: the items, and with `batch` the batch they make (its callbackUrl through the allow-list first). */
export async function submitBatchRequest(
  deps: IntakeDeps,
  clientId: string,
  input: { commands: unknown[]; batch?: BatchInput },
  trace: StoredTrace | null = null,
) {
  const refused = input.batch?.callbackUrl ? deps.hostCheck?.(input.batch.callbackUrl) : null;
  if (refused)
    throw new AppError("BAD_REQUEST", "Invalid batch.callbackUrl", [
      { path: ["batch", "callbackUrl"], message: refused },
    ]);
  return submitItems(deps, clientId, input.commands, { batch: input.batch, trace });
}

export async function getBatch(db: Db, who: Visibility, id: string): Promise<BatchView> {
  const row = await selectBatch(db, id, who.all ? null : who.clientId);
  if (!row) throw new AppError("NOT_FOUND", "No such batch");
  return toBatchView(row);
}

/** The console's batch page: the view, its client, its callback and each delivery with its tries. */
export async function batchDetail(db: Db, id: string) {
  const row = await selectBatch(db, id, null);
  if (!row) throw new AppError("NOT_FOUND", "No such batch");
  const deliveries = await selectBatchDeliveries(db, id);
  return {
    batch: { ...toBatchView(row), client: row.client_name, callbackUrl: row.callback_url },
    deliveries: deliveries.map((d) => ({
      id: d.id,
      url: d.url,
      attempts: d.attempts,
      createdAt: d.created_at.toISOString(),
      deliveredAt: d.delivered_at?.toISOString() ?? null,
      nextAt: d.delivered_at ? null : d.next_at.toISOString(),
      lastStatus: d.last_status,
      lastError: d.last_error,
      tries: d.tries.map((t) => ({ ...t })),
    })),
  };
}

const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Recent batches for the console, newest first; the cursor is the last one's `createdAt|id`. */
export async function recentBatches(db: Db, o: { limit: number; cursor?: string }) {
  let before: { createdAt: string; id: string } | undefined;
  if (o.cursor) {
    const [createdAt = "", id = ""] = o.cursor.split("|");
    if (!ISO_RE.test(createdAt) || Number.isNaN(Date.parse(createdAt)) || !UUID_RE.test(id))
      throw new AppError("BAD_REQUEST", "Invalid cursor", [
        { path: ["cursor"], message: "must be a nextCursor this list answered" },
      ]);
    before = { createdAt, id };
  }
  const rows = await selectRecentBatches(db, { limit: o.limit + 1, before });
  const items = rows.slice(0, o.limit).map((r) => ({ ...toBatchView(r), client: r.client_name }));
  const last = items.at(-1);
  return { items, nextCursor: rows.length > o.limit && last ? `${last.createdAt}|${last.id}` : null };
}
