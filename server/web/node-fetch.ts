// Serves /api/trpc (and the REST facade, /api/v1 and /api/openapi.json) from
// node:http: reads the body (within MAX_BODY_BYTES) straight from the socket
// and writes the answer back, with no extra stream conversions on the hot path.
import http from "node:http";
import type { Duplex } from "node:stream";
import {
  createRawTrpcHandler,
  DISCARD_BYTES,
  DISCARD_MS,
  tooLarge,
  worthDiscarding,
  type Limited,
} from "../api/handler";
import type { ApiDeps } from "../api/deps";
import { callDirect } from "../api/direct";
import {
  createRestHandler,
  isRestPath,
  restError,
  restInternalError,
  restTooLarge,
  type RestAnswer,
} from "../api/rest";

async function writeResponse(res: http.ServerResponse, response: Response) {
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
async function readBody(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  limit: number,
  tooLarge: () => RestAnswer | Promise<RestAnswer>,
): Promise<Buffer | null | typeof TOO_LARGE> {
  if (req.method === "GET" || req.method === "HEAD") return null;
  const r = await readNodeBody(req, limit);
  if (r.ok) return r.body;
  const answer = await tooLarge();
  res.shouldKeepAlive = false;
  res.writeHead(answer.status, {
    ...answer.headers,
    connection: "close",
    "content-length": Buffer.byteLength(answer.body),
  });
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
  return Response.json(
    { error: { message, code: -32600, data: { code: "BAD_REQUEST", httpStatus: 400 } } },
    { status: 400 },
  );
}

function internalError(res: http.ServerResponse) {
  if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
  res.end(
    JSON.stringify({
      error: {
        message: "Internal server error",
        code: -32603,
        data: { code: "INTERNAL_SERVER_ERROR", httpStatus: 500 },
      },
    }),
  );
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
      const path =
        body && req.method === "POST" && url.startsWith("/api/trpc/") && !url.includes("?") && !url.includes(",")
          ? decodePath(url.slice("/api/trpc/".length))
          : null;
      if (path !== null) {
        const direct = await callDirect(deps, path, body!, header);
        if (direct) {
          res.writeHead(direct.status, {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(direct.body),
            vary: "trpc-accept",
            ...direct.headers,
          });
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
      writeAnswer(
        res,
        await handle({ method: req.method ?? "GET", url: req.url ?? "/", header: headerReader(req), body }),
      );
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

/** The most bytes of request line and headers a client may send: Node's limit (16 KB, or --max-http-header-size). */
export const HEADER_LIMIT = http.maxHeaderSize;
/**
 * How far the parser is let read (createServer's maxHeaderSize): a request
 * over HEADER_LIMIT but within this is parsed, so that its answer can be in
 * the error shape of the API it was sent to (see headersTooLarge); 128 KB
 * holds an intake.getMany of 1000 ids (~45 KB) with room to spare. Past this,
 * it is answered from the 'clientError' event (see onClientError), which
 * rarely sees the start of the request (sockets are read 64 KB at a time).
 */
export const PARSER_HEADER_LIMIT = Math.max(8 * HEADER_LIMIT, 128 * 1024);

/** Whether a request's line and headers are over HEADER_LIMIT (as Node counts them, near enough). */
export function headersTooLarge(req: http.IncomingMessage): boolean {
  const url = req.url ?? "";
  if (url.length > HEADER_LIMIT) return true;
  let n = (req.method?.length ?? 0) + url.length + 12; // "GET " + url + " HTTP/1.1\r\n" + the blank line
  for (const part of req.rawHeaders) n += part.length + 2; // "name: value\r\n"
  return n > HEADER_LIMIT;
}

/**
 * The 431 for a request too large to parse, in the error shape of the API its
 * path belongs to (tRPC's when the path is unknown: long query URLs are tRPC
 * GET queries), saying what to do instead.
 */
function headersTooLargeAnswer(path: string | null): RestAnswer {
  const said = `The request's URL and headers are larger than this server accepts (${HEADER_LIMIT} bytes)`;
  const headers = { "content-type": "application/json", connection: "close" };
  if (path !== null && isRestPath(path)) {
    const message = `${said}: send the query by POST with its input as the JSON request body (e.g. POST /api/v1/commands/get-many with {"ids": [...]})`;
    return restError(431, "BAD_REQUEST", message, undefined, { connection: "close" });
  }
  if (path === null || path.startsWith("/api/")) {
    const message = `${said}: send the query by POST to the same URL without its input parameter, with the input as the JSON request body`;
    return {
      status: 431,
      headers,
      body: JSON.stringify({ error: { message, code: -32600, data: { code: "BAD_REQUEST", httpStatus: 431 } } }),
    };
  }
  return {
    status: 431,
    headers: { "content-type": "text/plain; charset=utf-8", connection: "close" },
    body: `${said}.\n`,
  };
}

/** Answers a request whose line and headers are over HEADER_LIMIT (see headersTooLarge). */
export function answerHeadersTooLarge(req: http.IncomingMessage, res: http.ServerResponse) {
  res.shouldKeepAlive = false;
  writeAnswer(res, headersTooLargeAnswer((req.url ?? "/").split("?")[0]!));
}

/** The path of the request whose start is in `packet`, if it is there. */
function pathIn(packet: Buffer | undefined): string | null {
  const m = packet && /^[A-Z]+ (\/[^ ?#]*)/.exec(packet.subarray(0, 4096).toString("latin1"));
  return m ? m[1]! : null;
}

const answered = new WeakSet<Duplex>();
const NODE_ANSWERS: Record<string, string> = {
  HPE_CHUNK_EXTENSIONS_OVERFLOW: "413 Payload Too Large",
  ERR_HTTP_REQUEST_TIMEOUT: "408 Request Timeout",
};

/**
 * http.Server's 'clientError' (a request its parser refused): over
 * PARSER_HEADER_LIMIT, a 431 in JSON that says to send the query by POST
 * (Node answers an empty 431). The rest of what the client sends is still
 * read (and dropped by the failed parser) until it closes, for at most
 * DISCARD_MS: closing under it would make its kernel discard the answer.
 * Other errors are answered as Node does without a listener.
 */
export function onClientError(err: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex) {
  if (answered.has(socket)) return; // the failed parser reports every further chunk
  answered.add(socket);
  // As Node itself: never write into a response already under way.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (!socket.writable || inFlight) return void socket.destroy();
  if (err.code === "HPE_HEADER_OVERFLOW") {
    const a = headersTooLargeAnswer(pathIn(err.rawPacket));
    const head = Object.entries({ ...a.headers, "content-length": String(Buffer.byteLength(a.body)) })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("");
    socket.end(`HTTP/1.1 431 Request Header Fields Too Large\r\n${head}\r\n${a.body}`);
    setTimeout(() => socket.destroy(), DISCARD_MS).unref();
    return;
  }
  socket.write(`HTTP/1.1 ${NODE_ANSWERS[err.code ?? ""] ?? "400 Bad Request"}\r\nConnection: close\r\n\r\n`);
  socket.destroy(err);
}
