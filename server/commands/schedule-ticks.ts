// The scheduler's round (DESIGN §8): each due schedule submits the command of
// its latest tick at or before now, under the idempotency key
// schedule:<id>:<tick>, and moves on to the tick after. After a downtime that
// is one command, for the latest missed tick; the ticks before it are counted
// as missed. The schedule's row is locked for the round (SKIP LOCKED: another
// worker takes the others) and the key makes a repeat harmless: should a
// worker die between its submit and its commit, the next round submits the
// same key and gets the same command back.
import type { Db } from "../db/client";
import type { Logger } from "../log";
import { takeDueSchedules, type DueSchedule, type ScheduleAdvance } from "../db/schedules";
import { AppError } from "../errors";
import { latestTick, nextTick, ticksBetween } from "../schedules/cron";
import { submit, type IntakeDeps } from "./submit";
import { commandInput, tickKey } from "./schedules";
import { schedulesClientId } from "./schedule-client";

/** submitted: a tick's command was stored; missed: ticks left out by a catch-up; rejected: intake refused the command. */
export type TickOutcome = "submitted" | "missed" | "rejected";

export type TickDeps = {
  db: Db;
  intake: IntakeDeps;
  secretKey: () => Promise<Buffer>;
  log: Logger;
  onTick?: (outcome: TickOutcome, n: number) => void;
};

/** When a stored schedule cannot be read (it was checked when written, so only after a change of croner): again in a minute. */
const BROKEN_RETRY_MS = 60_000;

async function tick(
  deps: TickDeps,
  clientId: string,
  s: DueSchedule,
  now: Date,
  counted: [TickOutcome, number][],
): Promise<ScheduleAdvance> {
  const spec = { cron: s.cron, timezone: s.timezone };
  let latest: Date | null;
  try {
    latest = latestTick(spec, now);
  } catch (err) {
    deps.log.error({ schedule: s.id, cron: s.cron, timezone: s.timezone, err: String(err) }, "schedule unreadable");
    return { id: s.id, nextRunAt: new Date(now.getTime() + BROKEN_RETRY_MS) };
  }
  // next_run_at is a tick (croner's nextRun made it): should the backward search disagree, that tick still runs.
  const at = latest && latest >= s.nextRunAt ? latest : s.nextRunAt;
  const missed = ticksBetween(spec, s.nextRunAt, at);
  if (missed > 0) {
    counted.push(["missed", missed]);
    deps.log.info(
      { schedule: s.id, name: s.name, missed, since: s.nextRunAt.toISOString(), tick: at.toISOString() },
      "schedule catching up: one command for the latest tick",
    );
  }
  const advance = { id: s.id, nextRunAt: nextTick(spec, at), lastRunAt: at };
  try {
    const r = await submit(deps.intake, clientId, commandInput(s, tickKey(s.id, at)));
    if (!r.duplicate) counted.push(["submitted", 1]);
    return { ...advance, lastCommandId: r.id };
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    // Its type was removed or its payload no longer passes (a deploy changed the type): say so, go on.
    counted.push(["rejected", 1]);
    deps.log.error(
      { schedule: s.id, name: s.name, tick: at.toISOString(), code: err.code, err: err.message, issues: err.issues },
      "schedule's command refused by intake",
    );
    return advance;
  }
}

/**
 * One round over up to `limit` due schedules; answers how many were due (as
 * many as `limit`: there may be more). `at`: the clock, for tests; default the
 * database's.
 */
export async function runDueSchedules(deps: TickDeps, opts: { limit?: number; at?: Date } = {}): Promise<number> {
  const counted: [TickOutcome, number][] = [];
  let clientId: string | undefined;
  const n = await takeDueSchedules(
    deps.db,
    opts.limit ?? 20,
    async (due, now) => {
      clientId ??= await schedulesClientId(deps.db, deps.secretKey);
      const out: ScheduleAdvance[] = [];
      for (const s of due) out.push(await tick(deps, clientId, s, now, counted));
      return out;
    },
    opts.at ?? null,
  );
  // Counted once the round committed (a round rolled back is done again).
  for (const [outcome, k] of counted) deps.onTick?.(outcome, k);
  return n;
}
