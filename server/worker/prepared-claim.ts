// Whether the claim may run as the prepared statement (server/db/claim.ts):
// its generic plan is safe once the statistics know the table, checked at
// start and every minute; and never again on this connection pool once a
// migration changed the type of a column it returns.
import type { Db } from "../db/client";
import { commandsRowEstimate, PREPARED_CLAIM_MIN_ROWS } from "../db/claim";
import { interval, type Service } from "./service";

export type PreparedClaim = Service & {
  /** Claim with the prepared statement now? */
  readonly usable: boolean;
  /** PostgreSQL refused the cached statement (cached plan must not change result type): claim without it from now on. */
  broken(): void;
};

export function preparedClaim(o: { db: Db; enabled: boolean }): PreparedClaim {
  let bigEnough = false;
  let broken = false;
  const check = async () => {
    try {
      bigEnough = o.enabled && (await commandsRowEstimate(o.db)) >= PREPARED_CLAIM_MIN_ROWS;
    } catch {
      // keep the last answer; the next check retries
    }
  };
  const every = interval("prepared-claim check", 60_000, check);
  return {
    name: every.name,
    start() {
      void check();
      every.start();
    },
    stop: every.stop,
    get usable() {
      return bigEnough && !broken;
    },
    broken() {
      broken = true;
    },
  };
}
