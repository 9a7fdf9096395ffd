// Batches (DESIGN §8): the done check. Every worker runs it: a command of a
// batch entering a state at rest notifies conveyor_batches with the batch's id
// after its commit; the watcher gathers the ids it hears of and runs the done
// check for them (the batch row lock makes two workers' checks of one batch
// wait for each other, and the second finds it done); a read first leaves out
// the batches that still have commands in flight. After the listener
// (re)connects, and every `pollMs` as a fallback, it checks every open batch:
// notifications sent while nobody listened are lost.
import type { Db } from "../db/client";
import type { Logger } from "../log";
import type { Listener } from "../db/listener";
import { BATCHES_CHANNEL, markDoneBatches, selectDoneCandidates, type BatchDone } from "../db/batches";
import { Wake } from "../lib/wake";
import type { Service } from "./service";

export type BatchWatcherOptions = {
  db: Db;
  log: Logger;
  listener?: Listener;
  /** Longest time between two checks of every open batch (default 30 s). */
  pollMs?: number;
  /** For tests: each batch marked done. */
  onDone?: (b: BatchDone) => void;
};

/** Batches per done check (one transaction). */
const CHUNK = 500;

export function batchWatcher(o: BatchWatcherOptions): Service {
  const pollMs = o.pollMs ?? 30_000;
  const wake = new Wake();
  const dirty = new Set<string>();
  let sweep = true;
  let lastSweep = 0;
  let stopping = false;
  let loop: Promise<void> = Promise.resolve();
  let failures = 0;

  const step = async () => {
    if (sweep || Date.now() - lastSweep >= pollMs) {
      dirty.clear();
      const done = await markDoneBatches(o.db, null);
      sweep = false;
      lastSweep = Date.now();
      report(done);
      return;
    }
    while (dirty.size > 0 && !stopping) {
      const ids = [...dirty].slice(0, CHUNK);
      for (const id of ids) dirty.delete(id);
      try {
        // Most notifications come while the batch still has commands in flight: a read finds that, without the
        // transaction and row locks of the done check.
        const candidates = await selectDoneCandidates(o.db, ids);
        if (candidates.length > 0) report(await markDoneBatches(o.db, candidates));
      } catch (err) {
        for (const id of ids) dirty.add(id);
        throw err;
      }
    }
  };
  const report = (done: BatchDone[]) => {
    if (done.length === 0) return;
    for (const b of done) o.onDone?.(b);
  };

  return {
    name: "batch watcher",
    start() {
      o.listener?.on(BATCHES_CHANNEL, (payload) => {
        if (payload) dirty.add(payload);
        wake.fire();
      });
      o.listener?.onConnect(() => {
        sweep = true;
        wake.fire();
      });
      loop = (async () => {
        while (!stopping) {
          try {
            await step();
            failures = 0;
            if (dirty.size > 0 || sweep) continue;
            await wake.wait(Math.max(0, lastSweep + pollMs - Date.now()));
          } catch (err) {
            o.log.warn({ err: String(err) }, "batch done check failed; trying again");
            await wake.wait(Math.min(pollMs, 100 * 2 ** failures++));
          }
        }
      })();
    },
    async stop() {
      stopping = true;
      wake.fire();
      await loop;
    },
  };
}
