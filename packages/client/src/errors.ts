import type { CommandView, Issue } from "./types.js";

/**
 * tRPC's codes as Conveyor answers them (DESIGN §3), and the SDK's own:
 * `NETWORK` (no answer: connection refused or reset), `TIMEOUT` (no answer
 * within `timeoutMs`), `BAD_RESPONSE` (an answer that is not Conveyor's),
 * `WAIT_TIMEOUT` (`waitFor` gave up), `INVALID_SIGNATURE` (a callback that
 * does not verify).
 */
export type ConveyorErrorCode =
  | "BAD_REQUEST"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "CONFLICT"
  | "PAYLOAD_TOO_LARGE"
  | "TOO_MANY_REQUESTS"
  | "INTERNAL_SERVER_ERROR"
  | "BAD_GATEWAY"
  | "SERVICE_UNAVAILABLE"
  | "GATEWAY_TIMEOUT"
  | "NETWORK"
  | "TIMEOUT"
  | "BAD_RESPONSE"
  | "WAIT_TIMEOUT"
  | "INVALID_SIGNATURE";

export type ConveyorErrorInit = {
  code: ConveyorErrorCode | (string & {});
  message: string;
  httpStatus?: number | null;
  issues?: Issue[];
  procedure?: string;
  attempts?: number;
  retryAfterMs?: number;
  view?: CommandView;
  cause?: unknown;
};

export class ConveyorError extends Error {
  /** One of ConveyorErrorCode; a code this SDK does not know yet is passed on as the server sent it. */
  readonly code: ConveyorErrorCode | (string & {});
  /** The answer's HTTP status; null when there was no answer (NETWORK, TIMEOUT) or no request. */
  readonly httpStatus: number | null;
  /** For BAD_REQUEST: which fields are wrong and why (empty otherwise). */
  readonly issues: Issue[];
  /** The tRPC procedure called, e.g. `intake.submit`. */
  readonly procedure: string | undefined;
  /** How many requests were sent before giving up (retries included). */
  readonly attempts: number;
  /** For TOO_MANY_REQUESTS: how long the server asked to wait (Retry-After). */
  readonly retryAfterMs: number | undefined;
  /** For WAIT_TIMEOUT: the command as last seen. */
  readonly view: CommandView | undefined;

  constructor(init: ConveyorErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "ConveyorError";
    this.code = init.code;
    this.httpStatus = init.httpStatus ?? null;
    this.issues = init.issues ?? [];
    this.procedure = init.procedure;
    this.attempts = init.attempts ?? 0;
    this.retryAfterMs = init.retryAfterMs;
    this.view = init.view;
  }
}

const CODE_BY_STATUS: Record<number, ConveyorErrorCode> = {
  400: "BAD_REQUEST",
  401: "UNAUTHORIZED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  409: "CONFLICT",
  413: "PAYLOAD_TOO_LARGE",
  429: "TOO_MANY_REQUESTS",
  500: "INTERNAL_SERVER_ERROR",
  502: "BAD_GATEWAY",
  503: "SERVICE_UNAVAILABLE",
  504: "GATEWAY_TIMEOUT",
};

/** The code for an answer that carries no tRPC error (a proxy's page, say). */
export const codeForStatus = (status: number): string => CODE_BY_STATUS[status] ?? `HTTP_${status}`;

type TrpcErrorShape = {
  message?: unknown;
  data?: { code?: unknown; issues?: unknown };
};

const isIssue = (i: unknown): i is Issue =>
  typeof i === "object" && i !== null && Array.isArray((i as Issue).path) && typeof (i as Issue).message === "string";

/** A ConveyorError from tRPC's error envelope (`{ error: { message, code, data: { code, httpStatus, issues } } }`). */
export function fromTrpcError(
  body: unknown,
  status: number,
  extra: Pick<ConveyorErrorInit, "procedure" | "attempts" | "retryAfterMs">,
): ConveyorError {
  const e = (body as { error?: TrpcErrorShape } | null)?.error;
  const code = typeof e?.data?.code === "string" ? e.data.code : codeForStatus(status);
  const message = typeof e?.message === "string" && e.message ? e.message : `HTTP ${status} from ${extra.procedure}`;
  const issues = Array.isArray(e?.data?.issues) ? e.data.issues.filter(isIssue) : [];
  return new ConveyorError({ code, message, httpStatus: status, issues, ...extra });
}
