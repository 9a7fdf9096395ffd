// What the console reads: lists, counts, one command in full, the overview.
import type { Db } from "../db/client";
import { countByStatus, countMatching, listCommands, searchCommands, type ListRow } from "../db/commands-read";
import { isTextSearch, type ListFilter } from "../db/command-filter";
import {
  commandDetail,
  KEY_LINE_COUNT_MAX,
  type AttemptRow,
  type CallbackRow,
  type DetailRow,
  type KeyLineRow,
} from "../db/command-detail";
import { dueCount, liveWorkers, throughput, waiting, type WaitingRow } from "../db/overview";
import { KEY_BLOCKING, STATES } from "../engine/states";
import { toView } from "./view";
import { AppError } from "../errors";
import { maskSecrets } from "./mask";
import type { Registry } from "../command-types/registry";
import { canReconcile, claimedAttemptKind, retryPolicy } from "../engine/policy";
import { failureSummary } from "./why";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** What nextCursor is made of: toISOString() (which is what PostgreSQL accepts back) and a UUID. */
const isCursorDate = (s: string) =>
  /^\d{4}-/.test(s) && !s.startsWith("0000") && Number.isFinite(Date.parse(s)) && new Date(s).toISOString() === s;

/** run_at may be 'infinity' (an awaiting command with nothing to poll): no date then. */
const iso = (d: Date | number) => (d instanceof Date && Number.isFinite(d.getTime()) ? d.toISOString() : null);

const encodeCursor = (c: { createdAt: Date; id: string }) =>
  Buffer.from(`${c.createdAt.toISOString()}|${c.id}`).toString("base64url");

