// Time-ordered ids (issue #19): command ids made by intake and the SDK's idempotency keys are UUID v7, so a
// new command's index entries land at the right edge of the primary key, the attempts' key and the unique
// index of keys. The layout is RFC 9562's: version 7, variant 10, the first 48 bits Unix milliseconds.
import { describe, expect, it } from "vitest";
import { newCommandId } from "../../server/engine/ids";
import { newIdempotencyKey } from "../../packages/client/src/index";

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const millis = (id: string) => parseInt(id.replace(/-/g, "").slice(0, 12), 16);

describe("newCommandId", () => {
  it("makes v7 ids that sort in the order they were made, even within one millisecond", () => {
    const before = Date.now();
    const ids = Array.from({ length: 5_000 }, () => newCommandId());
    const after = Date.now();
    for (const id of ids) expect(id).toMatch(V7);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect(millis(ids[0]!)).toBeGreaterThanOrEqual(before);
    expect(millis(ids.at(-1)!)).toBeLessThanOrEqual(after + 1);
  });
});

describe("newIdempotencyKey", () => {
  it("makes v7 keys whose first 48 bits are the time in milliseconds", () => {
    const t = Date.parse("2026-12-04T12:34:56.789Z");
    const key = newIdempotencyKey(t);
    expect(key).toMatch(V7);
    expect(millis(key)).toBe(t);
    expect(key.slice(0, 13)).toBe("01a2410c-f095");
    expect(newIdempotencyKey(t + 1) > newIdempotencyKey(t)).toBe(true);
    expect(millis(newIdempotencyKey())).toBeGreaterThan(t);
  });

  it("keeps 74 random bits: keys of one millisecond differ", () => {
    const t = Date.now();
    const keys = new Set(Array.from({ length: 10_000 }, () => newIdempotencyKey(t)));
    expect(keys.size).toBe(10_000);
    for (const k of keys) expect(k.slice(0, 13)).toBe([...keys][0]!.slice(0, 13));
  });
});
