// What the console reads: lists, counts, one command in full, the overview.
import type { Db } from "../db/client";
import { commandDetail, countByStatus, countMatching, listCommands, liveWorkers, oldestWaiting, throughput, type ListFilter } from "../db/console";
import { STATES } from "./state";
import { toView } from "./view";
import { AppError } from "../errors";
import { maskSecrets } from "./mask";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** What nextCursor is made of: toISOString() (which is what PostgreSQL accepts back) and a UUID. */
const isCursorDate = (s: string) => /^\d{4}-/.test(s) && !s.startsWith("0000") && Number.isFinite(Date.parse(s)) && new Date(s).toISOString() === s;

/** run_at may be 'infinity' (an awaiting command with nothing to poll): no date then. */
const iso = (d: Date | number) => (d instanceof Date && Number.isFinite(d.getTime()) ? d.toISOString() : null);

export async function list(db: Db, f: ListFilter & { cursor?: string; limit?: number }) {
  const limit = f.limit ?? 50;
  let cursor: { createdAt: string; id: string } | null = null;
  if (f.cursor) {
    const [createdAt, id] = Buffer.from(f.cursor, "base64url").toString().split("|");
    if (!createdAt || !id || !isCursorDate(createdAt) || !UUID_RE.test(id)) throw new AppError("BAD_REQUEST", "Bad cursor", [{ path: ["cursor"], message: "not a cursor from a previous page" }]);
    cursor = { createdAt, id };
  }
  const rows = await listCommands(db, f, cursor, limit + 1);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map((r) => ({ ...toView(r), payload: maskSecrets(r.payload), priority: r.priority, runAt: iso(r.run_at), needsReconcile: r.needs_reconcile, phase: r.phase, worker: r.locked_by })),
    nextCursor: rows.length > limit && last ? Buffer.from(`${last.created_at.toISOString()}|${last.id}`).toString("base64url") : null,
  };
}

/** How many commands match the list's filter (what "Select all that match this filter" selects). */
export async function matching(db: Db, f: ListFilter): Promise<{ total: number }> {
  return { total: await countMatching(db, f) };
}

export async function counts(db: Db): Promise<Record<string, number>> {
  const c = await countByStatus(db);
  return Object.fromEntries(STATES.map((s) => [s, c[s] ?? 0]));
}

export async function detail(db: Db, id: string) {
  const d = await commandDetail(db, id);
  if (!d.command) throw new AppError("NOT_FOUND", "No such command");
  const c = d.command;
  return {
    command: { ...toView(c), payload: maskSecrets(c.payload), priority: c.priority, runAt: iso(c.run_at), needsReconcile: c.needs_reconcile, phase: c.phase, worker: c.locked_by, callbackUrl: c.callback_url, tries: c.tries, maxAttempts: c.max_attempts, client: c.client_name },
    attempts: d.attempts.map((a) => ({
      number: a.number,
      kind: a.kind,
      outcome: a.outcome,
      startedAt: a.started_at.toISOString(),
      finishedAt: a.finished_at?.toISOString() ?? null,
      durationMs: a.finished_at ? a.finished_at.getTime() - a.started_at.getTime() : null,
      error: a.error,
      worker: a.worker,
      detail: a.detail,
    })),
    audit: d.audit.map((a) => ({ at: a.at.toISOString(), actor: a.actor, action: a.action, reason: a.reason })),
    callbacks: d.callbacks.map((b) => ({ id: b.id, url: b.url, status: b.status, attempts: b.attempts, nextAt: iso(b.next_at), deliveredAt: b.delivered_at?.toISOString() ?? null, lastStatus: b.last_status, lastError: b.last_error })),
  };
}

export async function overview(db: Db, retentionDays: number) {
  const [c, t, oldest, workers] = await Promise.all([counts(db), throughput(db, 60), oldestWaiting(db, 10), liveWorkers(db, 30)]);
  return {
    retentionDays,
    workers: workers.map((w) => ({ id: w.worker_id, startedAt: w.started_at.toISOString(), seenAt: w.updated_at.toISOString() })),
    counts: c,
    throughput: t.map((r) => ({ minute: r.minute.toISOString(), succeeded: r.succeeded, failed: r.failed, exception: r.exception })),
    oldest: oldest.map((r) => ({ id: r.id, type: r.type, status: r.status, createdAt: r.created_at.toISOString(), since: r.state_changed_at.toISOString(), error: r.error })),
  };
}
