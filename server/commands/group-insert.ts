// Group commit for intake. Under load, many single submits arrive at once and
// each would pay for its own transaction commit (a WAL flush: the limit of
// single-row inserts). Rows that arrive while earlier inserts are in flight
// are written together in one statement when a slot frees up. At low load a
// row is written at once, so this adds no latency; under load it turns N
// commits into one. Nothing is acknowledged before its statement commits.
import type { Db } from "../db/client";
import { findByKeys, insertCommands, type ExistingByKey, type KeyLookup, type NewCommand } from "../db/commands";
import type { NewBatch } from "../db/batches";

type InsertOutcome = { inserted: boolean; existing?: ExistingByKey };
/** Per row, whether it was inserted; per lookup, the command that holds its key once the rows are in (if any). */
export type InsertResult = { rows: InsertOutcome[]; lookups: (ExistingByKey | undefined)[] };

type Waiting = {
  rows: NewCommand[];
  lookups: KeyLookup[];
  resolve: (r: InsertResult) => void;
  reject: (e: unknown) => void;
};

/**
 * Inserts rows and, after them, looks up keys: `lookups` are for items that
 * repeat the key of an earlier row of their request, answered by whatever
 * holds that key once the insert is done (their own earlier row, or a command
 * stored before or concurrently).
 */
export type GroupInserter = (rows: NewCommand[], lookups?: KeyLookup[], batch?: NewBatch) => Promise<InsertResult>;

/**
 * Inserts rows (ON CONFLICT DO NOTHING) and reports, per row, whether it was
 * inserted or which stored command holds its key; then answers the lookups.
 * The second statement runs only when a row was not inserted or there are
 * lookups: a request without stored or repeated keys costs one.
 */
export async function insertAndResolve(
  db: Db,
  rows: NewCommand[],
  lookups: KeyLookup[] = [],
  batch?: NewBatch,
): Promise<InsertResult> {
  const inserted = await insertCommands(db, rows, batch);
  const missing = rows.filter((r) => !inserted.has(r.id));
  const found = await findByKeys(db, [
    ...missing.map((r) => ({ clientId: r.clientId, key: r.idempotencyKey!, type: r.type, payload: r.payload })),
    ...lookups,
  ]);
  let m = 0;
  return {
    rows: rows.map((r) => (inserted.has(r.id) ? { inserted: true } : { inserted: false, existing: found[m++] })),
    lookups: found.slice(missing.length),
  };
}

export function createGroupInserter(db: Db, opts: { maxInFlight?: number; maxRows?: number } = {}): GroupInserter {
  const maxInFlight = opts.maxInFlight ?? 4;
  const maxRows = opts.maxRows ?? 2000;
  let inFlight = 0;
  const queue: Waiting[] = [];

  const flush = () => {
    while (inFlight < maxInFlight && queue.length > 0) {
      const group: Waiting[] = [];
      let n = 0;
      const size = (w: Waiting) => w.rows.length + w.lookups.length;
      while (queue.length > 0 && (group.length === 0 || n + size(queue[0]!) <= maxRows)) {
        const w = queue.shift()!;
        group.push(w);
        n += size(w);
      }
      inFlight++;
      run(group).finally(() => {
        inFlight--;
        flush();
      });
    }
  };

  const run = async (group: Waiting[]) => {
    if (group.length === 1) {
      const w = group[0]!;
      return insertAndResolve(db, w.rows, w.lookups).then(w.resolve, w.reject);
    }
    try {
      const out = await insertAndResolve(
        db,
        group.flatMap((w) => w.rows),
        group.flatMap((w) => w.lookups),
      );
      let i = 0;
      let j = 0;
      for (const w of group) {
        w.resolve({ rows: out.rows.slice(i, i + w.rows.length), lookups: out.lookups.slice(j, j + w.lookups.length) });
        i += w.rows.length;
        j += w.lookups.length;
      }
    } catch {
      // One bad group must not fail its neighbours: retry each request on its own.
      await Promise.all(group.map((w) => insertAndResolve(db, w.rows, w.lookups).then(w.resolve, w.reject)));
    }
  };

  return (rows, lookups = [], batch) =>
    // A batch's rows are its own statement (its batch row is stored with them): not grouped with others.
    batch
      ? insertAndResolve(db, rows, lookups, batch)
      : new Promise((resolve, reject) => {
          queue.push({ rows, lookups, resolve, reject });
          flush();
        });
}
