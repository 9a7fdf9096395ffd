// Serves /api/trpc (and the REST facade, /api/v1 and /api/openapi.json) from
// node:http: reads the body (within MAX_BODY_BYTES) straight from the socket
// and writes the answer back, with no extra stream conversions on the hot path.
import type http from "node:http";
import { createRawTrpcHandler, DISCARD_BYTES, DISCARD_MS, tooLarge, worthDiscarding, type Limited } from "../api/handler";
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

/** Reads the body up to `limit` bytes; over it, stops reading (the socket stays open, see discardRest). */
function readNodeBody(req: http.IncomingMessage, limit: number): Promise<Limited> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve({ ok: false, read: 0 });
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= limit) return void parts.push(c);
      done();
      req.pause();
      resolve({ ok: false, read: size });
    };
    const onEnd = () => {
      done();
      resolve({ ok: true, body: Buffer.concat(parts, size) });
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const onClose = () => onError(new Error("the client closed the connection before the end of the body"));
    req.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
  });
}

/** Reads the rest of the body and throws it away; true once it ended, false when it went over DISCARD_BYTES or DISCARD_MS first. */
function discardRest(req: http.IncomingMessage, read: number): Promise<boolean> {
  if (req.complete) return Promise.resolve(true);
  if (!worthDiscarding(req.headers["content-length"])) return Promise.resolve(false);
  return new Promise((resolve) => {
    const finish = (ended: boolean) => {
      clearTimeout(timer);
      req.off("data", onData).off("end", onEnd).off("close", onClose).off("error", onClose);
      resolve(ended);
    };
    const timer = setTimeout(() => finish(false), DISCARD_MS);
    const onData = (c: Buffer) => {
      read += c.length;
      if (read > DISCARD_BYTES) finish(false);
    };
    const onEnd = () => finish(true);
    const onClose = () => finish(false);
    req.on("data", onData).on("end", onEnd).on("close", onClose).on("error", onClose);
    req.resume();
  });
}

/**
 * The request body (null for GET/HEAD), or TOO_LARGE once the 413 has been
 * written. The 413 is sent at once, but the response is ended only once the
 * rest of the body has been read and thrown away (within DISCARD_BYTES and
 * DISCARD_MS), and the connection then closed: ending it at once would close
 * the socket under a client still writing, whose kernel would then discard
 * the answer unread. A body over those bounds is cut off.
 */
async function readBody(req: http.IncomingMessage, res: http.ServerResponse, limit: number, tooLarge: () => RestAnswer | Promise<RestAnswer>): Promise<Buffer | null | typeof TOO_LARGE> {
  if (req.method === "GET" || req.method === "HEAD") return null;
  const r = await readNodeBody(req, limit);
  if (r.ok) return r.body;
  const answer = await tooLarge();
  res.shouldKeepAlive = false;
  res.writeHead(answer.status, { ...answer.headers, connection: "close", "content-length": Buffer.byteLength(answer.body) });
  res.write(answer.body);
  const ended = await discardRest(req, r.read);
  res.end(() => {
    if (!ended) req.socket.destroy();
  });
  return TOO_LARGE;
}

async function fromResponse(response: Response): Promise<RestAnswer> {
  const headers: Record<string, string> = {};
  response.headers.forEach((v, k) => (headers[k] = v));
  return { status: response.status, headers, body: await response.text() };
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
      const body = await readBody(req, res, deps.maxBodyBytes, () => fromResponse(tooLarge(deps.maxBodyBytes)));
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
      const body = await readBody(req, res, deps.maxBodyBytes, () => restTooLarge(deps.maxBodyBytes));
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
