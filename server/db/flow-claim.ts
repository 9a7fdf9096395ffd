// The gated claim (DESIGN §7): the commands of one claim unit (a gated host,
// or a gated type) counted out under the row locks of the unit's scopes, so
// that pauses, concurrency and rate limits and circuit probes hold across the
// whole fleet. One short transaction: lock the scope rows (SKIP LOCKED: a
// worker already counting this unit out makes the others pass, rather than
// queue behind it), ask the decision (server/flow/allowance.ts), claim that
// many, write back the buckets and the probe.
import { withTransaction, type Db } from "./client";
import { claimText, toClaimed, type ClaimRow } from "./claim";
import type { Claimed } from "../engine/types";
import type { Allowance, CircuitState, ScopeRow } from "../flow/allowance";
import type { Limit, ScopeKey, Unit } from "../flow/scopes";

type Row = {
  probe_lease: string | null;
  kind: "type" | "host";
  name: string;
  paused: boolean;
  has_limit: boolean;
  concurrency: number | null;
  rate_per_second: number | null;
  burst: number | null;
  tokens: number | null;
  tokens_at: Date | null;
  circuit_state: CircuitState;
  next_probe_at: Date | null;
  now: Date;
};

// The lock first, alone: under READ COMMITTED a statement's snapshot is taken before it waits for or
// skips a lock, so counts made in the same statement could miss the leases of a claim that committed
// just before this one got the row. What is counted after the lock sees every earlier claim.
const LOCK_SCOPES = `SELECT s.kind, s.name, s.paused, s.has_limit, s.concurrency, s.rate_per_second, s.burst, s.tokens, s.tokens_at,
    s.circuit_state, s.next_probe_at, s.probe_lease, clock_timestamp() AS now
  FROM flow_scopes s
  WHERE (s.kind, s.name) IN (SELECT * FROM unnest($1::text[], $2::text[]))
  ORDER BY s.kind, s.name
  FOR UPDATE OF s SKIP LOCKED`;

const COUNT_SCOPES = `SELECT k.kind, k.name,
    ($3::uuid IS NOT NULL AND k.kind = $4 AND k.name = $5 AND EXISTS (
      SELECT 1 FROM commands p WHERE p.locked_until IS NOT NULL AND p.lease_id = $3::uuid)) AS probe_alive,
    (SELECT count(*)::int FROM commands c
     WHERE c.locked_until IS NOT NULL AND CASE k.kind WHEN 'type' THEN c.type = k.name ELSE c.target_host = k.name END) AS in_flight
  FROM unnest($1::text[], $2::text[]) AS k(kind, name)`;

/** Makes sure every scope has its row (the lock the gated claim takes); a no-op for rows that exist. */
export async function ensureScopes(db: Db, scopes: ScopeKey[]): Promise<void> {
  if (scopes.length === 0) return;
  await db.pool.query(
    `INSERT INTO flow_scopes (kind, name) SELECT * FROM unnest($1::text[], $2::text[]) ORDER BY 1, 2 ON CONFLICT DO NOTHING`,
    [scopes.map((s) => s.kind), scopes.map((s) => s.name)],
  );
}

export type GatedClaim = {
  claimed: Claimed[];
  allowance: Allowance | null;
  /** Another worker holds the unit's rows right now: try again soon. */
  busy: boolean;
};

/**
 * Claims up to what the unit's scopes allow, at most `room`. `codeLimit`: the
 * limit a type declares in code, for a scope without one set by an admin.
 */
