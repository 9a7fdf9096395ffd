// The intake API's inputs and answers (DESIGN §3, §8). Written by hand so that
// the package has no dependency; test/types/sdk-contract.ts holds them equal
// to the server's zod schemas and router outputs, so that they cannot drift.

/** A command's states (DESIGN §1). */
export type State =
  | "pending"
  | "running"
  | "awaiting"
  | "retrying"
  | "succeeded"
  | "failed"
  | "exception"
  | "compensating"
  | "compensated"
  | "cancelled";

/** The states in which a command stays unless an operator acts: `waitFor` resolves on these. */
export const AT_REST_STATES: readonly State[] = ["succeeded", "failed", "exception", "compensated", "cancelled"];

export const isAtRest = (status: State): boolean => AT_REST_STATES.includes(status);

/** What is wrong with an input: the field's path and a message. */
export type Issue = { path: (string | number)[]; message: string };

/** Per-command retry policy; absent fields take the type's defaults. */
export type RetryPolicy = {
  maxAttempts?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
};

/** The built-in `http` type's payload (DESIGN §2). */
export type HttpPayload = {
  url: string;
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  headers?: Record<string, string>;
  body?: unknown;
  timeoutMs?: number;
  /** `{commandId}` in it is replaced by the command id. */
  statusUrl?: string;
  compensateUrl?: string;
  failureStatuses?: number[];
  idempotent?: boolean;
};

/** `intake.submit`'s input. */
export type SubmitInput = {
  type: string;
  payload: unknown;
  /**
   * Same client + same key → the original command (`duplicate: true`). When
   * absent, the SDK makes one (a random UUID), so that its own retries never
   * store the command twice.
   */
  idempotencyKey?: string;
  /** Where the command view is POSTed, signed, once the command is at rest. */
  callbackUrl?: string;
  priority?: number;
  /** ISO 8601 date-time: not before then. */
  runAt?: string;
  retry?: RetryPolicy;
  /** Commands of this client with the same key run one at a time, in the order received. */
  orderingKey?: string;
};

/** The payload a command type takes, where the SDK knows it (the built-in types); `unknown` otherwise. */
export type PayloadOf<T extends string> = T extends "http" ? HttpPayload : unknown;

/**
 * A submit whose payload is checked when its type is known: `submit` infers
 * `T` from the literal `type`, so `{ type: "http", payload }` must carry an
 * HttpPayload. A `type` only known as a string takes any payload.
 */
export type TypedSubmitInput<T extends string = string> = Omit<SubmitInput, "type" | "payload"> & {
  type: T;
  payload: PayloadOf<T>;
};

/** A submit of the built-in `http` type, its payload typed. */
export type HttpSubmitInput = TypedSubmitInput<"http">;

/** `intake.submit`'s answer: stored (or found by its key), not yet carried out. */
export type Receipt = { id: string; status: State; duplicate: boolean };

/** One item of `intake.submitBatch`'s answer, in input order. */
export type BatchReceipt =
  | ({ ok: true } & Receipt)
  | { ok: false; error: { code: "BAD_REQUEST" | "CONFLICT"; message: string; issues?: Issue[] } };

/** Makes the stored commands of a `submitBatch` one batch (DESIGN §8). */
export type BatchOptions = { name?: string; callbackUrl?: string };

export type SubmitBatchInput = { commands: SubmitInput[]; batch?: BatchOptions };

export type SubmitBatchResult = { receipts: BatchReceipt[]; batchId?: string };

/** `intake.get`'s input: by id, or by the idempotency key it was submitted with. */
export type GetInput = { id: string } | { idempotencyKey: string };

export type GetManyInput = { ids: string[] };
/** `intake.getBatch`'s input. */
export type GetBatchInput = { id: string };

/** A command as clients see it (and as callbacks carry it). Dates are ISO 8601 strings. */
export type CommandView = {
  id: string;
  type: string;
  status: State;
  payload: unknown;
  result: unknown;
  failure: unknown;
  error: string | null;
  attemptCount: number;
  idempotencyKey: string | null;
  orderingKey: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
};

export type GetManyResult = { items: CommandView[] };

/** `intake.getBatch`'s answer (and what a batch's callback carries). */
export type BatchView = {
  id: string;
  name: string | null;
  total: number;
  counts: Record<State, number>;
  /** Every command of the batch is at rest. */
  done: boolean;
  createdAt: string;
  doneAt: string | null;
};
