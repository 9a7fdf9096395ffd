// What a command type is (DESIGN §2). A type is one file exporting a
// CommandType, plus one line in server/command-types/index.ts.
import type { z } from "zod";
import type { RetryPolicy } from "../engine/types";
import type { TypeFlow } from "../flow/scopes";

export type AttemptContext = {
  commandId: string;
  /** Same value on every attempt of the command: backends deduplicate on it. */
  idempotencyKey: string;
  attempt: number;
  /**
   * Aborted on timeout, lost lease or shutdown. Made when first read (a getter):
   * read it inside the handler, where it is needed. The attempt settles on those
   * events even if the handler never reads it.
   */
  signal: AbortSignal;
  /** Checks an outbound URL against HTTP_ALLOWED_HOSTS; throws TargetRefused. Call it before every request. */
  checkUrl?: (url: string) => Promise<void>;
  /**
   * The fetch to use for outbound requests: it re-checks the address it connects to (DNS rebinding).
   * The worker's (createOutboundFetch) also has `request`, the leaner client the http type uses.
   */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** For asynchronous backends: where to POST the result later, and the secret to sign it with (HMAC-SHA256). */
  result?: { url: string; secret: string };
  /**
   * W3C Trace Context for the attempt's outbound requests (DESIGN §10), when
   * the command has one: a child of the submit's trace (the attempt's span when
   * tracing is on). Send it as the `traceparent` header (and `tracestate`).
   */
  traceparent?: string;
  tracestate?: string;
};

/** The result of `execute`. Throwing (or timing out) means the outcome is unknown: an exception. */
export type ExecuteResult =
  | { outcome: "success"; result?: unknown }
  | { outcome: "failure"; failure: unknown }
  /** The backend accepted the command and will finish it later (polled with `query`, or by inbound callback). */
  | { outcome: "accepted"; detail?: unknown };

/** The result of `query`: what became of an earlier attempt whose outcome is unknown. */
export type QueryResult =
  | { outcome: "success"; result?: unknown }
  | { outcome: "failure"; failure: unknown }
  /** The backend never received it: execute again, with the same idempotency key. */
  | { outcome: "not_found" }
  /** Cannot tell yet (still processing, or the status endpoint is unavailable): ask again later. */
  | { outcome: "unknown"; detail?: unknown };

export type CompensateResult = { outcome: "success"; result?: unknown } | { outcome: "failure"; failure: unknown };

export type CommandType<P = unknown> = {
  name: string;
  description: string;
  /** Validates the payload at intake; the worker re-parses the stored payload with it. */
  schema: z.ZodType<P>;
  /**
   * The outbound URLs a payload names, each with its path under `payload`:
   * intake refuses one whose host an explicit HTTP_ALLOWED_HOSTS list does
   * not name (the worker would refuse to call it).
   */
  targets?: (payload: P) => { path: (string | number)[]; url: string }[];
  execute: (payload: P, ctx: AttemptContext) => Promise<ExecuteResult>;
  query?: (payload: P, ctx: AttemptContext) => Promise<QueryResult>;
  /** Whether `query` can reconcile this particular payload (default: whenever `query` exists). */
  canQuery?: (payload: P) => boolean;
  compensate?: (payload: P, ctx: AttemptContext) => Promise<CompensateResult>;
  /** Whether `compensate` can undo this particular payload (default: whenever `compensate` exists). */
  canCompensate?: (payload: P) => boolean;
  retry: RetryPolicy;
  /** Whether a business failure is retried (like an exception) instead of being final. */
  retryBusinessFailures: boolean;
  /** Whether a final business failure is compensated automatically. */
  compensateOnFailure: boolean;
  /** Without `query`, may an attempt whose outcome is unknown simply be sent again? */
  idempotent: (payload: P) => boolean;
  timeoutMs: (payload: P) => number;
  /** At most this many commands of this type run at once across all workers (unset: no cap). */
  concurrency?: number;
  /**
   * The type's own flow-control defaults (DESIGN §7): a rate limit on the type
   * scope, and its circuit breaker's threshold and cooldown. `flow.setLimit`
   * overrides them per scope.
   */
  flow?: TypeFlow;
  /** The counterpart's host for a payload (lower case, no port): the scope of host limits and of the circuit breaker. */
  scopeHost?: (payload: P) => string | null;
  /**
   * For backends that answer "accepted": how `query` is polled while the
   * command is `awaiting` (interval doubling up to maxIntervalMs), and how long
   * to wait in all before handing it to an operator (`exception`).
   */
  poll?: { intervalMs?: number; maxIntervalMs?: number; maxWaitMs?: number };
};

/** Identity helper that keeps the payload type of a CommandType definition. */
export const defineCommandType = <P>(t: CommandType<P>): CommandType<P> => t;

/**
 * An error a command type throws whose message says all there is to say (e.g.
 * "HTTP 503"): an attempt records the message alone, without the class name.
 */
export class CommandTypeError extends Error {}
