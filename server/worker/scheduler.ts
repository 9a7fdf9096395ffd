// Schedules (DESIGN §8): every worker runs the scheduler; the database decides
// which one submits a tick (the due rows are locked with SKIP LOCKED, and the
// tick's idempotency key makes a repeat harmless). It wakes up when the
// earliest schedule is due (a timer on the database's clock), when schedules
// change (NOTIFY), and every `pollMs` as a fallback.
import type { Db } from "../db/client";
import type { Registry } from "../command-types/registry";
import type { Logger } from "../log";
import type { Listener } from "../db/listener";
import { msUntilNextDue, SCHEDULES_CHANNEL } from "../db/schedules";
import { directIntake } from "../commands/submit";
import { runDueSchedules, type TickOutcome } from "../commands/schedule-ticks";
import { Wake } from "../lib/wake";
import type { Service } from "./service";

export type SchedulerOptions = {
  db: Db;
  registry: Registry;
  log: Logger;
  listener?: Listener;
  secretKey: () => Promise<Buffer>;
  metrics?: { scheduleTicks: (outcome: TickOutcome, n: number) => void };
  /** Longest sleep between two looks (default 10 s). */
  pollMs?: number;
  /** Schedules per round (one transaction). */
  batch?: number;
};

/** While another worker holds the due schedules: look again this soon. */
const HELD_RETRY_MS = 25;

export function scheduler(o: SchedulerOptions): Service {
  const pollMs = o.pollMs ?? 10_000;
  const batch = o.batch ?? 20;
  const wake = new Wake();
  const intake = directIntake(o.db, o.registry);
  let stopping = false;
  let loop: Promise<void> = Promise.resolve();
  let failures = 0;

  /** One round, then how long to sleep. */
  const step = async (): Promise<number> => {
    const due = await runDueSchedules(
      { db: o.db, intake, secretKey: o.secretKey, log: o.log, onTick: o.metrics?.scheduleTicks },
      { limit: batch },
    );
    if (due >= batch) return 0;
    const ms = await msUntilNextDue(o.db);
    if (ms === null) return pollMs;
    // Due now but not taken: another worker holds it (or is about to commit its round).
    if (ms <= 0) return due > 0 ? 0 : HELD_RETRY_MS;
    // +1: a timer may fire up to a millisecond early; the round must find the tick due.
    return Math.min(pollMs, Math.ceil(ms) + 1);
  };

  return {
    name: "scheduler",
    start() {
      o.listener?.on(SCHEDULES_CHANNEL, () => wake.fire());
      // Notifications sent while the listener was down are lost: look again.
      o.listener?.onConnect(() => wake.fire());
      loop = (async () => {
        while (!stopping) {
          let sleep: number;
          try {
            sleep = await step();
            failures = 0;
          } catch (err) {
            sleep = Math.min(pollMs, 100 * 2 ** failures++);
            o.log.warn({ err: String(err) }, "scheduler round failed; trying again");
          }
          if (sleep > 0 && !stopping) await wake.wait(sleep);
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