export async function claimGated(
  db: Db,
  workerId: string,
  unit: Unit,
  room: number,
  leaseMs: number,
  codeLimit: (s: ScopeKey) => Limit | null,
  decide: (rows: ScopeRow[], circuit: ScopeKey | null, room: number, now: Date) => Allowance,
  spend: (rows: ScopeRow[], cost: number, now: Date) => { kind: string; name: string; tokens: number }[],
): Promise<GatedClaim> {
  if (room <= 0) return { claimed: [], allowance: null, busy: false };
  return withTransaction(db, async (client) => {
    const kinds = unit.scopes.map((s) => s.kind);
    const names = unit.scopes.map((s) => s.name);
    const { rows } = await client.query<Row>(LOCK_SCOPES, [kinds, names]);
    if (rows.length < unit.scopes.length) return { claimed: [], allowance: null, busy: true };
    const now = rows[0]!.now;
    const circuitRow = unit.circuit && rows.find((r) => r.kind === unit.circuit!.kind && r.name === unit.circuit!.name);
    const { rows: counts } = await client.query<{
      kind: string;
      name: string;
      probe_alive: boolean;
      in_flight: number;
    }>(COUNT_SCOPES, [
      kinds,
      names,
      circuitRow?.probe_lease ?? null,
      unit.circuit?.kind ?? null,
      unit.circuit?.name ?? null,
    ]);
    const countOf = (r: Row) => counts.find((c) => c.kind === r.kind && c.name === r.name)!;
    const scopeRows: ScopeRow[] = rows.map((r) => ({
      kind: r.kind,
      name: r.name,
      paused: r.paused,
      limit: r.has_limit
        ? {
            concurrency: r.concurrency ?? undefined,
            ratePerSecond: r.rate_per_second ?? undefined,
            burst: r.burst ?? undefined,
          }
        : codeLimit(r),
      tokens: r.tokens,
      tokensAt: r.tokens_at,
      inFlight: countOf(r).in_flight,
      circuitState: r.circuit_state,
      nextProbeAt: r.next_probe_at,
      probeAlive: countOf(r).probe_alive,
    }));
    const a = decide(scopeRows, unit.circuit, room, now);
    if (a.take <= 0) return { claimed: [], allowance: a, busy: false };
    const filter =
      unit.host !== null
        ? ` AND type = $4 AND target_host = $5`
        : ` AND type = $4 AND (target_host IS NULL OR NOT (target_host = ANY($5::text[])))`;
    const { rows: got } = await client.query<ClaimRow>(claimText(filter, "$2"), [
      workerId,
      a.take,
      leaseMs,
      unit.type,
      unit.host ?? unit.exceptHosts,
    ]);
    const claimed = got.map(toClaimed);
    if (claimed.length === 0) return { claimed, allowance: a, busy: false };
    // A command that must be reconciled first may make two requests (reconcile, then execute).
    const cost = claimed.reduce((n, c) => n + (c.needsReconcile ? 2 : 1), 0);
    const buckets = spend(scopeRows, cost, now);
    if (buckets.length > 0) {
      await client.query(
        `UPDATE flow_scopes s SET tokens = b.tokens, tokens_at = $4, updated_at = now()
         FROM unnest($1::text[], $2::text[], $3::float8[]) AS b(kind, name, tokens)
         WHERE s.kind = b.kind AND s.name = b.name`,
        [buckets.map((b) => b.kind), buckets.map((b) => b.name), buckets.map((b) => b.tokens), now],
      );
    }
    if (a.probe && unit.circuit) {
      const probe = claimed[0]!;
      probe.probe = true;
      await client.query(
        `UPDATE flow_scopes SET circuit_state = 'half_open', probe_lease = $3,
           circuit_since = CASE WHEN circuit_state = 'half_open' THEN circuit_since ELSE now() END, updated_at = now()
         WHERE kind = $1 AND name = $2`,
        [unit.circuit.kind, unit.circuit.name, probe.leaseId],
      );
    }
    return { claimed, allowance: a, busy: false };
  });
}

/** The gated scopes, with their circuits: what the claim loop builds its units from. */
export type GatedScope = ScopeKey & {
  /** false: listed only because its circuit has counted exceptions (so that a success resets it). */
  gated: boolean;
  circuitState: CircuitState;
  nextProbeAt: Date | null;
  consecutive: number;
};

export async function gatedScopes(db: Db): Promise<GatedScope[]> {
  const { rows } = await db.pool.query<{
    kind: "type" | "host";
    name: string;
    gated: boolean;
    circuit_state: CircuitState;
    next_probe_at: Date | null;
    consecutive_exceptions: number;
  }>(
    `SELECT kind, name, gated, circuit_state, next_probe_at, consecutive_exceptions FROM flow_scopes
     WHERE gated OR consecutive_exceptions > 0 ORDER BY kind, name`,
  );
  return rows.map((r) => ({
    kind: r.kind,
    name: r.name,
    gated: r.gated,
    circuitState: r.circuit_state,
    nextProbeAt: r.next_probe_at,
    consecutive: r.consecutive_exceptions,
  }));
}
