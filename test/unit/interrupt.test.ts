// An attempt's interruption (server/worker/attempt.ts): its AbortSignal is made
// only when a handler asks for it, and must behave as if it had always been there.
import { describe, expect, it } from "vitest";
import { Interrupt, LeaseLost, TimeoutError, underTimeout, withTimeout } from "../../server/worker/attempt";

const never = () => new Promise<never>(() => {});

describe("Interrupt and underTimeout", () => {
  it("settles at once on interruption, even when the handler ignores its signal", async () => {
    const intr = new Interrupt();
    const p = underTimeout(never, 60_000, intr);
    intr.abort(new LeaseLost());
    await expect(p).rejects.toBeInstanceOf(LeaseLost);
  });

  it("aborts a signal handed out before the interruption", async () => {
    const intr = new Interrupt();
    let seen: AbortSignal | undefined;
    const p = underTimeout(
      () => {
        seen = intr.signal;
        return new Promise((_, reject) =>
          seen!.addEventListener("abort", () => reject(new Error("handler saw the abort"))),
        );
      },
      60_000,
      intr,
    );
    intr.abort(new LeaseLost());
    await expect(p).rejects.toBeInstanceOf(LeaseLost);
    expect(seen!.aborted).toBe(true);
    expect(seen!.reason).toBeInstanceOf(LeaseLost);
  });

  it("hands out an already aborted signal after the interruption, and refuses to start", async () => {
    const intr = new Interrupt();
    intr.abort(new LeaseLost());
    expect(intr.signal.aborted).toBe(true);
    expect(intr.signal.reason).toBeInstanceOf(LeaseLost);
    let started = false;
    await expect(underTimeout(async () => (started = true), 60_000, intr)).rejects.toBeInstanceOf(LeaseLost);
    expect(started).toBe(false);
  });

  it("times out with a TimeoutError that the handler's signal carries too", async () => {
    const intr = new Interrupt();
    let seen: AbortSignal | undefined;
    await expect(underTimeout(() => ((seen = intr.signal), never()), 20, intr)).rejects.toBeInstanceOf(TimeoutError);
    expect(seen!.reason).toBeInstanceOf(TimeoutError);
  });

  it("passes results and errors through, synchronous throws included, and the first interruption wins", async () => {
    const intr = new Interrupt();
    await expect(underTimeout(async () => 42, 1_000, intr)).resolves.toBe(42);
    await expect(underTimeout(async () => Promise.reject(new Error("boom")), 1_000, intr)).rejects.toThrow("boom");
    await expect(
      underTimeout(
        () => {
          throw new Error("sync boom");
        },
        1_000,
        intr,
      ),
    ).rejects.toThrow("sync boom");
    // a later phase of the same command still runs: nothing was interrupted
    expect(intr.interrupted).toBe(false);
    intr.abort(new LeaseLost());
    intr.abort(new Error("second"));
    expect(intr.reason).toBeInstanceOf(LeaseLost);
  });

  it("withTimeout follows an outer signal", async () => {
    const outer = new AbortController();
    const p = withTimeout(() => never(), 60_000, outer.signal);
    outer.abort(new Error("stopping"));
    await expect(p).rejects.toThrow("stopping");
  });
});
