// tRPC's plain-JSON wire format (DESIGN §3, no transformer) over fetch, with
// bounded retries. A mutation is POST /api/trpc/<procedure> with the input as
// the body; a query is GET ?input=<json>, or POST with tRPC's method override
// when the URL would be too long. Retrying a submit is safe only because every
// submitted command carries an idempotency key (see client.ts).
import { ConveyorError, fromTrpcError } from "./errors.js";

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export type RetryOptions = {
  /** Requests in all, the first included (default 4). */
  attempts?: number;
  /** Delay before the first retry (default 200 ms), doubled at each one, with jitter. */
  baseDelayMs?: number;
  /** Longest delay between two tries (default 5 s), Retry-After aside. */
  maxDelayMs?: number;
  /** A Retry-After longer than this (default 60 s) is not waited for: the TOO_MANY_REQUESTS error is thrown. */
  maxRetryAfterMs?: number;
};

export type TransportOptions = {
  /** Where Conveyor is served, e.g. `https://conveyor.internal` (the API is under /api/trpc). */
  url: string;
  /** An API token (tokens.create or BOOTSTRAP_API_TOKEN). */
  token: string;
  /** Defaults to the global fetch. */
  fetch?: FetchLike;
  /** Retries of network errors, timeouts, 5xx and 429; `false` sends each request once. */
  retry?: RetryOptions | false;
  /** How long one request may take before it counts as failed (TIMEOUT) and is retried (default 30 s). */
  timeoutMs?: number;
  /** Sent with every request (a proxy's own authentication, say). */
  headers?: Record<string, string>;
};

type Kind = "query" | "mutation";
type Outcome = { ok: true; data: unknown } | { ok: false; error: ConveyorError; retryable: boolean };

/** Longer GET URLs are sent as POST with `x-trpc-method-override` (proxies and servers cap URL length). */
const MAX_GET_URL = 2000;
const TIMED_OUT = new Error("request timed out");

/** Exponential backoff with jitter: a random delay in [ceiling/2, ceiling], ceiling = min(max, base · 2^retry). */
export function backoffDelay(retry: number, baseMs: number, maxMs: number, random: () => number = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** retry);
  return ceiling / 2 + random() * (ceiling / 2);
}

/** Retry-After as milliseconds from `now`: delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value == null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // HTTP dates start with the day's name ("Sun, 06 Nov 1994 08:49:37 GMT"); Date.parse alone takes "1.5" for a date.
  if (!/^[A-Za-z]{3}/.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

const describe = (err: unknown): string => {
  const e = err as { message?: string; cause?: { code?: string; message?: string } } | undefined;
  const cause = e?.cause?.code ?? e?.cause?.message;
  return [e?.message ?? String(err), cause].filter(Boolean).join(": ");
};

export class Transport {
  private readonly base: string;
  private readonly fetch: FetchLike;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxRetryAfterMs: number;

  constructor(o: TransportOptions) {
    if (!o.url) throw new TypeError("Conveyor: `url` is required");
    if (!o.token) throw new TypeError("Conveyor: `token` is required");
    this.base = `${o.url.replace(/\/+$/, "")}/api/trpc`;
    // Called through a wrapper: a browser's fetch refuses to run with another object as `this`.
    this.fetch = o.fetch ?? ((url, init) => globalThis.fetch(url, init));
    this.headers = { ...o.headers, accept: "application/json", authorization: `Bearer ${o.token}` };
    this.timeoutMs = o.timeoutMs ?? 30_000;
    const r = o.retry === false ? { attempts: 1 } : (o.retry ?? {});
    this.attempts = Math.max(1, Math.floor(r.attempts ?? 4));
    this.baseDelayMs = r.baseDelayMs ?? 200;
    this.maxDelayMs = r.maxDelayMs ?? 5_000;
    this.maxRetryAfterMs = r.maxRetryAfterMs ?? 60_000;
  }

  /** Calls a procedure; retries what may succeed when sent again; throws ConveyorError, or the signal's reason. */
  async call<T>(
    kind: Kind,
    procedure: string,
    input: unknown,
    signal?: AbortSignal,
    /** Sent with this call's every try (the trace context of a submit). */
    headers?: Record<string, string>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.once(kind, procedure, input, attempt, signal, headers);
      if (r.ok) return r.data as T;
      if (!r.retryable || attempt >= this.attempts) throw r.error;
      let delay = backoffDelay(attempt - 1, this.baseDelayMs, this.maxDelayMs);
      const asked = r.error.retryAfterMs;
      if (asked !== undefined) {
        if (asked > this.maxRetryAfterMs) throw r.error;
        // What the server asked for, plus a little jitter so that clients told the same do not return together.
        delay = asked + Math.random() * this.baseDelayMs;
      }
      await sleep(delay, signal);
    }
  }

  private request(
    kind: Kind,
    procedure: string,
    input: unknown,
    headers: Record<string, string> | undefined,
  ): { url: string; init: RequestInit } {
    const json = JSON.stringify(input);
    const base = headers ? { ...this.headers, ...headers } : this.headers;
    const post = (extra: Record<string, string>) => ({
      url: `${this.base}/${procedure}`,
      init: { method: "POST", headers: { ...base, "content-type": "application/json", ...extra }, body: json },
    });
    if (kind === "mutation") return post({});
    const url = `${this.base}/${procedure}?input=${encodeURIComponent(json)}`;
    if (url.length <= MAX_GET_URL) return { url, init: { method: "GET", headers: base } };
    return post({ "x-trpc-method-override": "1" });
  }

  private async once(
    kind: Kind,
    procedure: string,
    input: unknown,
    attempt: number,
    signal: AbortSignal | undefined,
    headers: Record<string, string> | undefined,
  ): Promise<Outcome> {
    if (signal?.aborted) throw signal.reason;
    const { url, init } = this.request(kind, procedure, input, headers);
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => ctl.abort(TIMED_OUT), this.timeoutMs);
    const noAnswer = (err: unknown): Outcome => {
      if (signal?.aborted) throw signal.reason;
      const timedOut = ctl.signal.reason === TIMED_OUT;
      const message = timedOut
        ? `No answer from Conveyor to ${procedure} within ${this.timeoutMs} ms`
        : `No answer from Conveyor to ${procedure}: ${describe(err)}`;
      const error = new ConveyorError({
        code: timedOut ? "TIMEOUT" : "NETWORK",
        message: attempt > 1 ? `${message} (after ${attempt} attempts)` : message,
        procedure,
        attempts: attempt,
        cause: err,
      });
      return { ok: false, error, retryable: true };
    };
    try {
      let res: Response;
      let text: string;
      try {
        res = await this.fetch(url, { ...init, signal: ctl.signal });
        // The connection may break after the status line: that is no answer either.
        text = await res.text();
      } catch (err) {
        return noAnswer(err);
      }
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      if (res.ok) {
        const result = (body as { result?: { data?: unknown } } | undefined)?.result;
        if (result && typeof result === "object") return { ok: true, data: result.data };
        const error = new ConveyorError({
          code: "BAD_RESPONSE",
          message: `HTTP ${res.status} from ${procedure} without a tRPC result: is ${this.base} a Conveyor?`,
          httpStatus: res.status,
          procedure,
          attempts: attempt,
        });
        return { ok: false, error, retryable: false };
      }
      const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
      const error = fromTrpcError(body, res.status, { procedure, attempts: attempt, retryAfterMs });
      return { ok: false, error, retryable: res.status >= 500 || res.status === 429 };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }
}
