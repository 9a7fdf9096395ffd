// The one module that owns command states (DESIGN §1): which exist, which
// transitions are allowed, and the predicates the rest of the code asks.
export const STATES = [
  "pending",
  "running",
  "awaiting",
  "retrying",
  "succeeded",
  "failed",
  "exception",
  "compensating",
  "compensated",
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

/** States in which the command is at rest: no worker will touch it again without an operator. */
export const AT_REST: readonly State[] = ["succeeded", "failed", "exception", "compensated", "cancelled"];
export const isAtRest = (s: State) => AT_REST.includes(s);

/** States that trigger the upstream callback (DESIGN §3). */
export const NOTIFY_STATES: readonly State[] = ["succeeded", "failed", "exception", "compensated", "cancelled"];

/** States waiting for a worker. */
export const QUEUED: readonly State[] = ["pending", "retrying"];
