// Commands under a lease (claimed by a worker, at most a few hundred at any
// time) are left out of the secondary indexes on commands (status, type,
// created_at: partial, WHERE lease_id IS NULL). A claim then writes two index
// entries instead of five, on the hottest path there is. Queries that must
// see every command read the two halves, each through its own index: the
// unleased rows through those indexes, the leased ones through
// commands_lease_idx (locked_until IS NOT NULL, which holds exactly when
// lease_id IS NOT NULL: commands_lease_whole_check).

import { LEASABLE, type State } from "../engine/states";

export const UNLEASED = "lease_id IS NULL";
export const LEASED = "locked_until IS NOT NULL";

/**
 * Whether a filter on `states` (none: every state) can match a leased command. A lease is held only in the
 * leasable states (commands_lease_state_check): a list of exceptions or failures need not read the leased half,
 * whose rows, however few, are each read from the table to test their state.
 */
export const leasedMayMatch = (states?: readonly State[]) =>
  !states?.length || states.some((s) => (LEASABLE as readonly State[]).includes(s));

const and = (cond: string, half: string) => (cond.trim() ? `(${cond}) AND ${half}` : half);

/**
 * SELECT `cols` FROM commands WHERE `cond` ORDER BY `order` LIMIT `limit`,
 * as two halves each able to use its index. `order` must only name columns
 * in `cols` (the outer query sorts the merged halves again). `states`: the
 * states `cond` keeps, if it keeps only some (see leasedMayMatch).
 */
export function selectBothHalves(
  cols: string,
  cond: string,
  order: string,
  limit: string,
  states?: readonly State[],
): string {
  const half = (h: string) => `(SELECT ${cols} FROM commands WHERE ${and(cond, h)} ORDER BY ${order} LIMIT ${limit})`;
  if (!leasedMayMatch(states)) return half(UNLEASED);
  return `SELECT * FROM (${half(UNLEASED)} UNION ALL ${half(LEASED)}) AS both_halves ORDER BY ${order} LIMIT ${limit}`;
}

/** count(*) FROM commands WHERE `cond`, as a scalar SQL expression over the two halves (`states`: as above). */
export function countBothHalves(cond: string, states?: readonly State[]): string {
  const half = (h: string) => `(SELECT count(*) FROM commands WHERE ${and(cond, h)})`;
  return leasedMayMatch(states) ? `(${half(UNLEASED)} + ${half(LEASED)})` : half(UNLEASED);
}
