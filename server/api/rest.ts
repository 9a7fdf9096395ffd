// The REST facade of the intake API, for clients not written in TypeScript:
//
//   POST /api/v1/commands                 intake.submit       201 (new) / 200 (duplicate)
//   POST /api/v1/commands/batch           intake.submitBatch
//   GET  /api/v1/commands/{id}            intake.get { id }
//   GET  /api/v1/commands?idempotencyKey= intake.get { idempotencyKey }
//   POST /api/v1/commands/get-many        intake.getMany
//   GET  /api/v1/batches/{id}             intake.getBatch { id }
//   GET  /api/openapi.json                the OpenAPI 3.1 document (no token needed)
//
// Each route calls the intake procedure through tRPC itself (as
// server/api/direct.ts does), so the token check, the rate limit, input
// validation and the domain code are the ones /api/trpc runs: the two APIs
// cannot drift apart. Only the HTTP shape differs: plain JSON in and out,
// REST status codes, and every error as { error: { code, message, issues? } }.
//
// Hand-rolled rather than trpc-to-openapi (3.3.0): that library needs every
// exposed procedure's input to be a plain z.object and an output schema, while
// intake.submit takes z.unknown() (so that envelope and payload issues are
// reported alike) and intake.get a union; its handler ignores a JSON body sent
// as `application/json; charset=utf-8` (the default of .NET and many Java
// clients) and coerces by setting `coerce` on the shared zod schemas, which
// would change what /api/trpc accepts after the first REST call.
import { callTRPCProcedure, getTRPCErrorFromUnknown, getTRPCErrorShape } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { appRouter } from "./root";
import { createContext, type HeaderReader } from "./context";
import type { ApiDeps } from "./deps";
import { answerWhileDiscarding, readLimited } from "./handler";
import { buildOpenApiDocument } from "./openapi";
import { malformedJson, NO_JSON_BODY, retryAfterHeader, type Issue } from "../errors";

const REST_PREFIX = "/api/v1/";
const OPENAPI_PATH = "/api/openapi.json";

/** Whether a request path (without its query string) belongs to the REST facade. */
export const isRestPath = (pathname: string) => pathname.startsWith(REST_PREFIX) || pathname === OPENAPI_PATH;

export type RestRequest = {
  method: string;
  /** path and query string */ url: string;
  header: HeaderReader;
  body: Buffer | null;
};
export type RestAnswer = { status: number; headers: Record<string, string>; body: string };

type IntakeProcedure = "intake.submit" | "intake.submitBatch" | "intake.get" | "intake.getMany" | "intake.getBatch";
/** `answer` shapes a submit's receipt (the only procedure whose HTTP status depends on its answer). */
type Call = {
  procedure: IntakeProcedure;
  input: unknown;
  answer?: (data: { id: string; duplicate: boolean }) => RestAnswer;
};

const JSON_TYPE = { "content-type": "application/json" };
const answer = (status: number, data: unknown, headers: Record<string, string> = {}): RestAnswer => ({
  status,
  headers: { ...JSON_TYPE, ...headers },
  body: JSON.stringify(data),
});

export function restError(
  status: number,
  code: string,
  message: string,
  issues?: Issue[],
  headers: Record<string, string> = {},
): RestAnswer {
  return answer(status, { error: { code, message, ...(issues ? { issues } : {}) } }, headers);
}

/** 413, in the REST error shape; the connection is closed once the rest of the body has been discarded (see DISCARD_BYTES). */
export const restTooLarge = (limit: number) =>
  restError(413, "PAYLOAD_TOO_LARGE", `Request body is larger than MAX_BODY_BYTES (${limit} bytes)`, undefined, {
    connection: "close",
  });
export const restInternalError = () => restError(500, "INTERNAL_SERVER_ERROR", "Internal server error");

const procedures = appRouter._def.procedures as unknown as Record<
  IntakeProcedure,
  { _def: { type: "query" | "mutation" } }
>;

function jsonBody(body: Buffer | null): { ok: true; value: unknown } | { ok: false; error: RestAnswer } {
  if (!body || body.length === 0) return { ok: false, error: restError(400, "BAD_REQUEST", NO_JSON_BODY) };
  try {
    return { ok: true, value: JSON.parse(body.toString("utf8")) };
  } catch (err) {
    return {
      ok: false,
      error: restError(400, "BAD_REQUEST", malformedJson("the request body", (err as Error).message)),
    };
  }
}

const notAllowed = (method: string, path: string, allow: string) =>
  restError(405, "METHOD_NOT_SUPPORTED", `${method} is not supported on ${path}; use ${allow}`, undefined, { allow });

const pathId = (segment: string): string | null => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
};

