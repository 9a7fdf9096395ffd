// The HTTP edge of /api/trpc: body size limit, then tRPC's fetch adapter.
// Served by server/web/main.ts (node:http) and by the Next.js route handler
// (app/api/trpc/[trpc]/route.ts, used under `next dev`); tests use it too.
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { appRouter } from "./root";
import { createContext } from "./context";
import type { ApiDeps } from "./deps";
import { retryAfterHeader } from "../errors";

export function tooLarge(limit: number): Response {
  const body = {
    error: {
      message: `Request body is larger than MAX_BODY_BYTES (${limit} bytes)`,
      code: -32013,
      data: { code: "PAYLOAD_TOO_LARGE", httpStatus: 413 },
    },
  };
  return new Response(JSON.stringify(body), { status: 413, headers: { "content-type": "application/json", connection: "close" } });
}

/** Collects chunks up to `limit` bytes; null as soon as the body is larger. */
export async function collectLimited(chunks: AsyncIterable<Uint8Array>, limit: number, declaredLength?: string | null): Promise<Buffer | null> {
  const declared = Number(declaredLength);
  if (declaredLength && Number.isFinite(declared) && declared > limit) return null;
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const c of chunks) {
    size += c.byteLength;
    if (size > limit) return null;
    parts.push(c);
  }
  return Buffer.concat(parts, size);
}

export type RawRequest = { method: string; url: string; headers: Headers; body: Buffer | null };

/** Handles one request whose body has already been read (within the limit). */
export function createRawTrpcHandler(deps: ApiDeps, endpoint = "/api/trpc") {
  return (raw: RawRequest): Promise<Response> => {
    // The body is always JSON (DESIGN §3); clients such as curl -d send a form content type by default.
    if (raw.body) raw.headers.set("content-type", "application/json");
    const req = new Request(raw.url, { method: raw.method, headers: raw.headers, body: raw.body as BodyInit | null });
    return fetchRequestHandler({
      endpoint,
      req,
      router: appRouter,
      allowMethodOverride: true,
      createContext: () => createContext(deps, (name) => req.headers.get(name)),
      // TOO_MANY_REQUESTS says when to come back.
      responseMeta: ({ errors }) => {
        const headers = Object.assign({}, ...errors.map((e) => retryAfterHeader(e)));
        return Object.keys(headers).length ? { headers } : {};
      },
    });
  };
}

/** The same, for a fetch Request (Next.js route handler). */
export function createTrpcHandler(deps: ApiDeps, endpoint = "/api/trpc") {
  const handle = createRawTrpcHandler(deps, endpoint);
  return async (req: Request): Promise<Response> => {
    let body: Buffer | null = null;
    if (req.method !== "GET" && req.method !== "HEAD" && req.body) {
      body = await collectLimited(req.body as unknown as AsyncIterable<Uint8Array>, deps.maxBodyBytes, req.headers.get("content-length"));
      if (body === null) {
        await req.body.cancel().catch(() => {});
        return tooLarge(deps.maxBodyBytes);
      }
    }
    return handle({ method: req.method, url: req.url, headers: new Headers(req.headers), body });
  };
}
