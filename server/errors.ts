// One error type for domain code; the tRPC layer maps its codes once (server/api/trpc.ts).
export type AppErrorCode =
  "BAD_REQUEST" | "UNAUTHORIZED" | "FORBIDDEN" | "NOT_FOUND" | "CONFLICT" | "PAYLOAD_TOO_LARGE" | "TOO_MANY_REQUESTS";

export type Issue = { path: (string | number)[]; message: string };

export class AppError extends Error {
  constructor(
    readonly code: AppErrorCode,
    message: string,
    readonly issues?: Issue[],
    /** For TOO_MANY_REQUESTS: seconds until a retry can succeed (answered as Retry-After). */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = "AppError";
  }
}

/** The Retry-After header an error calls for (an AppError, or one wrapped as a cause by tRPC), if any. */
export function retryAfterHeader(err: unknown): Record<string, string> {
  for (let e = err as { cause?: unknown } | undefined, depth = 0; e && depth < 3; e = e.cause as typeof e, depth++) {
    if (e instanceof AppError && e.retryAfterS !== undefined) return { "retry-after": String(e.retryAfterS) };
  }
  return {};
}

/** Zod issues as the API reports them: path and message only. */
export function toIssues(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
  prefix: (string | number)[] = [],
): Issue[] {
  return issues.map((i) => ({
    path: [...prefix, ...i.path.map((p) => (typeof p === "symbol" ? String(p) : p))],
    message: i.message,
  }));
}

/** What /api/trpc and /api/v1 answer for input that is not JSON: one message on both. */
export const malformedJson = (where: "the request body" | "the input query parameter", detail: string) =>
  `Malformed JSON in ${where}: ${detail}`;
export const NO_JSON_BODY = "Send the input as a JSON request body";
/** A request body that is not JSON; its message is the answer's. */
export class BodyJsonError extends SyntaxError {}
