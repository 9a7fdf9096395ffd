// Retention: finished commands older than RETENTION_DAYS go, in batches, from
// every worker (SKIP LOCKED keeps them from colliding); so do expired sessions
// and alert history older than that (once sent), done batches whose commands
// are gone, and flow traffic older than a day.
import type { Db } from "../db/client";
import type { Logger } from "../log";
import { pruneFinished, pruneHousekeeping } from "../db/retention";
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
  everyMs?: number;
  batch?: number;
  /**
   * How long one run may keep deleting while batches come back full. A steady intake of N commands/s
   * means N deletions/s once the history is RETENTION_DAYS old: a run goes on until it has caught up
   * (or the budget ends it), so the pruner keeps pace with any rate its database can delete at, where a
   * fixed number of batches per run would set a ceiling (20 × 500 a minute was ~170 commands/s).
   */
  budgetMs?: number;
};

export function pruner(o: PrunerOptions): Service & { runOnce: () => Promise<void> } {
  const everyMs = o.everyMs ?? 60_000;
  const batch = o.batch ?? 1000;
  const budgetMs = o.budgetMs ?? everyMs * 0.8;
  const run = async (stopping: () => boolean) => {
    let total = 0;
    const t0 = performance.now();
    while (!stopping()) {
      const n = await pruneFinished(o.db, o.days, batch);
      total += n;
      if (n < batch || performance.now() - t0 > budgetMs) break;
    }
    if (total) o.log.info({ pruned: total, olderThanDays: o.days }, "pruned finished commands");
    const other = await pruneHousekeeping(o.db, o.days);
    if (other.sessions || other.alertEvents)
      o.log.info({ ...other, olderThanDays: o.days }, "pruned expired sessions and old alert history");
    const batches = await pruneBatches(o.db, o.days, 1000);
    if (batches) o.log.info({ batches, olderThanDays: o.days }, "pruned done batches whose commands are gone");
    await pruneTraffic(o.db, TRAFFIC_DAYS);
  };
  const every = periodic("pruner", everyMs, (stopping) =>
    run(stopping).catch((err) => o.log.warn({ err: String(err) }, "pruning failed")),
  );
  return { name: every.name, start: every.start, stop: every.stop, runOnce: () => run(() => every.stopping) };
}

/** A pruner, started (for tests: `runOnce` prunes now). */
export function startPruner(o: PrunerOptions) {
  const p = pruner(o);
  p.start();
  return p;
}