export async function list(
  db: Db,
  f: ListFilter & { cursor?: string; limit?: number },
  opts: { searchWindow?: number } = {},
) {
  const limit = f.limit ?? 50;
  let cursor: { createdAt: string; id: string } | null = null;
  if (f.cursor) {
    const [createdAt, id] = Buffer.from(f.cursor, "base64url").toString().split("|");
    if (!createdAt || !id || !isCursorDate(createdAt) || !UUID_RE.test(id))
      throw new AppError("BAD_REQUEST", "Bad cursor", [
        { path: ["cursor"], message: "not a cursor from a previous page" },
      ]);
    cursor = { createdAt, id };
  }
  const item = (r: ListRow) => ({
    ...toView(r),
    payload: maskSecrets(r.payload),
    failureSummary: failureSummary(r.status, r.failure, r.error),
    priority: r.priority,
    runAt: iso(r.run_at),
    needsReconcile: r.needs_reconcile,
    phase: r.phase,
    worker: r.locked_by,
  });
  if (isTextSearch(f)) {
    const s = await searchCommands(db, f, cursor, limit, opts.searchWindow);
    return {
      items: s.rows.map(item),
      nextCursor: s.next ? encodeCursor(s.next) : null,
      /**
       * Present when this page stopped reading before it filled up: the search read `window` commands, created back
       * to `to`; the next page reads older ones.
       */
      searched: s.searched ? { window: s.searched.window, to: s.searched.to.toISOString() } : null,
    };
  }
  const rows = await listCommands(db, f, cursor, limit + 1);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(item),
    nextCursor: rows.length > limit && last ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null,
    searched: null,
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

/**
 * One command as the console shows it. `attempts`: the requests made to the
 * backend on its behalf (execute, reconcile, poll, compensate), in the order
 * they were made, numbered 1..attemptCount, then the one in progress while a
 * worker holds the lease (number attemptCount + 1, finishedAt and outcome
 * null; its startedAt is when the worker claimed the command). Upstream
 * notifications are not attempts: each callback delivery lists its own tries.
 */
export async function detail(db: Db, registry: Registry, id: string) {
  const d = await commandDetail(db, id);
  if (!d.command) throw new AppError("NOT_FOUND", "No such command");
  const c = d.command;
  const type = registry.get(c.type);
  const readAt = c.read_at.getTime();
  const reconcilable = () => {
    if (!type) return false;
    const parsed = type.schema.safeParse(c.payload);
    return canReconcile(type, parsed.success ? parsed.data : c.payload);
  };
  const recorded = d.attempts.filter((a) => a.kind !== "callback");
  const attempts = recorded.map((a) => ({
    number: a.number,
    kind: a.kind,
    outcome: a.outcome,
    startedAt: a.started_at.toISOString(),
    finishedAt: a.finished_at?.toISOString() ?? null,
    durationMs: a.finished_at ? a.finished_at.getTime() - a.started_at.getTime() : null,
    elapsedMs: null as number | null,
    error: a.error,
    worker: a.worker,
    detail: a.detail,
    leaseExpiresAt: null as string | null,
    leaseExpired: false,
  }));
  if (c.lease_id !== null && c.locked_by !== null) {
    const started = c.attempt_started_at ?? c.state_changed_at;
    attempts.push({
      number: c.attempt_count + 1,
      kind: claimedAttemptKind({ status: c.status, needsReconcile: c.needs_reconcile }, reconcilable()),
      outcome: null,
      startedAt: started.toISOString(),
      finishedAt: null,
      durationMs: null,
      elapsedMs: Math.max(0, readAt - started.getTime()),
      error: null,
      worker: c.locked_by,
      detail: null,
      leaseExpiresAt: c.locked_until ? iso(c.locked_until) : null,
      leaseExpired: c.lease_expired,
    });
  }
  const policy = type ? retryPolicy(type, { maxAttempts: c.max_attempts, backoffMs: null, maxBackoffMs: null }) : null;
  return {
    command: {
      ...toView(c),
      payload: maskSecrets(c.payload),
      priority: c.priority,
      runAt: iso(c.run_at),
      needsReconcile: c.needs_reconcile,
      phase: c.phase,
      worker: c.locked_by,
      callbackUrl: c.callback_url,
      client: c.client_name,
      /** DESIGN §8: the batch it was submitted in, if any. */
      batchId: c.batch_id,
      /** Tries used this round, against maxAttempts (RetryPolicy: what a try is). */
      tries: c.tries,
      /** An operator has edited the payload (edit & retry): the audit trail says how. */
      payloadEdited: c.submitted_payload !== null,
      /** The retry limit in force: the command's own, else its type's (null: a type this process does not know). */
      maxAttempts: c.max_attempts ?? policy?.maxAttempts ?? null,
    },
    readAt: c.read_at.toISOString(),
    ordering: keyLine(c, d.keyLine),
    attempts,
    audit: d.audit.map((a) => ({
      at: a.at.toISOString(),
      actor: a.actor,
      action: a.action,
      reason: a.reason,
      /** An edit & retry's change: the fields it changed and the payload before and after (masked when written). */
      ...(a.action === "editAndRetry" ? { edit: editOf(a.details) } : {}),
    })),
    callbacks: d.callbacks.map((b) => {
      const tries = callbackTries(b, d.attempts);
      return {
        id: b.id,
        url: b.url,
        /** The state this delivery notifies. */
        status: b.status,
        attempts: tries.length,
        tries,
        nextAt: iso(b.next_at),
        deliveredAt: b.delivered_at?.toISOString() ?? null,
        lastStatus: b.last_status,
        lastError: b.last_error,
        createdAt: b.created_at.toISOString(),
      };
    }),
  };
}

/** The part of an edit & retry's audit details the command page shows (an entry written before may lack some). */
function editOf(details: unknown): { changed: string[]; payloadBefore: unknown; payloadAfter: unknown } {
  const d = (details ?? {}) as { changed?: unknown; payloadBefore?: unknown; payloadAfter?: unknown };
  return {
    changed: Array.isArray(d.changed) ? d.changed.map(String) : [],
    payloadBefore: d.payloadBefore ?? null,
    payloadAfter: d.payloadAfter ?? null,
  };
}

/**
 * The command's place in its ordering key's line (DESIGN §7), or null without
 * a key. `waiting`: an earlier command of the key holds it back (`head` is
 * that command, which runs or must be acted on first; null for the moment
 * between one head finishing and the next being chosen). `ahead` and `behind`:
 * commands of the key waiting before and after it, counted up to `countMax`.
 */
function keyLine(c: DetailRow, line: KeyLineRow | null) {
  if (!c.ordering_key || !line) return null;
  const holds = (KEY_BLOCKING as readonly string[]).includes(c.status);
  const waiting = holds && c.key_waiting;
  return {
    key: c.ordering_key,
    waiting,
    /** This command is the head: the one of its key that may run now, or that blocks the key (exception). */
    isHead: holds && !c.key_waiting,
    head: waiting && line.head && line.head.id !== c.id ? line.head : null,
    ahead: line.ahead,
    behind: line.behind,
    countMax: KEY_LINE_COUNT_MAX,
  };
}

type CallbackTry = {
  number: number;
  outcome: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  httpStatus: number | null;
  error: string | null;
  worker: string | null;
  inProgress: boolean;
};

/**
 * The tries of one delivery, 1..its counter (which the sender raises when it
 * takes the delivery): the recorded ones, the one being sent, and any whose
 * sender stopped before recording it (its lease ran out; the next try follows).
 */
function callbackTries(b: CallbackRow, rows: AttemptRow[]): CallbackTry[] {
  const byNumber = new Map<number, AttemptRow>();
  for (const a of rows) {
    const delivery = (a.detail as { delivery?: unknown } | null)?.delivery;
    if (a.kind === "callback" && String(delivery) === b.id) byNumber.set(a.number, a);
  }
  const out: CallbackTry[] = [];
  for (let n = 1; n <= b.attempts; n++) {
    const a = byNumber.get(n);
    if (a) {
      const status = (a.detail as { status?: unknown } | null)?.status;
      out.push({
        number: n,
        outcome: a.outcome,
        startedAt: a.started_at.toISOString(),
        finishedAt: a.finished_at?.toISOString() ?? null,
        httpStatus: typeof status === "number" ? status : null,
        error: a.error,
        worker: a.worker,
        inProgress: false,
      });
    } else {
      // Not recorded: the try being sent now, or one whose sender stopped before recording it.
      const inProgress = n === b.attempts && b.sending;
      out.push({
        number: n,
        outcome: null,
        startedAt: null,
        finishedAt: null,
        httpStatus: null,
        error: inProgress ? null : "no result recorded: the sender stopped during this try",
        worker: null,
        inProgress,
      });
    }
  }
  return out;
}

/**
 * The overview's "waiting" list: this many rows, exceptions first, but a few
 * rows kept for the due queue when it has any (many exceptions must not hide
 * a queue that does not move); the queue is counted up to DUE_COUNT_MAX.
 */
const WAITING_ROWS = 10;
const DUE_ROWS_KEPT = 4;
const DUE_COUNT_MAX = 1_000;

export async function overview(db: Db, retentionDays: number) {
  const [c, t, w, due, workers] = await Promise.all([
    counts(db),
    throughput(db, 60),
    waiting(db, WAITING_ROWS),
    dueCount(db, DUE_COUNT_MAX),
    liveWorkers(db, 30),
  ]);
  const row = (why: "exception" | "due") => (r: WaitingRow) => ({
    id: r.id,
    type: r.type,
    status: r.status,
    why,
    createdAt: r.created_at.toISOString(),
    /** exception: when it entered that state; due: when its time came. */
    since: (why === "exception" ? r.state_changed_at : r.run_at).toISOString(),
    summary: failureSummary(r.status, r.failure, r.error),
  });
  return {
    retentionDays,
    workers: workers.map((w) => ({
      id: w.worker_id,
      startedAt: w.started_at.toISOString(),
      seenAt: w.updated_at.toISOString(),
    })),
    counts: c,
    /** Queued commands whose time has come (future-dated ones are not counted), up to `max`. */
    due: { count: due, max: DUE_COUNT_MAX },
    throughput: t.map((r) => ({ ...r, minute: r.minute.toISOString() })),
    waiting: (() => {
      const exceptions = w.exception.slice(0, WAITING_ROWS - Math.min(w.due.length, DUE_ROWS_KEPT));
      return [...exceptions.map(row("exception")), ...w.due.slice(0, WAITING_ROWS - exceptions.length).map(row("due"))];
    })(),
  };
}
