// Cron expressions of schedules (DESIGN §8), read by croner: 5 fields
// (minute hour day-of-month month day-of-week), or 6 with seconds first, in an
// IANA time zone. Pure (no I/O) and importable in a browser: the console's
// schedule form checks with the same code as the server.
//
// Daylight saving time, as croner 11 handles it (test/unit/schedule-cron.test.ts):
// - A wall time that does not exist (clocks jump forward, e.g. Europe/Berlin
//   2026-03-29 02:00 → 03:00): a fixed-time pattern ("30 2 * * *") runs at the
//   first instant after the gap (03:00 local), so the day is not skipped; a
//   pattern with a wildcard or step in its second, minute or hour ("*/30 * * * *",
//   "0 * * * *") simply has no ticks in the gap.
// - A wall time that happens twice (clocks go back, e.g. 2026-10-25 03:00 → 02:00):
//   a fixed-time pattern runs once, at the first occurrence (02:30 summer time);
//   an interval pattern runs in both (it follows elapsed time).
import { Cron } from "croner";

export type CronSpec = { cron: string; timezone: string };

const FIELDS =
  "must have 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first, separated by spaces";

/** Why `tz` is not an IANA time zone name, or null. */
export function timezoneProblem(tz: string): string | null {
  // Intl also takes offsets ("+02:00") on newer runtimes: a name is letters, digits, _ + - and slashes.
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(tz))
    return "must be an IANA time zone name, e.g. UTC or Europe/Berlin";
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return null;
  } catch {
    return `unknown time zone "${tz}"; use an IANA name, e.g. UTC or Europe/Berlin`;
  }
}

/** The zone's name in its own spelling ("europe/berlin" → "Europe/Berlin"); other aliases are kept as written. */
export function canonicalTimezone(tz: string): string {
  const resolved = new Intl.DateTimeFormat("en-US", { timeZone: tz }).resolvedOptions().timeZone;
  return resolved.toLowerCase() === tz.toLowerCase() ? resolved : tz;
}

const cache = new Map<string, Cron>();

/** The compiled pattern (cached: the scheduler asks every round). Throws on a bad pattern or zone. */
function compiled(s: CronSpec): Cron {
  const k = `${s.timezone}\u0000${s.cron}`;
  let c = cache.get(k);
  if (!c) {
    if (cache.size >= 1000) cache.clear();
    c = new Cron(s.cron.trim(), { timezone: s.timezone, mode: "5-or-6-parts" });
    cache.set(k, c);
  }
  return c;
}

/** The expression with its fields separated by single spaces (as stored). */
export const normalizeCron = (cron: string) => cron.trim().split(/\s+/).join(" ");

/** Why `cron` is not a schedule's expression (in zone `tz`, when that is valid), or null. */
export function cronProblem(cron: string, tz = "UTC"): string | null {
  const fields = cron.trim().split(/\s+/).filter(Boolean);
  if (fields.length !== 5 && fields.length !== 6) return `${FIELDS}; got ${fields.length}`;
  const zone = timezoneProblem(tz) ? "UTC" : tz;
  let c: Cron;
  try {
    c = compiled({ cron, timezone: zone });
  } catch (err) {
    return String((err as Error).message ?? err).replace(/^CronPattern:\s*/, "");
  }
  if (!c.nextRun(new Date())) return "never matches a date (e.g. February 30)";
  return null;
}

/** The first tick strictly after `after`, or null when there is none. */
export function nextTick(s: CronSpec, after: Date): Date | null {
  return compiled(s).nextRun(after);
}

/** The latest tick at or before `at` (ticks fall on whole seconds), or null when there is none. */
export function latestTick(s: CronSpec, at: Date): Date | null {
  // croner's previousRuns is strictly before its (whole-second) reference.
  const ref = new Date(Math.floor(at.getTime() / 1000) * 1000 + 1000);
  return compiled(s).previousRuns(1, ref)[0] ?? null;
}

/**
 * How many ticks fall in [from, to): the ones a catch-up leaves out. Counted
 * one by one (croner has no arithmetic for it) up to `cap`, which bounds the
 * work after a long downtime of a frequent schedule.
 */
export function ticksBetween(s: CronSpec, from: Date, to: Date, cap = 1000): number {
  const c = compiled(s);
  let n = 0;
  let t: Date | null = latestTick(s, from)?.getTime() === from.getTime() ? from : c.nextRun(from);
  while (t && t < to && n < cap) {
    n++;
    t = c.nextRun(t);
  }
  return n;
}
