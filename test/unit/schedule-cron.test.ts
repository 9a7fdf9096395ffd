// Schedules' cron expressions (no database): what is accepted, the next and the
// latest tick, catch-up counting, and what croner does at daylight saving switches.
import { describe, expect, it } from "vitest";
import {
  canonicalTimezone,
  cronProblem,
  latestTick,
  nextTick,
  normalizeCron,
  ticksBetween,
  timezoneProblem,
} from "../../server/schedules/cron";

const iso = (d: Date | null) => d?.toISOString() ?? null;
const nexts = (cron: string, timezone: string, from: string, n: number) => {
  const out: string[] = [];
  let t: Date | null = new Date(from);
  for (let i = 0; i < n && t; i++) out.push(iso((t = nextTick({ cron, timezone }, t)))!);
  return out;
};

describe("accepts", () => {
  it.each([
    ["* * * * *"],
    ["0 3 * * 1-5"],
    ["*/15 * * * *"],
    ["0 0 1 JAN,JUL *"],
    ["30 2 * * SUN"],
    ["* * * * * *"],
    ["*/10 * * * * *"],
    ["0 0 29 2 *"],
    ["  5   4 * * *  "],
  ])("%j", (cron) => expect(cronProblem(cron)).toBeNull());

  it("stores the fields separated by single spaces", () => expect(normalizeCron("  5   4 * * * ")).toBe("5 4 * * *"));
});

