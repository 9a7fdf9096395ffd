// The SDK's retry timing: exponential backoff with jitter, and Retry-After in both of its forms.
import { describe, expect, it } from "vitest";
import { backoffDelay, parseRetryAfter } from "../../packages/client/src/index";

describe("backoffDelay", () => {
  it("doubles from the base up to the cap, each delay drawn from the upper half of its ceiling", () => {
    const low = [0, 1, 2, 3, 10].map((n) => backoffDelay(n, 200, 5_000, () => 0));
    const high = [0, 1, 2, 3, 10].map((n) => backoffDelay(n, 200, 5_000, () => 0.999999));
    expect(low).toEqual([100, 200, 400, 800, 2_500]);
    high.forEach((h, i) => expect(h).toBeCloseTo([200, 400, 800, 1_600, 5_000][i]!, 2));
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2026-03-01T12:00:00Z");
  it("reads delay-seconds and HTTP dates", () => {
    expect(parseRetryAfter("3", now)).toBe(3_000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter("Sun, 01 Mar 2026 12:00:05 GMT", now)).toBe(5_000);
  });
  it("treats a date in the past as now, and anything else as absent", () => {
    expect(parseRetryAfter("Sun, 01 Mar 2026 11:59:00 GMT", now)).toBe(0);
    for (const v of [null, undefined, "", "soon", "-1", "1.5"]) expect(parseRetryAfter(v, now)).toBeUndefined();
  });
});
