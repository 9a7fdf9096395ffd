// A command's states (DESIGN §1), their groups, and the transitions allowed
// between them: the one list every part of Conveyor asks, the console too.
// Dependency-free, so that client components may import it. The database
// holds the same transitions (command_transitions, its trigger) and the same
// groups (checks, partial indexes): test/integration/lifecycle-sql.test.ts
// holds the two equal.
export const STATES = [
  /** Received and stored; waits for a worker (or for its run_at). */
  "pending",
  /** Claimed by one worker, under a lease. */
  "running",
  /** The backend accepted it asynchronously: its result is awaited by polling or by an inbound callback. */
  "awaiting",
  /** An attempt ended in exception (or a retryable failure); the next one is scheduled. */
  "retrying",
  /** Done; `result` holds the backend's answer. */
  "succeeded",
  /** A business failure, final by policy; `failure` says why. */
  "failed",
  /** Attempts exhausted, or the outcome cannot be established: an operator decides. */
  "exception",
  /** The type's compensation runs (retried like any attempt). */
  "compensating",
  /** The effects were undone. */
  "compensated",
  /** An operator stopped it before it finished. */
  "cancelled",
] as const;
export type State = (typeof STATES)[number];

export const TRANSITIONS: Record<State, readonly State[]> = {
  pending: ["running", "cancelled"],
  running: ["succeeded", "failed", "retrying", "awaiting", "exception"],
  awaiting: ["succeeded", "failed", "retrying", "exception", "cancelled"],
  retrying: ["running", "cancelled"],
  succeeded: ["compensating"],
  failed: ["compensating", "pending"],
  exception: ["pending", "succeeded", "failed", "compensating"],
  compensating: ["compensated", "exception"],
  compensated: [],
  cancelled: ["pending"],
};

export const canTransition = (from: State, to: State) => TRANSITIONS[from].includes(to);

// The groups. Each is written in the order the SQL built from it has always
// used, so that the statements' text stays what it was.

/**
 * At rest: no worker touches the command again unless an operator acts;
 * finished_at is set exactly in these (commands_finished_check).
 */
export const AT_REST = [
  "succeeded",
  "failed",
  "exception",
  "compensated",
  "cancelled",
] as const satisfies readonly State[];
const isAtRest = (s: State) => (AT_REST as readonly State[]).includes(s);

/** Entering one of these queues the upstream callback (DESIGN §3): every state at rest. */
export const NOTIFY_STATES: readonly State[] = AT_REST;

/** Not at rest: a worker will take it up again (or holds it now). */
export const IN_FLIGHT: readonly State[] = STATES.filter((s) => !isAtRest(s));

/** Waiting to be executed (again): a claim moves them to running. */
export const QUEUED = ["pending", "retrying"] as const satisfies readonly State[];

/**
 * What a worker may claim once it is due and no one holds it (the claim,
 * commands_claim_idx): the queued, and the awaiting and compensating, which
 * keep their state while claimed.
 */
export const CLAIMABLE = [...QUEUED, "awaiting", "compensating"] as const satisfies readonly State[];

/** The states a worker's lease can be held in (commands_lease_state_check): running, and the claimable ones that keep their state. */
export const LEASABLE = ["running", "awaiting", "compensating"] as const satisfies readonly State[];

/** At rest and no longer anyone's concern: retention deletes these after RETENTION_DAYS (an exception waits for its operator). */
export const PRUNABLE: readonly State[] = AT_REST.filter((s) => s !== "exception");

/** At rest without success: what the failure rate counts. */
export const UNSUCCESSFUL = ["failed", "exception"] as const satisfies readonly State[];

/**
 * Ordering keys (DESIGN §7): while an earlier command of its key is in one of
 * these, a command waits; an exception blocks its key until an operator acts.
 * Of a key's commands in these states exactly one is its head (key_waiting =
 * false, commands_ordering_idx).
 */
export const KEY_BLOCKING: readonly State[] = [...IN_FLIGHT, "exception"];

/** A command of an ordering key in one of these no longer holds its key back: every state at rest but exception. */
export const KEY_FREE: readonly State[] = PRUNABLE;

/**
 * Claimable and waiting for a worker once run_at has come (the overview's
 * "queued and due"): all but awaiting, whose run_at is its next poll.
 */
export const WAITING_FOR_A_WORKER: readonly State[] = CLAIMABLE.filter((s) => s !== "awaiting");

/**
 * The overview chart's kinds of finish, and the states counted in each when a
 * command enters them: compensated is counted with succeeded.
 */
export const FINISHES = {
  succeeded: ["succeeded", "compensated"],
  failed: ["failed"],
  exception: ["exception"],
} as const satisfies Record<string, readonly State[]>;
export type Finish = keyof typeof FINISHES;
export const FINISH_KINDS = Object.keys(FINISHES) as Finish[];
