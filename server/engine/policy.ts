// What happens to a command after an attempt: pure decisions from the type's
// policy (and the command's own `retry` override), so that the worker, the
// rescuer, the console and the tests agree. ./transitions.ts turns them into
// completions.
import type { Claimed, Next, RetryPolicy, TypeRules } from "./types";
import { backoffMs } from "./backoff";

/** Can an unknown outcome of this command be reconciled by asking the backend? */
export const canReconcile = (type: Pick<TypeRules, "query" | "canQuery">, payload: unknown) =>
  !!type.query && (type.canQuery?.(payload) ?? true);

export function retryPolicy(
  type: Pick<TypeRules, "retry">,
  c: Pick<Claimed, "maxAttempts" | "backoffMs" | "maxBackoffMs">,
): RetryPolicy {
  return {
    maxAttempts: c.maxAttempts ?? type.retry.maxAttempts,
    backoffMs: c.backoffMs ?? type.retry.backoffMs,
    maxBackoffMs: c.maxBackoffMs ?? type.retry.maxBackoffMs,
  };
}

/**
 * Says tries (the retry budget, RetryPolicy.maxAttempts), not attempts: the
 * command's attempt history also holds reconciles and polls that use none.
 */
const gaveUp = (tries: number, max: number) =>
  `gave up after ${tries} ${tries === 1 ? "try" : "tries"} (maxAttempts ${max})`;

/**
 * An attempt whose outcome is unknown (exception, timeout, lost lease, crash).
 * `tries` already counts this attempt. Retries while the budget lasts; the next
 * attempt reconciles first when it can, or re-executes when the type is
 * idempotent; otherwise an operator must decide.
 */
export function afterUnknown(type: TypeRules, payload: unknown, c: Claimed, tries: number, error: string): Next {
  const p = retryPolicy(type, c);
  if (!canReconcile(type, payload) && !type.idempotent(payload)) {
    return {
      to: "exception",
      error: `${error}; outcome unknown, and this command can neither be reconciled (no status query) nor safely sent again (not idempotent)`,
      reconcile: true,
    };
  }
  if (tries >= p.maxAttempts)
    return { to: "exception", error: `${error}; ${gaveUp(tries, p.maxAttempts)}`, reconcile: true };
  return { to: "retrying", delayMs: backoffMs(tries, p.backoffMs, p.maxBackoffMs), reconcile: true, error };
}

/** A business failure: final (and maybe compensated) or retried, per the type. */
export function afterFailure(type: TypeRules, c: Claimed, tries: number, failure: unknown): Next {
  const p = retryPolicy(type, c);
  if (type.retryBusinessFailures && tries < p.maxAttempts) {
    return {
      to: "retrying",
      delayMs: backoffMs(tries, p.backoffMs, p.maxBackoffMs),
      reconcile: false,
      error: null,
      failure,
    };
  }
  return { to: "failed", failure, compensate: type.compensateOnFailure && !!type.compensate };
}

/** A compensation attempt that threw: retried like any attempt, then `exception` with the phase shown. */
export function afterCompensationError(type: TypeRules, c: Claimed, tries: number, error: string): Next {
  const p = retryPolicy(type, c);
  if (tries >= p.maxAttempts)
    return { to: "exception", error: `compensation could not complete: ${error}; ${gaveUp(tries, p.maxAttempts)}` };
  return {
    to: "compensating",
    delayMs: backoffMs(tries, p.backoffMs, p.maxBackoffMs),
    error: `compensation: ${error}`,
  };
}

/** How long to wait before asking an asynchronous backend again. */
export function pollDelayMs(type: Pick<TypeRules, "poll">, polls: number): number {
  const every = type.poll?.intervalMs ?? 5_000;
  return Math.min(type.poll?.maxIntervalMs ?? 60_000, every * 2 ** Math.min(polls, 10));
}

/**
 * The kind of attempt a worker holding this command is making: the one its
 * claim begins with (a reconcile that finds nothing sent goes on to execute
 * under the same claim). `reconcilable`: canReconcile of its type and parsed
 * payload. The rescuer records an expired lease as this kind; the console
 * shows the attempt in progress as this kind.
 */
export function claimedAttemptKind(
  c: { status: string; needsReconcile: boolean },
  reconcilable: boolean,
): "execute" | "reconcile" | "compensate" | "poll" {
  if (c.status === "compensating") return "compensate";
  if (c.status === "awaiting") return "poll";
  return c.needsReconcile && reconcilable ? "reconcile" : "execute";
}