/** Maps a request onto an intake procedure call, or answers it at once (404, 405, bad JSON). */
function route(req: RestRequest, url: URL): Call | RestAnswer {
  const method = req.method === "HEAD" ? "GET" : req.method;
  const path =
    url.pathname.length > REST_PREFIX.length && url.pathname.endsWith("/") ? url.pathname.slice(0, -1) : url.pathname;
  const withBody = (procedure: IntakeProcedure, then?: Call["answer"]): Call | RestAnswer => {
    const parsed = jsonBody(req.body);
    return parsed.ok ? { procedure, input: parsed.value, answer: then } : parsed.error;
  };

  if (path === "/api/v1/commands") {
    if (method === "POST") {
      return withBody("intake.submit", (r: { id: string; duplicate: boolean }) =>
        r.duplicate ? answer(200, r) : answer(201, r, { location: `/api/v1/commands/${r.id}` }),
      );
    }
    if (method === "GET") {
      const query = Object.fromEntries(url.searchParams);
      if (!("idempotencyKey" in query)) {
        return restError(
          400,
          "BAD_REQUEST",
          "Give the idempotency key: GET /api/v1/commands?idempotencyKey=<key> (or GET /api/v1/commands/<id>)",
          [{ path: ["idempotencyKey"], message: "required" }],
        );
      }
      return { procedure: "intake.get", input: query };
    }
    return notAllowed(method, path, "POST, GET");
  }
  if (path === "/api/v1/commands/batch")
    return method === "POST" ? withBody("intake.submitBatch") : notAllowed(method, path, "POST");
  if (path === "/api/v1/commands/get-many")
    return method === "POST" ? withBody("intake.getMany") : notAllowed(method, path, "POST");
  const b = /^\/api\/v1\/batches\/([^/]+)$/.exec(path);
  if (b) {
    if (method !== "GET") return notAllowed(method, path, "GET");
    const id = pathId(b[1]!);
    return id === null
      ? restError(400, "BAD_REQUEST", "Malformed batch id in the path", [
          { path: ["id"], message: "must be a batch id (UUID)" },
        ])
      : { procedure: "intake.getBatch", input: { id } };
  }
  const m = /^\/api\/v1\/commands\/([^/]+)$/.exec(path);
  if (m) {
    if (method !== "GET") return notAllowed(method, path, "GET");
    let id: string;
    try {
      id = decodeURIComponent(m[1]!);
    } catch {
      return restError(400, "BAD_REQUEST", "Malformed command id in the path", [
        { path: ["id"], message: "must be a command id (UUID)" },
      ]);
    }
    return { procedure: "intake.get", input: { id } };
  }
  return restError(404, "NOT_FOUND", `No such endpoint: ${req.method} ${url.pathname} (see ${OPENAPI_PATH})`);
}

/** The framework-neutral REST handler; the body has already been read within MAX_BODY_BYTES. */
export function createRestHandler(deps: ApiDeps) {
  let document: string | undefined;
  return async (req: RestRequest): Promise<RestAnswer> => {
    const url = new URL(req.url, "http://localhost");
    if (url.pathname === OPENAPI_PATH) {
      if (req.method !== "GET" && req.method !== "HEAD") return notAllowed(req.method, url.pathname, "GET");
      document ??= JSON.stringify(buildOpenApiDocument(deps.registry, deps.publicUrl));
      return { status: 200, headers: { ...JSON_TYPE, "cache-control": "no-cache" }, body: document };
    }
    const r = route(req, url);
    if (!("procedure" in r)) return r;

    const type = procedures[r.procedure]._def.type;
    const ctx = await createContext(deps, req.header);
    try {
      const data = await callTRPCProcedure({
        router: appRouter,
        path: r.procedure,
        getRawInput: async () => r.input,
        ctx,
        type,
        signal: undefined,
        batchIndex: 0,
      });
      return r.answer ? r.answer(data as { id: string; duplicate: boolean }) : answer(200, data);
    } catch (cause) {
      // tRPC's own error formatter (server/api/trpc.ts) gives the message and the issues, as /api/trpc answers them.
      const error = getTRPCErrorFromUnknown(cause);
      const shape = getTRPCErrorShape({
        config: appRouter._def._config,
        error,
        type,
        path: r.procedure,
        input: r.input,
        ctx,
      }) as {
        message: string;
        data: { code: string; issues?: Issue[] };
      };
      return restError(
        getHTTPStatusCodeFromError(error),
        shape.data.code,
        shape.message,
        shape.data.issues,
        retryAfterHeader(cause),
      );
    }
  };
}

/** The same, for a fetch Request (the Next.js route handlers used under `next dev`). */
export function createRestFetchHandler(deps: ApiDeps) {
  const handle = createRestHandler(deps);
  return async (req: Request): Promise<Response> => {
    try {
      let body: Buffer | null = null;
      if (req.method !== "GET" && req.method !== "HEAD" && req.body) {
        const declared = req.headers.get("content-length");
        const r = await readLimited(req.body, deps.maxBodyBytes, declared);
        if (!r.ok)
          return answerWhileDiscarding(toResponse(restTooLarge(deps.maxBodyBytes)), req.body, r.read, declared);
        body = r.body;
      }
      const url = new URL(req.url);
      return toResponse(
        await handle({
          method: req.method,
          url: url.pathname + url.search,
          header: (name) => req.headers.get(name),
          body,
        }),
      );
    } catch (err) {
      deps.log.error({ err }, "REST request failed");
      return toResponse(restInternalError());
    }
  };
}

const toResponse = (a: RestAnswer) => new Response(a.body, { status: a.status, headers: a.headers });
