// tRPC init: context, error shape, and one procedure builder per role.
import { initTRPC, TRPCError } from "@trpc/server";
import type { Context } from "./context";
import { AppError, type Issue } from "../errors";

type RawIssue = { path?: readonly (PropertyKey | { key: PropertyKey })[]; message: string };

function issuesOf(cause: unknown): Issue[] | undefined {
  if (cause instanceof AppError) return cause.issues;
  const raw = (cause as { issues?: RawIssue[] } | undefined)?.issues;
  if (!Array.isArray(raw)) return undefined;
  return raw.map((i) => ({
    path: (i.path ?? []).map((p) => {
      const k = typeof p === "object" && p !== null ? p.key : p;
      return typeof k === "number" ? k : String(k);
    }),
    message: i.message,
  }));
}

const t = initTRPC.context<Context>().create({
  errorFormatter({ shape, error }) {
    const issues = issuesOf(error.cause);
    const internal = error.code === "INTERNAL_SERVER_ERROR";
    return {
      ...shape,
      // Never send internals (SQL, stack traces) to a client.
      message: internal ? "Internal server error" : issues?.length ? describe(shape.message, issues) : shape.message,
      data: { code: shape.data.code, httpStatus: shape.data.httpStatus, path: shape.data.path, ...(issues ? { issues } : {}) },
    };
  },
});

function describe(message: string, issues: Issue[]): string {
  // Zod's own message is a JSON dump of the issues; say it in one line instead.
  const first = issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message)).slice(0, 5).join("; ");
  return message.startsWith("[") || message.startsWith("{") ? `Invalid input: ${first}` : `${message}: ${first}`;
}

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/** Domain code throws AppError; this is the one place it becomes a TRPCError. Unexpected errors are logged. */
const errors = t.middleware(async ({ ctx, next, path }) => {
  const res = await next();
  if (!res.ok) {
    const cause = res.error.cause;
    if (cause instanceof AppError) {
      res.error = new TRPCError({ code: cause.code, message: cause.message, cause });
    } else if (res.error.code === "INTERNAL_SERVER_ERROR") {
      ctx.log.error({ err: cause ?? res.error, path }, "procedure failed");
    }
  }
  return res;
});

export const publicProcedure = t.procedure.use(errors).use(({ ctx, next }) => {
  if (ctx.credentialRejected) {
    throw new TRPCError({ code: "UNAUTHORIZED", message: "The API token is unknown or revoked" });
  }
  return next();
});

/** Any valid API token (client or admin scope). */
export const clientProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.principal) throw new TRPCError({ code: "UNAUTHORIZED", message: "Send an API token: Authorization: Bearer <token>" });
  return next({ ctx: { principal: ctx.principal } });
});

/** Admin-scoped tokens (and, with the console, admin users). */
export const adminProcedure = clientProcedure.use(({ ctx, next }) => {
  if (ctx.principal.scope !== "admin") throw new TRPCError({ code: "FORBIDDEN", message: "This needs an admin-scoped token" });
  return next();
});