describe("refuses", () => {
  it.each([
    ["", /5 fields .* or 6 with seconds first.*got 0/],
    ["* * * *", /got 4/],
    ["* * * * * * *", /got 7/],
    ["@daily", /got 1/],
    ["61 * * * *", /minute/],
    ["* 24 * * *", /hour/],
    ["* * 32 * *", /day/],
    ["* * * 13 *", /month/],
    ["*/0 * * * *", /illegal stepping/],
    ["a b c d e", /illegal characters/],
    ["0 0 30 2 *", /never matches/],
  ])("%j", (cron, message) => expect(cronProblem(cron)).toMatch(message));

  it.each([
    ["Mars/Olympus", /unknown time zone "Mars\/Olympus"/],
    ["+02:00", /IANA/],
    ["", /IANA/],
    ["Europe/Berlin ", /IANA/],
    ["../etc/passwd", /IANA/],
  ])("time zone %j", (tz, message) => expect(timezoneProblem(tz)).toMatch(message));

  it("takes IANA names, in any case, and spells them as the zone does", () => {
    for (const tz of ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+2"])
      expect(timezoneProblem(tz)).toBeNull();
    expect(canonicalTimezone("europe/berlin")).toBe("Europe/Berlin");
    expect(canonicalTimezone("UTC")).toBe("UTC");
  });
});

describe("ticks", () => {
  const every5 = { cron: "*/5 * * * *", timezone: "UTC" };
  it("next is strictly after; latest is at or before", () => {
    expect(iso(nextTick(every5, new Date("2026-01-01T00:05:00Z")))).toBe("2026-01-01T00:10:00.000Z");
    expect(iso(nextTick(every5, new Date("2026-01-01T00:04:59.999Z")))).toBe("2026-01-01T00:05:00.000Z");
    expect(iso(latestTick(every5, new Date("2026-01-01T00:05:00Z")))).toBe("2026-01-01T00:05:00.000Z");
    expect(iso(latestTick(every5, new Date("2026-01-01T00:05:00.999Z")))).toBe("2026-01-01T00:05:00.000Z");
    expect(iso(latestTick(every5, new Date("2026-01-01T00:09:59.999Z")))).toBe("2026-01-01T00:05:00.000Z");
  });

  it("seconds first, with 6 fields", () => {
    const s = { cron: "*/20 * * * * *", timezone: "UTC" };
    expect(nexts(s.cron, s.timezone, "2026-01-01T00:00:00Z", 3)).toEqual([
      "2026-01-01T00:00:20.000Z",
      "2026-01-01T00:00:40.000Z",
      "2026-01-01T00:01:00.000Z",
    ]);
  });

  it("reads the fields in the time zone", () => {
    const s = { cron: "0 9 * * *", timezone: "America/New_York" };
    expect(iso(nextTick(s, new Date("2026-01-15T00:00:00Z")))).toBe("2026-01-15T14:00:00.000Z"); // EST
    expect(iso(nextTick(s, new Date("2026-07-15T00:00:00Z")))).toBe("2026-07-15T13:00:00.000Z"); // EDT
  });

  it("counts the ticks a catch-up leaves out, up to a cap", () => {
    const from = new Date("2026-01-01T00:05:00Z");
    expect(ticksBetween(every5, from, new Date("2026-01-01T00:30:00Z"))).toBe(5); // :05 :10 :15 :20 :25
    expect(ticksBetween(every5, from, from)).toBe(0);
    expect(ticksBetween(every5, new Date("2026-01-01T00:06:00Z"), new Date("2026-01-01T00:30:00Z"))).toBe(4);
    expect(ticksBetween({ cron: "* * * * * *", timezone: "UTC" }, from, new Date("2026-01-02T00:00:00Z"), 50)).toBe(50);
  });
});

// Europe/Berlin: 2026-03-29 02:00 CET → 03:00 CEST (02:30 does not exist);
// 2026-10-25 03:00 CEST → 02:00 CET (02:30 happens twice: 00:30Z and 01:30Z).
describe("daylight saving time in Europe/Berlin", () => {
  const tz = "Europe/Berlin";
  it("spring forward: a fixed 02:30 runs at 03:00 CEST that day (not skipped), then at 02:30 again", () => {
    expect(nexts("30 2 * * *", tz, "2026-03-28T12:00:00Z", 3)).toEqual([
      "2026-03-29T01:00:00.000Z", // 03:00 CEST: the first instant after the gap
      "2026-03-30T00:30:00.000Z", // 02:30 CEST
      "2026-03-31T00:30:00.000Z",
    ]);
    // the latest tick agrees with the next one
    expect(iso(latestTick({ cron: "30 2 * * *", timezone: tz }, new Date("2026-03-29T01:30:00Z")))).toBe(
      "2026-03-29T01:00:00.000Z",
    );
  });

  it("spring forward: interval patterns have no ticks in the gap", () => {
    expect(nexts("*/30 * * * *", tz, "2026-03-29T00:00:00Z", 3)).toEqual([
      "2026-03-29T00:30:00.000Z", // 01:30 CET
      "2026-03-29T01:00:00.000Z", // 03:00 CEST (02:00 and 02:30 do not exist)
      "2026-03-29T01:30:00.000Z", // 03:30 CEST
    ]);
    expect(nexts("0 * * * *", tz, "2026-03-28T23:30:00Z", 3)).toEqual([
      "2026-03-29T00:00:00.000Z", // 01:00 CET
      "2026-03-29T01:00:00.000Z", // 03:00 CEST
      "2026-03-29T02:00:00.000Z", // 04:00 CEST
    ]);
  });

  it("fall back: a fixed 02:30 runs once, at the first occurrence (CEST)", () => {
    expect(nexts("30 2 * * *", tz, "2026-10-24T12:00:00Z", 2)).toEqual([
      "2026-10-25T00:30:00.000Z", // 02:30 CEST; not again at 02:30 CET (01:30Z)
      "2026-10-26T01:30:00.000Z", // 02:30 CET
    ]);
    expect(iso(latestTick({ cron: "30 2 * * *", timezone: tz }, new Date("2026-10-25T01:45:00Z")))).toBe(
      "2026-10-25T00:30:00.000Z",
    );
  });

  it("fall back: interval patterns run in both occurrences (they follow elapsed time)", () => {
    expect(nexts("*/30 * * * *", tz, "2026-10-24T23:45:00Z", 5)).toEqual([
      "2026-10-25T00:00:00.000Z", // 02:00 CEST
      "2026-10-25T00:30:00.000Z", // 02:30 CEST
      "2026-10-25T01:00:00.000Z", // 02:00 CET
      "2026-10-25T01:30:00.000Z", // 02:30 CET
      "2026-10-25T02:00:00.000Z", // 03:00 CET
    ]);
  });
});
