// The shared state of circuit breakers (DESIGN §7): one flow_scopes row per
// scope, changed under its row lock by the worker that saw the outcome. The
// fleet hears of every change of state at once (NOTIFY conveyor_flow), and of
// the first exception after a success, so that any worker's next success
// resets the count.
import { withTransaction, type Db } from "./client";
import type { Circuit } from "../flow/circuit";
import type { CircuitSettings, ScopeKey } from "../flow/scopes";

type Row = {
  circuit_state: Circuit["state"];
  circuit_since: Date;
  consecutive_exceptions: number;
  cooldown_ms: number | null;
  next_probe_at: Date | null;
  probe_lease: string | null;
  circuit_threshold: number | null;
  circuit_cooldown_seconds: number | null;
  now: Date;
};

export type CircuitChange = { before: Circuit; after: Circuit };

/**
 * Records one outcome on a scope's circuit. `exception`: the row is made if
 * missing; an answer with no row changes nothing (the circuit is closed and
 * has counted nothing). `settings`: the settings in force given the row's own
 * overrides. Returns null when there was nothing to change.
 */
export async function recordOutcome(
  db: Db,
  scope: ScopeKey,
  exception: boolean,
  decide: (before: Circuit, settings: CircuitSettings, now: Date) => Circuit,
  settings: (overrides: Partial<CircuitSettings>) => CircuitSettings,
): Promise<CircuitChange | null> {
  return withTransaction(db, async (client) => {
    if (exception)
      await client.query(`INSERT INTO flow_scopes (kind, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
        scope.kind,
        scope.name,
      ]);
    const { rows } = await client.query<Row>(
      `SELECT circuit_state, circuit_since, consecutive_exceptions, cooldown_ms, next_probe_at, probe_lease,
         circuit_threshold, circuit_cooldown_seconds, now() AS now
       FROM flow_scopes WHERE kind = $1 AND name = $2 FOR UPDATE`,
      [scope.kind, scope.name],
    );
    const r = rows[0];
    if (!r) return null;
    const before: Circuit = {
      state: r.circuit_state,
      since: r.circuit_since,
      consecutive: r.consecutive_exceptions,
      cooldownMs: r.cooldown_ms,
      nextProbeAt: r.next_probe_at,
      probeLease: r.probe_lease,
    };
    const after = decide(
      before,
      settings({
        threshold: r.circuit_threshold ?? undefined,
        cooldownSeconds: r.circuit_cooldown_seconds ?? undefined,
      }),
      r.now,
    );
    const same =
      after.state === before.state &&
      after.consecutive === before.consecutive &&
      after.probeLease === before.probeLease &&
      after.nextProbeAt?.getTime() === before.nextProbeAt?.getTime();
    if (same) return null;
    await client.query(
      `UPDATE flow_scopes SET circuit_state = $3, circuit_since = $4, consecutive_exceptions = $5, cooldown_ms = $6,
         next_probe_at = $7, probe_lease = $8, updated_at = now()
       WHERE kind = $1 AND name = $2`,
      [
        scope.kind,
        scope.name,
        after.state,
        after.since,
        after.consecutive,
        after.cooldownMs,
        after.nextProbeAt,
        after.probeLease,
      ],
    );
    if (after.state !== before.state || (before.consecutive === 0 && after.consecutive > 0))
      await client.query(`SELECT pg_notify('conveyor_flow', $1)`, [
        JSON.stringify({ kind: scope.kind, name: scope.name, state: after.state, consecutive: after.consecutive }),
      ]);
    return { before, after };
  });
}
