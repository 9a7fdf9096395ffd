// Serves /api/trpc (and the REST facade, /api/v1 and /api/openapi.json) from
// node:http: reads the body (within MAX_BODY_BYTES) straight from the socket
// and writes the answer back, with no extra stream conversions on the hot path.
import type http from "node:http";
import { collectLimited, createRawTrpcHandler, tooLarge } from "../api/handler";
import type { ApiDeps } from "../api/deps";
import { callDirect } from "../api/direct";
import { createRestHandler, restInternalError, restTooLarge, type RestAnswer } from "../api/rest";

export async function writeResponse(res: http.ServerResponse, response: Response) {
  const body = Buffer.from(await response.arrayBuffer());
  const out: Record<string, string> = {};
  response.headers.forEach((v, k) => (out[k] = v));
  out["content-length"] = String(body.length);
  res.writeHead(response.status, out);
  res.end(body);
}

/** A percent-decoded procedure path, or null when its escapes are malformed (the full road then answers). */
function decodePath(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

const TOO_LARGE = Symbol("too large");

/**
 * The request body (null for GET/HEAD), or TOO_LARGE once `answer` has been
 * written: over the limit, it answers at once and drops the connection rather
 * than reading the rest.
 */
async function readBody(req: http.IncomingMessage, res: http.ServerResponse, limit: number, answer: () => Promise<void>): Promise<Buffer | null | typeof TOO_LARGE> {
  if (req.method === "GET" || req.method === "HEAD") return null;
  const body = await collectLimited(req, limit, req.headers["content-length"]);
  if (body !== null) return body;
  res.shouldKeepAlive = false;
  await answer();
  req.destroy();
  return TOO_LARGE;
}

function badRequest(message: string): Response {
  return Response.json({ error: { message, code: -32600, data: { code: "BAD_REQUEST", httpStatus: 400 } } }, { status: 400 });
}

function internalError(res: http.ServerResponse) {
  if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: { message: "Internal server error", code: -32603, data: { code: "INTERNAL_SERVER_ERROR", httpStatus: 500 } } }));
}

export function nodeTrpcListener(deps: ApiDeps) {
  const handle = createRawTrpcHandler(deps);
  return async (req: http.IncomingMessage, res: http.ServerResponse) => {
    try {
      const body = await readBody(req, res, deps.maxBodyBytes, () => writeResponse(res, tooLarge(deps.maxBodyBytes)));
      if (body === TOO_LARGE) return;
      const header = (name: string) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v.join(", ") : (v ?? null);
      };
      const url = req.url ?? "/";
      // One procedure by POST, no query string: the direct road (see server/api/direct.ts). Other methods go
      // to tRPC's own handler, which answers them as tRPC does (405 for PUT, PATCH, DELETE…).
      const path = body && req.method === "POST" && url.startsWith("/api/trpc/") && !url.includes("?") && !url.includes(",") ? decodePath(url.slice("/api/trpc/".length)) : null;
      if (path !== null) {
        const direct = await callDirect(deps, path, body!, header);
        if (direct) {
          res.writeHead(direct.status, { "content-type": "application/json", "content-length": Buffer.byteLength(direct.body), vary: "trpc-accept", ...direct.headers });
          res.end(direct.body);
          return;
        }
      }
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (Array.isArray(v)) for (const x of v) headers.append(k, x);
        else if (v !== undefined) headers.set(k, v);
      }
      // tRPC reads only the path and the query from the URL; the Host header (which may not even make a valid URL) plays no part.
      let target: string;
      try {
        target = new URL(url, "http://localhost").href;
      } catch {
        return void (await writeResponse(res, badRequest("Malformed request URL")));
      }
      await writeResponse(res, await handle({ method: req.method ?? "GET", url: target, headers, body }));
    } catch {
      internalError(res);
    }
  };
}

function writeAnswer(res: http.ServerResponse, a: RestAnswer) {
  res.writeHead(a.status, { ...a.headers, "content-length": Buffer.byteLength(a.body) });
  res.end(a.body);
}

const headerReader = (req: http.IncomingMessage) => (name: string) => {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(", ") : (v ?? null);
};

/** The REST facade of the intake API (server/api/rest.ts). */
export function nodeRestListener(deps: ApiDeps) {
  const handle = createRestHandler(deps);
  return async (req: http.IncomingMessage, res: http.ServerResponse) => {
    try {
      const body = await readBody(req, res, deps.maxBodyBytes, async () => writeAnswer(res, restTooLarge(deps.maxBodyBytes)));
      if (body === TOO_LARGE) return;
      writeAnswer(res, await handle({ method: req.method ?? "GET", url: req.url ?? "/", header: headerReader(req), body }));
    } catch (err) {
      deps.log.error({ err }, "REST request failed");
      if (res.headersSent) res.end();
      else writeAnswer(res, restInternalError());
    }
  };
}

/** Any fetch-style handler (e.g. health) on node:http. */
export function fetchListener(handler: () => Promise<Response>) {
  return async (_req: http.IncomingMessage, res: http.ServerResponse) => {
    try {
      await writeResponse(res, await handler());
    } catch {
      internalError(res);
    }
  };
}
