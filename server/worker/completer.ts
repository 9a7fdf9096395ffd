// Writes completions in groups: what finishes while a write is in flight goes
// out together in the next one (no added latency when idle, one commit for
// many under load). A write that fails for a passing reason (database down,
// or rolled back by PostgreSQL to break a deadlock) is retried as it was;
// nothing is dropped. A completion whose lease was taken back meanwhile is
// refused by the database and reported as not applied.
import type { Db } from "../db/client";
import { completeAtomically } from "../db/completion";
import type { Completion } from "../engine/types";
import { unrecordable } from "../engine/transitions";
import type { Logger } from "../log";
import { sleep } from "../lib/wake";

type Item = { c: Completion; resolve: (applied: boolean) => void };

export type CompleterOptions = {
  maxInFlight?: number;
  maxBatch?: number;
  /**
   * Under load (a write finished less than 20 ms ago), a write that would carry
   * fewer than `lingerBelow` completions waits up to this long for more (default 0:
   * never). Each write costs PostgreSQL about a millisecond beyond its rows.
   */
  lingerMs?: number;
  lingerBelow?: number;
};

export function createCompleter(db: Db, log: Logger, opts: CompleterOptions = {}) {
  // One write at a time: what finishes meanwhile forms the next, larger batch (fewer commits).
  const maxInFlight = opts.maxInFlight ?? 1;
  const maxBatch = opts.maxBatch ?? 500;
  const lingerMs = opts.lingerMs ?? 0;
  const lingerBelow = opts.lingerBelow ?? 100;
  const queue: Item[] = [];
  let inFlight = 0;
  let lastWriteAt = -Infinity;
  let lingering: ReturnType<typeof setTimeout> | undefined;

  const write = async (items: Item[]) => {
    for (let attempt = 0, refusals = 0; ; attempt++) {
      try {
        const applied = await completeAtomically(
          db,
          items.map((i) => i.c),
        );
        for (const i of items) i.resolve(applied.has(i.c.id));
        return;
      } catch (err) {
        if (!isTransient(err)) {
          if (items.length > 1) {
            // One bad row must not hold back the others: write them one by one.
            await Promise.all(items.map((i) => write([i])));
            return;
          }
          // The database refuses this one completion (not a connection matter): it would refuse it for ever.
          // First store it without the characters PostgreSQL cannot hold; then, as an exception for an operator.
          refusals++;
          const item = items[0]!;
          item.c = salvage(item.c, refusals, describe(err));
        }
        if (isRolledBack(err)) {
          // The transaction it met is done within milliseconds: try again soon, at a jittered moment.
          log.warn(
            { err: describe(err), commands: items.map((i) => i.c.id), attempt },
            "attempt results rolled back by the database (deadlock or serialization conflict); retrying",
          );
          await sleep(Math.min(10_000, 5 + Math.random() * 20 * 2 ** Math.min(attempt, 8)));
          continue;
        }
        log.error(
          { err: describe(err), commands: items.map((i) => i.c.id), attempt },
          "could not record attempt results; retrying",
        );
        await sleep(Math.min(10_000, 200 * 2 ** Math.min(attempt, 6)));
      }
    }
  };

  const flush = (lingered = false) => {
    while (inFlight < maxInFlight && queue.length > 0) {
      const busy = lingering !== undefined || performance.now() - lastWriteAt < 20;
      if (!lingered && lingerMs > 0 && queue.length < lingerBelow && busy) {
        lingering ??= setTimeout(() => {
          lingering = undefined;
          flush(true);
        }, lingerMs);
        return;
      }
      lingered = false;
      if (lingering) clearTimeout(lingering);
      lingering = undefined;
      const batch = queue.splice(0, maxBatch);
      inFlight++;
      void write(batch).finally(() => {
        inFlight--;
        lastWriteAt = performance.now();
        flush();
      });
    }
  };

  return {
    /** Resolves once written: true if applied, false if the lease was no longer ours. */
    complete: (c: Completion) =>
      new Promise<boolean>((resolve) => {
        queue.push({ c, resolve });
        flush();
      }),
    get pending() {
      return queue.length + inFlight;
    },
  };
}

export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  // PostgreSQL's class 08 (connection exception), 57P01-03 (shutdown), and socket errors.
  return (
    /^08|^57P0/.test(e?.code ?? "") ||
    ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND"].includes(e?.code ?? "") ||
    /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(
      e?.message ?? "",
    )
  );
}

/**
 * PostgreSQL rolled the transaction back for a reason that passes: it was the
 * one chosen to break a deadlock (40P01), or a serialization conflict (40001).
 * The same statement succeeds when tried again.
 */
function isRolledBack(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === "40P01" || code === "40001";
}

/** Worth retrying unchanged: the connection failed, or the database rolled the statement back (isRolledBack). */
export function isTransient(err: unknown): boolean {
  return isConnectionError(err) || isRolledBack(err);
}

const describe = (err: unknown) => ((err as Error)?.message ?? String(err)).slice(0, 500);

// PostgreSQL's text and jsonb cannot hold U+0000: a handler's result or error with one is stored with U+FFFD instead.
const cleanText = (t: string | null) => (t === null ? null : t.replaceAll("\u0000", "\ufffd"));
const cleanJson = (v: unknown) =>
  v === undefined ? undefined : JSON.parse(JSON.stringify(v).replaceAll("\\u0000", "\\ufffd"));

function withoutNul(c: Completion): Completion {
  return {
    ...c,
    result: cleanJson(c.result),
    failure: cleanJson(c.failure),
    error: cleanText(c.error),
    attempts: c.attempts.map((a) => ({ ...a, error: cleanText(a.error), detail: cleanJson(a.detail) })),
  };
}

/**
 * The next thing to try storing for a completion the database keeps refusing
 * (or that cannot even be serialised, e.g. a result nested too deep): first
 * the same without NUL characters, then an exception for an operator.
 */
function salvage(c: Completion, refusals: number, why: string): Completion {
  const error = cleanText(
    `could not record the outcome (${why}); the backend may have acted: reconcile before acting again`,
  )!;
  try {
    if (refusals === 1) return withoutNul(c);
    if (refusals === 2) {
      const clean = withoutNul(c);
      return unrecordable(clean, error, clean.attempts);
    }
  } catch {
    // cleaning needs the values serialisable: fall through to the bare exception
  }
  return unrecordable(c, error, []);
}
