// tRPC init: context, error shape, and one procedure builder per role.
import { initTRPC, TRPCError } from "@trpc/server";
import type { Context } from "./context";
import { AppError, BodyJsonError, malformedJson, type Issue } from "../errors";

type RawIssue = {
  path?: readonly (PropertyKey | { key: PropertyKey })[];
  message: string;
  code?: string;
  keys?: unknown[];
  errors?: RawIssue[][];
};

const pathOf = (i: RawIssue) =>
  (i.path ?? []).map((p) => {
    const k = typeof p === "object" && p !== null ? p.key : p;
    return typeof k === "number" ? k : String(k);
  });

/**
 * Zod reports an input that fits no branch of a union as one pathless
 * "Invalid input". Say instead what is wrong with the branch it came closest
 * to: the one whose fields it uses (fewest unknown keys), then the one with
 * fewest issues; on a tie, with each (and the union's own message, if it has
 * one), so that the answer names the fields.
 */
function flatten(i: RawIssue, prefix: (string | number)[] = []): Issue[] {
  const here = { path: [...prefix, ...pathOf(i)], message: i.message };
  if (i.code !== "invalid_union" || !Array.isArray(i.errors) || i.errors.length === 0) return [here];
  const unknownKeys = (e: RawIssue[]) =>
    e.reduce((n, x) => n + (x.code === "unrecognized_keys" && !x.path?.length ? (x.keys?.length ?? 1) : 0), 0);
  const score = (e: RawIssue[]) => unknownKeys(e) * 1e6 + e.length;
  const best = Math.min(...i.errors.map(score));
  const closest = i.errors.filter((e) => score(e) === best);
  const out = closest.flatMap((e) => e.flatMap((x) => flatten(x, here.path)));
  if (closest.length > 1 && i.message !== "Invalid input") out.unshift(here);
  const seen = new Set<string>();
  return out.filter((x) => !seen.has(JSON.stringify(x)) && !!seen.add(JSON.stringify(x)));
}

function issuesOf(cause: unknown): Issue[] | undefined {
  if (cause instanceof AppError) return cause.issues;
  const raw = (cause as { issues?: RawIssue[] } | undefined)?.issues;
  if (!Array.isArray(raw)) return undefined;
  return raw.flatMap((i) => flatten(i));
}

const t = initTRPC.context<Context>().create({
  errorFormatter({ shape, error }) {
    const issues = issuesOf(error.cause);
    const internal = error.code === "INTERNAL_SERVER_ERROR";
    return {
      ...shape,
      // Never send internals (SQL, stack traces) to a client.
      message: internal
        ? "Internal server error"
        : issues?.length
          ? describe(shape.message, issues)
          : (queryJsonError(error) ?? shape.message),
      data: {
        code: shape.data.code,
        httpStatus: shape.data.httpStatus,
        path: shape.data.path,
        ...(issues ? { issues } : {}),
      },
    };
  },
});

/** tRPC reports a malformed ?input= with the JSON parser's bare message (a body's is a BodyJsonError, already clear). */
function queryJsonError(error: TRPCError): string | null {
  const cause = error.cause;
  return error.code === "BAD_REQUEST" && cause instanceof SyntaxError && !(cause instanceof BodyJsonError)
    ? malformedJson("the input query parameter", cause.message)
    : null;
}

function describe(message: string, issues: Issue[]): string {
  // Zod's own message is a JSON dump of the issues; say it in one line instead.
  const first = issues
    .map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message))
    .slice(0, 5)
    .join("; ");
  return message.startsWith("[") || message.startsWith("{") ? `Invalid input: ${first}` : `${message}: ${first}`;
}

export const router = t.router;

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

const refuseRejectedCredential = (ctx: { credentialRejected: string | null }) => {
  if (ctx.credentialRejected) throw new TRPCError({ code: "UNAUTHORIZED", message: ctx.credentialRejected });
};

export const publicProcedure = t.procedure.use(errors).use(({ ctx, next }) => {
  refuseRejectedCredential(ctx);
  return next();
});

/**
 * Any valid API token (client or admin scope): the intake API. One middleware
 * after `errors` rather than publicProcedure's plus its own: every level costs
 * tRPC a copy of the context, on the hottest path there is.
 */
export const clientProcedure = t.procedure.use(errors).use(({ ctx, next }) => {
  refuseRejectedCredential(ctx);
  if (!ctx.principal || ctx.principal.kind !== "token") {
    throw new TRPCError({ code: "UNAUTHORIZED", message: "Send an API token: Authorization: Bearer <token>" });
  }
  return next({ ctx: { principal: ctx.principal } });
});

type Role = "viewer" | "operator" | "admin";
const rank: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/**
 * Console procedures: a signed-in user with at least `role`, or an admin-scoped
 * API token. Cookie-authenticated mutations must come from our own origin.
 */
const roleProcedure = (role: Role) =>
  publicProcedure.use(({ ctx, next, type }) => {
    const p = ctx.principal;
    if (!p) throw new TRPCError({ code: "UNAUTHORIZED", message: "Sign in, or send an admin-scoped API token" });
    if (p.kind === "token") {
      if (p.scope !== "admin") throw new TRPCError({ code: "FORBIDDEN", message: "This needs an admin-scoped token" });
    } else {
      if (p.mustChangePassword) throw new TRPCError({ code: "FORBIDDEN", message: "Change your password first" });
      if (rank[p.role] < rank[role])
        throw new TRPCError({ code: "FORBIDDEN", message: `This needs the ${role} role; you are ${p.role}` });
      if (type === "mutation") checkOrigin(ctx.header);
    }
    return next({ ctx: { principal: p } });
  });

/** Refuses cross-site requests riding on the session cookie. */
function checkOrigin(header: (name: string) => string | null) {
  const origin = header("origin");
  const host = header("x-forwarded-host") ?? header("host");
  if (!origin || !host) throw new TRPCError({ code: "FORBIDDEN", message: "Missing Origin header" });
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    throw new TRPCError({ code: "FORBIDDEN", message: "Bad Origin header" });
  }
  if (originHost !== host) throw new TRPCError({ code: "FORBIDDEN", message: "Cross-site request refused" });
}

export const viewerProcedure = roleProcedure("viewer");
export const operatorProcedure = roleProcedure("operator");
export const adminProcedure = roleProcedure("admin");

/** Any signed-in user, even one who must change the password first. */
export const userProcedure = publicProcedure.use(({ ctx, next, type }) => {
  const p = ctx.principal;
  if (!p || p.kind !== "user") throw new TRPCError({ code: "UNAUTHORIZED", message: "Sign in first" });
  if (type === "mutation") checkOrigin(ctx.header);
  return next({ ctx: { principal: p } });
});
