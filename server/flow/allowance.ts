// How many attempts a gated claim unit may start now (DESIGN §7): the
// tightest of its scopes' pause, concurrency limit, rate limit (a token
// bucket shared by the fleet, stored with the scope) and circuit breaker.
// Pure: server/db/flow-claim.ts reads the locked scope rows, asks here, claims
// that many and writes back what spend() says.
import { burstOf, type Limit, type ScopeKey } from "./scopes";

export type CircuitState = "closed" | "open" | "half_open";

/** A scope row as the gated claim reads it, locked. */
export type ScopeRow = ScopeKey & {
  paused: boolean;
  /** The limit in force: the one set with flow.setLimit, else the type's own (CommandType.flow), else none. */
  limit: Limit | null;
  tokens: number | null;
  tokensAt: Date | null;
  inFlight: number;
  circuitState: CircuitState;
  nextProbeAt: Date | null;
  /** A probe is out and its lease is still held. */
  probeAlive: boolean;
};

export type HoldReason = "paused" | "circuit" | "limit";

export type Allowance = {
  /** Commands the claim may take (each command is at least one request to the counterpart). */
  take: number;
  /** The one command taken is the circuit's probe (half-open). */
  probe: boolean;
  /** Why fewer than `room` may start; null when nothing holds back. */
  reason: HoldReason | null;
  /** When to try again if the reason is time (a token, a probe); null: when something changes. */
  wakeAt: Date | null;
};

/**
 * Tokens are granted when a command is claimed, and its request starts a few
 * milliseconds later, by a delay that differs from worker to worker: two
 * grants apart by d may start closer than d. The bucket keeps this much of
 * the rate in hand, so that the requests too stay within rate × window + burst.
 */
export const START_SPREAD_MS = 100;

/** The bucket after refilling: tokens may be negative (a debt) after a claim whose reconciles cost a second request. */
export function refill(row: Pick<ScopeRow, "limit" | "tokens" | "tokensAt">, now: Date): number | null {
  const rate = row.limit?.ratePerSecond;
  if (rate === undefined) return null;
  const burst = Math.max(1, burstOf(row.limit!)! - (rate * START_SPREAD_MS) / 1000);
  if (row.tokens === null || row.tokensAt === null) return burst;
  return Math.min(burst, row.tokens + (rate * Math.max(0, now.getTime() - row.tokensAt.getTime())) / 1000);
}

export function allowance(rows: ScopeRow[], circuit: ScopeKey | null, room: number, now: Date): Allowance {
  let take = room;
  let reason: HoldReason | null = null;
  let wakeAt: Date | null = null;
  const hold = (n: number, why: HoldReason, at: Date | null = null) => {
    if (n < take) {
      take = Math.max(0, n);
      reason = why;
      wakeAt = at;
    }
  };
  for (const r of rows) {
    if (r.paused) hold(0, "paused");
    const c = r.limit?.concurrency;
    if (c !== undefined) hold(c - r.inFlight, "limit");
    const tokens = refill(r, now);
    if (tokens !== null) {
      const whole = Math.floor(tokens);
      const rate = r.limit!.ratePerSecond!;
      hold(whole, "limit", whole < 1 ? new Date(now.getTime() + Math.ceil(((1 - tokens) * 1000) / rate)) : null);
    }
  }
  let probe = false;
  const cr = circuit && rows.find((r) => r.kind === circuit.kind && r.name === circuit.name);
  if (cr && cr.circuitState !== "closed") {
    const due = cr.circuitState === "open" ? cr.nextProbeAt !== null && cr.nextProbeAt <= now : !cr.probeAlive;
    if (!due) hold(0, "circuit", cr.circuitState === "open" ? cr.nextProbeAt : null);
    else if (take >= 1) {
      probe = true;
      if (take > 1) {
        take = 1;
        reason = "circuit";
        wakeAt = null;
      }
    }
  }
  return { take, probe, reason, wakeAt };
}

/** The buckets after a claim that will make up to `cost` requests: what the claim writes back. */
export function spend(rows: ScopeRow[], cost: number, now: Date): { kind: string; name: string; tokens: number }[] {
  return rows.flatMap((r) => {
    const t = refill(r, now);
    return t === null ? [] : [{ kind: r.kind, name: r.name, tokens: t - cost }];
  });
}
