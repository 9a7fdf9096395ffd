// The rescuer: takes back expired leases of workers that died or lost the
// database, and writes for each what the engine decides (rescued()).
import type { Db } from "../db/client";
import type { Registry } from "../command-types/registry";
import type { Logger } from "../log";
import { rescueExpired } from "../db/rescue";
import { rescued } from "../engine/transitions";
import type { Completion, Expired } from "../engine/types";
import type { WorkerMetrics } from "./metrics";
import { interval, type Service } from "./service";

export function rescuer(o: {
  db: Db;
  registry: Registry;
  log: Logger;
  everyMs: number;
  metrics?: WorkerMetrics;
}): Service {
  const decide = (rows: Expired[]): Completion[] =>
    rows.map((r) => {
      const type = o.registry.get(r.type);
      const parsed = type?.schema.safeParse(r.payload);
      return rescued(r, type, parsed?.success ? parsed.data : r.payload);
    });
  return interval("rescuer", o.everyMs, async () => {
    try {
      const taken = await rescueExpired(o.db, 200, decide);
      if (taken.length) {
        o.metrics?.rescued(taken.length);
        o.log.warn({ commands: taken.map((r) => r.id) }, "took back expired leases");
      }
    } catch (err) {
      o.log.warn({ err: String(err) }, "rescuer failed");
    }
  });
}
