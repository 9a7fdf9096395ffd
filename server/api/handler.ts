// The HTTP edge of /api/trpc: body size limit, then tRPC's fetch adapter.
// Used by the Next.js route handler and, unchanged, by the integration tests.
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { appRouter } from "./root";
import { createContext } from "./context";
import type { ApiDeps } from "./deps";

function tooLarge(limit: number): Response {
  const body = {
    error: {
      message: `Request body is larger than MAX_BODY_BYTES (${limit} bytes)`,
      code: -32013,
      data: { code: "PAYLOAD_TOO_LARGE", httpStatus: 413 },
    },
  };
  return new Response(JSON.stringify(body), { status: 413, headers: { "content-type": "application/json", connection: "close" } });
}

/** Reads the body up to `limit` bytes; null when it is larger. */
async function readLimited(req: Request, limit: number): Promise<Uint8Array | null> {
  if (!req.body) return new Uint8Array();
  const declared = Number(req.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) {
    await req.body.cancel().catch(() => {});
    return null;
  }
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

export function createTrpcHandler(deps: ApiDeps, endpoint = "/api/trpc") {
  return async (req: Request): Promise<Response> => {
    let request = req;
    if (req.method !== "GET" && req.method !== "HEAD") {
      const body = await readLimited(req, deps.maxBodyBytes);
      if (body === null) return tooLarge(deps.maxBodyBytes);
      // The body is always JSON (DESIGN §3); clients such as curl -d send a form content type by default.
      const headers = new Headers(req.headers);
      headers.set("content-type", "application/json");
      request = new Request(req.url, { method: req.method, headers, body: body as BodyInit });
    }
    return fetchRequestHandler({
      endpoint,
      req: request,
      router: appRouter,
      allowMethodOverride: true,
      createContext: () => createContext(deps, request),
    });
  };
}
