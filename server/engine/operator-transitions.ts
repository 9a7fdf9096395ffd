// The state changes an operator's action writes, by name, like the worker's
// (./transitions.ts): each says which transition it makes and what else it
// sets. server/db/operator-actions.ts renders the change into the statement's
// SET clause; the database refuses a transition that is not allowed
// (command_transitions), and the action applies only in ACTION_FROM.
import { ACTION_FROM, type ActionName, type ResolveOutcome } from "./actions";
import type { State } from "./states";
import type { Phase } from "./types";

/** Where a change takes a command: the state (and phase) it ends in, when it is in `when`. */
export type OperatorTarget = {
  /** Only for a command in this state (and phase); a target without one applies to all the others. */
  when?: { status: State; phase?: Phase };
  status: State;
  /** The phase it ends in; left out: kept. */
  phase?: Phase;
};

/** What an operator's action writes. A column whose flag is false is kept as it was. */
export type OperatorChange = {
  action: ActionName;
  /** The states it applies in. */
  from: readonly State[];
  /** Where it takes a command: the first target whose `when` matches; the last has none. */
  to: readonly OperatorTarget[];
  /** tries = 0: a new round of attempts. */
  resetTries: boolean;
  /** run_at = now(): due at once. */
  dueNow: boolean;
  /** needs_reconcile = false: the next attempt does not ask the backend first. */
  clearReconcile: boolean;
  /** error = NULL. */
  clearError: boolean;
  /** failure = NULL for a command in one of these states. */
  clearFailureIn: readonly State[];
};

/**
 * failed | exception | cancelled → pending, run again (execute) in a new round
 * of tries, due now; an exception met while compensating → compensating
 * instead. needs_reconcile is kept: an unknown last outcome is still
 * reconciled first. A failed command's failure is cleared (it is run again);
 * an exception's or a cancelled one's is kept.
 */
export const operatorRetry = (): OperatorChange => ({
  action: "retry",
  from: ACTION_FROM.retry,
  to: [
    { when: { status: "exception", phase: "compensate" }, status: "compensating", phase: "compensate" },
    { status: "pending", phase: "execute" },
  ],
  resetTries: true,
  dueNow: true,
  clearReconcile: false,
  clearError: true,
  clearFailureIn: ["failed"],
});

/**
 * Edit & retry (DESIGN §9): the change of a retry, made by the action that
 * also stores the corrected payload (server/db/operator-actions.ts
 * applyEdit). Same states, same targets: an exception met while
 * compensating goes back to compensating (with the edited payload, e.g. a
 * compensateUrl that moved); needs_reconcile is kept, so that an unknown
 * last outcome is still reconciled first; an ordering key is rejoined as a
 * retried command rejoins it.
 */
export const operatorEditAndRetry = (): OperatorChange => ({
  ...operatorRetry(),
  action: "editAndRetry",
  from: ACTION_FROM.editAndRetry,
});

/** succeeded | failed | exception → compensating, in a new round of tries, due now, without reconciling first. */
export const operatorCompensate = (): OperatorChange => ({
  action: "compensate",
  from: ACTION_FROM.compensate,
  to: [{ status: "compensating", phase: "compensate" }],
  resetTries: true,
  dueNow: true,
  clearReconcile: true,
  clearError: true,
  clearFailureIn: [],
});

/** pending | retrying | awaiting → cancelled; nothing is reconciled any more, the rest is kept. */
export const operatorCancel = (): OperatorChange => ({
  action: "cancel",
  from: ACTION_FROM.cancel,
  to: [{ status: "cancelled" }],
  resetTries: false,
  dueNow: false,
  clearReconcile: true,
  clearError: false,
  clearFailureIn: [],
});

/** exception → `outcome` (succeeded | failed), as the operator found it; the error is kept for the record. */
export const operatorResolve = (outcome: ResolveOutcome): OperatorChange => ({
  action: "resolve",
  from: ACTION_FROM.resolve,
  to: [{ status: outcome }],
  resetTries: false,
  dueNow: false,
  clearReconcile: true,
  clearError: false,
  clearFailureIn: [],
});
