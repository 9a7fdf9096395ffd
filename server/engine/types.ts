// The shapes the worker and the SQL share: a claimed command, the change a
// finished attempt asks for, the completion that is written, and what the
// lifecycle decisions need to know of a command type.
import type { State } from "./states";

export type Phase = "execute" | "compensate";

export type RetryPolicy = {
  /**
   * Tries per round before the command goes to `exception`. A try is an attempt
   * that uses the retry budget: an execute, a compensate, a reconcile that could
   * not tell, a lease that expired mid-attempt. A reconcile that finds the command
   * never arrived (the execute after it is the try), polls, and attempts cut short
   * by a shutdown use none; an operator's retry starts a new round.
   */
  maxAttempts: number;
  /** Base of the exponential backoff: attempt n waits up to backoffMs * 2^(n-1), with full jitter. */
  backoffMs: number;
  /** Cap of one wait. */
  maxBackoffMs: number;
};

/** What the decisions (./policy.ts) read of a command type; every CommandType (server/command-types/types.ts) is one. */
export type TypeRules = {
  name: string;
  retry: RetryPolicy;
  /** Whether a business failure is retried (like an exception) instead of being final. */
  retryBusinessFailures: boolean;
  /** Whether a final business failure is compensated automatically. */
  compensateOnFailure: boolean;
  idempotent: (payload: unknown) => boolean;
  query?: unknown;
  canQuery?: (payload: unknown) => boolean;
  compensate?: unknown;
  poll?: { intervalMs?: number; maxIntervalMs?: number; maxWaitMs?: number };
};

/** A command a worker holds under a lease, as the claim returns it. */
export type Claimed = {
  id: string;
  leaseId: string;
  type: string;
  payload: unknown;
  status: State; // status after the claim: running | awaiting | compensating
  phase: Phase;
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
  /** The counterpart's host (the http type's target), or null. */
  targetHost: string | null;
  /** Let through as its circuit's probe (half-open): its outcome closes or reopens the circuit. */
  probe: boolean;
  /** It has an ordering key: its completion takes the key's lock (server/db/completion.ts). */
  keyed: boolean;
  /** The W3C trace context it was submitted with (DESIGN §10), or null: its requests carry a child traceparent. */
  trace: { parent: string; state: string | null } | null;
};

/** A command whose lease expired in another worker's hands, as the rescuer finds it. */
export type Expired = Claimed & { lockedBy: string; attemptStartedAt: Date | null };

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

export type AttemptKind = "execute" | "reconcile" | "compensate" | "poll" | "callback";
export type AttemptOutcome = "success" | "failure" | "exception" | "accepted" | "not_found" | "unknown";

export type AttemptRecord = {
  number: number;
  kind: AttemptKind;
  outcome: AttemptOutcome;
  startedAt: Date;
  finishedAt: Date;
  error: string | null;
  worker: string;
  detail?: unknown;
};

/**
 * The row a finished claim leaves behind (built by ./transitions.ts). `undefined`
 * result/failure keep the stored value.
 */
export type Completion = {
  id: string;
  leaseId: string;
  status: State;
  phase: Phase;
  /** null keeps run_at; a Date or "infinity" sets it. */
  runAt: Date | "infinity" | null;
  tries: number;
  needsReconcile: boolean;
  result?: unknown;
  failure?: unknown;
  error: string | null;
  attemptCount: number;
  attempts: AttemptRecord[];
  /** Enter compensation right after the final failure (failed → compensating, in the same transaction). */
  thenCompensate?: boolean;
  /** false: the command has no ordering key, so its completion needs no key lock (unknown: taken to have one). */
  keyed?: boolean;
};
