// Callbacks (DESIGN §3, §8) carry `X-Conveyor-Signature: sha256=<hex>`, the
// HMAC-SHA256 of the raw body keyed by the client's signing secret (shown once
// by tokens.create). Verified with Web Crypto, so that it runs in Node 20+,
// browsers and edge runtimes alike; the comparison takes the same time
// whatever the bytes, so that a forger learns nothing from how fast it fails.
import { ConveyorError } from "./errors.js";
import type { BatchView, CommandView } from "./types.js";

export const SIGNATURE_HEADER = "x-conveyor-signature";

/** A command's view (command callbacks) or a batch's (batch callbacks). */
export type CallbackBody = CommandView | BatchView;

export const isBatchView = (body: CallbackBody): body is BatchView => "total" in body && "counts" in body;

export type VerifyOptions = {
  /** Bodies over this many bytes are refused unread (default 16 MiB). */
  maxBytes?: number;
};

const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
const utf8 = new TextEncoder();

// A copy for typed arrays (a Node Buffer too), a view for an ArrayBuffer.
const toBytes = (b: string | Uint8Array | ArrayBuffer): Uint8Array<ArrayBuffer> =>
  typeof b === "string" ? utf8.encode(b) : new Uint8Array(b);

/** The 32 bytes of `sha256=<64 hex digits>`, or null when the header is not that. */
function parseHeader(header: string): Uint8Array | null {
  const m = /^\s*sha256=([0-9a-fA-F]{64})\s*$/.exec(header);
  if (!m) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(m[1]!.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Whether `header` (the X-Conveyor-Signature value) is the signature of
 * `rawBody` under `secret`. Pass the body exactly as received: parsing and
 * serialising JSON again changes bytes and breaks the signature.
 */
export async function verifySignature(
  rawBody: string | Uint8Array | ArrayBuffer,
  header: string | null | undefined,
  secret: string,
): Promise<boolean> {
  if (!secret) throw new TypeError("verifySignature: the signing secret is empty");
  const given = header ? parseHeader(header) : null;
  if (!given) return false;
  const key = await crypto.subtle.importKey("raw", utf8.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const expected = new Uint8Array(await crypto.subtle.sign("HMAC", key, toBytes(rawBody)));
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected[i]! ^ given[i]!;
  return diff === 0;
}

const invalid = (message: string, httpStatus: number | null = null) =>
  new ConveyorError({ code: "INVALID_SIGNATURE", message, httpStatus });

async function verified<T>(raw: Uint8Array<ArrayBuffer>, header: string | null | undefined, secret: string) {
  if (!header) throw invalid(`No ${SIGNATURE_HEADER} header: not a Conveyor callback`);
  if (!(await verifySignature(raw, header, secret)))
    throw invalid(`The ${SIGNATURE_HEADER} header does not match the body (or the signing secret is not this one)`);
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw)) as T;
  } catch (err) {
    throw new ConveyorError({ code: "BAD_REQUEST", message: "A signed callback body that is not JSON", cause: err });
  }
}

/**
 * Verifies a callback received by a fetch-style handler (a Next.js route
 * handler, Deno, Bun, Cloudflare Workers) and answers its parsed body; throws
 * ConveyorError INVALID_SIGNATURE when the signature is missing or wrong.
 * Reads the body: do not read it before.
 */
export async function verifyRequest<T = CallbackBody>(
  request: Request,
  secret: string,
  options: VerifyOptions = {},
): Promise<T> {
  const max = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (Number(request.headers.get("content-length") ?? 0) > max) throw invalid(`Callback body over ${max} bytes`);
  const raw = new Uint8Array(await request.arrayBuffer());
  if (raw.byteLength > max) throw invalid(`Callback body over ${max} bytes`);
  return verified<T>(raw, request.headers.get(SIGNATURE_HEADER), secret);
}

/** What verifyNodeRequest reads: a node:http IncomingMessage (Express, Fastify's `req.raw`, Next's pages API with bodyParser off). */
export type NodeRequestLike = AsyncIterable<Uint8Array | string> & {
  headers: Record<string, string | string[] | undefined>;
};

/**
 * Verifies a callback received by a node:http server and answers its parsed
 * body; throws ConveyorError INVALID_SIGNATURE when the signature is missing
 * or wrong. Reads the request stream: mount it before any body parser.
 */
export async function verifyNodeRequest<T = CallbackBody>(
  req: NodeRequestLike,
  secret: string,
  options: VerifyOptions = {},
): Promise<T> {
  const max = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req) {
    const bytes = typeof chunk === "string" ? utf8.encode(chunk) : chunk;
    size += bytes.byteLength;
    if (size > max) throw invalid(`Callback body over ${max} bytes`);
    parts.push(bytes);
  }
  const raw = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    raw.set(p, at);
    at += p.byteLength;
  }
  const header = req.headers[SIGNATURE_HEADER];
  return verified<T>(raw, Array.isArray(header) ? header[0] : header, secret);
}
