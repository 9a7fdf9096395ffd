// The HTTP edge of /api/trpc: body size limit, then tRPC's fetch adapter.
// Served by server/web/main.ts (node:http) and by the Next.js route handler
// (app/api/trpc/[trpc]/route.ts, used under `next dev`); tests use it too.
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { appRouter } from "./root";
import { createContext } from "./context";
import type { ApiDeps } from "./deps";
import { BodyJsonError, malformedJson, NO_JSON_BODY, retryAfterHeader } from "../errors";

export function tooLarge(limit: number): Response {
  const body = {
    error: {
      message: `Request body is larger than MAX_BODY_BYTES (${limit} bytes)`,
      code: -32013,
      data: { code: "PAYLOAD_TOO_LARGE", httpStatus: 413 },
    },
  };
  return new Response(JSON.stringify(body), {
    status: 413,
    headers: { "content-type": "application/json", connection: "close" },
  });
}

/**
 * After a 413 the rest of the body is still read and thrown away, up to this
 * many bytes in all (what was read before included) and for at most this long,
 * before the connection is closed: a client that writes its whole body before
 * reading (most do) would otherwise meet a closed socket, and the reset its
 * kernel gets back discards the 413 unread. DESIGN §3: bodies of up to 10 MB.
 */
export const DISCARD_BYTES = 10 * 1024 * 1024;
export const DISCARD_MS = 5_000;

/** The body within the limit, or how much was read before it went over (0: its Content-Length said so). */
export type Limited = { ok: true; body: Buffer } | { ok: false; read: number };

const declaredOver = (declaredLength: string | null | undefined, limit: number) => {
  const declared = Number(declaredLength);
  return !!declaredLength && Number.isFinite(declared) && declared > limit;
};

/** Whether the rest of a body over the limit is worth reading before closing (its Content-Length, if any, is within DISCARD_BYTES). */
export const worthDiscarding = (declaredLength: string | null | undefined) =>
  !declaredOver(declaredLength, DISCARD_BYTES);

/** Reads a fetch body up to `limit` bytes; over it, stops reading but leaves the stream open (see discardRest). */
export async function readLimited(
  stream: ReadableStream<Uint8Array>,
  limit: number,
  declaredLength?: string | null,
): Promise<Limited> {
  if (declaredOver(declaredLength, limit)) return { ok: false, read: 0 };
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { ok: true, body: Buffer.concat(parts, size) };
      size += value.byteLength;
      if (size > limit) return { ok: false, read: size };
      parts.push(value);
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Reads the rest of a body and throws it away; true once it ended, false when
 * it went over DISCARD_BYTES or DISCARD_MS first (the stream is then cancelled).
 */
async function discardRest(
  stream: ReadableStream<Uint8Array>,
  read: number,
  declaredLength?: string | null,
): Promise<boolean> {
  const reader = stream.getReader();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), DISCARD_MS)));
  try {
    if (!worthDiscarding(declaredLength)) return false;
    for (;;) {
      const next = await Promise.race([reader.read(), late]);
      if (next === "late") return false;
      if (next.done) return true;
      read += next.value.byteLength;
      if (read > DISCARD_BYTES) return false;
    }
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    // Not awaited: cancelling a stalled request body does not settle until its socket closes.
    reader.cancel().catch(() => {});
  }
}

/**
 * A 413 for the fetch roads (Next.js route handlers): the whole answer is sent
 * at once, and its body stream ends only once the rest of the request body has
 * been discarded (or cut off), so that the connection is not closed under a
 * client still writing.
 */
export async function answerWhileDiscarding(
  answer: Response,
  body: ReadableStream<Uint8Array>,
  read: number,
  declaredLength?: string | null,
): Promise<Response> {
  const bytes = new Uint8Array(await answer.arrayBuffer());
  const headers = new Headers(answer.headers);
  headers.set("content-length", String(bytes.byteLength));
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes);
      void discardRest(body, read, declaredLength).then(() => controller.close());
    },
  });
  return new Response(stream, { status: answer.status, headers });
}

export type RawRequest = { method: string; url: string; headers: Headers; body: Buffer | null };

const utf8 = new TextDecoder();

/** The body as JSON, or a BodyJsonError whose message tRPC answers as is (it becomes the 400's message). */
function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) throw new BodyJsonError(NO_JSON_BODY);
  try {
    // As Request.json() reads it: UTF-8, a leading byte order mark dropped.
    return JSON.parse(utf8.decode(body));
  } catch (err) {
    throw new BodyJsonError(malformedJson("the request body", (err as Error).message));
  }
}

/** Handles one request whose body has already been read (within the limit). */
export function createRawTrpcHandler(deps: ApiDeps, endpoint = "/api/trpc") {
  return (raw: RawRequest): Promise<Response> => {
    // The body is always JSON (DESIGN §3); clients such as curl -d send a form content type by default.
    if (raw.body) raw.headers.set("content-type", "application/json");
    const req = new Request(raw.url, { method: raw.method, headers: raw.headers, body: raw.body as BodyInit | null });
    // tRPC reads a POST's input with req.json(); parsed here, a malformed body is reported as /api/v1 reports it.
    const body = raw.body;
    if (body) Object.defineProperty(req, "json", { value: async () => parseJsonBody(body) });
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
      const declared = req.headers.get("content-length");
      const r = await readLimited(req.body, deps.maxBodyBytes, declared);
      if (!r.ok) return answerWhileDiscarding(tooLarge(deps.maxBodyBytes), req.body, r.read, declared);
      body = r.body;
    }
    return handle({ method: req.method, url: req.url, headers: new Headers(req.headers), body });
  };
}
