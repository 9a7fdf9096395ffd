// Lease renewal: every third of the lease, the leases this worker holds are
// renewed in one statement; an attempt whose lease was lost is interrupted
// (another worker may have taken the command over). A renewal that fails for a
// passing reason (connection, deadlock) is tried again at once rather than a
// heartbeat later: each miss eats a third of the lease.
import type { Db } from "../db/client";
import type { Logger } from "../log";
import { renewLeases } from "../db/leases";
import { sleep } from "../lib/wake";
import { LeaseLost } from "./attempt";
import { isTransient } from "./completer";
import type { Held } from "./claim-loop";
import type { WorkerMetrics } from "./metrics";
import { interval, type Service } from "./service";

const RENEW_TRIES = 3;

export function heartbeat(o: {
  db: Db;
  log: Logger;
  leaseMs: number;
  held: ReadonlyMap<string, Held>;
  metrics?: WorkerMetrics;
}): Service {
  const { log, held } = o;
  const renew = async (leases: { id: string; leaseId: string }[]) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await renewLeases(o.db, leases, o.leaseMs);
      } catch (err) {
        if (attempt >= RENEW_TRIES || !isTransient(err)) throw err;
        log.warn({ err: String(err), attempt }, "could not renew leases; trying again");
        await sleep(50 * attempt);
      }
    }
  };
  return interval("heartbeat", Math.max(50, Math.floor(o.leaseMs / 3)), async () => {
    const ids = [...held.keys()];
    if (ids.length === 0) return;
    try {
      const renewed = await renew([...held.values()].map((h) => ({ id: h.c.id, leaseId: h.c.leaseId })));
      for (const id of ids) {
        const h = held.get(id);
        if (renewed.has(id) || !h || h.intr.interrupted) continue;
        o.metrics?.leaseLost();
        log.warn(
          { command: h.c.id, type: h.c.type, attempt: h.c.attemptCount + 1 },
          "lease lost; interrupting the attempt",
        );
        h.intr.abort(new LeaseLost());
      }
    } catch (err) {
      log.warn({ err: String(err) }, "could not renew leases");
    }
  });
}
