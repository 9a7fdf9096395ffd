// Group commit for intake. Under load, many single submits arrive at once and
// each would pay for its own transaction commit (a WAL flush: the limit of
// single-row inserts). Rows that arrive while earlier inserts are in flight
// are written together in one statement when a slot frees up. At low load a
// row is written at once, so this adds no latency; under load it turns N
// commits into one. Nothing is acknowledged before its statement commits.
import type { Db } from "../db/client";
import { findByKeys, insertCommands, type ExistingByKey, type NewCommand } from "../db/commands";

export type InsertOutcome = { inserted: boolean; existing?: ExistingByKey };

type Waiting = { rows: NewCommand[]; resolve: (r: InsertOutcome[]) => void; reject: (e: unknown) => void };

export type GroupInserter = (rows: NewCommand[]) => Promise<InsertOutcome[]>;

/** Inserts rows (ON CONFLICT DO NOTHING) and reports, per row, whether it was inserted or which stored command holds its key. */
export async function insertAndResolve(db: Db, rows: NewCommand[]): Promise<InsertOutcome[]> {
  const inserted = await insertCommands(db, rows);
  const missing = rows.filter((r) => !inserted.has(r.id));
  const existing = await findByKeys(db, missing.map((r) => ({ clientId: r.clientId, key: r.idempotencyKey!, type: r.type, payload: r.payload })));
  const byKey = new Map(existing.map((e) => [`${e.client_id}\u0000${e.key}`, e]));
  return rows.map((r) => (inserted.has(r.id) ? { inserted: true } : { inserted: false, existing: byKey.get(`${r.clientId}\u0000${r.idempotencyKey}`) }));
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
      while (queue.length > 0 && (group.length === 0 || n + queue[0]!.rows.length <= maxRows)) {
        const w = queue.shift()!;
        group.push(w);
        n += w.rows.length;
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
      return insertAndResolve(db, w.rows).then(w.resolve, w.reject);
    }
    try {
      const out = await insertAndResolve(db, group.flatMap((w) => w.rows));
      let i = 0;
      for (const w of group) {
        w.resolve(out.slice(i, i + w.rows.length));
        i += w.rows.length;
      }
    } catch {
      // One bad group must not fail its neighbours: retry each request on its own.
      await Promise.all(group.map((w) => insertAndResolve(db, w.rows).then(w.resolve, w.reject)));
    }
  };

  return (rows) =>
    new Promise((resolve, reject) => {
      queue.push({ rows, resolve, reject });
      flush();
    });
}
