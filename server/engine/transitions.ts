// The state changes a worker writes, by name: every Completion is built here,
// from the attempt runner (server/worker/attempt.ts), the claim loop's
// hand-back and crash guard, the rescuer and the completer. Each says which
// transition it makes; the database refuses any other (command_transitions).
import type {
  AttemptKind,
  AttemptOutcome,
  AttemptRecord,
  Claimed,
  Completion,
  Expired,
  Next,
  TypeRules,
} from "./types";
import { afterCompensationError, afterUnknown, canReconcile, claimedAttemptKind } from "./policy";

/**
 * The attempts one claim has recorded so far, and the clock they use. The
 * command's attempt count after them is `count`.
 */
export class AttemptLog {
  readonly records: AttemptRecord[] = [];
  count: number;
  constructor(
    readonly claimed: Claimed,
    readonly worker: string,
    readonly now: () => Date = () => new Date(),
  ) {
    this.count = claimed.attemptCount;
  }
  record(kind: AttemptKind, startedAt: Date, outcome: AttemptOutcome, error: string | null, detail?: unknown) {
    this.records.push({
      number: ++this.count,
      kind,
      outcome,
      startedAt,
      finishedAt: this.now(),
      error,
      worker: this.worker,
      detail,
    });
  }
  /** `ms` from now. */
  in(ms: number): Date {
    return new Date(this.now().getTime() + ms);
  }
}

// Every completion has the same shape (one hidden class), built in one place:
// object spreads here were ~15 % of a worker's own CPU.
function completion(
  c: Pick<Claimed, "id" | "leaseId" | "phase"> & { keyed?: boolean },
  status: Completion["status"],
  runAt: Completion["runAt"],
  tries: number,
  needsReconcile: boolean,
  error: string | null,
  attemptCount: number,
  attempts: AttemptRecord[],
  result?: unknown,
  failure?: unknown,
  thenCompensate?: boolean,
): Completion {
  return {
    id: c.id,
    leaseId: c.leaseId,
    status,
    phase: c.phase,
    runAt,
    tries,
    needsReconcile,
    result,
    failure,
    error,
    attemptCount,
    attempts,
    thenCompensate,
    keyed: c.keyed,
  };
}

/** → succeeded, with the backend's result. */
export const succeeded = (log: AttemptLog, tries: number, result: unknown) =>
  completion(log.claimed, "succeeded", null, tries, false, null, log.count, log.records, result ?? null);

/** → failed, final; `thenCompensate`: and on to compensating in the same transaction. */
const failedFinal = (log: AttemptLog, tries: number, failure: unknown, thenCompensate: boolean) =>
  completion(
    log.claimed,
    "failed",
    null,
    tries,
    false,
    null,
    log.count,
    log.records,
    undefined,
    failure ?? null,
    thenCompensate,
  );

/** → retrying in `delayMs`; `reconcile`: the last outcome is unknown, so the next attempt asks the backend first. */
export const retryLater = (
  log: AttemptLog,
  tries: number,
  delayMs: number,
  reconcile: boolean,
  error: string | null,
  failure?: unknown,
) =>
  completion(
    log.claimed,
    "retrying",
    log.in(delayMs),
    tries,
    reconcile,
    error,
    log.count,
    log.records,
    undefined,
    failure,
  );

/** → awaiting the backend's result: polled again in `delayMs`, or (null) only told by an inbound callback. */
export const awaitResult = (log: AttemptLog, tries: number, delayMs: number | null) =>
  completion(
    log.claimed,
    "awaiting",
    delayMs === null ? "infinity" : log.in(delayMs),
    tries,
    false,
    null,
    log.count,
    log.records,
  );

/** → exception, for an operator; `reconcile`: the outcome is unknown, so an operator's retry asks the backend first. */
export const toException = (log: AttemptLog, tries: number, error: string, reconcile = false) =>
  completion(log.claimed, "exception", null, tries, reconcile, error, log.count, log.records);

/** → compensating again in `delayMs` (the compensation did not complete). */
export const compensateLater = (log: AttemptLog, tries: number, delayMs: number, error: string) =>
  completion(log.claimed, "compensating", log.in(delayMs), tries, false, error, log.count, log.records);

/** → compensated (the stored result is kept). */
export const compensated = (log: AttemptLog, tries: number) =>
  completion(log.claimed, "compensated", null, tries, false, null, log.count, log.records);

/** The completion for a decision of ./policy.ts. */
export function follow(log: AttemptLog, tries: number, next: Next): Completion {
  switch (next.to) {
    case "succeeded":
      return succeeded(log, tries, next.result);
    case "failed":
      return failedFinal(log, tries, next.failure, next.compensate);
    case "retrying":
      return retryLater(log, tries, next.delayMs, next.reconcile, next.error, next.failure);
    case "awaiting":
      return awaitResult(log, tries, next.delayMs);
    case "exception":
      return toException(log, tries, next.error, next.reconcile);
    case "compensating":
      return compensateLater(log, tries, next.delayMs, next.error);
    case "compensated":
      return compensated(log, tries);
  }
}

/** A claimed command that never started goes back as it was (no attempt was made): running → retrying, due now. */
export const handBack = (c: Claimed) =>
  completion(
    c,
    c.status === "running" ? "retrying" : c.status,
    new Date(),
    c.tries,
    c.needsReconcile,
    null,
    c.attemptCount,
    [],
  );

/**
 * The attempt runner itself failed (a bug): → exception, so that the claim is released; what it recorded is lost.
 * It may have called the backend first, so the outcome is unknown: an operator's retry reconciles first.
 */
export const runnerFailed = (c: Claimed, error: string) =>
  completion(c, "exception", null, c.tries, true, `internal error: ${error}`, c.attemptCount, []);

/**
 * A lease that expired in another worker's hands (it crashed or lost the
 * database): the attempt it was making is recorded with an unknown outcome,
 * and the command goes on as after any unknown outcome. An awaiting command
 * is simply polled again. `payload`: parsed by the type's schema when it can be.
 */
export function rescued(r: Expired, type: TypeRules | undefined, payload: unknown): Completion {
  const log = new AttemptLog(r, r.lockedBy);
  const error = `lease expired: worker ${r.lockedBy} stopped renewing it (it crashed or lost the database); outcome unknown`;
  log.record(
    claimedAttemptKind(r, !!type && canReconcile(type, payload)),
    r.attemptStartedAt ?? new Date(),
    "exception",
    error,
  );
  if (r.status === "awaiting") return awaitResult(log, r.tries, 0);
  const tries = r.tries + 1;
  if (!type) return toException(log, tries, `${error}; unknown command type`);
  return follow(
    log,
    tries,
    r.status === "compensating"
      ? afterCompensationError(type, r, tries, error)
      : afterUnknown(type, payload, r, tries, error),
  );
}

/**
 * What is left of a completion the database will not store: an exception,
 * reconciled first if an operator retries (the backend may have acted).
 * `attempts`: those that can still be stored.
 */
export const unrecordable = (c: Completion, error: string, attempts: AttemptRecord[]) =>
  completion(c, "exception", null, c.tries, true, error, c.attemptCount, attempts, undefined, undefined, false);
