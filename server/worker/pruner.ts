// Retention: finished commands older than RETENTION_DAYS go, in batches, from
// every worker (SKIP LOCKED keeps them from colliding); so do expired sessions
// and alert history older than that (once sent), done batches whose commands
// are gone, and flow traffic older than a day; the finished counts are folded.
import type { Db } from "../db/client";
import type { Logger } from "../log";
import { compactFinishedCounts, pruneFinished, pruneHousekeeping } from "../db/retention";
import { pruneTraffic } from "../db/flow-traffic";
import { pruneBatches } from "../db/batches";
import { periodic, type Service } from "./service";

/** The /flow page reads the last hour of traffic; a day is kept for a look back. */
const TRAFFIC_DAYS = 1;

type PrunerOptions = {
  db: Db;
  log: Logger;
  /** Retention in days; a fraction of a day is allowed (benchmarks and tests keep minutes). */
  days: number;
  /**
   * How often a run of deletions starts (default 5 s). A steady intake of N commands/s means N deletions/s
   * once the history is RETENTION_DAYS old: small runs every few seconds spread them over the minute, where
   * one run a minute deleted a minute's worth in a burst that took PostgreSQL from everything else for seconds
   * (pickup p99 1–2 s in the soak of docs/operations.md §7.4).
   */
  everyMs?: number;
  /** How often sessions, alert history, batches and flow traffic are pruned (default 60 s). */
  housekeepingEveryMs?: number;
  batch?: number;
  /**
   * How long one run may keep deleting while batches come back full (default 80 % of everyMs): a run goes on
   * until it has caught up or its budget ends, so the pruner keeps pace with any rate its database can delete
   * at, where a fixed number of batches per run would set a ceiling (20 × 500 a minute was ~170 commands/s).
   */
  budgetMs?: number;
  /**
   * The share of a run spent deleting (default 0.5): after each full batch the run rests as long again, so
   * that catching up on a backlog leaves PostgreSQL to the claims and completions half the time.
   */
  duty?: number;
};

export function pruner(o: PrunerOptions): Service & { runOnce: () => Promise<void> } {
  const everyMs = o.everyMs ?? 5_000;
  const housekeepingEveryMs = o.housekeepingEveryMs ?? 60_000;
  const batch = o.batch ?? 1000;
  const budgetMs = o.budgetMs ?? everyMs * 0.8;
  const duty = Math.min(1, Math.max(0.05, o.duty ?? 0.5));
  let lastHousekeeping = performance.now();
  let prunedSinceLog = 0;
  const run = async (stopping: () => boolean, housekeepingNow: boolean) => {
    const t0 = performance.now();
    while (!stopping()) {
      const b0 = performance.now();
      const n = await pruneFinished(o.db, o.days, batch);
      prunedSinceLog += n;
      if (n < batch || performance.now() - t0 > budgetMs) break;
      const rest = ((performance.now() - b0) * (1 - duty)) / duty;
      if (rest >= 1) await new Promise((r) => setTimeout(r, rest));
    }
    if (!housekeepingNow && performance.now() - lastHousekeeping < housekeepingEveryMs) return;
    lastHousekeeping = performance.now();
    if (prunedSinceLog) o.log.info({ pruned: prunedSinceLog, olderThanDays: o.days }, "pruned finished commands");
    prunedSinceLog = 0;
    const other = await pruneHousekeeping(o.db, o.days);
    if (other.sessions || other.alertEvents)
      o.log.info({ ...other, olderThanDays: o.days }, "pruned expired sessions and old alert history");
    const batches = await pruneBatches(o.db, o.days, 1000);
    if (batches) o.log.info({ batches, olderThanDays: o.days }, "pruned done batches whose commands are gone");
    await pruneTraffic(o.db, TRAFFIC_DAYS);
    await compactFinishedCounts(o.db);
  };
  const every = periodic("pruner", everyMs, (stopping) =>
    run(stopping, false).catch((err) => o.log.warn({ err: String(err) }, "pruning failed")),
  );
  return {
    name: every.name,
    start: every.start,
    stop: every.stop,
    runOnce: () => run(() => every.stopping, true),
  };
}

/** A pruner, started (for tests: `runOnce` prunes now). */
export function startPruner(o: PrunerOptions) {
  const p = pruner(o);
  p.start();
  return p;
}
