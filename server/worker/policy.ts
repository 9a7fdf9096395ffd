// What happens to a command after an attempt: pure decisions from the type's
// policy (and the command's own `retry` override), so that the worker, the
// rescuer and the tests agree. States are changed by server/db/engine.ts.
import { canReconcile, type CommandType, type RetryPolicy } from "../handlers/types";
import type { State } from "../commands/state";
import { backoffMs } from "./backoff";

export type Claimed = {
  id: string;
  leaseId: string;
  type: string;
  payload: unknown;
  status: State; // status after the claim: running | awaiting | compensating
  phase: "execute" | "compensate";
  tries: number;
  attemptCount: number;
  needsReconcile: boolean;
  maxAttempts: number | null;
  backoffMs: number | null;
  maxBackoffMs: number | null;
  stateChangedAt: Date;
  clientId: string;
  /** When it became due (pickup lag is measured from here). */
  runAt: Date;
};

/** The change a finished attempt asks for. */
export type Next =
  | { to: "succeeded"; result: unknown }
  | { to: "failed"; failure: unknown; compensate: boolean }
  | { to: "retrying"; delayMs: number; reconcile: boolean; error: string | null; failure?: unknown }
  | { to: "awaiting"; delayMs: number | null }
  /** reconcile: the last outcome is unknown, so an operator's retry asks the backend first. */
  | { to: "exception"; error: string; reconcile?: boolean }
  | { to: "compensating"; delayMs: number; error: string }
  | { to: "compensated"; result: unknown };

export function retryPolicy(type: Pick<CommandType, "retry">, c: Pick<Claimed, "maxAttempts" | "backoffMs" | "maxBackoffMs">): RetryPolicy {
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
const gaveUp = (tries: number, max: number) => `gave up after ${tries} ${tries === 1 ? "try" : "tries"} (maxAttempts ${max})`;

/**
 * An attempt whose outcome is unknown (exception, timeout, lost lease, crash).
 * `tries` already counts this attempt. Retries while the budget lasts; the next
 * attempt reconciles first when it can, or re-executes when the type is
 * idempotent; otherwise an operator must decide.
 */
export function afterUnknown(type: CommandType, payload: unknown, c: Claimed, tries: number, error: string): Next {
  const p = retryPolicy(type, c);
  if (!canReconcile(type, payload) && !type.idempotent(payload)) {
    return { to: "exception", error: `${error}; outcome unknown, and this command can neither be reconciled (no status query) nor safely sent again (not idempotent)`, reconcile: true };
  }
  if (tries >= p.maxAttempts) return { to: "exception", error: `${error}; ${gaveUp(tries, p.maxAttempts)}`, reconcile: true };
  return { to: "retrying", delayMs: backoffMs(tries, p.backoffMs, p.maxBackoffMs), reconcile: true, error };
}

/** A business failure: final (and maybe compensated) or retried, per the type. */
export function afterFailure(type: CommandType, c: Claimed, tries: number, failure: unknown): Next {
  const p = retryPolicy(type, c);
  if (type.retryBusinessFailures && tries < p.maxAttempts) {
    return { to: "retrying", delayMs: backoffMs(tries, p.backoffMs, p.maxBackoffMs), reconcile: false, error: null, failure };
  }
  return { to: "failed", failure, compensate: type.compensateOnFailure && !!type.compensate };
}

/** A compensation attempt that threw: retried like any attempt, then `exception` with the phase shown. */
export function afterCompensationError(type: CommandType, c: Claimed, tries: number, error: string): Next {
  const p = retryPolicy(type, c);
  if (tries >= p.maxAttempts) return { to: "exception", error: `compensation could not complete: ${error}; ${gaveUp(tries, p.maxAttempts)}` };
  return { to: "compensating", delayMs: backoffMs(tries, p.backoffMs, p.maxBackoffMs), error: `compensation: ${error}` };
}

/** How long to wait before asking an asynchronous backend again. */
export function pollDelayMs(type: CommandType, polls: number): number {
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
export function claimedAttemptKind(c: { status: string; needsReconcile: boolean }, reconcilable: boolean): "execute" | "reconcile" | "compensate" | "poll" {
  if (c.status === "compensating") return "compensate";
  if (c.status === "awaiting") return "poll";
  return c.needsReconcile && reconcilable ? "reconcile" : "execute";
}
