// Retention: finished commands older than RETENTION_DAYS go, in small batches,
// a few at a time from every worker (SKIP LOCKED keeps them from colliding);
// so do expired sessions and alert history older than that (once sent), done
// batches whose commands are gone, and flow traffic older than a day.
import type { Db } from "../db/client";
import type { Logger } from "../log";
import { pruneFinished, pruneHousekeeping } from "../db/retention";
import { pruneTraffic } from "../db/flow-traffic";
import { pruneBatches } from "../db/batches";

/** The /flow page reads the last hour of traffic; a day is kept for a look back. */
const TRAFFIC_DAYS = 1;
import { periodic, type Service } from "./service";

type PrunerOptions = { db: Db; log: Logger; days: number; everyMs?: number; batch?: number; maxBatchesPerRun?: number };

export function pruner(o: PrunerOptions): Service & { runOnce: () => Promise<void> } {
  const run = async (stopping: () => boolean) => {
    let total = 0;
    for (let i = 0; i < (o.maxBatchesPerRun ?? 20) && !stopping(); i++) {
      const n = await pruneFinished(o.db, o.days, o.batch ?? 500);
      total += n;
      if (n < (o.batch ?? 500)) break;
    }
    if (total) o.log.info({ pruned: total, olderThanDays: o.days }, "pruned finished commands");
    const other = await pruneHousekeeping(o.db, o.days);
    if (other.sessions || other.alertEvents)
      o.log.info({ ...other, olderThanDays: o.days }, "pruned expired sessions and old alert history");
    const batches = await pruneBatches(o.db, o.days, 1000);
    if (batches) o.log.info({ batches, olderThanDays: o.days }, "pruned done batches whose commands are gone");
    await pruneTraffic(o.db, TRAFFIC_DAYS);
  };
  const every = periodic("pruner", o.everyMs ?? 60_000, (stopping) =>
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
